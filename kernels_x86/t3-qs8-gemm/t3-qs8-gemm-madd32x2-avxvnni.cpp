// t3 x int8 GEMM by multiply-add (prefill), AVX-VNNI vpdpbusd on 256-bit registers: Alder Lake and
// later Intel laptops, which have no AVX-512 (see t3-qs8-gemm-madd-avx2-tiles.h); the scaled form
// converts the sums to the layer's floats in the same pass.
#include "kernels_x86/t3-qs8-gemm/t3-qs8-gemm-madd-avx2-tiles.h"
#include "runtime/kernel_variants.h"

namespace lutra {

void lutra_t3_qs8_gemm_madd32x2__avxvnni(const WeightView& w, const int8_t* xq, int32_t* acc, size_t m,
                                         size_t n_begin, size_t n_end) {
  t3_gemm_madd<Avx2Madd<true>, int32_t>(w, xq, nullptr, acc, m, n_begin, n_end, false);
}

void lutra_t3_qs8_gemm_madd32x2_scaled__avxvnni(const WeightView& w, const int8_t* xq, const float* xs, float* y,
                                                size_t m, size_t n_begin, size_t n_end, bool accumulate) {
  t3_gemm_madd<Avx2Madd<true>, float>(w, xq, xs, y, m, n_begin, n_end, accumulate);
}

}  // namespace lutra
