// Kernels whose ISA this CPU may lack, rebuilt here with an instruction set it may have: the same
// source and the same operations in another encoding. The AVX-VNNI tiles use the VEX vpdpbusd,
// which AVX-512 CPUs such as Zen 4 do not decode; their twins use AVX512-VNNI's EVEX vpdpbusd on
// the same 256-bit registers (identical results by definition), so the tile's logic is checked
// bit for bit on every AVX512-VNNI machine, and the real variant wherever AVX-VNNI exists.
#pragma once

#include <vector>

#include "runtime/kernels.h"

namespace lutra {

#if defined(__x86_64__)
void lutra_t3_qs8_gemm_madd32x2__avxvnni_twin(const WeightView& w, const int8_t* xq, int32_t* acc, size_t m,
                                              size_t n_begin, size_t n_end);
void lutra_t3_qs8_gemm_madd32x2_scaled__avxvnni_twin(const WeightView& w, const int8_t* xq, const float* xs,
                                                     float* y, size_t m, size_t n_begin, size_t n_end,
                                                     bool accumulate);
#endif

// The twins of the multiply-add t3 kinds (each needs what its encoding needs: avx512vnni).
inline std::vector<Variant<GemmTernaryFn>> t3_madd_twins() {
#if defined(__x86_64__)
  return {{"t3-qs8-gemm-madd32x2-avxvnni (EVEX twin)", Isa::avx512vnni, lutra_t3_qs8_gemm_madd32x2__avxvnni_twin}};
#else
  return {};
#endif
}
inline std::vector<Variant<GemmTernaryScaledFn>> t3_madd_scaled_twins() {
#if defined(__x86_64__)
  return {{"t3-qs8-gemm-madd32x2-scaled-avxvnni (EVEX twin)", Isa::avx512vnni,
           lutra_t3_qs8_gemm_madd32x2_scaled__avxvnni_twin}};
#else
  return {};
#endif
}

}  // namespace lutra
