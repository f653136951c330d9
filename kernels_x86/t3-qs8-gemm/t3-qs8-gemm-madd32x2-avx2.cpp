// t3 x int8 GEMM by multiply-add (prefill), AVX2: maddubs + madd (see t3-qs8-gemm-madd-avx2-tiles.h);
// the scaled form converts the sums to the layer's floats in the same pass.
#include "kernels_x86/t3-qs8-gemm/t3-qs8-gemm-madd-avx2-tiles.h"
#include "runtime/kernel_variants.h"

namespace lutra {

void lutra_t3_qs8_gemm_madd32x2__avx2(const WeightView& w, const int8_t* xq, int32_t* acc, size_t m,
                                      size_t n_begin, size_t n_end) {
  t3_gemm_madd<Avx2Madd<false>, int32_t>(w, xq, nullptr, acc, m, n_begin, n_end, false);
}

void lutra_t3_qs8_gemm_madd32x2_scaled__avx2(const WeightView& w, const int8_t* xq, const float* xs, float* y,
                                             size_t m, size_t n_begin, size_t n_end, bool accumulate) {
  t3_gemm_madd<Avx2Madd<false>, float>(w, xq, xs, y, m, n_begin, n_end, accumulate);
}

}  // namespace lutra
