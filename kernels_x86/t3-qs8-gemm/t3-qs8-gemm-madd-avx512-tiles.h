// t3 weights by multiply-add instead of table lookup, for prefill (many tokens), AVX-512BW
// (maddubs + madd) or AVX-512 VNNI (vpdpbusd), chosen by kVnni. Why: the lookup kernels read
// every token's tables (32 bytes per group, 27 KB per token at k = 2560) once per 32-row tile,
// so at m = 128 they stream megabytes of tables per tile and spend ~20 instructions per 2
// blocks per token; a multiply-add reads 4 bytes of activations per group and token.
//
// Each 32-row tile is decoded once into a buffer of codes w+1 (0/1/2, unsigned bytes for
// vpdpbusd/maddubs), 4 columns per 32-bit lane, lanes = rows: per 4 columns d, two vectors of
// 16 rows (rows 0-15, 16-31). The activations stay where they are, in their natural order, and
// each token's 4 bytes at column 4d are broadcast, so the tile's 32 rows for T tokens stay in 2T
// int32 accumulators with no horizontal sums; whole tiles store them straight into acc.
// Exact: sum code*x - sum x = sum w*x, all in int32 (maddubs pairs are <= 2*2*128, no
// saturation), so every variant is bit-identical to the lookup kernels and the scalar
// reference. The columns past k (the packer's zero-weight padding) decode to code 0, not 1, so
// they add nothing whatever bytes lie against them: the activations are read in place (rows k
// bytes apart), lanes wholly past k are skipped, and a lane that k ends inside is read by its
// live bytes only.
//
// Decode of one (block p, group L, 16-row half h): the 16 index nibbles widen to dwords, the
// 16 sign bits come out of the sign word by one test against per-row bit masks, and a 32-entry
// dword table (vpermt2d, index + 16 for negative) gives the group's 3 codes in bytes 0-2.
// Groups a, b, c, d (12 columns) then shift together into 3 lanes of 4 columns:
// [a0 a1 a2 b0], [b1 b2 c0 c1], [c2 d0 d1 d2]; a last pair of groups gives 2 lanes.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels_common/t3-qs8-gemm-madd-driver.h"
#include "kernels_x86/avx512-masked.h"
#include "runtime/weights.h"

