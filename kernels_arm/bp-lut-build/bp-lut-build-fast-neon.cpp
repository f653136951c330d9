// Fast (int8) table build for bp, NEON: per group, the 16 int16 entries of each chunk as in the
// exact build (kept in a small buffer) and max|T| over the group; then
// q = trunc((254 T ± max) / (2 max)) per entry in float, as the AVX2 build does (its comment
// shows why that equals the scalar reference's integer division: both operands are exact in
// float, and a non-integer quotient lies far further from an integer than its rounding error).
// Same bytes as lutra_bp_lut_build_fast__scalar.
#include "kernels_arm/bp-lut-build/bp-lut-build-neon.h"

#include <cstring>

#include "runtime/kernel_variants.h"

namespace lutra {

void lutra_bp_lut_build_fast__neon(const int8_t* xq, size_t k, size_t group, size_t group_begin,
                                   size_t group_end, uint8_t* table) {
  const size_t gpr = k / group, chunks = group / 4;
  uint8_t* xsums = table + k / 16 * 64;
  int16_t entries[256 / 4 * 16];  // group <= 256
  for (size_t g = group_begin; g < group_end; g++) {
    int32_t xsum = 0;
    int16x8_t vmax = vdupq_n_s16(0);
    for (size_t c = 0; c < chunks; c++) {
      const int8_t* x = xq + g * group + 4 * c;
      const int16x8x2_t t = chunk_entries(x);
      vst1q_s16(entries + 16 * c, t.val[0]);
      vst1q_s16(entries + 16 * c + 8, t.val[1]);
      vmax = vmaxq_s16(vmax, vmaxq_s16(vabsq_s16(t.val[0]), vabsq_s16(t.val[1])));  // |T| <= 512
      xsum += x[0] + x[1] + x[2] + x[3];
    }
    const int32_t tmax = vmaxvq_s16(vmax);
    int8_t* out = reinterpret_cast<int8_t*>(table + g * group / 16 * 64);
    if (tmax == 0) {
      std::memset(out, 0, chunks * 16);
    } else {
      const int32x4_t vt = vdupq_n_s32(tmax);
      const float32x4_t den = vdupq_n_f32(float(2 * tmax));
      for (size_t c = 0; c < chunks; c++) {
        int16x4_t q[4];
        for (int h = 0; h < 4; h++) {
          const int32x4_t t = vmovl_s16(vld1_s16(entries + 16 * c + 4 * h));
          const int32x4_t neg = vshrq_n_s32(t, 31);  // all ones where T < 0
          const int32x4_t num = vaddq_s32(vmulq_n_s32(t, 254), vsubq_s32(veorq_s32(vt, neg), neg));
          q[h] = vmovn_s32(vcvtq_s32_f32(vdivq_f32(vcvtq_f32_s32(num), den)));  // truncates
        }
        const int8x16_t b = vcombine_s8(vmovn_s16(vcombine_s16(q[0], q[1])),
                                        vmovn_s16(vcombine_s16(q[2], q[3])));  // |q| <= 127
        vst1q_s8(out + c / 4 * 64 + c % 4 * 16, b);
      }
    }
    const float ts = tmax ? float(tmax) / 127.0f : 1.0f;
    std::memcpy(xsums + 4 * g, &xsum, 4);
    std::memcpy(xsums + 4 * gpr + 4 * g, &ts, 4);
  }
}

}  // namespace lutra
