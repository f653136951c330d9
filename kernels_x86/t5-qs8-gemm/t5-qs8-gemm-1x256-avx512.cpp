// Ternary x int8 GEMM by table lookup (WeightFormat::t5), 1 token x 256 output rows (four
// 64-row tiles) per step, AVX-512 F/BW without VBMI (Skylake-X class CPUs): the layout's
// fallback where vpermi2b is missing, slower than the VBMI kernel. Per group of 5 weights:
// - the group's low and high byte tables are interleaved once into 4 registers of int16
//   entries (unpacklo/hi_epi8, then vpermt2w back into entry order), shared by all four tiles;
// - per tile, the 64 code bytes widen to two vectors of 32 int16 indices; vpermi2w looks up
//   entries (index & 63) in entries 0..63 and in 64..127, bit 6 of the index picks one, and
//   bit 7 (the sign) subtracts instead of adds, exactly (no neg[s] correction needed);
// - the int16 sums (48 groups, |T| <= 640) widen into int32 in the packer's row order: byte
//   16L + b of a group's codes is row 8L + b (b < 8) or 32 + 8L + b - 8.
// The loops over row tiles and tokens are t5-qs8-gemm-tiles.h's.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels_common/t5-qs8-gemm-tiles.h"
#include "kernels_x86/avx512-masked.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

constexpr size_t kFlushGroups = 48;     // int16 sums of at most 48 groups per row
constexpr size_t kPrefetchGroups = 32;  // 2 KiB ahead in each tile's stream, as the VBMI kernel

struct Selectors {
  // Word j of entries 32h + j from u0 = unpacklo_epi8(lo, hi) (entries 16L + 0..7 at words
  // 8L + 0..7) and u1 = unpackhi_epi8(lo, hi) (entries 16L + 8..15), as vpermt2w indices.
  int16_t entry[2][32];
};
constexpr Selectors make_selectors() {
  Selectors s{};
  for (int e = 0; e < 64; e++) {
    const int L = e / 16, q = e % 16;
    s.entry[e / 32][e % 32] = int16_t((q >= 8 ? 32 : 0) + 8 * L + q % 8);
  }
  return s;
}
alignas(64) constexpr Selectors kSelectors = make_selectors();

struct Avx512 {
  template <int R, bool kStreaming>
  static void dot(const uint8_t* tile, size_t tile_bytes, size_t groups, size_t g_begin,
                  size_t g_end, const uint8_t* tab, int32_t* out);
};

template <int R, bool kStreaming>
inline void Avx512::dot(const uint8_t* tile, size_t tile_bytes, size_t groups, size_t g_begin,
                        size_t g_end, const uint8_t* tab, int32_t* out) {
  const __m512i sel0 = _mm512_load_si512(kSelectors.entry[0]);
  const __m512i sel1 = _mm512_load_si512(kSelectors.entry[1]);
  const __m512i bit6 = _mm512_set1_epi16(0x40), bit7 = _mm512_set1_epi16(0x80);
  if (g_begin == 0) std::memset(out, 0, size_t(R) * 256);
  for (size_t g0 = g_begin; g0 < g_end; g0 += kFlushGroups) {
    const size_t g1 = std::min(g_end, g0 + kFlushGroups);
    __m512i a[R][2];
    for (int r = 0; r < R; r++) a[r][0] = a[r][1] = _mm512_setzero_si512();
    for (size_t g = g0; g < g1; g++) {
      const __m512i* t = reinterpret_cast<const __m512i*>(tab + 256 * g);
      __m512i e[4];  // int16 entries 0..31, 32..63, 64..95, 96..127
      for (int h = 0; h < 2; h++) {
        const __m512i lo = _mm512_loadu_si512(t + h), hi = _mm512_loadu_si512(t + 2 + h);
        const __m512i u0 = _mm512_unpacklo_epi8(lo, hi), u1 = _mm512_unpackhi_epi8(lo, hi);
        e[2 * h] = _mm512_permutex2var_epi16(u0, sel0, u1);
        e[2 * h + 1] = _mm512_permutex2var_epi16(u0, sel1, u1);
      }
      // Ahead in this tile, or past its end into the same stream of the next step's tiles.
      const size_t ahead = 64 * kPrefetchGroups + (g + kPrefetchGroups >= groups ? (R - 1) * tile_bytes + 256 : 0);
      for (int r = 0; r < R; r++) {
        const uint8_t* b = tile + size_t(r) * tile_bytes + 256 + 64 * g;
        if constexpr (kStreaming) _mm_prefetch(reinterpret_cast<const char*>(b) + ahead, _MM_HINT_T0);
        const __m512i codes = _mm512_loadu_si512(b);
        for (int h = 0; h < 2; h++) {
          const __m512i idx = _mm512_maskz_cvtepu8_epi16(0xffffffffu, h ? hi256(codes) : lo256(codes));
          const __m512i low = _mm512_permutex2var_epi16(e[0], idx, e[1]);
          const __m512i high = _mm512_permutex2var_epi16(e[2], idx, e[3]);
          const __m512i v = _mm512_mask_blend_epi16(_mm512_test_epi16_mask(idx, bit6), low, high);
          const __mmask32 neg = _mm512_test_epi16_mask(idx, bit7);
          a[r][h] = _mm512_mask_sub_epi16(a[r][h], neg, a[r][h], v);
          a[r][h] = _mm512_mask_add_epi16(a[r][h], __mmask32(~neg), a[r][h], v);
        }
      }
    }
    for (int r = 0; r < R; r++)
      for (int L = 0; L < 4; L++) {  // bytes 16L..16L+15: rows 8L..8L+7, then 32+8L..32+8L+7
        const __m256i words = L % 2 ? hi256(a[r][L / 2]) : lo256(a[r][L / 2]);
        const __m512i s = _mm512_maskz_cvtepi16_epi32(kAll16, words);
        __m256i* o0 = reinterpret_cast<__m256i*>(out + 64 * r + 8 * L);
        __m256i* o1 = reinterpret_cast<__m256i*>(out + 64 * r + 32 + 8 * L);
        _mm256_storeu_si256(o0, _mm256_add_epi32(_mm256_loadu_si256(o0), lo256(s)));
        _mm256_storeu_si256(o1, _mm256_add_epi32(_mm256_loadu_si256(o1), hi256(s)));
      }
  }
}

}  // namespace

void lutra_t5_qs8_gemm_1x256__avx512(const WeightView& w, const uint8_t* tables,
                                     size_t table_stride, int32_t* acc, size_t m, size_t n_begin,
                                     size_t n_end) {
  t5_gemm_tiles<Avx512>(w, tables, table_stride, acc, m, n_begin, n_end);
}

}  // namespace lutra
