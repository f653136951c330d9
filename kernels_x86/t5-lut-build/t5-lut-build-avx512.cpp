// Table build for t5 (WeightFormat::t5), AVX-512 F/BW: one group of 5 activations per
// iteration (its entries from t5-lut-build-entries.h); per byte plane, the low bytes (and 0xff)
// or high bytes (>> 8) of each pair of vectors pack with vpackuswb (exact: 0..255) and one
// qword permute restores entry order. Same bytes as lutra_t5_lut_build__scalar.
#include <immintrin.h>

#include "kernels_x86/t5-lut-build/t5-lut-build-entries.h"
#include "runtime/kernel_variants.h"

namespace lutra {

void lutra_t5_lut_build__avx512(const int8_t* xq, size_t k, size_t group_begin,
                                    size_t group_end, uint8_t* table) {
  const __m512i low_byte = _mm512_set1_epi16(0xff);
  // vpackuswb packs per 128-bit lane: qwords a0 b0 a1 b1 a2 b2 a3 b3 -> a0..a3 b0..b3.
  const __m512i lanes = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7);
  auto pack = [&](__m512i a, __m512i b) {
    // Zero-masked with a full mask (the same instruction): GCC 12's unmasked form trips
    // -Wmaybe-uninitialized inside its header.
    return _mm512_maskz_permutexvar_epi64(0xff, lanes, _mm512_packus_epi16(a, b));
  };
  for (size_t g = group_begin; g < group_end; g++) {
    __m512i t[4];
    t5_group_entries(xq, k, g, t);
    __m512i* out = reinterpret_cast<__m512i*>(table + 256 * g);
    __m512i lo[4], hi[4];
    for (int c = 0; c < 4; c++)
      lo[c] = _mm512_and_si512(t[c], low_byte), hi[c] = _mm512_srli_epi16(t[c], 8);
    _mm512_storeu_si512(out + 0, pack(lo[0], lo[1]));
    _mm512_storeu_si512(out + 1, pack(lo[2], lo[3]));
    _mm512_storeu_si512(out + 2, pack(hi[0], hi[1]));
    _mm512_storeu_si512(out + 3, pack(hi[2], hi[3]));
  }
}

}  // namespace lutra
