// Test support shared by the kernel tests: the variants this CPU can run, int8 activation
// patterns, row splits of a GEMM, and normal activations through the int8 quantizer.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <span>
#include <vector>

#include "runtime/kernels.h"

// The variants of `all` this CPU runs; a message names each one skipped.
template <class Fn>
std::vector<lutra::Variant<Fn>> runnable(std::span<const lutra::Variant<Fn>> all) {
  std::vector<lutra::Variant<Fn>> out;
  for (const lutra::Variant<Fn>& v : all) {
    if (lutra::cpu_supports(v.isa))
      out.push_back(v);
    else
      MESSAGE("skipping " << v.name << ": this CPU lacks " << lutra::to_string(v.isa));
  }
  return out;
}

// Uniform int8, or every value at an end of the range (the limits of int16 table sums).
enum class Acts { random, min, max, extremes };
constexpr Acts kAllActs[] = {Acts::random, Acts::min, Acts::max, Acts::extremes};

inline std::vector<int8_t> make_acts(std::mt19937& rng, size_t count, Acts kind) {
  std::uniform_int_distribution<int> d(-128, 127), coin(0, 1);
  std::vector<int8_t> x(count);
  for (int8_t& v : x)
    v = int8_t(kind == Acts::min        ? -128
               : kind == Acts::max      ? 127
               : kind == Acts::extremes ? (coin(rng) ? 127 : -128)
                                        : d(rng));
  return x;
}

// Row splits of [0, n) for kernels with 32-row tiles: the whole range, 32-aligned pieces (the
// last ends at n), a ragged 3-way split (pieces may be empty).
inline std::vector<std::vector<size_t>> splits_of_32(std::mt19937& rng, size_t n) {
  std::vector<std::vector<size_t>> out{{0, n}};
  std::vector<size_t> aligned{0};
  for (size_t r = 32; r < n; r += 32) aligned.push_back(r);
  aligned.push_back(n);
  out.push_back(aligned);
  std::uniform_int_distribution<size_t> d(0, n);
  size_t a = d(rng), b = d(rng);
  if (a > b) std::swap(a, b);
  out.push_back({0, a, b, n});
  return out;
}

// m tokens of k normal floats, quantized per token as the runtime does.
struct QuantizedActs {
  std::vector<float> x;    // m * k
  std::vector<int8_t> xq;  // m * k
  std::vector<float> xs;   // m, the per-token scales
};

inline QuantizedActs normal_acts_i8(std::mt19937& rng, size_t m, size_t k, lutra::QuantizeI8Fn quantize) {
  QuantizedActs a{std::vector<float>(m * k), std::vector<int8_t>(m * k), std::vector<float>(m)};
  std::normal_distribution<float> dn(0.0f, 1.0f);
  for (float& v : a.x) v = dn(rng);
  for (size_t i = 0; i < m; i++) a.xs[i] = quantize(a.x.data() + i * k, k, a.xq.data() + i * k);
  return a;
}
