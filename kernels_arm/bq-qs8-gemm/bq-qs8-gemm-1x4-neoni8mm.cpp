// bq weights x int8 activations (GemmBqI8Fn), NEON with the dot-product and int8 matrix
// multiply extensions, tiles of 4 rows (see bq-qs8-gemm-1x4-neon.h): as the neondot variant,
// but usdot (unsigned x signed bytes) takes 8-bit codes as they are, without the c - 128 offset
// and its correction. Bit-identical to lutra_bq_qs8_gemm__scalar.
#include "kernels_arm/bq-qs8-gemm/bq-qs8-gemm-1x4-neon.h"

namespace lutra {
namespace {

struct MixedDotOps {
  static constexpr bool kMixedDot = true;
  static int32x4_t dot(int32x4_t acc, int8x16_t a, int8x16_t b) { return vdotq_s32(acc, a, b); }
  static int32x4_t dot_mixed(int32x4_t acc, uint8x16_t a, int8x16_t b) { return vusdotq_s32(acc, a, b); }
  static int32x4_t dot_u4(int32x4_t acc, int8x16_t lo, int8x16_t xe, int8x16_t hi, int8x16_t xo) {
    return vdotq_s32(vdotq_s32(acc, lo, xe), hi, xo);
  }
};

}  // namespace

void lutra_bq_qs8_gemm_1x4__neoni8mm(const WeightView& w, const int8_t* xq, const float* xs,
                                     float* y, size_t m, size_t n_begin, size_t n_end) {
  bq_gemm_1x4<MixedDotOps>(w, xq, xs, y, m, n_begin, n_end);
}

}  // namespace lutra
