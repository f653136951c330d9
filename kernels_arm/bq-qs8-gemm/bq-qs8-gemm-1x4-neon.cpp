// bq weights x int8 activations (GemmBqI8Fn), baseline NEON, tiles of 4 rows (see
// bq-qs8-gemm-1x4-neon.h). Integer dots by widening multiplies: smull/smlal into int16, then
// sadalp into int32. Bit-identical to lutra_bq_qs8_gemm__scalar.
#include "kernels_arm/bq-qs8-gemm/bq-qs8-gemm-1x4-neon.h"

namespace lutra {
namespace {

struct NeonOps {
  static constexpr bool kMixedDot = false;
  // acc += a . b over 16 signed bytes: |a b| <= 2^14, so each int16 product widens on its own.
  static int32x4_t dot(int32x4_t acc, int8x16_t a, int8x16_t b) {
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
  }
  // acc += lo . xe + hi . xo for 4-bit codes: |c x| <= 15 * 128, four products per int16 lane.
  static int32x4_t dot_u4(int32x4_t acc, int8x16_t lo, int8x16_t xe, int8x16_t hi, int8x16_t xo) {
    int16x8_t p = vmull_s8(vget_low_s8(lo), vget_low_s8(xe));
    p = vmlal_high_s8(p, lo, xe);
    p = vmlal_s8(p, vget_low_s8(hi), vget_low_s8(xo));
    p = vmlal_high_s8(p, hi, xo);
    return vpadalq_s16(acc, p);
  }
};

}  // namespace

void lutra_bq_qs8_gemm_1x4__neon(const WeightView& w, const int8_t* xq, const float* xs, float* y,
                                 size_t m, size_t n_begin, size_t n_end) {
  bq_gemm_1x4<NeonOps>(w, xq, xs, y, m, n_begin, n_end);
}

}  // namespace lutra
