// RMSNorm, AVX2 + FMA: the sum of squares in the canonical float order (runtime/float_order.h:
// 16 lanes in two registers, masked tail), then y = x * inv * w with the same two multiplies as
// the reference.
#include <immintrin.h>

#include <cmath>

#include "kernels_x86/float-order-avx2.h"
#include "runtime/kernel_variants.h"

namespace lutra {

void lutra_f32_rmsnorm__avx2(const float* x, const float* w, float* y, size_t n, float eps) {
  __m256 lo = _mm256_setzero_ps(), hi = lo;
  size_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m256 v0 = _mm256_loadu_ps(x + j), v1 = _mm256_loadu_ps(x + j + 8);
    lo = _mm256_fmadd_ps(v0, v0, lo);
    hi = _mm256_fmadd_ps(v1, v1, hi);
  }
  if (j < n) {
    const __m256 v0 = _mm256_maskload_ps(x + j, live_mask8(long(n - j)));
    const __m256 v1 = _mm256_maskload_ps(x + j + 8, live_mask8(long(n - j) - 8));
    lo = _mm256_fmadd_ps(v0, v0, lo);
    hi = _mm256_fmadd_ps(v1, v1, hi);
  }
  const float inv = 1.0f / std::sqrt(reduce16(lo, hi) / float(n) + eps);
  const __m256 vinv = _mm256_set1_ps(inv);
  const __m256i live = live_mask8(long(n % 8));
  for (j = 0; j + 8 <= n; j += 8)
    _mm256_storeu_ps(y + j, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + j), vinv), _mm256_loadu_ps(w + j)));
  if (j < n) {
    __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_maskload_ps(x + j, live), vinv), _mm256_maskload_ps(w + j, live));
    _mm256_maskstore_ps(y + j, live, v);
  }
}

}  // namespace lutra
