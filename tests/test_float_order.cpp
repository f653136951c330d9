// The canonical float order (runtime/float_order.h): the lane order and tree of dot products
// and sums on cases small enough to work out by hand, and exp_canonical against double exp
// (error in ulps over its whole finite range) and on its special values.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "runtime/float_order.h"

using namespace lutra;

namespace {

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// |got - want| in units of the float ulp at want (the subnormal ulp below the normal range).
double ulps(float got, double want) {
  const double ulp = std::ldexp(1.0, std::max(std::ilogb(float(want)), -126) - 23);
  return std::fabs(double(got) - want) / ulp;
}

}  // namespace

TEST_CASE("canonical dot products and sums take 16 lanes, ascending, then the tree 8, 4, 2, 1") {
  // Lane 0 gets 1e8 then -1e8 (fma: exact 0), so the 1.0 at j = 1 survives: index order would
  // have absorbed it into 1e8 first.
  std::vector<float> a(17, 0.0f), b(17, 1.0f);
  a[0] = 1e8f, a[1] = 1.0f, a[16] = -1e8f;
  CHECK(dot_canonical(a.data(), b.data(), 17) == 1.0f);
  CHECK(sum_canonical(a.data(), 17) == 1.0f);
  // The tree pairs lane i with lane i + 8 first: lanes 0 and 8 cancel before lane 1 joins.
  std::vector<float> c(16, 0.0f);
  c[0] = 1e8f, c[8] = -1e8f, c[1] = 3.0f;
  CHECK(sum_canonical(c.data(), 16) == 3.0f);
  // Step 2 pairs lanes 0+2 and 1+3, then step 1 adds them: with 2^24 in lane 0 and ones in
  // lanes 1 and 3, the ones meet first (2), and 2^24 + 2 is exact; in index order each 1 would
  // be rounded away (2^24 + 1 -> 2^24, ties to even).
  std::vector<float> d(16, 0.0f);
  d[0] = 16777216.0f, d[1] = 1.0f, d[3] = 1.0f;
  CHECK(sum_canonical(d.data(), 16) == 16777218.0f);
  d[3] = 0.0f, d[2] = 1.0f;  // lanes 0+2 first: 2^24 + 1 -> 2^24, then + 1 -> 2^24 again
  CHECK(sum_canonical(d.data(), 16) == 16777216.0f);
  // The dot product is one fma per element (no rounded product): lane 0 holds -(1 + 2^-11),
  // then gets (1 + 2^-12)^2 = 1 + 2^-11 + 2^-24, leaving 2^-24 only if the product is exact.
  std::vector<float> p = {1.0f, 0.0f}, q = {1.0f, 0.0f};
  std::vector<float> p2(17, 0.0f), q2(17, 0.0f);
  p2[0] = -(1.0f + 0x1p-11f), q2[0] = 1.0f, p2[16] = 1.0f + 0x1p-12f, q2[16] = 1.0f + 0x1p-12f;
  CHECK(dot_canonical(p2.data(), q2.data(), 17) == 0x1p-24f);
  CHECK(dot_canonical(p.data(), q.data(), 0) == 0.0f);
  CHECK(std::signbit(dot_canonical(p.data(), q.data(), 0)) == false);
}

TEST_CASE("the pair lanes of 4-bit codes give a byte's two columns one lane, and x is permuted to match") {
  // Columns 0 and 1 share lane 0 (1e8 then -1e8 cancel before lane 0 meets anything else), so
  // the 1.0 at column 2 (lane 1) survives; with lane j % 16, column 1 would be in lane 1.
  std::vector<float> a(32, 0.0f), b(32, 1.0f);
  a[0] = 1e8f, a[1] = -1e8f, a[2] = 1.0f;
  auto at = [&](size_t j) { return a[j]; };
  CHECK(dot_canonical_pairs_fn(at, b.data(), 32) == 1.0f);
  // Column 1 joins 1e8 in lane 0 (and is rounded away), column 16 is lane 8 (not lane 0).
  a.assign(32, 0.0f);
  a[0] = 1e8f, a[1] = 1.0f, a[16] = -1e8f;
  CHECK(dot_canonical_pairs_fn(at, b.data(), 32) == 0.0f);
  std::vector<float> x(64), p(64);
  for (size_t j = 0; j < 64; j++) x[j] = float(j);
  pair_lane_order(x.data(), 64, p.data());
  for (size_t t = 0; t < 16; t++) {
    CHECK(p[t] == float(2 * t));
    CHECK(p[16 + t] == float(2 * t + 1));
    CHECK(p[32 + t] == float(32 + 2 * t));
    CHECK(p[48 + t] == float(33 + 2 * t));
  }
}

TEST_CASE("exp_canonical is within 1 ulp of exp over its range and exact on special values") {
  double worst = 0;
  float at = 0;
  // Every 97th float bit pattern in [-104, 89] of both signs: about 22 million values.
  for (uint32_t b = 0; b < 0x80000000u; b += 97)
    for (uint32_t sign : {0u, 0x80000000u}) {
      const uint32_t bb = b | sign;
      float x;
      std::memcpy(&x, &bb, 4);
      if (!(x >= -104.0f && x <= 88.72f)) continue;
      const double want = std::exp(double(x));
      if (want < 0x1p-126) continue;  // subnormal results: checked below
      const double e = ulps(exp_canonical(x), want);
      if (e > worst) worst = e, at = x;
    }
  MESSAGE("exp_canonical: worst error " << worst << " ulp at x = " << at);
  CHECK(worst <= 1.0);
  // Subnormal results round once: within one subnormal ulp.
  for (float x = -87.4f; x > -104.0f; x -= 0.0137f) CHECK(ulps(exp_canonical(x), std::exp(double(x))) <= 1.0);
  CHECK(exp_canonical(0.0f) == 1.0f);
  CHECK(exp_canonical(-0.0f) == 1.0f);
  CHECK(exp_canonical(1.0f) == std::exp(1.0f));
  CHECK(exp_canonical(88.72f) < std::numeric_limits<float>::infinity());
  CHECK(exp_canonical(88.73f) == std::numeric_limits<float>::infinity());
  CHECK(exp_canonical(1e30f) == std::numeric_limits<float>::infinity());
  CHECK(exp_canonical(std::numeric_limits<float>::infinity()) == std::numeric_limits<float>::infinity());
  CHECK(exp_canonical(-104.0f) == 0.0f);
  CHECK(exp_canonical(-1e30f) == 0.0f);
  CHECK(exp_canonical(-std::numeric_limits<float>::infinity()) == 0.0f);
  CHECK(exp_canonical(-103.0f) > 0.0f);  // a subnormal, not flushed
  const float nan = std::numeric_limits<float>::quiet_NaN();
  CHECK(bits_of(exp_canonical(nan)) == bits_of(nan));
}
