// Ternary x int8 GEMM by table lookup (WeightFormat::t5), 1 token x 256 output rows (four
// 64-row tiles) per step, AVX-512 VBMI. Per group of 5 weights:
// - the group's 128-entry tables stay in 4 registers (low bytes in 2, high bytes in 2) for
//   all four tiles;
// - per tile, one 64-byte load gives the code bytes of its 64 rows; vpermi2b reads their
//   bits 0..6 as the magnitude index, so two lookups give the low and high bytes of T for 64
//   rows; vpmovb2m turns bit 7 (the sign) into a byte mask, and masked 0xff - x turns both
//   bytes of T into those of ~T = -T - 1 for negative groups (the +1 per negative group is
//   the tile's stored count neg[s], the starting value of the int32 sums);
// - unpacklo/hi_epi8 of the low and high bytes give the int16 values of rows 0..31 and
//   32..63 in order (the packer's byte order), summed in int16 for 48 groups (|~T| <= 641,
//   48 * 641 < 2^15) and then widened into int32.
// The loops over row tiles and tokens (decode streaming, prefill by group ranges) are
// t5-qs8-gemm-tiles.h's.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels_common/t5-qs8-gemm-tiles.h"
#include "kernels_x86/avx512-masked.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

constexpr size_t kFlushGroups = 48;  // int16 sums of at most 48 groups per row
// 2 KiB ahead in each tile's stream, 8 KiB over the four: measured against 1, 4 and 8 KiB
// per stream (2560x2560 and 6912x2560, m = 1), 2 KiB was fastest hot and cold; 8 KiB per
// stream (32 KiB in flight, the size of the L1) was slowest, ~25 % behind hot.
constexpr size_t kPrefetchGroups = 32;

// out[64r + s] += sum over groups [g_begin, g_end) of row s of tile r (r < R; tile r at
// tile + r * tile_bytes); from g_begin = 0, out starts at neg[s]. Streaming: prefetch the
// weights ahead (the whole group range of one step is read in one go).
struct Vbmi {
  template <int R, bool kStreaming>
  static void dot(const uint8_t* tile, size_t tile_bytes, size_t groups, size_t g_begin,
                  size_t g_end, const uint8_t* tab, int32_t* out);
};

template <int R, bool kStreaming>
inline void Vbmi::dot(const uint8_t* tile, size_t tile_bytes, size_t groups, size_t g_begin,
                      size_t g_end, const uint8_t* tab, int32_t* out) {
  const __m512i ff = _mm512_set1_epi8(-1);
  if (g_begin == 0)
    for (int r = 0; r < R; r++)  // the int32 sums start at neg[s]
      std::memcpy(out + 64 * r, tile + size_t(r) * tile_bytes, 256);
  for (size_t g0 = g_begin; g0 < g_end; g0 += kFlushGroups) {
    const size_t g1 = std::min(g_end, g0 + kFlushGroups);
    __m512i a[R][2];
    for (int r = 0; r < R; r++) a[r][0] = a[r][1] = _mm512_setzero_si512();
    for (size_t g = g0; g < g1; g++) {
      const __m512i* t = reinterpret_cast<const __m512i*>(tab + 256 * g);
      const __m512i tl0 = _mm512_loadu_si512(t), tl1 = _mm512_loadu_si512(t + 1);
      const __m512i th0 = _mm512_loadu_si512(t + 2), th1 = _mm512_loadu_si512(t + 3);
      // Ahead in this tile, or past its end into the same stream of the next step's tiles.
      const size_t ahead = 64 * kPrefetchGroups + (g + kPrefetchGroups >= groups ? (R - 1) * tile_bytes + 256 : 0);
      for (int r = 0; r < R; r++) {
        const uint8_t* b = tile + size_t(r) * tile_bytes + 256 + 64 * g;
        if constexpr (kStreaming) _mm_prefetch(reinterpret_cast<const char*>(b) + ahead, _MM_HINT_T0);
        const __m512i idx = _mm512_loadu_si512(b);
        const __mmask64 neg = _mm512_movepi8_mask(idx);
        __m512i lo = _mm512_permutex2var_epi8(tl0, idx, tl1);
        __m512i hi = _mm512_permutex2var_epi8(th0, idx, th1);
        lo = _mm512_mask_sub_epi8(lo, neg, ff, lo);
        hi = _mm512_mask_sub_epi8(hi, neg, ff, hi);
        a[r][0] = _mm512_add_epi16(a[r][0], _mm512_unpacklo_epi8(lo, hi));
        a[r][1] = _mm512_add_epi16(a[r][1], _mm512_unpackhi_epi8(lo, hi));
      }
    }
    for (int r = 0; r < R; r++)
      for (int h = 0; h < 2; h++) {
        int32_t* o = out + 64 * r + 32 * h;
        const __m512i s0 = _mm512_maskz_cvtepi16_epi32(kAll16, lo256(a[r][h]));
        const __m512i s1 = _mm512_maskz_cvtepi16_epi32(kAll16, hi256(a[r][h]));
        _mm512_storeu_si512(o, _mm512_add_epi32(_mm512_loadu_si512(o), s0));
        _mm512_storeu_si512(o + 16, _mm512_add_epi32(_mm512_loadu_si512(o + 16), s1));
      }
  }
}

}  // namespace

void lutra_t5_qs8_gemm_1x256__avx512vbmi(const WeightView& w, const uint8_t* tables,
                                         size_t table_stride, int32_t* acc, size_t m,
                                         size_t n_begin, size_t n_end) {
  t5_gemm_tiles<Vbmi>(w, tables, table_stride, acc, m, n_begin, n_end);
}

}  // namespace lutra
