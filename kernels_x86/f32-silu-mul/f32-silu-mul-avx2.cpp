// out = gate / (1 + exp(-gate)) * up, AVX2 + FMA, with exp_canonical 8 lanes at a time: the
// scalar reference's operations in its order, so bit-identical to it.
#include <immintrin.h>

#include "kernels_x86/float-order-avx2.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

inline __m256 silu_mul8(__m256 g, __m256 u) {
  const __m256 neg = _mm256_xor_ps(g, _mm256_set1_ps(-0.0f));
  return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), exp8(neg))), u);
}

}  // namespace

void lutra_f32_silu_mul__avx2(const float* gate, const float* up, float* out, size_t n) {
  size_t j = 0;
  for (; j + 8 <= n; j += 8) _mm256_storeu_ps(out + j, silu_mul8(_mm256_loadu_ps(gate + j), _mm256_loadu_ps(up + j)));
  if (j < n) {
    const __m256i m = live_mask8(long(n - j));
    _mm256_maskstore_ps(out + j, m, silu_mul8(_mm256_maskload_ps(gate + j, m), _mm256_maskload_ps(up + j, m)));
  }
}

}  // namespace lutra
