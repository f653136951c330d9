// Table build for t3 (WeightFormat::t3), AVX2: one group of 3 activations per iteration. Its 16
// int16 entries T[i] = w0(i) x0 + w1(i) x1 + w2(i) x2 come from three broadcasts and
// _mm256_sign_epi16 by the constant ternary weight columns (sign by 0 gives 0, so entries 14
// and 15 are 0), then one byte shuffle and one qword permute split them into the low and high
// byte planes. Same bytes as lutra_t3_lut_build__scalar.
#include <immintrin.h>

#include "runtime/kernel_variants.h"

namespace lutra {

void lutra_t3_lut_build__avx2(const int8_t* xq, size_t k, size_t group_begin, size_t group_end,
                              uint8_t* table) {
  // Weight j of magnitude pattern i (i < 14): digit j of i in base 3, minus 1.
  const __m256i w0 = _mm256_setr_epi16(-1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0);
  const __m256i w1 = _mm256_setr_epi16(-1, -1, -1, 0, 0, 0, 1, 1, 1, -1, -1, -1, 0, 0, 0, 0);
  const __m256i w2 = _mm256_setr_epi16(-1, 0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 0, 0);
  // Per lane: the low bytes of its 8 entries, then their high bytes.
  const __m256i split = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15,
                                         0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
  for (size_t g = group_begin; g < group_end; g++) {
    int16_t x[3];
    if (3 * g + 3 <= k) {
      x[0] = xq[3 * g], x[1] = xq[3 * g + 1], x[2] = xq[3 * g + 2];
    } else {
      for (size_t j = 0; j < 3; j++) x[j] = 3 * g + j < k ? xq[3 * g + j] : 0;  // zero padding
    }
    __m256i t = _mm256_add_epi16(_mm256_sign_epi16(_mm256_set1_epi16(x[0]), w0),
                                 _mm256_sign_epi16(_mm256_set1_epi16(x[1]), w1));
    t = _mm256_add_epi16(t, _mm256_sign_epi16(_mm256_set1_epi16(x[2]), w2));
    t = _mm256_shuffle_epi8(t, split);                          // lo0-7 hi0-7 | lo8-15 hi8-15
    t = _mm256_permute4x64_epi64(t, _MM_SHUFFLE(3, 1, 2, 0));  // lo0-15 | hi0-15
    uint8_t* lo = table + (g / 2) * 64 + (g % 2) * 16;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(lo), _mm256_castsi256_si128(t));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(lo + 32), _mm256_extracti128_si256(t, 1));
  }
}

}  // namespace lutra
