// RoPE, AVX2: the scalar reference's multiplies, subtraction and addition in its order (no
// fusion), so bit-identical to it. Half-split pairs (i, i + d/2): 8 pairs per step, a and b in
// separate registers. Interleaved pairs (2i, 2i+1): 4 pairs per register with cos and sin
// duplicated per pair, and addsub (v * cos) -/+ (swapped v * sin): lane 2i gets
// v0 cos - v1 sin, lane 2i+1 gets v1 cos + v0 sin (= v0 sin + v1 cos: one rounded add, which is
// commutative).
#include <immintrin.h>

#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

inline void rotate_scalar(float* vh, size_t a, size_t b, float c, float s) {
  const float v0 = vh[a], v1 = vh[b];
  vh[a] = v0 * c - v1 * s;
  vh[b] = v0 * s + v1 * c;
}

}  // namespace

void lutra_f32_rope__avx2(float* v, size_t n_heads, size_t head_dim, const float* cos,
                          const float* sin, RopeStyle style) {
  const size_t half = head_dim / 2;
  const __m256i dup_lo = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
  const __m256i dup_hi = _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7);
  for (size_t h = 0; h < n_heads; h++) {
    float* vh = v + h * head_dim;
    size_t i = 0;
    if (style == RopeStyle::half_split) {
      for (; i + 8 <= half; i += 8) {
        const __m256 c = _mm256_loadu_ps(cos + i), s = _mm256_loadu_ps(sin + i);
        const __m256 a = _mm256_loadu_ps(vh + i), b = _mm256_loadu_ps(vh + i + half);
        _mm256_storeu_ps(vh + i, _mm256_sub_ps(_mm256_mul_ps(a, c), _mm256_mul_ps(b, s)));
        _mm256_storeu_ps(vh + i + half, _mm256_add_ps(_mm256_mul_ps(a, s), _mm256_mul_ps(b, c)));
      }
      for (; i < half; i++) rotate_scalar(vh, i, i + half, cos[i], sin[i]);
    } else {
      for (; i + 8 <= half; i += 8) {
        const __m256 c = _mm256_loadu_ps(cos + i), s = _mm256_loadu_ps(sin + i);
        for (int part = 0; part < 2; part++) {
          const __m256 cc = _mm256_permutevar8x32_ps(c, part ? dup_hi : dup_lo);
          const __m256 ss = _mm256_permutevar8x32_ps(s, part ? dup_hi : dup_lo);
          float* p = vh + 2 * i + 8 * part;
          const __m256 x = _mm256_loadu_ps(p);
          const __m256 swapped = _mm256_permute_ps(x, 0xb1);  // (v1, v0) per pair
          _mm256_storeu_ps(p, _mm256_addsub_ps(_mm256_mul_ps(x, cc), _mm256_mul_ps(swapped, ss)));
        }
      }
      for (; i < half; i++) rotate_scalar(vh, 2 * i, 2 * i + 1, cos[i], sin[i]);
    }
  }
}

}  // namespace lutra
