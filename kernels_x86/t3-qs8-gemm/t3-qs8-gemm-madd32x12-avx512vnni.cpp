// t3 x int8 GEMM by multiply-add (prefill), AVX-512 VNNI vpdpbusd (see t3-qs8-gemm-madd-avx512-tiles.h).
#include "kernels_x86/t3-qs8-gemm/t3-qs8-gemm-madd-avx512-tiles.h"
#include "runtime/kernel_variants.h"

namespace lutra {

void lutra_t3_qs8_gemm_madd32x12__avx512vnni(const WeightView& w, const int8_t* xq, int32_t* acc,
                                       size_t m, size_t n_begin, size_t n_end) {
  t3_gemm_madd<true>(w, xq, acc, m, n_begin, n_end);
}

}  // namespace lutra
