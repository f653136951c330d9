// Ternary x int8 GEMM, 1 token x 4 output rows per tile, AVX2.
// Codes 0/1/2 are unsigned bytes, so _mm256_maddubs_epi16 multiplies them with the int8
// activations; sum (code-1)*x = sum code*x - sum x, the last term once per token. A maddubs
// lane is c0*x0 + c1*x1 in [-512, 510] (codes <= 3 even when invalid): no int16 saturation.
// 32 packed bytes hold codes 4q+t (q < 32, t < 4) at bits 2t of byte q, so the activations
// of each 128-wide block are permuted once per call to the order t*32 + q: the weights then
// unpack with one shift and one mask per t.
#include <immintrin.h>

#include <cstring>
#include <vector>

#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

constexpr size_t kBlock = 128;  // codes per 32 packed bytes

inline int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

// sum over one block of code*x, as 8 int32 partial sums.
inline __m256i block_dot(__m256i packed, const int8_t* xb) {
  const __m256i mask = _mm256_set1_epi8(3);
  __m256i c0 = _mm256_and_si256(packed, mask);
  __m256i c1 = _mm256_and_si256(_mm256_srli_epi16(packed, 2), mask);
  __m256i c2 = _mm256_and_si256(_mm256_srli_epi16(packed, 4), mask);
  __m256i c3 = _mm256_and_si256(_mm256_srli_epi16(packed, 6), mask);
  auto x = [&](int t) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb + 32 * t)); };
  __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(c0, x(0)), _mm256_maddubs_epi16(c1, x(1)));
  p = _mm256_add_epi16(p, _mm256_maddubs_epi16(c2, x(2)));
  p = _mm256_add_epi16(p, _mm256_maddubs_epi16(c3, x(3)));  // |p| <= 4*512: fits int16
  return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

template <int R>
void rows_tile(const uint8_t* w0, size_t row_bytes, const int8_t* xp, size_t n_blocks,
               int32_t x_sum, int32_t* out) {
  size_t full = row_bytes / 32;
  __m256i acc[R];
  for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_si256();
  for (size_t b = 0; b < full; b++) {
    for (int r = 0; r < R; r++) {
      __m256i packed = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w0 + r * row_bytes + 32 * b));
      acc[r] = _mm256_add_epi32(acc[r], block_dot(packed, xp + b * kBlock));
    }
  }
  if (full < n_blocks) {  // ragged k: the row's last bytes, zero padded (their x are 0 too)
    for (int r = 0; r < R; r++) {
      alignas(32) uint8_t tail[32] = {};
      std::memcpy(tail, w0 + r * row_bytes + 32 * full, row_bytes - 32 * full);
      __m256i packed = _mm256_load_si256(reinterpret_cast<const __m256i*>(tail));
      acc[r] = _mm256_add_epi32(acc[r], block_dot(packed, xp + full * kBlock));
    }
  }
  for (int r = 0; r < R; r++) out[r] = hsum(acc[r]) - x_sum;
}

}  // namespace

void lutra_t2_qs8_gemm_1x4__avx2(const WeightView& w, const int8_t* xq, int32_t* acc,
                                 size_t m, size_t n_begin, size_t n_end) {
  const size_t k = w.k, row_bytes = t2_row_bytes(k);
  const size_t n_blocks = (k + kBlock - 1) / kBlock, stride = n_blocks * kBlock;
  thread_local std::vector<int8_t> xp;  // permuted activations, grows once per thread
  thread_local std::vector<int32_t> x_sum;
  xp.assign(m * stride, 0);
  x_sum.assign(m, 0);
  for (size_t i = 0; i < m; i++) {
    const int8_t* x = xq + i * k;
    int8_t* dst = xp.data() + i * stride;
    for (size_t j = 0; j < k; j++) {
      size_t b = j / kBlock, q = (j % kBlock) / 4, t = j % 4;
      dst[b * kBlock + t * 32 + q] = x[j];
      x_sum[i] += x[j];
    }
  }
  size_t r = n_begin;
  int32_t out[4];
  for (; r + 4 <= n_end; r += 4) {
    for (size_t i = 0; i < m; i++) {  // tokens innermost: the 4 rows stay in L1
      rows_tile<4>(w.data + r * row_bytes, row_bytes, xp.data() + i * stride, n_blocks, x_sum[i], out);
      for (int t = 0; t < 4; t++) acc[i * w.n + r + t] = out[t];
    }
  }
  for (; r < n_end; r++)
    for (size_t i = 0; i < m; i++)
      rows_tile<1>(w.data + r * row_bytes, row_bytes, xp.data() + i * stride, n_blocks, x_sum[i],
                   &acc[i * w.n + r]);
}

}  // namespace lutra
