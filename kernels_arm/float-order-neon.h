// runtime/float_order.h's canonical order with AArch64 Advanced SIMD registers: the 16 lanes are
// four float32x4_t (lanes 0-3, 4-7, 8-11, 12-15), reduced by the same tree; exp_canonical four
// lanes at a time, with the same operations in the same order. Baseline AArch64 only.
#pragma once

#include <arm_neon.h>

#include <cstddef>

#include "runtime/float_order.h"

namespace lutra {
namespace {

// The tree of float_order.h: step 8 (q0 + q2, q1 + q3), step 4, step 2 (halves), step 1.
inline float reduce16(float32x4_t q0, float32x4_t q1, float32x4_t q2, float32x4_t q3) {
  const float32x4_t s = vaddq_f32(vaddq_f32(q0, q2), vaddq_f32(q1, q3));
  return vpadds_f32(vadd_f32(vget_low_f32(s), vget_high_f32(s)));
}

// 2^e per lane for -126 <= e <= 127.
inline float32x4_t pow2i4(int32x4_t e) { return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(e, vdupq_n_s32(127)), 23)); }

inline float32x4_t exp4(float32x4_t x0) {
  using namespace exp_constants;
  const uint32x4_t number = vceqq_f32(x0, x0);
  float32x4_t x = vminq_f32(x0, vdupq_n_f32(kMax));
  x = vmaxq_f32(x, vdupq_n_f32(kMin));
  const float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(kLog2e)));  // half to even
  float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(kLn2Hi));                 // fma(-n, hi, x)
  r = vfmsq_f32(r, n, vdupq_n_f32(kLn2Lo));
  float32x4_t p = vdupq_n_f32(kC[7]);
  for (int i = 6; i >= 0; i--) p = vfmaq_f32(vdupq_n_f32(kC[i]), p, r);
  const int32x4_t ni = vcvtq_s32_f32(n), n1 = vshrq_n_s32(ni, 1);
  const float32x4_t e = vmulq_f32(vmulq_f32(p, pow2i4(n1)), pow2i4(vsubq_s32(ni, n1)));
  return vbslq_f32(number, e, x0);
}

}  // namespace
}  // namespace lutra
