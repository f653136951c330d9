// bq x int8 GEMM, AVX-512 (see bq-qs8-gemm-avx512-tiles.h): maddubs + madd for the 4-bit products.
#include "kernels_x86/bq-qs8-gemm/bq-qs8-gemm-avx512-tiles.h"

namespace lutra {

void lutra_bq_qs8_gemm_1x4__avx512(const WeightView& w, const int8_t* xq, const float* xs, float* y,
                                size_t m, size_t n_begin, size_t n_end) {
  gemm_bq_qs8<false>(w, xq, xs, y, m, n_begin, n_end);
}

}  // namespace lutra
