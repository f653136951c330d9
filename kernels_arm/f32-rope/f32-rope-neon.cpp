// RoPE, AArch64 Advanced SIMD: four pairs at a time (vld2q splits interleaved pairs), with the
// scalar reference's multiplies, subtraction and addition in its order (no fusion), so
// bit-identical to it.
#include <arm_neon.h>

#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

inline void rotate(float32x4_t& a, float32x4_t& b, float32x4_t c, float32x4_t s) {
  const float32x4_t a2 = vsubq_f32(vmulq_f32(a, c), vmulq_f32(b, s));
  b = vaddq_f32(vmulq_f32(a, s), vmulq_f32(b, c));
  a = a2;
}

}  // namespace

void lutra_f32_rope__neon(float* v, size_t n_heads, size_t head_dim, const float* cos,
                          const float* sin, RopeStyle style) {
  const size_t half = head_dim / 2;
  for (size_t h = 0; h < n_heads; h++) {
    float* vh = v + h * head_dim;
    size_t i = 0;
    for (; i + 4 <= half; i += 4) {
      const float32x4_t c = vld1q_f32(cos + i), s = vld1q_f32(sin + i);
      if (style == RopeStyle::interleaved) {
        float32x4x2_t p = vld2q_f32(vh + 2 * i);
        rotate(p.val[0], p.val[1], c, s);
        vst2q_f32(vh + 2 * i, p);
      } else {
        float32x4_t a = vld1q_f32(vh + i), b = vld1q_f32(vh + i + half);
        rotate(a, b, c, s);
        vst1q_f32(vh + i, a);
        vst1q_f32(vh + i + half, b);
      }
    }
    for (; i < half; i++) {
      const size_t a = style == RopeStyle::interleaved ? 2 * i : i;
      const size_t b = style == RopeStyle::interleaved ? 2 * i + 1 : i + half;
      const float v0 = vh[a], v1 = vh[b];
      vh[a] = v0 * cos[i] - v1 * sin[i];
      vh[b] = v0 * sin[i] + v1 * cos[i];
    }
  }
}

}  // namespace lutra
