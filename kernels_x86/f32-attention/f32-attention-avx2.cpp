// One query head's attention over cached positions (AttentionFn), AVX2 + FMA. The scalar
// reference sums each q·k dot product in one dependent chain (~4 cycles a term, 512 for a
// 128-wide head); here four 8-wide accumulators take it in ~head_dim/8 FMAs, and the weighted
// sum of V rows runs 8 dimensions at a time. The softmax is the scalar reference's. Float sums
// go in another order than the reference's, so results differ in the last bits (the kernel
// test bounds them against a double-precision reference).
#include <immintrin.h>

#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float dot(const float* a, const float* b, size_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  size_t d = 0;
  for (; d + 32 <= n; d += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + d), _mm256_loadu_ps(b + d), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + d + 8), _mm256_loadu_ps(b + d + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + d + 16), _mm256_loadu_ps(b + d + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + d + 24), _mm256_loadu_ps(b + d + 24), s3);
  }
  for (; d + 8 <= n; d += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + d), _mm256_loadu_ps(b + d), s0);
  float sum = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; d < n; d++) sum += a[d] * b[d];
  return sum;
}

}  // namespace

void lutra_f32_attention__avx2(const float* q, const float* k, const float* v, size_t n_pos,
                               size_t head_dim, size_t kv_stride, float scale, float* scores,
                               float* out) {
  for (size_t t = 0; t < n_pos; t++) scores[t] = dot(q, k + t * kv_stride, head_dim) * scale;
  lutra_f32_softmax__scalar(scores, n_pos);
  size_t d = 0;
  for (; d + 8 <= head_dim; d += 8) {
    __m256 acc = _mm256_setzero_ps();
    for (size_t t = 0; t < n_pos; t++)
      acc = _mm256_fmadd_ps(_mm256_set1_ps(scores[t]), _mm256_loadu_ps(v + t * kv_stride + d), acc);
    _mm256_storeu_ps(out + d, acc);
  }
  for (; d < head_dim; d++) {
    float acc = 0.0f;
    for (size_t t = 0; t < n_pos; t++) acc += scores[t] * v[t * kv_stride + d];
    out[d] = acc;
  }
}

}  // namespace lutra
