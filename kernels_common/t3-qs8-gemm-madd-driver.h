// The loops every x86 multiply-add t3 kernel (prefill) shares: chunks of tokens whose
// activations stay in the cache while every 32-row tile of [n_begin, n_end) passes over them,
// each tile decoded once per chunk into codes w+1 by the variant, its token tiles run over the
// decoded tile while the next tile's bytes are prefetched, and partial tiles (a worker's split,
// or n inside a tile) stored through a buffer. Exact in int32: sum (w+1) x - sum x = sum w x.
// T = int32_t: the sums into y (GemmTernaryFn); T = float: y = float(sum) * (w.scale / xs[i])
// (accumulate: y += that; GemmTernaryScaledFn).
//
// A variant supplies K with
//   static constexpr size_t kTokens;                      its token tile (chunks are multiples)
//   static size_t buf_bytes(size_t groups);               one decoded tile
//   static void decode(tile, groups, k, buf);             decodes one tile
//   template <class T> static void tokens(buf, k, xp, x_sum, out, out_stride, scale,
//                                         accumulate, mc, MaddPrefetch& pf);
//     out[i * out_stride + r] (r < 32) for the mc tokens of xp (k bytes apart), calling
//     pf.step() once per token tile.
// ISA-neutral, but included by files compiled with different ISA flags: the anonymous
// namespace gives each its own copy.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "runtime/weights.h"

namespace lutra {
namespace {

constexpr size_t kMaddChunkBytes = 4 << 20;  // activations of one token chunk (L3)

// Prefetches of the next tile's weights, spread over a tile's token blocks: the tile bytes
// come from memory (the model is far larger than the L3), and decoding them waited for each
// line in turn (~15 % of the AVX-512 kernel's time at m = 128, cold weights against hot).
struct MaddPrefetch {
  const uint8_t* next = nullptr;  // the next tile's bytes still to prefetch
  const uint8_t* end = nullptr;
  size_t per_block = 0;  // bytes per token block
  void step() {
    const uint8_t* stop = next + std::min<size_t>(size_t(end - next), per_block);
    for (; next < stop; next += 64) __builtin_prefetch(next, 0, 3);
  }
};

template <class K, class T>
void t3_gemm_madd(const WeightView& w, const int8_t* xq, const float* xs, T* y, size_t m,
                  size_t n_begin, size_t n_end, bool accumulate) {
  if (n_begin >= n_end) return;
  const size_t k = w.k, groups = lut_groups(WeightFormat::t3, k), tile_bytes = t3_tile_bytes(k);
  thread_local std::vector<int32_t> x_sum;
  thread_local std::vector<float> scale;  // per token: w.scale / xs[i] (T = float)
  thread_local std::vector<uint8_t> buf;   // one decoded tile
  thread_local std::vector<int32_t> out;   // a chunk's sums for a partial tile, [token][32]
  if (x_sum.size() < m) x_sum.resize(m);
  if constexpr (std::is_same_v<T, float>) {
    if (scale.size() < m) scale.resize(m);
    for (size_t i = 0; i < m; i++) scale[i] = w.scale / xs[i];
  }
  if (buf.size() < K::buf_bytes(groups)) buf.resize(K::buf_bytes(groups));
  const size_t chunk = std::max<size_t>(K::kTokens, kMaddChunkBytes / k / K::kTokens * K::kTokens);
  if (out.size() < 32 * std::min(m, chunk)) out.resize(32 * std::min(m, chunk));
  for (size_t i = 0; i < m; i++) {
    int32_t sum = 0;
    for (size_t j = 0; j < k; j++) sum += xq[i * k + j];
    x_sum[i] = sum;
  }

  // 4 MiB chunks hold the 512 tokens of a long prefill even at k = 6912: decoding each
  // down_proj tile once instead of 8 times (512 KiB chunks, sized for the L2) measured 6-8 %
  // faster there with AVX-512 (m = 512, cold weights) and the same at k = 2560. A token block
  // reads its sequential activation rows from the L3, well within what the prefetchers keep
  // up with.
  for (size_t i0 = 0; i0 < m; i0 += chunk) {
    const size_t mc = std::min(chunk, m - i0);
    for (size_t t = n_begin / t3_tile_rows; t * t3_tile_rows < n_end; t++) {
      const size_t r0 = std::max(n_begin, t * t3_tile_rows);
      const size_t r1 = std::min(n_end, (t + 1) * t3_tile_rows);
      K::decode(w.data + t * tile_bytes, groups, k, buf.data());
      MaddPrefetch pf;
      if ((t + 1) * t3_tile_rows < n_end) {
        pf.next = w.data + (t + 1) * tile_bytes;
        pf.end = pf.next + tile_bytes;
        const size_t blocks = (mc + K::kTokens - 1) / K::kTokens;
        pf.per_block = (tile_bytes + blocks - 1) / blocks;  // the last block's tail: fewer tokens
      }
      // A whole tile stores its results in place; a partial one its sums in out first.
      const bool whole = r0 == t * t3_tile_rows && r1 == r0 + t3_tile_rows;
      const float* sc = std::is_same_v<T, float> ? scale.data() + i0 : nullptr;
      if (whole)
        K::template tokens<T>(buf.data(), k, xq + i0 * k, x_sum.data() + i0, y + i0 * w.n + r0, w.n, sc,
                              accumulate, mc, pf);
      else
        K::template tokens<int32_t>(buf.data(), k, xq + i0 * k, x_sum.data() + i0, out.data(), 32, nullptr,
                                    false, mc, pf);
      pf.per_block = tile_bytes;  // whatever is left (a ragged last block)
      pf.step();
      if (!whole)
        for (size_t i = 0; i < mc; i++) {
          const int32_t* sums = out.data() + 32 * i + (r0 - t * t3_tile_rows);
          T* yi = y + (i0 + i) * w.n + r0;
          if constexpr (std::is_same_v<T, float>) {
            for (size_t r = 0; r < r1 - r0; r++) {
              const float v = float(sums[r]) * scale[i0 + i];
              yi[r] = accumulate ? yi[r] + v : v;
            }
          } else {
            std::memcpy(yi, sums, (r1 - r0) * 4);
          }
        }
    }
  }
}

}  // namespace
}  // namespace lutra
