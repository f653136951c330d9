// The AVX-VNNI t3 multiply-add kernel's twin (see kernel_twins.h): the same tile, compiled with
// AVX512-VNNI + AVX512VL instead of AVX-VNNI, so dpbusd256 is the EVEX vpdpbusd.
#include "kernels_x86/t3-qs8-gemm/t3-qs8-gemm-madd-avx2-tiles.h"
#include "tests/kernel_twins/kernel_twins.h"

namespace lutra {

void lutra_t3_qs8_gemm_madd32x2__avxvnni_twin(const WeightView& w, const int8_t* xq, int32_t* acc, size_t m,
                                              size_t n_begin, size_t n_end) {
  t3_gemm_madd<Avx2Madd<true>, int32_t>(w, xq, nullptr, acc, m, n_begin, n_end, false);
}

void lutra_t3_qs8_gemm_madd32x2_scaled__avxvnni_twin(const WeightView& w, const int8_t* xq, const float* xs,
                                                     float* y, size_t m, size_t n_begin, size_t n_end,
                                                     bool accumulate) {
  t3_gemm_madd<Avx2Madd<true>, float>(w, xq, xs, y, m, n_begin, n_end, accumulate);
}

}  // namespace lutra
