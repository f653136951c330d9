// RMSNorm, AArch64 Advanced SIMD: the sum of squares in the canonical float order
// (runtime/float_order.h: 16 lanes in four q registers, zero-padded tail), then y = x * inv * w
// with the same two multiplies as the reference.
#include <arm_neon.h>

#include <cmath>
#include <cstring>

#include "kernels_arm/float-order-neon.h"
#include "runtime/kernel_variants.h"

namespace lutra {

void lutra_f32_rmsnorm__neon(const float* x, const float* w, float* y, size_t n, float eps) {
  float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
  size_t j = 0;
  auto step = [&](const float* p) {
    for (int c = 0; c < 4; c++) {
      const float32x4_t v = vld1q_f32(p + 4 * c);
      acc[c] = vfmaq_f32(acc[c], v, v);
    }
  };
  for (; j + 16 <= n; j += 16) step(x + j);
  if (j < n) {
    float t[16] = {};
    std::memcpy(t, x + j, (n - j) * 4);
    step(t);
  }
  const float inv = 1.0f / std::sqrt(reduce16(acc[0], acc[1], acc[2], acc[3]) / float(n) + eps);
  const float32x4_t vinv = vdupq_n_f32(inv);
  for (j = 0; j + 4 <= n; j += 4) vst1q_f32(y + j, vmulq_f32(vmulq_f32(vld1q_f32(x + j), vinv), vld1q_f32(w + j)));
  for (; j < n; j++) y[j] = x[j] * inv * w[j];
}

}  // namespace lutra
