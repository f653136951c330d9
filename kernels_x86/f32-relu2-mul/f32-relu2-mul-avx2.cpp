// out = max(gate, 0)^2 * up, AVX2, 8 values at a time: the scalar reference's two multiplies in
// its order (no fusion), so bit-identical to it. max_ps(0, g) returns g when g is NaN, as
// std::max(g, 0.0f) does.
#include <immintrin.h>

#include "kernels_x86/float-order-avx2.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

inline __m256 relu2_mul8(__m256 g, __m256 u) {
  g = _mm256_max_ps(_mm256_setzero_ps(), g);
  return _mm256_mul_ps(_mm256_mul_ps(g, g), u);
}

}  // namespace

void lutra_f32_relu2_mul__avx2(const float* gate, const float* up, float* out, size_t n) {
  size_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m256 a = relu2_mul8(_mm256_loadu_ps(gate + j), _mm256_loadu_ps(up + j));
    const __m256 b = relu2_mul8(_mm256_loadu_ps(gate + j + 8), _mm256_loadu_ps(up + j + 8));
    _mm256_storeu_ps(out + j, a);
    _mm256_storeu_ps(out + j + 8, b);
  }
  for (; j < n; j += 8) {
    const __m256i m = live_mask8(long(n - j));
    _mm256_maskstore_ps(out + j, m, relu2_mul8(_mm256_maskload_ps(gate + j, m), _mm256_maskload_ps(up + j, m)));
  }
}

}  // namespace lutra
