// One query head's attention over cached positions (AttentionFn), AVX2 + FMA, in the canonical
// float order (runtime/float_order.h). The scalar reference takes each q·k dot product in 16
// lane chains; here they are two 8-wide accumulators, and the weighted sum of V rows runs 8
// dimensions at a time, positions ascending with one fma each, as in the reference. The
// softmax is the AVX2 one, bit-identical to the reference's. f16 and q8 cache rows widen on load.
#include <immintrin.h>

#include <cmath>

#include "kernels_x86/f32-attention/kv-load-avx2.h"
#include "kernels_x86/float-order-avx2.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

template <class T>
inline float dot(const float* a, const T* b, size_t n) {
  __m256 lo = _mm256_setzero_ps(), hi = lo;
  size_t d = 0;
  for (; d + 16 <= n; d += 16) {
    lo = _mm256_fmadd_ps(_mm256_loadu_ps(a + d), kv_load8(b, d, n), lo);
    hi = _mm256_fmadd_ps(_mm256_loadu_ps(a + d + 8), kv_load8(b, d + 8, n), hi);
  }
  if (d < n) {
    const long left = long(n - d);
    const __m256i m0 = live_mask8(left), m1 = live_mask8(left - 8);
    lo = _mm256_fmadd_ps(_mm256_maskload_ps(a + d, m0), kv_load8_part(b, d, left, n), lo);
    hi = _mm256_fmadd_ps(_mm256_maskload_ps(a + d + 8, m1), kv_load8_part(b, d + 8, left - 8, n), hi);
  }
  return reduce16(lo, hi);
}

template <class T>
void attention(const float* q, const T* k, const T* v, size_t n_pos, size_t head_dim, size_t kv_stride,
               float scale, float* scores, float* out) {
  for (size_t t = 0; t < n_pos; t++) scores[t] = dot(q, k + t * kv_stride, head_dim) * scale;
  lutra_f32_softmax__avx2(scores, n_pos);
  size_t d = 0;
  for (; d + 8 <= head_dim; d += 8) {
    __m256 acc = _mm256_setzero_ps();
    for (size_t t = 0; t < n_pos; t++)
      acc = _mm256_fmadd_ps(_mm256_set1_ps(scores[t]), kv_load8(v + t * kv_stride, d, head_dim), acc);
    _mm256_storeu_ps(out + d, acc);
  }
  for (; d < head_dim; d++) {
    float acc = 0.0f;
    for (size_t t = 0; t < n_pos; t++) acc = std::fma(scores[t], kv_float(v + t * kv_stride, d, head_dim), acc);
    out[d] = acc;
  }
}

}  // namespace

void lutra_f32_attention__avx2(const float* q, const void* k, const void* v, KvType kv_type, size_t n_pos,
                               size_t head_dim, size_t kv_stride, float scale, float* scores,
                               float* out) {
  with_kv_elements(kv_type, k, v, [&](auto kt, auto vt) {
    attention(q, kt, vt, n_pos, head_dim, kv_stride, scale, scores, out);
  });
}

}  // namespace lutra
