// out = max(gate, 0)^2 * up, AVX-512F, 16 values at a time (a masked tail): the scalar
// reference's two multiplies in its order (no fusion), so bit-identical to it. max_ps(0, g)
// returns g when g is NaN, as std::max(g, 0.0f) does (the zero-masked form with a full mask: see
// avx512-masked.h).
#include <immintrin.h>

#include "kernels_x86/avx512-masked.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

inline __m512 relu2_mul16(__m512 g, __m512 u) {
  g = _mm512_maskz_max_ps(kAll16, _mm512_setzero_ps(), g);
  return _mm512_mul_ps(_mm512_mul_ps(g, g), u);
}

}  // namespace

void lutra_f32_relu2_mul__avx512(const float* gate, const float* up, float* out, size_t n) {
  size_t j = 0;
  for (; j + 32 <= n; j += 32) {
    const __m512 a = relu2_mul16(_mm512_loadu_ps(gate + j), _mm512_loadu_ps(up + j));
    const __m512 b = relu2_mul16(_mm512_loadu_ps(gate + j + 16), _mm512_loadu_ps(up + j + 16));
    _mm512_storeu_ps(out + j, a);
    _mm512_storeu_ps(out + j + 16, b);
  }
  for (; j < n; j += 16) {
    const __mmask16 m = n - j >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - j)) - 1);
    _mm512_mask_storeu_ps(out + j, m, relu2_mul16(_mm512_maskz_loadu_ps(m, gate + j), _mm512_maskz_loadu_ps(m, up + j)));
  }
}

}  // namespace lutra
