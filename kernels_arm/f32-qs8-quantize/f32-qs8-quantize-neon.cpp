// Per-token absmax int8 quantization, NEON. Bit-identical to the scalar reference: the max is
// order-free, x*s is the same single multiply, vcvtnq_s32_f32 rounds to nearest with ties to
// even like std::nearbyint in the default rounding mode, and the saturating narrows
// (int32 -> int16 -> int8) are the clamp to [-128, 127].
#include <arm_neon.h>

#include <algorithm>
#include <cmath>

#include "runtime/kernel_variants.h"

namespace lutra {

float lutra_f32_qs8_quantize__neon(const float* x, size_t k, int8_t* xq) {
  float32x4_t m0 = vdupq_n_f32(0.0f), m1 = m0;
  size_t j = 0;
  for (; j + 8 <= k; j += 8) {  // two chains: the max has a latency of its own
    m0 = vmaxq_f32(m0, vabsq_f32(vld1q_f32(x + j)));
    m1 = vmaxq_f32(m1, vabsq_f32(vld1q_f32(x + j + 4)));
  }
  float amax = vmaxvq_f32(vmaxq_f32(m0, m1));
  for (; j < k; j++) amax = std::max(amax, std::fabs(x[j]));

  const float s = 127.0f / std::max(amax, 1e-5f);
  const float32x4_t vs = vdupq_n_f32(s);
  j = 0;
  for (; j + 16 <= k; j += 16) {
    const int32x4_t q0 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + j), vs));
    const int32x4_t q1 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + j + 4), vs));
    const int32x4_t q2 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + j + 8), vs));
    const int32x4_t q3 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + j + 12), vs));
    const int16x8_t h0 = vqmovn_high_s32(vqmovn_s32(q0), q1);
    const int16x8_t h1 = vqmovn_high_s32(vqmovn_s32(q2), q3);
    vst1q_s8(xq + j, vqmovn_high_s16(vqmovn_s16(h0), h1));
  }
  for (; j < k; j++) xq[j] = int8_t(std::clamp(std::nearbyint(x[j] * s), -128.0f, 127.0f));
  return s;
}

}  // namespace lutra
