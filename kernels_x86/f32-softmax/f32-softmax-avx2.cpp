// In-place softmax, AVX2 + FMA, bit-identical to the scalar reference: the max (exact in any
// order), exp_canonical 8 lanes at a time, the canonical sum (runtime/float_order.h: lanes 0-7
// and 8-15 in two registers), then x / sum.
#include <immintrin.h>

#include <algorithm>

#include "kernels_x86/float-order-avx2.h"
#include "runtime/kernel_variants.h"

namespace lutra {

void lutra_f32_softmax__avx2(float* x, size_t n) {
  if (n == 0) return;
  float mx = x[0];
  size_t j = 0;
  if (n >= 8) {
    __m256 m = _mm256_loadu_ps(x);
    for (j = 8; j + 8 <= n; j += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + j));
    alignas(32) float l[8];
    _mm256_store_ps(l, m);
    mx = *std::max_element(l, l + 8);
  }
  for (; j < n; j++) mx = std::max(mx, x[j]);
  const __m256 vmx = _mm256_set1_ps(mx);
  __m256 lo = _mm256_setzero_ps(), hi = lo;
  for (j = 0; j + 16 <= n; j += 16) {
    const __m256 e0 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j), vmx));
    const __m256 e1 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j + 8), vmx));
    _mm256_storeu_ps(x + j, e0);
    _mm256_storeu_ps(x + j + 8, e1);
    lo = _mm256_add_ps(lo, e0);
    hi = _mm256_add_ps(hi, e1);
  }
  if (j < n) {  // dead lanes are zeroed before the sum: lane + 0 is the canonical tail
    const __m256i m0 = live_mask8(long(n - j)), m1 = live_mask8(long(n - j) - 8);
    const __m256 e0 = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_maskload_ps(x + j, m0), vmx)), _mm256_castsi256_ps(m0));
    const __m256 e1 = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_maskload_ps(x + j + 8, m1), vmx)), _mm256_castsi256_ps(m1));
    _mm256_maskstore_ps(x + j, m0, e0);
    _mm256_maskstore_ps(x + j + 8, m1, e1);
    lo = _mm256_add_ps(lo, e0);
    hi = _mm256_add_ps(hi, e1);
  }
  const __m256 sum = _mm256_set1_ps(reduce16(lo, hi));
  for (j = 0; j + 8 <= n; j += 8) _mm256_storeu_ps(x + j, _mm256_div_ps(_mm256_loadu_ps(x + j), sum));
  if (j < n) {
    const __m256i m = live_mask8(long(n - j));
    _mm256_maskstore_ps(x + j, m, _mm256_div_ps(_mm256_maskload_ps(x + j, m), sum));
  }
}

}  // namespace lutra
