// The one float summation order every float kernel follows, on every ISA (scalar reference,
// AVX2, AVX-512, NEON), so that a model gives bit-identical logits on x86 and aarch64 at every
// ISA cap. Plain scalar code: the SIMD variants reproduce it with their own registers
// (kernels_x86/float-order-avx2.h, -avx512.h, kernels_arm/float-order-neon.h).
//
// Sums over n elements: 16 lane accumulators start at +0; element j goes to lane j % 16, each
// lane takes its elements in ascending j with one fused multiply-add (dot products) or one add
// (plain sums); the tail just stops (the same as adding fma(0, 0, lane): a lane is never -0).
// Then a fixed tree, for step 8, 4, 2, 1: lane[i] += lane[i + step] (i < step); the result is
// lane 0. That is one AVX-512 register, two AVX2 registers (lanes 0-7, 8-15) or four NEON q
// registers, reduced halves first. One exception, for weights packed two per byte (bq 4-bit
// codes in groups of 32): lane (j % 32) / 2 (dot_canonical_pairs_fn).
//
// exp_canonical: exp from +, -, *, fma, round-to-nearest-integer and exponent bits only (no
// libm, whose exp may differ by architecture or by its FMA ifunc), so SIMD copies can match it
// bit for bit. Error about 1 ulp (tests/test_float_order.cpp measures it).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace lutra {

inline constexpr size_t kFloatLanes = 16;

// The fixed tree over 16 lanes (modifies them).
inline float reduce_lanes(float* lane) {
  for (size_t step = kFloatLanes / 2; step >= 1; step /= 2)
    for (size_t i = 0; i < step; i++) lane[i] += lane[i + step];
  return lane[0];
}

// sum_j a(j) * b[j] in the canonical order; a is any element accessor (f16 widening, bq
// decoding), evaluated in ascending j.
template <class A>
inline float dot_canonical_fn(A&& a, const float* b, size_t n) {
  float lane[kFloatLanes] = {};
  for (size_t j = 0; j < n; j++) lane[j % kFloatLanes] = std::fma(a(j), b[j], lane[j % kFloatLanes]);
  return reduce_lanes(lane);
}

// The same with lanes for weights packed two per byte (bq 4-bit codes in groups of 32): lane
// (j % 32) / 2, so each lane takes the pair of columns one byte holds, ascending. A SIMD variant
// then matches the low nibbles (even j) and the high nibbles (odd j) of 16 bytes with a copy of
// x permuted once, instead of shuffling the codes back into column order.
template <class A>
inline float dot_canonical_pairs_fn(A&& a, const float* b, size_t n) {
  float lane[kFloatLanes] = {};
  for (size_t j = 0; j < n; j++) lane[j % 32 / 2] = std::fma(a(j), b[j], lane[j % 32 / 2]);
  return reduce_lanes(lane);
}

// x (n a multiple of 32) in the order of those lanes: per 32 columns, the 16 even ones, then
// the 16 odd ones.
inline void pair_lane_order(const float* x, size_t n, float* out) {
  for (size_t b = 0; b < n; b += 32)
    for (size_t t = 0; t < 16; t++) {
      out[b + t] = x[b + 2 * t];
      out[b + 16 + t] = x[b + 2 * t + 1];
    }
}

inline float dot_canonical(const float* a, const float* b, size_t n) {
  return dot_canonical_fn([a](size_t j) { return a[j]; }, b, n);
}

// sum_j x[j] in the canonical order (adds instead of fmas).
inline float sum_canonical(const float* x, size_t n) {
  float lane[kFloatLanes] = {};
  for (size_t j = 0; j < n; j++) lane[j % kFloatLanes] += x[j];
  return reduce_lanes(lane);
}

// ---- exp ------------------------------------------------------------------------------------
// x is clamped to [kExpMin, kExpMax] (exp overflows past 88.73 and is below half the smallest
// subnormal under -103.98, so the clamp changes no result); n = round(x / ln 2);
// r = x - n ln2 in two fma steps (ln 2 split in a high and a low float); exp(r) on
// |r| <= ln2/2 by its Taylor polynomial of degree 7 in Horner form with fma (truncation below
// 2^-27); then times 2^n as two exact power-of-two factors 2^(n/2) and 2^(n - n/2), so results
// that overflow or land in the subnormal range round once, in the last multiply.
// NaN returns x itself.
namespace exp_constants {
inline constexpr float kMax = 89.0f, kMin = -104.0f;
inline constexpr float kLog2e = 1.44269502f;           // 0x3fb8aa3b
inline constexpr float kLn2Hi = 0.693145751953125f;    // 0x3f317200: 16 bits, n * kLn2Hi exact
inline constexpr float kLn2Lo = 1.42860677e-06f;       // 0x35bfbe8e: ln 2 - kLn2Hi
inline constexpr float kC[8] = {1.0f,         1.0f,         1.0f / 2,    1.0f / 6,
                                1.0f / 24,    1.0f / 120,   1.0f / 720,  1.0f / 5040};  // 1/i!
}  // namespace exp_constants

// 2^e for -126 <= e <= 127, from its exponent bits.
inline float pow2i(int32_t e) {
  const uint32_t bits = uint32_t(e + 127) << 23;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline float exp_canonical(float x) {
  using namespace exp_constants;
  if (x != x) return x;
  x = x > kMax ? kMax : x;
  x = x < kMin ? kMin : x;
  const float n = std::nearbyint(x * kLog2e);  // half to even, in the default rounding mode
  float r = std::fma(-n, kLn2Hi, x);
  r = std::fma(-n, kLn2Lo, r);
  float p = kC[7];
  for (int i = 6; i >= 0; i--) p = std::fma(p, r, kC[i]);
  const int32_t ni = int32_t(n), n1 = ni >> 1;  // arithmetic shift: n1 = floor(n / 2)
  return p * pow2i(n1) * pow2i(ni - n1);
}

}  // namespace lutra
