// Bit-serial table-lookup GEMM, exact mode (WeightFormat::bp, GemmBpFn), 1 token x 32 rows per
// tile, NEON (see bp-qs8-gemm-1x32-neon.h): int16 tables as low and high byte planes, the exact
// int32 sums meet the f16 scales (and zeros) in the reference's float steps, bit-identical to
// the bq-qs8 scalar reference.
#include "kernels_arm/bp-qs8-gemm/bp-qs8-gemm-1x32-neon.h"

namespace lutra {

void lutra_bp_qs8_gemm_1x32__neon(const WeightView& w, const uint8_t* tables, size_t table_stride,
                                  const float* xs, float* y, size_t m, size_t n_begin, size_t n_end) {
  bp_gemm_1x32_neon<false>(w, tables, table_stride, xs, y, m, n_begin, n_end);
}

}  // namespace lutra