namespace lutra {
namespace {

constexpr int kTokenTile = 12;  // register tile: 32 rows x 12 tokens = 24 zmm sums

#define LUTRA_UNROLL _Pragma("GCC unroll 16")

// Codes of pattern v as a dword: (v/9) | (v/3%3) << 8 | (v%3) << 16, the 4th byte 0.
constexpr int32_t pattern_codes(int v) { return v / 9 | (v / 3 % 3) << 8 | (v % 3) << 16; }
// Entry i: index i positive (v = i), entry 16 + i: negative (v = 26 - i). Indices 14 and 15
// never occur; they get the zero pattern (13).
constexpr int32_t code_entry(int e) {
  const int i = e % 16;
  return pattern_codes(i >= 14 ? 13 : e < 16 ? i : 26 - i);
}

// Pins v in a register at this point: without it GCC 12 copies the 24 accumulators between
// registers and the stack every step (measured: the VNNI kernel ran at half speed, slower
// than maddubs).
inline void pin(__m512i& v) { asm("" : "+v"(v)); }

// Lanes of 4 columns per row (groups padded to `groups`: 3 columns each).
inline size_t lanes_per_row(size_t groups) { return (3 * groups + 3) / 4; }

// Decodes tile `tile` into buf: 128 bytes per 4 columns (lanes_per_row(groups) of them), rows
// 0-15 then 16-31, a dword of 4 codes per row; columns k and up get code 0.
inline void decode_tile(const uint8_t* tile, size_t groups, size_t k, uint8_t* buf) {
  __m512i lo_tab, hi_tab;
  {
    alignas(64) int32_t e[32];
    for (int i = 0; i < 32; i++) e[i] = code_entry(i);
    lo_tab = _mm512_load_si512(e);
    hi_tab = _mm512_load_si512(e + 16);
  }
  // Row q of half h, group 2p + L: sign bit 8(q%4) + 4L + q/4 of S[h].
  __m512i sign_bit[2];
  for (int L = 0; L < 2; L++) {
    alignas(64) int32_t b[16];
    for (int q = 0; q < 16; q++) b[q] = int32_t(1u << (8 * (q % 4) + 4 * L + q / 4));
    sign_bit[L] = _mm512_load_si512(b);
  }
  const __m512i nibble = _mm512_set1_epi32(15), sixteen = _mm512_set1_epi32(16);
  // Codes of groups 2p, 2p+1: c[h][0], c[h][1] for rows 16h..16h+15.
  auto block_codes = [&](size_t p, __m512i c[2][2]) {
    const uint8_t* b = tile + 128 + 40 * p;
    int32_t s[2];
    std::memcpy(s, b + 32, 8);
    for (int L = 0; L < 2; L++) {
      const __m512i idx = _mm512_maskz_cvtepu8_epi32(
          kAll16, _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16 * L)));
      for (int h = 0; h < 2; h++) {
        __m512i i = _mm512_and_si512(h ? _mm512_maskz_srli_epi32(kAll16, idx, 4) : idx, nibble);
        const __mmask16 neg = _mm512_test_epi32_mask(_mm512_set1_epi32(s[h]), sign_bit[L]);
        c[h][L] = _mm512_permutex2var_epi32(lo_tab, _mm512_mask_add_epi32(i, neg, i, sixteen), hi_tab);
      }
    }
  };
  auto store = [&](size_t lane, int h, __m512i v) {
    _mm512_storeu_si512(buf + 128 * lane + 64 * h, v);
  };
  auto shl = [](__m512i v, unsigned bits) { return _mm512_maskz_slli_epi32(kAll16, v, bits); };
  auto shr = [](__m512i v, unsigned bits) { return _mm512_maskz_srli_epi32(kAll16, v, bits); };
  const size_t blocks = groups / 2;
  size_t p = 0, lane = 0;
  for (; p + 2 <= blocks; p += 2, lane += 3) {  // 4 groups a, b, c, d -> 3 lanes
    __m512i ab[2][2], cd[2][2];
    block_codes(p, ab);
    block_codes(p + 1, cd);
    for (int h = 0; h < 2; h++) {
      store(lane, h, _mm512_or_si512(ab[h][0], shl(ab[h][1], 24)));
      store(lane + 1, h, _mm512_or_si512(shr(ab[h][1], 8), shl(cd[h][0], 16)));
      store(lane + 2, h, _mm512_or_si512(shr(cd[h][0], 16), shl(cd[h][1], 8)));
    }
  }
  if (p < blocks) {  // a last pair of groups -> 2 lanes (their last 2 columns code 0)
    __m512i ab[2][2];
    block_codes(p, ab);
    for (int h = 0; h < 2; h++) {
      store(lane, h, _mm512_or_si512(ab[h][0], shl(ab[h][1], 24)));
      store(lane + 1, h, shr(ab[h][1], 8));
    }
  }
  // The padding columns k .. 3 * groups - 1 (zero weights, code 1) -> code 0.
  for (size_t c = k; c < 3 * groups; c++)
    for (size_t r = 0; r < 32; r++) buf[128 * (c / 4) + 64 * (r / 16) + 4 * (r % 16) + c % 4] = 0;
}

template <size_t N>
inline int32_t load_bytes(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, N);
  return v;
}
// The first `live` (< 4) bytes at p, the rest 0.
inline int32_t load_live(const int8_t* p, size_t live) {
  int32_t v = 0;
  std::memcpy(&v, p, live);
  return v;
}

