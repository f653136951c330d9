// The outer loops every t2 multiply-add GEMM variant shares (AVX2, AVX-512, NEON): each token's
// activations permuted once per call into the variant's block order, with their sum (the
// kernels compute sum (code-1)*x as sum code*x - sum x); then chunks of tokens whose
// activations stay in L2 while every row passes over them, and in each chunk tiles of kRows
// rows, then the last rows one at a time.
//   permute(x, k, out) -> int32 sum of x; writes ceil(k / kBlock) * kBlock bytes
//   rows(std::integral_constant<int, R>{}, w0, row_bytes, xp, stride, x_sum, out, n, m):
//     R rows starting at w0 over m tokens (xp, x_sum, out advance by stride, 1, n per token)
// Included by files compiled with different ISA flags: the anonymous namespace gives each its
// own copy.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "runtime/weights.h"

namespace lutra {
namespace {

constexpr size_t kT2ChunkBytes = 256 << 10;  // activations of one token chunk (L2)

template <size_t kBlock, int kRows, int kTokens, class Permute, class Rows>
void t2_gemm_tiles(const WeightView& w, const int8_t* xq, int32_t* acc, size_t m, size_t n_begin,
                   size_t n_end, Permute permute, Rows rows) {
  const size_t k = w.k, n = w.n, row_bytes = t2_row_bytes(k);
  const size_t stride = (k + kBlock - 1) / kBlock * kBlock;
  thread_local std::vector<int8_t> xp;  // permuted activations, grows once per thread
  thread_local std::vector<int32_t> x_sum;
  if (xp.size() < m * stride) xp.resize(m * stride);
  if (x_sum.size() < m) x_sum.resize(m);
  for (size_t i = 0; i < m; i++) x_sum[i] = permute(xq + i * k, k, xp.data() + i * stride);

  const size_t chunk = std::max<size_t>(kTokens, kT2ChunkBytes / stride / kTokens * kTokens);
  for (size_t i0 = 0; i0 < m; i0 += chunk) {
    const size_t mc = std::min(chunk, m - i0);
    const int8_t* xc = xp.data() + i0 * stride;
    const int32_t* sc = x_sum.data() + i0;
    int32_t* ac = acc + i0 * n;
    size_t r = n_begin;
    for (; r + kRows <= n_end; r += kRows)
      rows(std::integral_constant<int, kRows>{}, w.data + r * row_bytes, row_bytes, xc, stride, sc, ac + r, n, mc);
    for (; r < n_end; r++)
      rows(std::integral_constant<int, 1>{}, w.data + r * row_bytes, row_bytes, xc, stride, sc, ac + r, n, mc);
  }
}

}  // namespace
}  // namespace lutra
