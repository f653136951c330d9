// Bit-serial table-lookup GEMM, fast mode (int8 tables, GemmBpFn), 1 token x 32 rows per tile,
// NEON (see bp-qs8-gemm-1x32-neon.h): the exact kernel's loop with one table per chunk.
// Bit-identical to the fast scalar reference.
#include "kernels_arm/bp-qs8-gemm/bp-qs8-gemm-1x32-neon.h"

namespace lutra {

void lutra_bp_qs8_gemm_fast_1x32__neon(const WeightView& w, const uint8_t* tables,
                                       size_t table_stride, const float* xs, float* y, size_t m,
                                       size_t n_begin, size_t n_end) {
  bp_gemm_1x32_neon<true>(w, tables, table_stride, xs, y, m, n_begin, n_end);
}

}  // namespace lutra
