// Bit-serial table-lookup GEMM, exact mode (WeightFormat::bp, GemmBpFn), 1 token x 32 rows per
// tile, AVX-512 (F/BW/VL; see bp-qs8-gemm-1x32-avx512.h): int16 tables as low and high byte
// planes, the exact int32 sums meet the f16 scales (and zeros) in the reference's float steps,
// bit-identical to the bq-qs8 scalar reference.
#include "kernels_x86/bp-qs8-gemm/bp-qs8-gemm-1x32-avx512.h"

namespace lutra {

void lutra_bp_qs8_gemm_1x32__avx512(const WeightView& w, const uint8_t* tables, size_t table_stride,
                                    const float* xs, float* y, size_t m, size_t n_begin, size_t n_end) {
  bp_gemm_1x32_avx512<false>(w, tables, table_stride, xs, y, m, n_begin, n_end);
}

}  // namespace lutra
