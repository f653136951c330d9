// Bit-serial table-lookup GEMM, fast mode (int8 tables, GemmBpFn), 1 token x 32 rows per tile,
// AVX-512 (F/BW/VL; see bp-qs8-gemm-1x32-avx512.h): the exact kernel's loop with one table per
// chunk. Bit-identical to the fast scalar reference.
#include "kernels_x86/bp-qs8-gemm/bp-qs8-gemm-1x32-avx512.h"

namespace lutra {

void lutra_bp_qs8_gemm_fast_1x32__avx512(const WeightView& w, const uint8_t* tables, size_t table_stride,
                                         const float* xs, float* y, size_t m, size_t n_begin, size_t n_end) {
  bp_gemm_1x32_avx512<true>(w, tables, table_stride, xs, y, m, n_begin, n_end);
}

}  // namespace lutra
