// Ternary x int8 GEMM (WeightFormat::t2) for prefill, NEON with the int8 matrix multiply: smmla
// (vmmlaq_s32) multiplies 2 tokens x 8 activations by 2 rows x 8 codes into a 2x2 block of int32
// sums, 32 products per instruction where sdot does 16. Register tile: 8 tokens x 4 rows = 4
// token pairs x 2 row pairs, 8 accumulators.
// - Codes 0/1/2 as they stand (sum (code-1)*x = sum code*x - sum x, as the other t2 kernels).
// - Weights: 8 packed bytes (32 codes) of row r and 8 of row r+1 in one register; shift and
//   mask t gives codes 4q+t (q < 8) of both rows, which is smmla's 2 x 8 operand.
// - Activations, permuted once per call to match: per token pair, per 32 columns, per t, 16
//   bytes [token i: x[4q+t], q < 8 | token i+1: the same] (ld4 deinterleaves them); an odd last
//   token pairs with zeros.
// Rows past a multiple of 4 go in one pair (an odd last row pairs with itself; its second copy
// is dropped). One token (decode) takes the dot-product kernel's tiles instead: a pair with a
// zero token would waste half of every smmla.
#include <arm_neon.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels_arm/t2-qs8-gemm/t2-qs8-gemm-neon-tiles.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

#define LUTRA_UNROLL _Pragma("GCC unroll 16")

constexpr size_t kChunk = 32;  // columns per 8 packed bytes of a row
constexpr int kPairs = 4;      // token pairs per register tile

// Tokens x0, x1 (null: zeros) in the pair layout above, zero padded to whole chunks.
inline void permute_pair(const int8_t* x0, const int8_t* x1, size_t k, int8_t* dst) {
  const size_t full = k / kChunk;
  for (size_t c = 0; c < full; c++, dst += 64) {
    const int8x8x4_t a = vld4_s8(x0 + kChunk * c);  // a.val[t] lane q = x[4q + t]
    const int8x8x4_t b = x1 ? vld4_s8(x1 + kChunk * c) : int8x8x4_t{};
    for (int t = 0; t < 4; t++) vst1q_s8(dst + 16 * t, vcombine_s8(a.val[t], b.val[t]));
  }
  if (const size_t rest = k - full * kChunk) {  // ragged k: the last chunk, zero padded
    std::memset(dst, 0, 64);
    for (size_t j = 0; j < rest; j++) {
      const size_t at = (j % 4) * 16 + j / 4, col = full * kChunk + j;
      dst[at] = x0[col];
      if (x1) dst[at + 8] = x1[col];
    }
  }
}

// Codes t of row pair {a, b}: 8 packed bytes each.
inline int8x16_t pair_codes(uint8x16_t p, int t) {
  const uint8x16_t mask = vdupq_n_u8(3);
  switch (t) {
    case 0: return vreinterpretq_s8_u8(vandq_u8(p, mask));
    case 1: return vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(p, 2), mask));
    case 2: return vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(p, 4), mask));
    default: return vreinterpretq_s8_u8(vshrq_n_u8(p, 6));
  }
}

// out[i * n + r] for P token pairs from xp (pair stride `stride`) and Q row pairs: row pair q
// is rows (a[q], b[q]); `keep` rows of 2Q are stored (an odd last row drops its copy).
template <int P, int Q>
inline void tile(const uint8_t* const (&a)[Q], const uint8_t* const (&b)[Q], size_t row_bytes,
                 const int8_t* xp, size_t stride, const int32_t* x_sum, size_t tokens,
                 int32_t* out, size_t n, size_t keep) {
  int32x4_t acc[P][Q];
  LUTRA_UNROLL for (int p = 0; p < P; p++)
    LUTRA_UNROLL for (int q = 0; q < Q; q++) acc[p][q] = vdupq_n_s32(0);
  const size_t chunks = (row_bytes + 7) / 8, full = row_bytes / 8;
  for (size_t c = 0; c < chunks; c++) {
    uint8x16_t packed[Q];
    LUTRA_UNROLL for (int q = 0; q < Q; q++) {
      if (c < full) {
        packed[q] = vcombine_u8(vld1_u8(a[q] + 8 * c), vld1_u8(b[q] + 8 * c));
      } else {  // ragged k: the rows' last bytes, zero padded (their x are 0 too)
        uint8_t tail[16] = {};
        std::memcpy(tail, a[q] + 8 * c, row_bytes - 8 * c);
        std::memcpy(tail + 8, b[q] + 8 * c, row_bytes - 8 * c);
        packed[q] = vld1q_u8(tail);
      }
    }
    LUTRA_UNROLL for (int t = 0; t < 4; t++) {
      int8x16_t x[P];
      LUTRA_UNROLL for (int p = 0; p < P; p++) x[p] = vld1q_s8(xp + p * stride + 64 * c + 16 * t);
      LUTRA_UNROLL for (int q = 0; q < Q; q++) {
        const int8x16_t w = pair_codes(packed[q], t);
        LUTRA_UNROLL for (int p = 0; p < P; p++) acc[p][q] = vmmlaq_s32(acc[p][q], x[p], w);
      }
    }
  }
  // acc[p][q] lanes: (token 2p, row 2q), (2p, 2q+1), (2p+1, 2q), (2p+1, 2q+1).
  LUTRA_UNROLL for (int p = 0; p < P; p++) {
    alignas(16) int32_t s[4 * Q];
    for (int q = 0; q < Q; q++) vst1q_s32(s + 4 * q, acc[p][q]);
    for (size_t i = 0; i < 2 && 2 * size_t(p) + i < tokens; i++) {
      int32_t* o = out + (2 * size_t(p) + i) * n;
      const int32_t xs = x_sum[2 * p + i];
      for (size_t r = 0; r < keep; r++) o[r] = s[4 * (r / 2) + 2 * i + r % 2] - xs;
    }
  }
}

