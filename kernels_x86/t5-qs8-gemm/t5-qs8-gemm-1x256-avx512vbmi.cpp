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
// Tokens are the inner loop: the weights of a step are read once from memory and reused from
// the cache by the other tokens of a batch.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

// Zero-masked forms with full masks (same instructions), as in the t3 AVX-512 kernel: GCC 12's
// unmasked extract and widening intrinsics trip -Wmaybe-uninitialized inside its headers.
constexpr __mmask8 kAll8 = 0xff;
constexpr __mmask16 kAll16 = 0xffff;
inline __m256i lo256(__m512i v) { return _mm512_maskz_extracti64x4_epi64(kAll8, v, 0); }
inline __m256i hi256(__m512i v) { return _mm512_maskz_extracti64x4_epi64(kAll8, v, 1); }

constexpr size_t kFlushGroups = 48;  // int16 sums of at most 48 groups per row
// 2 KiB ahead in each tile's stream, 8 KiB over the four: measured against 1, 4 and 8 KiB
// per stream (2560x2560 and 6912x2560, m = 1), 2 KiB was fastest hot and cold; 8 KiB per
// stream (32 KiB in flight, the size of the L1) was slowest, ~25 % behind hot.
constexpr size_t kPrefetchGroups = 32;
// Tiles per step. Each step reads the group's tables once for all its tiles: 4 tiles read 64
// bytes of table per 64 weight bytes. Measured at 2560x2560 and 6912x2560, m = 1 (a loaded
// machine): 4 tiles ran about 2x faster than 1 on weights streamed from memory and clearly
// faster than 2; 6 and 8 were no better than 4.
constexpr size_t kTiles = 4;

// Prefill: the bytes of tables (all tokens' share of one group range) meant to stay in the L2
// while every row step uses them.
constexpr size_t kPrefillTableBytes = 384 * 1024;

// out[64r + s] += sum over groups [g_begin, g_end) of row s of tile r (r < R; tile r at
// tile + r * tile_bytes); from g_begin = 0, out starts at neg[s]. Streaming: prefetch the
// weights ahead (the whole group range of one step is read in one go).
template <int R, bool kStreaming>
inline void tiles_dot(const uint8_t* tile, size_t tile_bytes, size_t groups, size_t g_begin,
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

// tiles_dot for 1 <= tiles <= R tiles.
template <int R, bool kStreaming>
inline void tiles_dot_n(size_t tiles, const uint8_t* tile, size_t tile_bytes, size_t groups,
                        size_t g_begin, size_t g_end, const uint8_t* tab, int32_t* out) {
  if constexpr (R > 1) {
    if (tiles < size_t(R))
      return tiles_dot_n<R - 1, kStreaming>(tiles, tile, tile_bytes, groups, g_begin, g_end, tab, out);
  }
  tiles_dot<R, kStreaming>(tile, tile_bytes, groups, g_begin, g_end, tab, out);
}

// Rows [n_begin, n_end), step by step, each step over all groups for every token: the weights
// stream from memory once, each token's tables are read once per step.
void gemm_streaming(const WeightView& w, const uint8_t* tables, size_t table_stride,
                    int32_t* acc, size_t m, size_t n_begin, size_t n_end) {
  if (n_begin >= n_end) return;
  const size_t tile_bytes = t5_tile_bytes(w.k), groups = lut_groups(WeightFormat::t5, w.k);
  const size_t t_end = (n_end + t5_tile_rows - 1) / t5_tile_rows;
  alignas(64) int32_t out[kTiles * t5_tile_rows];
  for (size_t t = n_begin / t5_tile_rows; t < t_end;) {
    const size_t tiles = std::min<size_t>(kTiles, t_end - t);
    const size_t r0 = std::max(n_begin, t * t5_tile_rows);
    const size_t r1 = std::min(n_end, (t + tiles) * t5_tile_rows);
    const uint8_t* tile = w.data + t * tile_bytes;
    for (size_t i = 0; i < m; i++) {  // tokens innermost: the tiles stay in cache
      const uint8_t* tab = tables + i * table_stride;
      tiles_dot_n<int(kTiles), true>(tiles, tile, tile_bytes, groups, 0, groups, tab, out);
      std::memcpy(acc + i * w.n + r0, out + (r0 - t * t5_tile_rows), (r1 - r0) * 4);
    }
    t += tiles;
  }
}

}  // namespace

// Decode (m = 1) streams. Prefill would read every token's tables from the L3 once per step
// (128 KiB per token at k = 2560); instead the whole tiles inside the row range run one group
// range at a time, small enough that all tokens' tables of it stay in the L2 while every step
// uses them, adding straight into acc. Rows of partial tiles at the edges stream.
void lutra_t5_qs8_gemm_1x256__avx512vbmi(const WeightView& w, const uint8_t* tables,
                                         size_t table_stride, int32_t* acc, size_t m,
                                         size_t n_begin, size_t n_end) {
  const size_t t_first = (n_begin + t5_tile_rows - 1) / t5_tile_rows;
  const size_t t_last = n_end / t5_tile_rows;  // whole tiles: [t_first, t_last)
  if (m == 1 || t_last <= t_first)
    return gemm_streaming(w, tables, table_stride, acc, m, n_begin, n_end);
  gemm_streaming(w, tables, table_stride, acc, m, n_begin, t_first * t5_tile_rows);
  const size_t tile_bytes = t5_tile_bytes(w.k), groups = lut_groups(WeightFormat::t5, w.k);
  const size_t chunk = std::clamp<size_t>(kPrefillTableBytes / (m * 256), 8, kFlushGroups);
  for (size_t g0 = 0; g0 < groups; g0 += chunk) {
    const size_t g1 = std::min(groups, g0 + chunk);
    for (size_t t = t_first; t < t_last; t += kTiles) {
      const size_t tiles = std::min(kTiles, t_last - t);
      const uint8_t* tile = w.data + t * tile_bytes;
      for (size_t i = 0; i < m; i++)
        tiles_dot_n<int(kTiles), false>(tiles, tile, tile_bytes, groups, g0, g1,
                                        tables + i * table_stride, acc + i * w.n + t * t5_tile_rows);
    }
  }
  gemm_streaming(w, tables, table_stride, acc, m, std::max(n_begin, t_last * t5_tile_rows), n_end);
}

}  // namespace lutra
