// KV cache values as 8 floats, for the AVX2 attention kernels: values d..d+7 of a cached row
// (d a multiple of 8). f32 rows load as they are, f16 rows widen exactly with F16C's vcvtph2ps,
// q8 rows widen and multiply by their block's scale (runtime/kernels.h). "part" loads read only
// the n live values (n may be <= 0 or >= 8) and give zeros in the other lanes, as
// _mm256_maskload_ps does.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels_x86/float-order-avx2.h"
#include "runtime/kernels.h"

namespace lutra {
namespace {

inline __m256 kv_load8(const float* row, size_t d, size_t) { return _mm256_loadu_ps(row + d); }
inline __m256 kv_load8(const uint16_t* row, size_t d, size_t) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + d)));
}
inline __m256 kv_q8_widen(const int8_t* q8, float scale) {
  int64_t bits;
  std::memcpy(&bits, q8, 8);
  const __m256 x = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_cvtsi64_si128(bits)));
  return _mm256_mul_ps(x, _mm256_set1_ps(scale));
}
inline __m256 kv_load8(const int8_t* row, size_t d, size_t head_dim) {
  return kv_q8_widen(row + d, kv_q8_scale(row, d, head_dim));
}

inline __m256 kv_load8_part(const float* row, size_t d, long n, size_t) {
  return _mm256_maskload_ps(row + d, live_mask8(n));
}
inline __m256 kv_load8_part(const uint16_t* row, size_t d, long n, size_t) {
  uint16_t h[8] = {};
  if (n > 0) std::memcpy(h, row + d, size_t(n < 8 ? n : 8) * 2);
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h)));
}
inline __m256 kv_load8_part(const int8_t* row, size_t d, long n, size_t head_dim) {
  if (n <= 0) return _mm256_setzero_ps();
  int8_t q[8] = {};
  std::memcpy(q, row + d, size_t(n < 8 ? n : 8));
  return kv_q8_widen(q, kv_q8_scale(row, d, head_dim));
}

// One value as a float.
inline float kv_float(const float* row, size_t d, size_t) { return row[d]; }
inline float kv_float(const uint16_t* row, size_t d, size_t) { return _cvtsh_ss(row[d]); }
inline float kv_float(const int8_t* row, size_t d, size_t head_dim) { return kv_q8_value(row, d, head_dim); }

}  // namespace
}  // namespace lutra
