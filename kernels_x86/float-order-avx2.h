// runtime/float_order.h's canonical order with AVX2 + FMA registers: the 16 lanes are two
// __m256 (lanes 0-7, 8-15), reduced by the same tree; exp_canonical 8 lanes at a time, with the
// same operations in the same order. Included only by files compiled with AVX2 + FMA flags.
#pragma once

#include <immintrin.h>

#include "runtime/float_order.h"

namespace lutra {
namespace {

// Lanes live (< n) of 8 as a maskload/maskstore mask; n may be <= 0 or >= 8.
inline __m256i live_mask8(long n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n < 0 ? 0 : n > 8 ? 8 : n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// The tree of float_order.h over lanes lo (0-7) and hi (8-15): steps 8, 4, 2, 1.
inline float reduce16(__m256 lo, __m256 hi) {
  const __m256 v = _mm256_add_ps(lo, hi);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 2^e per lane for -126 <= e <= 127.
inline __m256 pow2i8(__m256i e) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127)), 23)); }

inline __m256 exp8(__m256 x0) {
  using namespace exp_constants;
  const __m256 nan = _mm256_cmp_ps(x0, x0, _CMP_UNORD_Q);
  __m256 x = _mm256_min_ps(x0, _mm256_set1_ps(kMax));
  x = _mm256_max_ps(x, _mm256_set1_ps(kMin));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
  __m256 p = _mm256_set1_ps(kC[7]);
  for (int i = 6; i >= 0; i--) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC[i]));
  const __m256i ni = _mm256_cvtps_epi32(n), n1 = _mm256_srai_epi32(ni, 1);
  const __m256 e = _mm256_mul_ps(_mm256_mul_ps(p, pow2i8(n1)), pow2i8(_mm256_sub_epi32(ni, n1)));
  return _mm256_blendv_ps(e, x0, nan);
}

}  // namespace
}  // namespace lutra
