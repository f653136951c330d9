// RoPE, AVX-512F: the scalar reference's multiplies, subtraction and addition in its order (no
// fusion), so bit-identical to it. Half-split pairs (i, i + d/2): 16 pairs per step.
// Interleaved pairs (2i, 2i+1): 8 pairs per register with cos and sin duplicated per pair; lanes
// 2i take v0 cos - v1 sin, lanes 2i+1 take v1 cos + v0 sin (= v0 sin + v1 cos: one rounded add,
// which is commutative), by a masked subtract over the add.
#include <immintrin.h>

#include "kernels_x86/avx512-masked.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

inline void rotate_scalar(float* vh, size_t a, size_t b, float c, float s) {
  const float v0 = vh[a], v1 = vh[b];
  vh[a] = v0 * c - v1 * s;
  vh[b] = v0 * s + v1 * c;
}

}  // namespace

void lutra_f32_rope__avx512(float* v, size_t n_heads, size_t head_dim, const float* cos,
                            const float* sin, RopeStyle style) {
  const size_t half = head_dim / 2;
  const __m512i dup_lo = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  const __m512i dup_hi = _mm512_setr_epi32(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
  const __mmask16 even = 0x5555;
  for (size_t h = 0; h < n_heads; h++) {
    float* vh = v + h * head_dim;
    size_t i = 0;
    if (style == RopeStyle::half_split) {
      for (; i + 16 <= half; i += 16) {
        const __m512 c = _mm512_loadu_ps(cos + i), s = _mm512_loadu_ps(sin + i);
        const __m512 a = _mm512_loadu_ps(vh + i), b = _mm512_loadu_ps(vh + i + half);
        _mm512_storeu_ps(vh + i, _mm512_sub_ps(_mm512_mul_ps(a, c), _mm512_mul_ps(b, s)));
        _mm512_storeu_ps(vh + i + half, _mm512_add_ps(_mm512_mul_ps(a, s), _mm512_mul_ps(b, c)));
      }
      for (; i < half; i++) rotate_scalar(vh, i, i + half, cos[i], sin[i]);
    } else {
      for (; i + 16 <= half; i += 16) {
        const __m512 c = _mm512_loadu_ps(cos + i), s = _mm512_loadu_ps(sin + i);
        for (int part = 0; part < 2; part++) {
          const __m512 cc = _mm512_maskz_permutexvar_ps(kAll16, part ? dup_hi : dup_lo, c);
          const __m512 ss = _mm512_maskz_permutexvar_ps(kAll16, part ? dup_hi : dup_lo, s);
          float* p = vh + 2 * i + 16 * part;
          const __m512 x = _mm512_loadu_ps(p);
          const __m512 swapped = _mm512_maskz_permute_ps(kAll16, x, 0xb1);  // (v1, v0) per pair
          const __m512 xc = _mm512_mul_ps(x, cc), ys = _mm512_mul_ps(swapped, ss);
          _mm512_storeu_ps(p, _mm512_mask_sub_ps(_mm512_add_ps(xc, ys), even, xc, ys));
        }
      }
      for (; i < half; i++) rotate_scalar(vh, 2 * i, 2 * i + 1, cos[i], sin[i]);
    }
  }
}

}  // namespace lutra
