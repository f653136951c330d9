// t3 x int8 GEMM by multiply-add (prefill) for CPUs without AVX-512, which otherwise prefill by
// table lookup: the loops of kernels_common/t3-qs8-gemm-madd-driver.h with a 256-bit decode and
// token tile. Why multiply-add wins at many tokens is in t3-qs8-gemm-madd-avx512-tiles.h.
// Included by the AVX2 file (kVnni = false: maddubs + madd) and the AVX-VNNI one (kVnni = true:
// vpdpbusd, the u8 x s8 products summed straight into int32), each with its ISA's flags.
//
// Decode of one (block p, group L, 16-row half h): the 16 index nibbles look up each of the
// group's 3 codes (w+1: 0, 1, 2) in a 16-byte pshufb table; rows whose sign bit is set (the
// sign word broadcast, and-ed with per-row bits, compared) take 2 - code. Four columns of 16
// rows interleave (unpack 8, then 16) into row-major dwords: groups a, b, c, d (12 columns)
// give 3 lanes [a0 a1 a2 b0], [b1 b2 c0 c1], [c2 d0 d1 d2] of 128 bytes (rows 0..31); a last
// pair of groups gives 2. Columns k and up get code 0.
//
// Token tile: 32 rows x 2 tokens (AVX2) or 3 (AVX-VNNI). Each lane's 4 weight vectors (8 rows
// each) are loaded once for the tile's tokens. AVX2: maddubs pairs codes with a token's broadcast 4 bytes (|pair| <= 2 * 2 *
// 128), summed in int16 over kFlush lanes (<= 32 * 512 < 2^15) before madd widens them into the
// int32 sums. AVX-VNNI: vpdpbusd adds the 4 products of each dword to the int32 sums at once.
// Exact either way, so bit-identical to the scalar reference.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "kernels_common/t3-qs8-gemm-madd-driver.h"

namespace lutra {
namespace {

// sum + the 4 products u8 a x s8 b of each dword. AVX-VNNI's VEX form where the file is built for
// it; the same operation in AVX512-VNNI's EVEX form (AVX512VL) where it is not, which is how the
// tests run the AVX-VNNI tile on CPUs that only have AVX-512 VNNI.
#if defined(__AVXVNNI__)
#define LUTRA_HAVE_DPBUSD256 1
inline __m256i dpbusd256(__m256i sum, __m256i a, __m256i b) { return _mm256_dpbusd_avx_epi32(sum, a, b); }
#elif defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define LUTRA_HAVE_DPBUSD256 1
inline __m256i dpbusd256(__m256i sum, __m256i a, __m256i b) { return _mm256_dpbusd_epi32(sum, a, b); }
#else
#define LUTRA_HAVE_DPBUSD256 0
#endif


constexpr size_t kFlush = 32;  // lanes summed in int16

// The 3 codes of each magnitude index i (0..13; 14 and 15 never occur: the zero pattern).
struct CodeTables {
  uint8_t c[3][16];
};
constexpr CodeTables make_code_tables() {
  CodeTables t{};
  for (int i = 0; i < 16; i++) {
    const int v = i >= 14 ? 13 : i;
    t.c[0][i] = uint8_t(v / 9);
    t.c[1][i] = uint8_t(v / 3 % 3);
    t.c[2][i] = uint8_t(v % 3);
  }
  return t;
}
alignas(16) constexpr CodeTables kCodes = make_code_tables();
// Row q of a half, group 2p + L: bit 4L + q/4 of byte q%4 of the sign word.
alignas(16) constexpr uint8_t kSignBits[2][16] = {
    {1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 8, 8, 8, 8},
    {16, 16, 16, 16, 32, 32, 32, 32, 64, 64, 64, 64, 128, 128, 128, 128}};

inline size_t lanes_of(size_t groups) { return (3 * groups + 3) / 4; }

template <bool kVnni>
struct Avx2Madd {
  static constexpr size_t kTokens = 2;  // (3 for VNNI, 12 chains, measured slower: spills)
  static size_t buf_bytes(size_t groups) { return 128 * lanes_of(groups); }

