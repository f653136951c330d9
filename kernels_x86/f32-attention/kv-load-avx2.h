// KV cache rows as 8 floats, for the AVX2 attention kernels: f32 rows load as they are, f16 rows
// widen exactly with F16C's vcvtph2ps. "part" loads read only the n live elements (n may be <= 0
// or >= 8) and give zeros in the other lanes, as _mm256_maskload_ps does.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels_x86/float-order-avx2.h"

namespace lutra {
namespace {

inline __m256 kv_load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 kv_load8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

inline __m256 kv_load8_part(const float* p, long n) { return _mm256_maskload_ps(p, live_mask8(n)); }
inline __m256 kv_load8_part(const uint16_t* p, long n) {
  uint16_t h[8] = {};
  if (n > 0) std::memcpy(h, p, size_t(n < 8 ? n : 8) * 2);
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h)));
}

}  // namespace
}  // namespace lutra
