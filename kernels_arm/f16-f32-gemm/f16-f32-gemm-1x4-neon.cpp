// f16 weights x f32 activations, 1 token x 4 output rows per tile, AArch64 Advanced SIMD, in the
// canonical float order: kernels_arm/float-gemv-neon.h with the weights widened by vcvt (baseline
// AArch64, exact), 8 per load.
#include "kernels_arm/float-gemv-neon.h"

namespace lutra {
namespace {

struct F16Weights {
  using T = uint16_t;
  static void load16(const uint16_t* p, float32x4_t* w) {
    const float16x8_t a = vreinterpretq_f16_u16(vld1q_u16(p)), b = vreinterpretq_f16_u16(vld1q_u16(p + 8));
    w[0] = vcvt_f32_f16(vget_low_f16(a));
    w[1] = vcvt_high_f32_f16(a);
    w[2] = vcvt_f32_f16(vget_low_f16(b));
    w[3] = vcvt_high_f32_f16(b);
  }
};

}  // namespace

void lutra_f16_f32_gemm_1x4__neon(const WeightView& w, const float* x, float* y, size_t m,
                                  size_t n_begin, size_t n_end) {
  float_gemm_1x4<F16Weights>(w, x, y, m, n_begin, n_end);
}

}  // namespace lutra
