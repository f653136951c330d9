// The row-tile loop every bp GEMM variant shares (exact and fast): for each 32-row tile
// overlapping [n_begin, n_end) and each token, `tile_dot` writes the tile's 32 outputs from the
// token's tables; rows outside the range are dropped. Tokens run innermost, so a tile read for
// the first token is in cache for the others.
//
// Plain C++, included by files compiled with different ISA flags: the anonymous namespace
// gives each file its own copy.
#pragma once

#include <algorithm>
#include <cstring>

#include "runtime/weights.h"

namespace lutra {
namespace {

template <class TileDot>
inline void bp_gemm_tiles(const WeightView& w, const uint8_t* tables, size_t table_stride,
                          const float* xs, float* y, size_t m, size_t n_begin, size_t n_end,
                          TileDot tile_dot) {
  if (n_begin >= n_end) return;
  const size_t tile_bytes = bp_tile_bytes(w.k, w.bits, w.group, w.asymmetric);
  alignas(64) float out[bp_tile_rows];
  for (size_t t = n_begin / bp_tile_rows; t * bp_tile_rows < n_end; t++) {
    const size_t r0 = std::max(n_begin, t * bp_tile_rows);
    const size_t r1 = std::min(n_end, (t + 1) * bp_tile_rows);
    for (size_t i = 0; i < m; i++) {
      tile_dot(w.data + t * tile_bytes, tables + i * table_stride, xs[i], out);
      std::memcpy(y + i * w.n + r0, out + (r0 - t * bp_tile_rows), (r1 - r0) * 4);
    }
  }
}

}  // namespace
}  // namespace lutra
