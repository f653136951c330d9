// One query head's attention over cached positions (AttentionFn), AVX2 + FMA, in the canonical
// float order (runtime/float_order.h). The scalar reference takes each q·k dot product in 16
// lane chains; here they are two 8-wide accumulators, and the weighted sum of V rows runs 8
// dimensions at a time, positions ascending with one fma each, as in the reference. The
// softmax is the AVX2 one, bit-identical to the reference's.
#include <immintrin.h>

#include <cmath>

#include "kernels_x86/float-order-avx2.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

inline float dot(const float* a, const float* b, size_t n) {
  __m256 lo = _mm256_setzero_ps(), hi = lo;
  size_t d = 0;
  for (; d + 16 <= n; d += 16) {
    lo = _mm256_fmadd_ps(_mm256_loadu_ps(a + d), _mm256_loadu_ps(b + d), lo);
    hi = _mm256_fmadd_ps(_mm256_loadu_ps(a + d + 8), _mm256_loadu_ps(b + d + 8), hi);
  }
  if (d < n) {
    const __m256i m0 = live_mask8(long(n - d)), m1 = live_mask8(long(n - d) - 8);
    lo = _mm256_fmadd_ps(_mm256_maskload_ps(a + d, m0), _mm256_maskload_ps(b + d, m0), lo);
    hi = _mm256_fmadd_ps(_mm256_maskload_ps(a + d + 8, m1), _mm256_maskload_ps(b + d + 8, m1), hi);
  }
  return reduce16(lo, hi);
}

}  // namespace

void lutra_f32_attention__avx2(const float* q, const float* k, const float* v, size_t n_pos,
                               size_t head_dim, size_t kv_stride, float scale, float* scores,
                               float* out) {
  for (size_t t = 0; t < n_pos; t++) scores[t] = dot(q, k + t * kv_stride, head_dim) * scale;
  lutra_f32_softmax__avx2(scores, n_pos);
  size_t d = 0;
  for (; d + 8 <= head_dim; d += 8) {
    __m256 acc = _mm256_setzero_ps();
    for (size_t t = 0; t < n_pos; t++)
      acc = _mm256_fmadd_ps(_mm256_set1_ps(scores[t]), _mm256_loadu_ps(v + t * kv_stride + d), acc);
    _mm256_storeu_ps(out + d, acc);
  }
  for (; d < head_dim; d++) {
    float acc = 0.0f;
    for (size_t t = 0; t < n_pos; t++) acc = std::fma(scores[t], v[t * kv_stride + d], acc);
    out[d] = acc;
  }
}

}  // namespace lutra
