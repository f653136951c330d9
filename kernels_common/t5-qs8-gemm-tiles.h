// The row-tile loops every t5 GEMM variant shares (WeightFormat::t5): steps of up to four
// 64-row tiles, tokens innermost. A variant supplies
//   template <int R, bool kStreaming> static void Kernel::dot(tile, tile_bytes, groups,
//                                                             g_begin, g_end, tab, out)
// adding the sums over groups [g_begin, g_end) of the R tiles' rows (tile r at
// tile + r * tile_bytes) into out[64r + s] (from g_begin = 0 it first sets them to its
// starting values: neg[s] or 0; kStreaming: the step reads all its groups in one go, so
// prefetching ahead pays).
//
// Decode (m = 1) streams: each step over all groups for every token, the weights read once.
// Prefill would read every token's tables (128 KiB per token at k = 2560) from the L3 once per
// step; instead the whole tiles inside the row range run one group range at a time, small
// enough that all tokens' tables of it stay in the L2 while every step uses them, adding
// straight into acc. Rows of partial tiles at the edges stream.
//
// Plain C++, included by files compiled with different ISA flags: the anonymous namespace
// gives each file its own copy (as kernels_common/t3-qs8-gemm-tiles.h).
#pragma once

#include <algorithm>
#include <cstring>

#include "runtime/weights.h"

namespace lutra {
namespace {

// Tiles per step. Each step reads the group's tables once for all its tiles: 4 tiles read 64
// bytes of table per 64 weight bytes. Measured at 2560x2560 and 6912x2560, m = 1 (a loaded
// machine, VBMI kernel): 4 tiles ran about 2x faster than 1 on weights streamed from memory
// and clearly faster than 2; 6 and 8 were no better than 4.
constexpr size_t kT5Tiles = 4;
// Prefill: the bytes of tables (all tokens' share of one group range) meant to stay in the L2
// while every row step uses them.
constexpr size_t kT5PrefillTableBytes = 384 * 1024;

template <class Kernel, int R, bool kStreaming>
inline void t5_dot_n(size_t tiles, const uint8_t* tile, size_t tile_bytes, size_t groups,
                     size_t g_begin, size_t g_end, const uint8_t* tab, int32_t* out) {
  if constexpr (R > 1) {
    if (tiles < size_t(R))
      return t5_dot_n<Kernel, R - 1, kStreaming>(tiles, tile, tile_bytes, groups, g_begin, g_end,
                                                 tab, out);
  }
  Kernel::template dot<R, kStreaming>(tile, tile_bytes, groups, g_begin, g_end, tab, out);
}

template <class Kernel>
void t5_gemm_streaming(const WeightView& w, const uint8_t* tables, size_t table_stride,
                       int32_t* acc, size_t m, size_t n_begin, size_t n_end) {
  if (n_begin >= n_end) return;
  const size_t tile_bytes = t5_tile_bytes(w.k), groups = lut_groups(WeightFormat::t5, w.k);
  const size_t t_end = (n_end + t5_tile_rows - 1) / t5_tile_rows;
  alignas(64) int32_t out[kT5Tiles * t5_tile_rows];
  for (size_t t = n_begin / t5_tile_rows; t < t_end;) {
    const size_t tiles = std::min<size_t>(kT5Tiles, t_end - t);
    const size_t r0 = std::max(n_begin, t * t5_tile_rows);
    const size_t r1 = std::min(n_end, (t + tiles) * t5_tile_rows);
    const uint8_t* tile = w.data + t * tile_bytes;
    for (size_t i = 0; i < m; i++) {  // tokens innermost: the tiles stay in cache
      t5_dot_n<Kernel, int(kT5Tiles), true>(tiles, tile, tile_bytes, groups, 0, groups,
                                            tables + i * table_stride, out);
      std::memcpy(acc + i * w.n + r0, out + (r0 - t * t5_tile_rows), (r1 - r0) * 4);
    }
    t += tiles;
  }
}

template <class Kernel>
void t5_gemm_tiles(const WeightView& w, const uint8_t* tables, size_t table_stride,
                   int32_t* acc, size_t m, size_t n_begin, size_t n_end) {
  const size_t t_first = (n_begin + t5_tile_rows - 1) / t5_tile_rows;
  const size_t t_last = n_end / t5_tile_rows;  // whole tiles: [t_first, t_last)
  if (m == 1 || t_last <= t_first)
    return t5_gemm_streaming<Kernel>(w, tables, table_stride, acc, m, n_begin, n_end);
  t5_gemm_streaming<Kernel>(w, tables, table_stride, acc, m, n_begin, t_first * t5_tile_rows);
  const size_t tile_bytes = t5_tile_bytes(w.k), groups = lut_groups(WeightFormat::t5, w.k);
  // Groups per range: tables of all m tokens within the budget, at least 8 (fewer would
  // spend more time flushing sums than looking up), at most 48 (one int16 flush).
  const size_t chunk = std::clamp<size_t>(kT5PrefillTableBytes / (m * 256), 8, 48);
  for (size_t g0 = 0; g0 < groups; g0 += chunk) {
    const size_t g1 = std::min(groups, g0 + chunk);
    for (size_t t = t_first; t < t_last; t += kT5Tiles) {
      const size_t tiles = std::min(kT5Tiles, t_last - t);
      const uint8_t* tile = w.data + t * tile_bytes;
      for (size_t i = 0; i < m; i++)
        t5_dot_n<Kernel, int(kT5Tiles), false>(tiles, tile, tile_bytes, groups, g0, g1,
                                               tables + i * table_stride,
                                               acc + i * w.n + t * t5_tile_rows);
    }
  }
  t5_gemm_streaming<Kernel>(w, tables, table_stride, acc, m,
                            std::max(n_begin, t_last * t5_tile_rows), n_end);
}

}  // namespace
}  // namespace lutra
