// Ternary x int8 GEMM, AVX-512BW maddubs (see t2-qs8-gemm-avx512-tiles.h).
#include "kernels_x86/t2-qs8-gemm/t2-qs8-gemm-avx512-tiles.h"

namespace lutra {

void lutra_t2_qs8_gemm_1x4__avx512(const WeightView& w, const int8_t* xq, int32_t* acc, size_t m,
                                   size_t n_begin, size_t n_end) {
  t2_gemm_avx512<false>(w, xq, acc, m, n_begin, n_end);
}

}  // namespace lutra