  static void decode(const uint8_t* tile, size_t groups, size_t k, uint8_t* buf) {
    const __m128i tab[3] = {_mm_load_si128(reinterpret_cast<const __m128i*>(kCodes.c[0])),
                            _mm_load_si128(reinterpret_cast<const __m128i*>(kCodes.c[1])),
                            _mm_load_si128(reinterpret_cast<const __m128i*>(kCodes.c[2]))};
    const __m128i bit[2] = {_mm_load_si128(reinterpret_cast<const __m128i*>(kSignBits[0])),
                            _mm_load_si128(reinterpret_cast<const __m128i*>(kSignBits[1]))};
    const __m128i nibble = _mm_set1_epi8(15), two = _mm_set1_epi8(2);
    // Codes of groups 2p (c[h][0..2]) and 2p+1 (c[h][3..5]), rows 16h .. 16h+15.
    auto block = [&](size_t p, __m128i c[2][6]) {
      const uint8_t* b = tile + 128 + 40 * p;
      int32_t s[2];
      std::memcpy(s, b + 32, 8);
      for (int L = 0; L < 2; L++) {
        const __m128i idx = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16 * L));
        for (int h = 0; h < 2; h++) {
          const __m128i i = _mm_and_si128(h ? _mm_srli_epi16(idx, 4) : idx, nibble);
          const __m128i neg = _mm_cmpeq_epi8(_mm_and_si128(_mm_set1_epi32(s[h]), bit[L]), bit[L]);
          for (int j = 0; j < 3; j++) {
            const __m128i code = _mm_shuffle_epi8(tab[j], i);
            c[h][3 * L + j] = _mm_blendv_epi8(code, _mm_sub_epi8(two, code), neg);
          }
        }
      }
    };
    // Columns a, b, c, d of 16 rows as their dwords, into lane `lane`, half h.
    auto store = [&](size_t lane, int h, __m128i a, __m128i b, __m128i c, __m128i d) {
      const __m128i ab_lo = _mm_unpacklo_epi8(a, b), ab_hi = _mm_unpackhi_epi8(a, b);
      const __m128i cd_lo = _mm_unpacklo_epi8(c, d), cd_hi = _mm_unpackhi_epi8(c, d);
      __m128i* o = reinterpret_cast<__m128i*>(buf + 128 * lane + 64 * h);
      _mm_storeu_si128(o + 0, _mm_unpacklo_epi16(ab_lo, cd_lo));
      _mm_storeu_si128(o + 1, _mm_unpackhi_epi16(ab_lo, cd_lo));
      _mm_storeu_si128(o + 2, _mm_unpacklo_epi16(ab_hi, cd_hi));
      _mm_storeu_si128(o + 3, _mm_unpackhi_epi16(ab_hi, cd_hi));
    };
    const __m128i zero = _mm_setzero_si128();
    const size_t blocks = groups / 2;
    size_t p = 0, lane = 0;
    for (; p + 2 <= blocks; p += 2, lane += 3) {  // 4 groups a, b, c, d -> 3 lanes
      __m128i ab[2][6], cd[2][6];
      block(p, ab);
      block(p + 1, cd);
      for (int h = 0; h < 2; h++) {
        store(lane, h, ab[h][0], ab[h][1], ab[h][2], ab[h][3]);
        store(lane + 1, h, ab[h][4], ab[h][5], cd[h][0], cd[h][1]);
        store(lane + 2, h, cd[h][2], cd[h][3], cd[h][4], cd[h][5]);
      }
    }
    if (p < blocks) {  // a last pair of groups -> 2 lanes (their last 2 columns code 0)
      __m128i ab[2][6];
      block(p, ab);
      for (int h = 0; h < 2; h++) {
        store(lane, h, ab[h][0], ab[h][1], ab[h][2], ab[h][3]);
        store(lane + 1, h, ab[h][4], ab[h][5], zero, zero);
      }
    }
    // The padding columns k .. 3 * groups - 1 (zero weights, code 1) -> code 0.
    for (size_t c = k; c < 3 * groups; c++)
      for (size_t r = 0; r < 32; r++) buf[128 * (c / 4) + 4 * r + c % 4] = 0;
  }

