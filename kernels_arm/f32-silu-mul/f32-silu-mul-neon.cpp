// out = gate / (1 + exp(-gate)) * up, AArch64 Advanced SIMD, with exp_canonical four lanes at a
// time: the scalar reference's operations in its order, so bit-identical to it.
#include <arm_neon.h>

#include "kernels_arm/float-order-neon.h"
#include "runtime/kernel_variants.h"

namespace lutra {

void lutra_f32_silu_mul__neon(const float* gate, const float* up, float* out, size_t n) {
  size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float32x4_t g = vld1q_f32(gate + j);
    const float32x4_t s = vdivq_f32(g, vaddq_f32(vdupq_n_f32(1.0f), exp4(vnegq_f32(g))));
    vst1q_f32(out + j, vmulq_f32(s, vld1q_f32(up + j)));
  }
  for (; j < n; j++) out[j] = gate[j] / (1.0f + exp_canonical(-gate[j])) * up[j];
}

}  // namespace lutra