// out[i * out_stride + r] (r < 32) = the tile's sums for M tokens of k activations from xp
// (stride bytes apart): lanes [0, k / 4) whole, then the live k % 4 bytes of one more lane.
// T = float: out = float(sum) * scale[i] (accumulate: out += that), instead of the sums.
// Never inlined: inlined into the GEMM's loop, GCC 12 spills the accumulators of the small M.
template <bool kVnni, int M, class T>
__attribute__((noinline)) void tile_tokens(const uint8_t* buf, size_t k, const int8_t* xp,
                                           size_t stride, const int32_t* x_sum, T* out,
                                           size_t out_stride, const float* scale, bool accumulate) {
  __m512i acc[2][M];
  LUTRA_UNROLL for (int i = 0; i < M; i++) acc[0][i] = acc[1][i] = _mm512_setzero_si512();
  const __m512i ones = _mm512_set1_epi16(1);
  // One lane d for the M tokens, token i's 4 bytes read by LOAD_X(p) at p. (A macro, not a
  // lambda: with a lambda GCC 12 keeps the accumulators on the stack.)
#define LUTRA_T3_LANE(d, LOAD_X)                                                                 \
  do {                                                                                           \
    const __m512i w0 = _mm512_loadu_si512(buf + 128 * (d));                                      \
    const __m512i w1 = _mm512_loadu_si512(buf + 128 * (d) + 64);                                 \
    LUTRA_UNROLL for (int i = 0; i < M; i++) {                                                   \
      const int8_t* p = xp + i * stride + 4 * (d);                                               \
      const __m512i x = _mm512_set1_epi32(LOAD_X);                                               \
      if constexpr (kVnni) {                                                                     \
        acc[0][i] = _mm512_dpbusd_epi32(acc[0][i], w0, x);                                       \
        acc[1][i] = _mm512_dpbusd_epi32(acc[1][i], w1, x);                                       \
      } else {                                                                                   \
        acc[0][i] = _mm512_add_epi32(acc[0][i], _mm512_madd_epi16(_mm512_maddubs_epi16(w0, x), ones)); \
        acc[1][i] = _mm512_add_epi32(acc[1][i], _mm512_madd_epi16(_mm512_maddubs_epi16(w1, x), ones)); \
      }                                                                                          \
      pin(acc[0][i]);                                                                            \
      pin(acc[1][i]);                                                                            \
    }                                                                                            \
  } while (0)
  const size_t full = k / 4, live = k % 4;
  for (size_t d = 0; d < full; d++) LUTRA_T3_LANE(d, load_bytes<4>(p));
  if (live) LUTRA_T3_LANE(full, load_live(p, live));  // the bytes past k stay 0
#undef LUTRA_T3_LANE
  LUTRA_UNROLL for (int i = 0; i < M; i++) {
    const __m512i s = _mm512_set1_epi32(x_sum[i]);
    const __m512i sum0 = _mm512_sub_epi32(acc[0][i], s), sum1 = _mm512_sub_epi32(acc[1][i], s);
    T* o = out + i * out_stride;
    if constexpr (std::is_same_v<T, float>) {  // float(sum) * scale, rounded as C++ rounds them
      const __m512 f = _mm512_set1_ps(scale[i]);
      __m512 y0 = _mm512_mul_ps(_mm512_maskz_cvtepi32_ps(kAll16, sum0), f), y1 = _mm512_mul_ps(_mm512_maskz_cvtepi32_ps(kAll16, sum1), f);
      if (accumulate) {
        y0 = _mm512_add_ps(_mm512_loadu_ps(o), y0);
        y1 = _mm512_add_ps(_mm512_loadu_ps(o + 16), y1);
      }
      _mm512_storeu_ps(o, y0);
      _mm512_storeu_ps(o + 16, y1);
    } else {
      _mm512_storeu_si512(o, sum0);
      _mm512_storeu_si512(o + 16, sum1);
    }
  }
}

// All mc tokens of a chunk, M at a time (the last ones fewer).
template <bool kVnni, int M, class T>
inline void tile_all_tokens(const uint8_t* buf, size_t k, const int8_t* xp, const int32_t* x_sum,
                            T* out, size_t out_stride, const float* scale, bool accumulate,
                            size_t mc, MaddPrefetch& pf) {
  size_t i = 0;
  for (; i + M <= mc; i += M) {
    tile_tokens<kVnni, M, T>(buf, k, xp + i * k, k, x_sum + i, out + i * out_stride, out_stride,
                             scale + i, accumulate);
    pf.step();
  }
  if constexpr (M > 1) {
    if (i < mc)
      tile_all_tokens<kVnni, M - 1, T>(buf, k, xp + i * k, x_sum + i, out + i * out_stride,
                                       out_stride, scale + i, accumulate, mc - i, pf);
  }
}

// The variant for t3_gemm_madd (kernels_common/t3-qs8-gemm-madd-driver.h).
template <bool kVnni>
struct Avx512Madd {
  static constexpr size_t kTokens = kTokenTile;
  static size_t buf_bytes(size_t groups) { return 128 * lanes_per_row(groups); }
  static void decode(const uint8_t* tile, size_t groups, size_t k, uint8_t* buf) { decode_tile(tile, groups, k, buf); }
  template <class T>
  static void tokens(const uint8_t* buf, size_t k, const int8_t* xp, const int32_t* x_sum, T* out,
                     size_t out_stride, const float* scale, bool accumulate, size_t mc, MaddPrefetch& pf) {
    tile_all_tokens<kVnni, kTokens, T>(buf, k, xp, x_sum, out, out_stride, scale, accumulate, mc, pf);
  }
};

#undef LUTRA_UNROLL

}  // namespace
}  // namespace lutra