  // M (1 .. kTokens) tokens over the decoded tile: out[i * out_stride + r], r < 32.
  template <int M, class T>
  static void tile(const uint8_t* buf, size_t k, const int8_t* xp, const int32_t* x_sum, T* out,
                   size_t out_stride, const float* scale, bool accumulate) {
    __m256i sum[M][4];
    for (int i = 0; i < M; i++)
      for (int v = 0; v < 4; v++) sum[i][v] = _mm256_setzero_si256();
    const size_t full = k / 4, live = k % 4, lanes = full + (live ? 1 : 0);
    // Token i's 4 bytes of lane d (the bytes past k stay 0), broadcast.
    auto x_of = [&](int i, size_t d) {
      int32_t xv = 0;
      if (d < full) std::memcpy(&xv, xp + i * k + 4 * d, 4);
      else std::memcpy(&xv, xp + i * k + 4 * d, live);
      return _mm256_set1_epi32(xv);
    };
    static_assert(!kVnni || LUTRA_HAVE_DPBUSD256, "the VNNI tile needs AVX-VNNI or AVX512-VNNI + VL flags");
#if LUTRA_HAVE_DPBUSD256
    if constexpr (kVnni) {
      // Whole lanes broadcast straight from the activations; the ragged last one through x_of.
      for (size_t d = 0; d < lanes; d++) {
        const __m256i* wp = reinterpret_cast<const __m256i*>(buf + 128 * d);
        const __m256i w[4] = {_mm256_loadu_si256(wp), _mm256_loadu_si256(wp + 1), _mm256_loadu_si256(wp + 2),
                              _mm256_loadu_si256(wp + 3)};
        for (int i = 0; i < M; i++) {
          int32_t xv;
          if (d < full) std::memcpy(&xv, xp + i * k + 4 * d, 4);
          const __m256i x = d < full ? _mm256_set1_epi32(xv) : x_of(i, d);
          for (int v = 0; v < 4; v++) sum[i][v] = dpbusd256(sum[i][v], w[v], x);
        }
      }
    }
#endif
    const __m256i ones = _mm256_set1_epi16(1);
    for (size_t d0 = 0; !kVnni && d0 < lanes; d0 += kFlush) {
      __m256i acc[M][4];
      for (int i = 0; i < M; i++)
        for (int v = 0; v < 4; v++) acc[i][v] = _mm256_setzero_si256();
      const size_t d1 = std::min(lanes, d0 + kFlush);
      for (size_t d = d0; d < d1; d++) {
        const __m256i* wp = reinterpret_cast<const __m256i*>(buf + 128 * d);
        const __m256i w[4] = {_mm256_loadu_si256(wp), _mm256_loadu_si256(wp + 1), _mm256_loadu_si256(wp + 2),
                              _mm256_loadu_si256(wp + 3)};
        for (int i = 0; i < M; i++) {
          const __m256i x = x_of(i, d);
          for (int v = 0; v < 4; v++) acc[i][v] = _mm256_add_epi16(acc[i][v], _mm256_maddubs_epi16(w[v], x));
        }
      }
      for (int i = 0; i < M; i++)
        for (int v = 0; v < 4; v++) sum[i][v] = _mm256_add_epi32(sum[i][v], _mm256_madd_epi16(acc[i][v], ones));
    }
    for (int i = 0; i < M; i++) {
      const __m256i s = _mm256_set1_epi32(x_sum[i]);
      T* o = out + i * out_stride;
      for (int v = 0; v < 4; v++) {
        const __m256i r = _mm256_sub_epi32(sum[i][v], s);
        if constexpr (std::is_same_v<T, float>) {  // float(sum) * scale, rounded as C++ rounds them
          __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(r), _mm256_set1_ps(scale[i]));
          if (accumulate) y = _mm256_add_ps(_mm256_loadu_ps(o + 8 * v), y);
          _mm256_storeu_ps(o + 8 * v, y);
        } else {
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 8 * v), r);
        }
      }
    }
  }

  template <class T>
  static void tokens(const uint8_t* buf, size_t k, const int8_t* xp, const int32_t* x_sum, T* out,
                     size_t out_stride, const float* scale, bool accumulate, size_t mc, MaddPrefetch& pf) {
    constexpr int kM = int(kTokens);
    size_t i = 0;
    for (; i + kM <= mc; i += kM) {
      tile<kM, T>(buf, k, xp + i * k, x_sum + i, out + i * out_stride, out_stride, scale ? scale + i : nullptr,
                  accumulate);
      pf.step();
    }
    if (kM == 3 && i + 2 <= mc) {
      tile<2, T>(buf, k, xp + i * k, x_sum + i, out + i * out_stride, out_stride, scale ? scale + i : nullptr,
                 accumulate);
      i += 2;
      pf.step();
    }
    if (i < mc) {
      tile<1, T>(buf, k, xp + i * k, x_sum + i, out + i * out_stride, out_stride, scale ? scale + i : nullptr,
                 accumulate);
      pf.step();
    }
  }
};

}  // namespace
}  // namespace lutra
