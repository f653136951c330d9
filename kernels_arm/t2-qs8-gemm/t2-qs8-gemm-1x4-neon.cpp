// Ternary x int8 GEMM (WeightFormat::t2), NEON: smlal/smlal2 of the codes and activations into
// int16 sums, widened into int32 by sadalp every 8 blocks; 4 rows x up to 2 tokens per
// register tile (see t2-qs8-gemm-neon-tiles.h).
#include "kernels_arm/t2-qs8-gemm/t2-qs8-gemm-neon-tiles.h"
#include "runtime/kernel_variants.h"

namespace lutra {

void lutra_t2_qs8_gemm_1x4__neon(const WeightView& w, const int8_t* xq, int32_t* acc, size_t m,
                                 size_t n_begin, size_t n_end) {
  t2_gemm<false, 2>(w, xq, acc, m, n_begin, n_end);
}

}  // namespace lutra
