// f32 weights x f32 activations, 1 token x 4 output rows per tile, AArch64 Advanced SIMD, in the
// canonical float order: kernels_arm/float-gemv-neon.h with plain loads.
#include "kernels_arm/float-gemv-neon.h"

namespace lutra {
namespace {

struct F32Weights {
  using T = float;
  static void load16(const float* p, float32x4_t* w) {
    for (int c = 0; c < 4; c++) w[c] = vld1q_f32(p + 4 * c);
  }
};

}  // namespace

void lutra_f32_f32_gemm_1x4__neon(const WeightView& w, const float* x, float* y, size_t m,
                                  size_t n_begin, size_t n_end) {
  float_gemm_1x4<F32Weights>(w, x, y, m, n_begin, n_end);
}

}  // namespace lutra
