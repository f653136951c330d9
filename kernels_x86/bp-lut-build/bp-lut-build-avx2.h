// The chunk entries both bp table builds (exact and fast) start from, AVX2. Included only by
// their .cpp files; the anonymous namespace gives each file its own copy.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace lutra {
namespace {

// The 16 int16 entries T[p] = sum_{e: bit e of p} x[e] of one chunk of 4 activations, p = 0..15
// in order: four broadcasts masked by the constant bit columns of p, summed.
inline __m256i chunk_entries(const int8_t* x) {
  // Bit e of p as an all-ones / all-zeros int16.
  const __m256i b0 = _mm256_setr_epi16(0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1);
  const __m256i b1 = _mm256_setr_epi16(0, 0, -1, -1, 0, 0, -1, -1, 0, 0, -1, -1, 0, 0, -1, -1);
  const __m256i b2 = _mm256_setr_epi16(0, 0, 0, 0, -1, -1, -1, -1, 0, 0, 0, 0, -1, -1, -1, -1);
  const __m256i b3 = _mm256_setr_epi16(0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m256i t01 = _mm256_add_epi16(_mm256_and_si256(_mm256_set1_epi16(x[0]), b0),
                                       _mm256_and_si256(_mm256_set1_epi16(x[1]), b1));
  const __m256i t23 = _mm256_add_epi16(_mm256_and_si256(_mm256_set1_epi16(x[2]), b2),
                                       _mm256_and_si256(_mm256_set1_epi16(x[3]), b3));
  return _mm256_add_epi16(t01, t23);
}

}  // namespace
}  // namespace lutra
