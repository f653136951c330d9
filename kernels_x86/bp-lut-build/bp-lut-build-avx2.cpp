// Exact table build for bp (WeightFormat::bp), AVX2: per chunk of 4 activations, its 16 int16
// entries T[p] = sum_{e: bit e of p} x_e are four broadcasts masked by the constant bit columns
// of p and summed; one byte shuffle and one qword permute split them into the low and high
// byte planes of the quad. The group sums follow in scalar code. Same bytes as
// lutra_bp_lut_build__scalar.
#include <immintrin.h>

#include <cstring>

#include "kernels_x86/bp-lut-build/bp-lut-build-avx2.h"
#include "runtime/kernel_variants.h"

namespace lutra {

void lutra_bp_lut_build__avx2(const int8_t* xq, size_t k, size_t group, size_t group_begin,
                              size_t group_end, uint8_t* table) {
  // Per lane: the low bytes of its 8 entries, then their high bytes.
  const __m256i split = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15,
                                         0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
  const size_t gpr = k / group;
  uint8_t* xsums = table + k / 16 * 128;
  for (size_t g = group_begin; g < group_end; g++) {
    int32_t xsum = 0;
    for (size_t c = g * group / 4; c < (g + 1) * group / 4; c++) {
      const int8_t* x = xq + 4 * c;
      __m256i t = chunk_entries(x);
      t = _mm256_shuffle_epi8(t, split);                          // lo0-7 hi0-7 | lo8-15 hi8-15
      t = _mm256_permute4x64_epi64(t, _MM_SHUFFLE(3, 1, 2, 0));  // lo0-15 | hi0-15
      uint8_t* lo = table + c / 4 * 128 + c % 4 * 16;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(lo), _mm256_castsi256_si128(t));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(lo + 64), _mm256_extracti128_si256(t, 1));
      xsum += x[0] + x[1] + x[2] + x[3];
    }
    std::memcpy(xsums + 4 * g, &xsum, 4);
    std::memset(xsums + 4 * gpr + 4 * g, 0, 4);
  }
}

}  // namespace lutra
