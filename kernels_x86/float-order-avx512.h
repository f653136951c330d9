// runtime/float_order.h's canonical order with AVX-512 registers: the 16 lanes are one __m512,
// reduced by the same tree. Included only by files compiled with AVX-512 flags.
#pragma once

#include <immintrin.h>

#include "runtime/float_order.h"

namespace lutra {
namespace {

// The tree of float_order.h: steps 8, 4, 2, 1. Zero-masked extracts: GCC 12's reduce and cast
// intrinsics trip -Wuninitialized inside its headers (they use _mm512_undefined_*).
inline float reduce16(__m512 v) {
  const __m256 h = _mm256_add_ps(_mm512_maskz_extractf32x8_ps(0xff, v, 0), _mm512_maskz_extractf32x8_ps(0xff, v, 1));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace
}  // namespace lutra
