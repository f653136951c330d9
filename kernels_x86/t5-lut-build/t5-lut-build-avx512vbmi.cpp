// Table build for t5 (WeightFormat::t5), AVX-512 VBMI: one group of 5 activations per
// iteration (its entries from t5-lut-build-entries.h); two vpermt2b per byte plane gather the
// low and the high bytes of all 128 entries. Same bytes as lutra_t5_lut_build__scalar.
#include <immintrin.h>

#include "kernels_x86/t5-lut-build/t5-lut-build-entries.h"
#include "runtime/kernel_variants.h"

namespace lutra {

void lutra_t5_lut_build__avx512vbmi(const int8_t* xq, size_t k, size_t group_begin,
                                    size_t group_end, uint8_t* table) {
  // Byte i of the result: byte 2i (low planes) or 2i + 1 (high) of the pair (a, b) of int16
  // vectors, i.e. of entry i of the 64 entries they hold.
  alignas(64) uint8_t even[64], odd[64];
  for (int i = 0; i < 64; i++) even[i] = uint8_t(2 * i), odd[i] = uint8_t(2 * i + 1);
  const __m512i lo_bytes = _mm512_load_si512(even), hi_bytes = _mm512_load_si512(odd);
  for (size_t g = group_begin; g < group_end; g++) {
    __m512i t[4];
    t5_group_entries(xq, k, g, t);
    __m512i* out = reinterpret_cast<__m512i*>(table + 256 * g);
    _mm512_storeu_si512(out + 0, _mm512_permutex2var_epi8(t[0], lo_bytes, t[1]));
    _mm512_storeu_si512(out + 1, _mm512_permutex2var_epi8(t[2], lo_bytes, t[3]));
    _mm512_storeu_si512(out + 2, _mm512_permutex2var_epi8(t[0], hi_bytes, t[1]));
    _mm512_storeu_si512(out + 3, _mm512_permutex2var_epi8(t[2], hi_bytes, t[3]));
  }
}

}  // namespace lutra
