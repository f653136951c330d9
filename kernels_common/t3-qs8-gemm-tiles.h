// The row-tile loop every t3 GEMM variant shares: for each 32-row tile overlapping
// [n_begin, n_end) and each token, `tile_dot` computes the tile's 32 exact sums from the
// token's tables; rows outside the range are dropped. Pass `tile_dot` as a lambda: a plain
// function pointer measured 6-8 % slower on the AVX2 kernel (GCC 12 laid the loop out worse).
//
// Plain C++, ISA-neutral (the x86 and ARM variants share it), but included by files compiled
// with different ISA flags: the anonymous namespace gives each file its own copy, so the linker
// can never hand the AVX2 path a copy the compiler built with AVX-512 instructions.
#pragma once

#include <algorithm>
#include <cstring>

#include "runtime/weights.h"

namespace lutra {
namespace {

template <class TileDot>
inline void t3_gemm_tiles(const WeightView& w, const uint8_t* tables, size_t table_stride,
                          int32_t* acc, size_t m, size_t n_begin, size_t n_end, TileDot tile_dot) {
  if (n_begin >= n_end) return;
  const size_t tile_bytes = t3_tile_bytes(w.k), blocks = lut_groups(WeightFormat::t3, w.k) / 2;
  alignas(64) int32_t out[32];
  for (size_t t = n_begin / t3_tile_rows; t * t3_tile_rows < n_end; t++) {
    const size_t r0 = std::max(n_begin, t * t3_tile_rows);
    const size_t r1 = std::min(n_end, (t + 1) * t3_tile_rows);
    const uint8_t* tile = w.data + t * tile_bytes;
    for (size_t i = 0; i < m; i++) {  // tokens innermost: the tile stays in L1
      tile_dot(tile, blocks, tables + i * table_stride, out);
      std::memcpy(acc + i * w.n + r0, out + (r0 - t * t3_tile_rows), (r1 - r0) * 4);
    }
  }
}

}  // namespace
}  // namespace lutra
