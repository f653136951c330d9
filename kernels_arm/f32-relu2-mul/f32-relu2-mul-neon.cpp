// out = max(gate, 0)^2 * up, AArch64 Advanced SIMD: the scalar reference's two multiplies in its
// order (no fusion), so bit-identical to it.
#include <arm_neon.h>

#include <algorithm>

#include "runtime/kernel_variants.h"

namespace lutra {

void lutra_f32_relu2_mul__neon(const float* gate, const float* up, float* out, size_t n) {
  size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float32x4_t g = vmaxq_f32(vld1q_f32(gate + j), vdupq_n_f32(0.0f));
    vst1q_f32(out + j, vmulq_f32(vmulq_f32(g, g), vld1q_f32(up + j)));
  }
  for (; j < n; j++) {
    const float g = std::max(gate[j], 0.0f);
    out[j] = g * g * up[j];
  }
}

}  // namespace lutra
