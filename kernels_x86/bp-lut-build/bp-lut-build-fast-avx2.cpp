// Fast (int8) table build for bp, AVX2: per group, the 16 int16 entries of each chunk as in the
// exact build (masked broadcasts, kept in a small buffer) and max|T| over the group; then
// q = trunc((254 T ± max) / (2 max)) per entry in float. That equals the scalar reference's
// integer division: |254 T ± max| < 2^17 and 2 max <= 1024 are exact in float, the quotient
// is correctly rounded, and a quotient that is not an integer lies at least 1/1024 from one,
// far more than its rounding error (< 2^-16), so truncation lands on the same integer. Same
// bytes as lutra_bp_lut_build_fast__scalar.
#include <immintrin.h>

#include <cstring>

#include "kernels_x86/bp-lut-build/bp-lut-build-avx2.h"
#include "runtime/kernel_variants.h"

namespace lutra {

void lutra_bp_lut_build_fast__avx2(const int8_t* xq, size_t k, size_t group, size_t group_begin,
                                   size_t group_end, uint8_t* table) {
  const size_t gpr = k / group, chunks = group / 4;
  uint8_t* xsums = table + k / 16 * 64;
  alignas(32) int16_t entries[256 / 4 * 16];  // group <= 256
  for (size_t g = group_begin; g < group_end; g++) {
    int32_t xsum = 0;
    __m256i vmax = _mm256_setzero_si256();
    for (size_t c = 0; c < chunks; c++) {
      const int8_t* x = xq + g * group + 4 * c;
      const __m256i t = chunk_entries(x);
      _mm256_store_si256(reinterpret_cast<__m256i*>(entries + 16 * c), t);
      vmax = _mm256_max_epi16(vmax, _mm256_abs_epi16(t));
      xsum += x[0] + x[1] + x[2] + x[3];
    }
    alignas(32) int16_t m16[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(m16), vmax);
    int32_t tmax = 0;
    for (int16_t v : m16) tmax = v > tmax ? v : tmax;
    int8_t* out = reinterpret_cast<int8_t*>(table + g * group / 16 * 64);
    if (tmax == 0) {
      std::memset(out, 0, chunks * 16);
    } else {
      const __m256i vt = _mm256_set1_epi32(tmax), k254 = _mm256_set1_epi32(254);
      const __m256 den = _mm256_set1_ps(float(2 * tmax));
      for (size_t c = 0; c < chunks; c++) {
        __m256i q[2];
        for (int h = 0; h < 2; h++) {
          const __m256i t = _mm256_cvtepi16_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(entries + 16 * c + 8 * h)));
          const __m256i num = _mm256_add_epi32(_mm256_mullo_epi32(t, k254), _mm256_sign_epi32(vt, t));
          q[h] = _mm256_cvttps_epi32(_mm256_div_ps(_mm256_cvtepi32_ps(num), den));
        }
        // int32 -> int16 -> int8, back in entry order (|q| <= 127: no saturation)
        const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[0], q[1]), _MM_SHUFFLE(3, 1, 2, 0));
        const __m128i b = _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + c / 4 * 64 + c % 4 * 16), b);
      }
    }
    const float ts = tmax ? float(tmax) / 127.0f : 1.0f;
    std::memcpy(xsums + 4 * g, &xsum, 4);
    std::memcpy(xsums + 4 * gpr + 4 * g, &ts, 4);
  }
}

}  // namespace lutra