// All row pairs of [r0, r1) for P token pairs (tokens of them real).
template <int P>
void rows(const uint8_t* w, size_t row_bytes, size_t r0, size_t r1, const int8_t* xp,
          size_t stride, const int32_t* x_sum, size_t tokens, int32_t* out, size_t n) {
  size_t r = r0;
  for (; r + 4 <= r1; r += 4) {
    const uint8_t* a[2] = {w + r * row_bytes, w + (r + 2) * row_bytes};
    const uint8_t* b[2] = {w + (r + 1) * row_bytes, w + (r + 3) * row_bytes};
    tile<P, 2>(a, b, row_bytes, xp, stride, x_sum, tokens, out + r, n, 4);
  }
  for (; r < r1; r += 2) {
    const uint8_t* a[1] = {w + r * row_bytes};
    const uint8_t* b[1] = {w + std::min(r + 1, r1 - 1) * row_bytes};
    tile<P, 1>(a, b, row_bytes, xp, stride, x_sum, tokens, out + r, n, std::min<size_t>(2, r1 - r));
  }
}

#undef LUTRA_UNROLL

}  // namespace

void lutra_t2_qs8_gemm_8x4__neoni8mm(const WeightView& w, const int8_t* xq, int32_t* acc,
                                     size_t m, size_t n_begin, size_t n_end) {
  if (m == 1) return t2_gemm<true, 4>(w, xq, acc, m, n_begin, n_end);
  const size_t k = w.k, n = w.n, row_bytes = t2_row_bytes(k);
  const size_t stride = (k + kChunk - 1) / kChunk * 64;  // bytes per token pair
  const size_t pairs = (m + 1) / 2;
  thread_local std::vector<int8_t> xp;  // permuted activation pairs, grows once per thread
  thread_local std::vector<int32_t> x_sum;
  if (xp.size() < pairs * stride) xp.resize(pairs * stride);
  if (x_sum.size() < 2 * pairs) x_sum.resize(2 * pairs);
  for (size_t p = 0; p < pairs; p++) {
    const int8_t* x1 = 2 * p + 1 < m ? xq + (2 * p + 1) * k : nullptr;
    permute_pair(xq + 2 * p * k, x1, k, xp.data() + p * stride);
  }
  for (size_t i = 0; i < m; i++) {
    int32_t s = 0;
    for (size_t j = 0; j < k; j++) s += xq[i * k + j];
    x_sum[i] = s;
  }
  // Chunks of token pairs whose activations stay in L2 while every row passes over them.
  const size_t chunk = std::max<size_t>(kPairs, kT2ChunkBytes / stride / kPairs * kPairs);
  for (size_t p0 = 0; p0 < pairs; p0 += chunk) {
    const size_t pc = std::min(chunk, pairs - p0);
    size_t p = 0;
    for (; p + kPairs <= pc; p += kPairs) {
      const size_t i = 2 * (p0 + p);
      rows<kPairs>(w.data, row_bytes, n_begin, n_end, xp.data() + (p0 + p) * stride, stride,
                   x_sum.data() + i, std::min<size_t>(2 * kPairs, m - i), acc + i * n, n);
    }
    const size_t i = 2 * (p0 + p), left = pc - p;
    const int8_t* x = xp.data() + (p0 + p) * stride;
    int32_t* o = acc + i * n;
    if (left == 3) rows<3>(w.data, row_bytes, n_begin, n_end, x, stride, x_sum.data() + i, m - i, o, n);
    if (left == 2) rows<2>(w.data, row_bytes, n_begin, n_end, x, stride, x_sum.data() + i, m - i, o, n);
    if (left == 1) rows<1>(w.data, row_bytes, n_begin, n_end, x, stride, x_sum.data() + i, m - i, o, n);
  }
}

}  // namespace lutra
