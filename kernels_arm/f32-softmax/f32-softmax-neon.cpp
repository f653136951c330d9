// In-place softmax, AArch64 Advanced SIMD, bit-identical to the scalar reference: the max
// (exact in any order), exp_canonical four lanes at a time, the canonical sum
// (runtime/float_order.h: 16 lanes in four q registers), then x / sum.
#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "kernels_arm/float-order-neon.h"
#include "runtime/kernel_variants.h"

namespace lutra {

void lutra_f32_softmax__neon(float* x, size_t n) {
  if (n == 0) return;
  float mx = x[0];
  size_t j = 0;
  if (n >= 4) {
    float32x4_t m = vld1q_f32(x);
    for (j = 4; j + 4 <= n; j += 4) m = vmaxq_f32(m, vld1q_f32(x + j));
    mx = vmaxvq_f32(m);
  }
  for (; j < n; j++) mx = std::max(mx, x[j]);
  const float32x4_t vmx = vdupq_n_f32(mx);
  float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
  auto step = [&](float* p) {
    for (int c = 0; c < 4; c++) {
      const float32x4_t e = exp4(vsubq_f32(vld1q_f32(p + 4 * c), vmx));
      vst1q_f32(p + 4 * c, e);
      acc[c] = vaddq_f32(acc[c], e);
    }
  };
  for (j = 0; j + 16 <= n; j += 16) step(x + j);
  if (j < n) {  // a padded copy whose dead lanes are zeroed after the exp: lane + 0
    float t[16];
    std::memcpy(t, x + j, (n - j) * 4);
    for (size_t i = n - j; i < 16; i++) t[i] = mx;  // exp(0) = 1 there, then zeroed
    float32x4_t e[4];
    for (int c = 0; c < 4; c++) e[c] = exp4(vsubq_f32(vld1q_f32(t + 4 * c), vmx));
    for (int c = 0; c < 4; c++) vst1q_f32(t + 4 * c, e[c]);
    for (size_t i = n - j; i < 16; i++) t[i] = 0.0f;
    for (int c = 0; c < 4; c++) acc[c] = vaddq_f32(acc[c], vld1q_f32(t + 4 * c));
    std::memcpy(x + j, t, (n - j) * 4);
  }
  const float sum = reduce16(acc[0], acc[1], acc[2], acc[3]);
  const float32x4_t vsum = vdupq_n_f32(sum);
  for (j = 0; j + 4 <= n; j += 4) vst1q_f32(x + j, vdivq_f32(vld1q_f32(x + j), vsum));
  for (; j < n; j++) x[j] /= sum;
}

}  // namespace lutra
