// Kernel tests: every scalar reference against plain double-precision loops written here, every
// SIMD variant against the scalar reference (bit for bit where the kind is exact), and the
// dispatcher's choice under an ISA cap. Variants the CPU cannot run are skipped with a message.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "runtime/half.h"
#include "runtime/kernel_variants.h"
#include "runtime/kernels.h"

using namespace lutra;

namespace {

const size_t kKs[] = {1, 2, 3, 4, 5, 7, 8, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 1000};
const size_t kNs[] = {1, 3, 7, 8, 9, 15, 16, 17, 33, 64};
const size_t kMs[] = {1, 2, 3, 5};

constexpr double kU = 1.0 / (1 << 24);  // unit roundoff of float

std::vector<float> random_floats(std::mt19937& rng, size_t count, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(count);
  for (float& x : v) x = d(rng);
  return v;
}

std::vector<int8_t> random_i8(std::mt19937& rng, size_t count) {
  std::uniform_int_distribution<int> d(-128, 127);
  std::vector<int8_t> v(count);
  for (int8_t& x : v) x = int8_t(d(rng));
  return v;
}

// Row splits to try for n rows: the whole range, one row at a time, and a random 3-way split
// (pieces may be empty).
std::vector<std::vector<size_t>> splits(std::mt19937& rng, size_t n) {
  std::vector<std::vector<size_t>> out{{0, n}};
  std::vector<size_t> ones;
  for (size_t r = 0; r <= n; r++) ones.push_back(r);
  if (n <= 17) out.push_back(ones);
  std::uniform_int_distribution<size_t> d(0, n);
  size_t a = d(rng), b = d(rng);
  if (a > b) std::swap(a, b);
  out.push_back({0, a, b, n});
  return out;
}

// A weight tensor in one of the formats, with its bytes and a double-precision reading of
// W[r][j] that does not share code with the kernels.
struct TestWeights {
  std::vector<uint8_t> bytes;
  WeightView view;
  std::vector<double> dense;  // n*k, the exact value the format encodes
};

TestWeights make_f32(std::mt19937& rng, size_t n, size_t k) {
  TestWeights t;
  std::vector<float> w = random_floats(rng, n * k);
  t.bytes.resize(n * k * 4);
  std::memcpy(t.bytes.data(), w.data(), t.bytes.size());
  t.dense.assign(w.begin(), w.end());
  t.view = WeightView{.format = WeightFormat::f32, .n = n, .k = k, .data = t.bytes.data()};
  return t;
}

TestWeights make_f16(std::mt19937& rng, size_t n, size_t k) {
  TestWeights t;
  std::vector<float> w = random_floats(rng, n * k);
  t.bytes.resize(n * k * 2);
  for (size_t i = 0; i < n * k; i++) {
    uint16_t h = f32_to_f16(w[i]);
    std::memcpy(&t.bytes[2 * i], &h, 2);
    t.dense.push_back(f16_to_f32(h));
  }
  t.view = WeightView{.format = WeightFormat::f16, .n = n, .k = k, .data = t.bytes.data()};
  return t;
}

// codes in {0,1,2} (ternary -1/0/+1), or only `fixed_code` when given.
TestWeights make_t2(std::mt19937& rng, size_t n, size_t k, int fixed_code = -1) {
  TestWeights t;
  t.bytes.assign(n * t2_row_bytes(k), 0);
  std::uniform_int_distribution<int> d(0, 2);
  for (size_t r = 0; r < n; r++) {
    for (size_t j = 0; j < k; j++) {
      int c = fixed_code >= 0 ? fixed_code : d(rng);
      t.bytes[r * t2_row_bytes(k) + j / 4] |= uint8_t(c << (2 * (j % 4)));
      t.dense.push_back(c - 1);
    }
  }
  t.view = WeightView{.format = WeightFormat::t2, .n = n, .k = k, .data = t.bytes.data(), .scale = 0.37f};
  return t;
}

TestWeights make_bq(std::mt19937& rng, size_t n, size_t k, int bits, int group, bool asym) {
  TestWeights t;
  size_t row_bytes = bq_code_bytes_per_row(k, bits), groups = k / size_t(group);
  t.bytes.assign(weight_bytes(WeightFormat::bq, n, k, bits, group, asym), 0);
  std::uniform_int_distribution<int> dq(0, (1 << bits) - 1);
  std::vector<int> codes(n * k);
  for (size_t r = 0; r < n; r++) {
    for (size_t j = 0; j < k; j++) {
      int c = codes[r * k + j] = dq(rng);
      for (int b = 0; b < bits; b++) {  // bit by bit: independent of the kernels' reader
        size_t bit = j * size_t(bits) + size_t(b);
        if (c >> b & 1) t.bytes[r * row_bytes + bit / 8] |= uint8_t(1u << (bit % 8));
      }
    }
  }
  std::vector<float> scales = random_floats(rng, n * groups, 0.001f, 0.1f);
  std::vector<float> zeros = random_floats(rng, n * groups, 0.0f, float((1 << bits) - 1));
  auto put = [&](size_t section, size_t i, float v) {
    uint16_t h = f32_to_f16(v);
    std::memcpy(&t.bytes[n * row_bytes + (section * n * groups + i) * 2], &h, 2);
    return double(f16_to_f32(h));
  };
  std::vector<double> s(n * groups), z(n * groups, std::ldexp(1.0, bits - 1));
  for (size_t i = 0; i < n * groups; i++) {
    s[i] = put(0, i, scales[i]);
    if (asym) z[i] = put(1, i, zeros[i]);
  }
  for (size_t r = 0; r < n; r++)
    for (size_t j = 0; j < k; j++)
      t.dense.push_back(s[r * groups + j / size_t(group)] * (codes[r * k + j] - z[r * groups + j / size_t(group)]));
  t.view = WeightView{.format = WeightFormat::bq, .n = n, .k = k, .data = t.bytes.data(), .bits = bits,
                      .group = group, .asymmetric = asym};
  return t;
}

// Runs fn for every variant of a kind the CPU supports (scalar first); says which it skips.
template <class Fn, class Body>
void for_each_variant(std::span<const Variant<Fn>> variants, Body body, bool skip_scalar = false) {
  REQUIRE(!variants.empty());
  CHECK(variants.front().isa == Isa::scalar);
  for (const Variant<Fn>& v : variants) {
    if (skip_scalar && v.isa == Isa::scalar) continue;
    if (!cpu_supports(v.isa)) {
      MESSAGE("skipping " << std::string(v.name) << ": this CPU lacks " << to_string(v.isa));
      continue;
    }
    INFO("variant " << std::string(v.name));
    body(v);
  }
}

// Checks a float GEMM variant against the double reference, |y - ref| <= (k+4) u sum|w x|
// (the worst-case bound of a float dot product in any order, plus the rounding of bq's
// weights), over every split, and bit for bit against the scalar reference (every variant
// follows the canonical float order); the result of a row must not depend on the split.
void check_float_gemm(const Variant<GemmFloatFn>& v, const TestWeights& t, size_t m, std::mt19937& rng,
                      const Variant<GemmFloatFn>& scalar) {
  const size_t n = t.view.n, k = t.view.k;
  std::vector<float> x = random_floats(rng, m * k);
  std::vector<float> want(m * n);
  scalar.fn(t.view, x.data(), want.data(), m, 0, n);
  std::vector<float> first;
  for (const std::vector<size_t>& cut : splits(rng, n)) {
    std::vector<float> y(m * n, std::numeric_limits<float>::quiet_NaN());
    for (size_t p = 0; p + 1 < cut.size(); p++) v.fn(t.view, x.data(), y.data(), m, cut[p], cut[p + 1]);
    for (size_t i = 0; i < m; i++) {
      for (size_t r = 0; r < n; r++) {
        double ref = 0, mag = 0;
        for (size_t j = 0; j < k; j++) {
          ref += t.dense[r * k + j] * double(x[i * k + j]);
          mag += std::fabs(t.dense[r * k + j] * double(x[i * k + j]));
        }
        double err = std::fabs(double(y[i * n + r]) - ref);
        if (!(err <= double(k + 4) * kU * mag + 1e-30)) {
          FAIL_CHECK("k=" << k << " n=" << n << " m=" << m << " row " << r << " token " << i << ": "
                          << y[i * n + r] << " vs " << ref);
          return;
        }
      }
    }
    if (std::memcmp(want.data(), y.data(), y.size() * 4) != 0) {
      FAIL_CHECK("k=" << k << " n=" << n << " m=" << m << ": not bit-identical to the scalar reference");
      return;
    }
    if (first.empty()) first = y;
    else if (std::memcmp(first.data(), y.data(), y.size() * 4) != 0) {
      FAIL_CHECK("k=" << k << " n=" << n << " m=" << m << ": a row's result depends on the split");
      return;
    }
  }
  // A piece writes only its own rows.
  if (n >= 3) {
    std::vector<float> y(m * n, std::numeric_limits<float>::quiet_NaN());
    v.fn(t.view, x.data(), y.data(), m, 1, n - 1);
    for (size_t i = 0; i < m; i++) CHECK((std::isnan(y[i * n]) && std::isnan(y[i * n + n - 1])));
  }
}

// Ternary: the exact int32 sum, and every variant equal to it bit for bit over every split.
void check_ternary_gemm(const Variant<GemmTernaryFn>& v, const TestWeights& t, const std::vector<int8_t>& xq,
                        size_t m, std::mt19937& rng, size_t& compared) {
  const size_t n = t.view.n, k = t.view.k;
  for (const std::vector<size_t>& cut : splits(rng, n)) {
    std::vector<int32_t> acc(m * n, INT32_MIN);
    for (size_t p = 0; p + 1 < cut.size(); p++) v.fn(t.view, xq.data(), acc.data(), m, cut[p], cut[p + 1]);
    for (size_t i = 0; i < m; i++) {
      for (size_t r = 0; r < n; r++) {
        int64_t ref = 0;
        for (size_t j = 0; j < k; j++) ref += int64_t(t.dense[r * k + j]) * xq[i * k + j];
        compared++;
        if (acc[i * n + r] != ref) {
          FAIL_CHECK("k=" << k << " n=" << n << " m=" << m << " row " << r << " token " << i << ": "
                          << acc[i * n + r] << " != " << ref);
          return;
        }
      }
    }
  }
  if (n >= 3) {
    std::vector<int32_t> acc(m * n, INT32_MIN);
    v.fn(t.view, xq.data(), acc.data(), m, 1, n - 1);
    for (size_t i = 0; i < m; i++) CHECK((acc[i * n] == INT32_MIN && acc[i * n + n - 1] == INT32_MIN));
  }
}

}  // namespace

TEST_CASE("f32 gemm variants match a double-precision reference and the scalar one bit for bit, over ragged shapes and any row split") {
  std::mt19937 rng(1);
  for_each_variant(kernel_inventory().gemm_f32, [&](const Variant<GemmFloatFn>& v) {
    for (size_t k : kKs)
      for (size_t n : kNs) {
        TestWeights t = make_f32(rng, n, k);
        for (size_t m : kMs) check_float_gemm(v, t, m, rng, kernel_inventory().gemm_f32.front());
      }
  });
}

TEST_CASE("f16 gemm variants match a double-precision reference and the scalar one bit for bit, over ragged shapes and any row split") {
  std::mt19937 rng(2);
  for_each_variant(kernel_inventory().gemm_f16, [&](const Variant<GemmFloatFn>& v) {
    for (size_t k : kKs)
      for (size_t n : kNs) {
        TestWeights t = make_f16(rng, n, k);
        for (size_t m : kMs) check_float_gemm(v, t, m, rng, kernel_inventory().gemm_f16.front());
      }
  });
}

TEST_CASE("bq gemm variants match a double-precision reference for bits 1..8, groups 32/64/128, sym and asym") {
  std::mt19937 rng(3);
  for_each_variant(kernel_inventory().gemm_bq, [&](const Variant<GemmFloatFn>& v) {
    for (int bits = 1; bits <= 8; bits++)
      for (int group : {32, 64, 128})
        for (bool asym : {false, true})
          for (size_t k : {size_t(128), size_t(256), size_t(384), size_t(1024)})
            for (size_t n : {size_t(1), size_t(7), size_t(16), size_t(17)}) {
              INFO("bits=" << bits << " group=" << group << " asym=" << asym);
              TestWeights t = make_bq(rng, n, k, bits, group, asym);
              for (size_t m : {size_t(1), size_t(3)}) check_float_gemm(v, t, m, rng, kernel_inventory().gemm_bq.front());
            }
  });
}

TEST_CASE("ternary gemm variants equal the exact integer sum bit for bit over ragged shapes") {
  std::mt19937 rng(4);
  for_each_variant(kernel_inventory().gemm_t2, [&](const Variant<GemmTernaryFn>& v) {
    size_t compared = 0;
    for (size_t k : kKs)
      for (size_t n : kNs) {
        TestWeights t = make_t2(rng, n, k);
        for (size_t m : kMs) check_ternary_gemm(v, t, random_i8(rng, m * k), m, rng, compared);
      }
    // Extremes: every product at +-2*128 (maddubs pairs at their limit), long k.
    for (int code : {0, 2}) {
      for (int8_t xv : {int8_t(-128), int8_t(127)}) {
        for (size_t k : {size_t(257), size_t(1000), size_t(6912)}) {
          TestWeights t = make_t2(rng, 9, k, code);
          check_ternary_gemm(v, t, std::vector<int8_t>(2 * k, xv), 2, rng, compared);
        }
      }
    }
    MESSAGE(std::string(v.name) << ": " << compared << " int32 sums compared exactly");
  });
}

TEST_CASE("int8 quantization rounds half to even, clamps max|x| at 1e-5, and every variant is bit-identical") {
  // Reference cases: with max|x| = 127 the scale is exactly 1, so x itself is rounded.
  std::vector<float> x = {127.0f, 2.5f, 3.5f, -2.5f, 0.5f, 1.5f, -0.5f, -127.0f, 126.5f, 0.49999997f};
  std::vector<int8_t> want = {127, 2, 4, -2, 0, 2, 0, -127, 126, 0};
  std::mt19937 rng(5);
  for_each_variant(kernel_inventory().quantize_i8, [&](const Variant<QuantizeI8Fn>& v) {
    std::vector<int8_t> q(x.size());
    CHECK(v.fn(x.data(), x.size(), q.data()) == 1.0f);
    CHECK(q == want);
    // All zeros: the clamp keeps the scale finite.
    std::vector<float> z(37, 0.0f);
    std::vector<int8_t> qz(37, 1);
    CHECK(v.fn(z.data(), z.size(), qz.data()) == 127.0f / 1e-5f);
    CHECK(std::all_of(qz.begin(), qz.end(), [](int8_t c) { return c == 0; }));
  });
  // Sweep: the scalar reference against double, then every variant against it bit for bit.
  const auto& variants = kernel_inventory().quantize_i8;
  for (size_t k : kKs) {
    for (int kind = 0; kind < 3; kind++) {
      std::vector<float> v = random_floats(rng, k, -3.0f, 3.0f);
      if (kind == 1) {  // halves with max 127: the scale is 1 and many values are ties
        std::uniform_int_distribution<int> d(-254, 254);
        for (float& f : v) f = float(d(rng)) / 2.0f;
        v[0] = 127.0f;
      }
      if (kind == 2) for (float& f : v) f *= 1e-7f;  // below the clamp
      std::vector<int8_t> ref(k);
      float s = variants.front().fn(v.data(), k, ref.data());
      double amax = 0;
      for (float f : v) amax = std::max(amax, double(std::fabs(f)));
      CHECK(s == 127.0f / std::max(float(amax), 1e-5f));
      for (size_t j = 0; j < k; j++) {
        double p = double(v[j] * s);
        CHECK(std::fabs(double(ref[j]) - std::clamp(p, -128.0, 127.0)) <= 0.5);
        if (std::fabs(p - std::floor(p) - 0.5) == 0.0) CHECK(ref[j] % 2 == 0);  // tie: even
      }
      for_each_variant(variants, [&](const Variant<QuantizeI8Fn>& var) {
        std::vector<int8_t> q(k + 1, 99);
        CHECK(var.fn(v.data(), k, q.data()) == s);
        CHECK(std::equal(ref.begin(), ref.end(), q.begin()));
        CHECK(q[k] == 99);  // nothing written past k
      }, true);
    }
  }
}

TEST_CASE("rmsnorm variants match a double-precision reference within (n+4) float roundings") {
  std::mt19937 rng(6);
  for_each_variant(kernel_inventory().rmsnorm, [&](const Variant<RmsNormFn>& v) {
    for (size_t n : kKs) {
      std::vector<float> x = random_floats(rng, n, -4.0f, 4.0f), w = random_floats(rng, n, 0.5f, 2.0f);
      std::vector<float> y(n + 1, 7.0f), want(n);
      v.fn(x.data(), w.data(), y.data(), n, 1e-5f);
      lutra_f32_rmsnorm__scalar(x.data(), w.data(), want.data(), n, 1e-5f);
      CHECK(std::memcmp(y.data(), want.data(), n * 4) == 0);  // the canonical order
      double ss = 0;
      for (float f : x) ss += double(f) * f;
      double inv = 1.0 / std::sqrt(ss / double(n) + 1e-5);
      for (size_t j = 0; j < n; j++) {
        double ref = x[j] * inv * w[j];
        CHECK(std::fabs(y[j] - ref) <= double(n + 8) * kU * std::fabs(ref) + 1e-30);
      }
      CHECK(y[n] == 7.0f);
    }
  });
}

TEST_CASE("softmax is stable for large inputs and matches a double-precision reference") {
  std::mt19937 rng(7);
  for_each_variant(kernel_inventory().softmax, [&](const Variant<SoftmaxFn>& v) {
    for (size_t n : kKs) {
      for (float spread : {1.0f, 100.0f, 1e4f}) {
        std::vector<float> x = random_floats(rng, n, -spread, spread);
        x[n / 2] = 1000.0f + spread;  // exp would overflow without subtracting the max
        std::vector<double> ref(x.begin(), x.end());
        const std::vector<float> x0 = x;
        double mx = *std::max_element(ref.begin(), ref.end()), sum = 0;
        for (double& r : ref) sum += (r = std::exp(r - mx));
        std::vector<float> want = x;
        lutra_f32_softmax__scalar(want.data(), n);
        v.fn(x.data(), n);
        CHECK(std::memcmp(x.data(), want.data(), n * 4) == 0);  // the canonical order
        double total = 0;
        for (size_t j = 0; j < n; j++) {
          CHECK(std::isfinite(x[j]));
          // float: exp of a rounded x - max (|x - max| u), then a sum of n terms
          double want = ref[j] / sum, d = std::fabs(double(x0[j]) - mx);
          CHECK(std::fabs(x[j] - want) <= ((n + 8) + 2 * d) * kU * want + 1e-30);
          total += x[j];
        }
        CHECK(total == doctest::Approx(1.0).epsilon(1e-5));
      }
    }
  });
}

TEST_CASE("rope rotates interleaved and half-split pairs as their reference definitions say") {
  std::mt19937 rng(8);
  for_each_variant(kernel_inventory().rope, [&](const Variant<RopeFn>& v) {
    // Ragged pair counts too (3, 9, 17, 24, 33): below, at and past the 8- and 16-pair steps.
    for (size_t head_dim : {2, 4, 6, 8, 18, 32, 34, 48, 64, 66, 128}) {
      for (size_t n_heads : {1, 3, 5}) {
        size_t half = head_dim / 2;
        std::vector<float> angle = random_floats(rng, half, -3.0f, 3.0f), c(half), s(half);
        for (size_t i = 0; i < half; i++) c[i] = std::cos(angle[i]), s[i] = std::sin(angle[i]);
        std::vector<float> base = random_floats(rng, n_heads * head_dim);
        for (RopeStyle style : {RopeStyle::interleaved, RopeStyle::half_split}) {
          std::vector<float> got = base, want = base;
          v.fn(got.data(), n_heads, head_dim, c.data(), s.data(), style);
          lutra_f32_rope__scalar(want.data(), n_heads, head_dim, c.data(), s.data(), style);
          CHECK(std::memcmp(got.data(), want.data(), got.size() * 4) == 0);  // same operations
          for (size_t h = 0; h < n_heads; h++) {
            for (size_t i = 0; i < half; i++) {
              size_t a = h * head_dim + (style == RopeStyle::interleaved ? 2 * i : i);
              size_t b = h * head_dim + (style == RopeStyle::interleaved ? 2 * i + 1 : i + half);
              double ra = double(base[a]) * c[i] - double(base[b]) * s[i];
              double rb = double(base[a]) * s[i] + double(base[b]) * c[i];
              CHECK(std::fabs(got[a] - ra) <= 4 * kU * (std::fabs(base[a]) + std::fabs(base[b])));
              CHECK(std::fabs(got[b] - rb) <= 4 * kU * (std::fabs(base[a]) + std::fabs(base[b])));
            }
          }
        }
      }
    }
  });
}

namespace {

// n_pos cache rows of head_dim values, row t from x + t * x_stride (the values between rows
// stand for other heads' slices), in a KV type: the bytes the kernels read, their row stride in
// the type's units (x_stride's gap kept), and the floats they stand for at x's indices (x rounded
// to f16 or q8 as the cache holds it).
struct KvRows {
  std::vector<uint8_t> bytes;
  size_t stride;
  std::vector<float> value;
};
KvRows kv_rows(const std::vector<float>& x, size_t n_pos, size_t head_dim, size_t x_stride, KvType type) {
  const size_t units = kv_row_units(type, head_dim), unit_bytes = kv_row_bytes(type, head_dim) / units;
  KvRows r{{}, units + (x_stride - head_dim), x};
  r.bytes.assign(n_pos * r.stride * unit_bytes, 0x55);  // gaps: bytes no kernel may read
  for (size_t t = 0; t < n_pos; t++) {
    uint8_t* row = r.bytes.data() + t * r.stride * unit_bytes;
    kv_store_row(type, x.data() + t * x_stride, head_dim, row);
    for (size_t j = 0; j < head_dim; j++) {
      float& v = r.value[t * x_stride + j];
      if (type == KvType::f16) v = f16_to_f32(f32_to_f16(v));
      if (type == KvType::q8) v = kv_q8_value(reinterpret_cast<const int8_t*>(row), j, head_dim);
    }
  }
  return r;
}

}  // namespace

TEST_CASE("attention over 1..40 cached positions, f32, f16 or q8 cache, matches a double-precision reference") {
  std::mt19937 rng(9);
  for_each_variant(kernel_inventory().attention, [&](const Variant<AttentionFn>& v) {
    for (KvType type : {KvType::f32, KvType::f16, KvType::q8}) {
      for (size_t head_dim : {1, 7, 64, 128}) {
        for (size_t n_pos = 1; n_pos <= 40; n_pos++) {
          size_t stride = head_dim * 3 + 1;  // other heads' slices lie between positions
          std::vector<float> q = random_floats(rng, head_dim, -2.0f, 2.0f);
          const KvRows k = kv_rows(random_floats(rng, n_pos * stride, -2.0f, 2.0f), n_pos, head_dim, stride, type);
          const KvRows val = kv_rows(random_floats(rng, n_pos * stride), n_pos, head_dim, stride, type);
          float scale = 1.0f / std::sqrt(float(head_dim));
          std::vector<float> scores(n_pos), out(head_dim), want(head_dim);
          v.fn(q.data(), k.bytes.data(), val.bytes.data(), type, n_pos, head_dim, k.stride, scale, scores.data(),
               out.data());
          lutra_f32_attention__scalar(q.data(), k.bytes.data(), val.bytes.data(), type, n_pos, head_dim, k.stride,
                                      scale, scores.data(), want.data());
          INFO("cache " << kv_type_name(type) << ", head_dim " << head_dim << ", n_pos " << n_pos);
          CHECK(std::memcmp(out.data(), want.data(), head_dim * 4) == 0);  // the canonical order
          std::vector<double> p(n_pos);
          double mx = -1e300, sum = 0;
          for (size_t t = 0; t < n_pos; t++) {
            double d = 0;
            for (size_t j = 0; j < head_dim; j++) d += double(q[j]) * k.value[t * stride + j];
            mx = std::max(mx, p[t] = d * scale);
          }
          for (double& x : p) sum += (x = std::exp(x - mx));
          for (size_t j = 0; j < head_dim; j++) {
            double ref = 0;
            for (size_t t = 0; t < n_pos; t++) ref += p[t] / sum * val.value[t * stride + j];
            CHECK(std::fabs(out[j] - ref) <= 1e-5);  // values in [-1, 1], weights sum to 1
          }
        }
      }
    }
  });
}

TEST_CASE("grouped-query attention variants equal one scalar reference call per head, bit for bit, f32, f16 or q8 cache") {
  std::mt19937 rng(19);
  for_each_variant(kernel_inventory().attention_gqa, [&](const Variant<AttentionGqaFn>& v) {
    for (KvType type : {KvType::f32, KvType::f16, KvType::q8})
      for (size_t head_dim : {1, 7, 16, 17, 64, 65, 128}) {
        for (size_t n_q : {1, 2, 3, 4, 5, 8}) {
          for (size_t n_pos : {1, 2, 3, 4, 5, 7, 8, 9, 31, 32, 33, 64, 100, 300}) {
            const size_t stride = head_dim * 5 + 3;  // other KV heads' slices lie between positions
            std::vector<float> q = random_floats(rng, n_q * head_dim, -2.0f, 2.0f);
            const KvRows k = kv_rows(random_floats(rng, n_pos * stride, -2.0f, 2.0f), n_pos, head_dim, stride, type);
            const KvRows val = kv_rows(random_floats(rng, n_pos * stride), n_pos, head_dim, stride, type);
            const float scale = 1.0f / std::sqrt(float(head_dim));
            // out in a wider buffer, so writes outside the n_q heads show
            std::vector<float> scores(n_q * n_pos), out(n_q * head_dim + 8, 5.0f), want(n_q * head_dim + 8, 5.0f);
            std::vector<float> one_scores(n_pos);
            for (size_t g = 0; g < n_q; g++)
              lutra_f32_attention__scalar(q.data() + g * head_dim, k.bytes.data(), val.bytes.data(), type, n_pos,
                                          head_dim, k.stride, scale, one_scores.data(), want.data() + g * head_dim);
            v.fn(q.data(), n_q, k.bytes.data(), val.bytes.data(), type, n_pos, head_dim, k.stride, scale,
                 scores.data(), out.data());
            INFO("cache " << kv_type_name(type) << ", head_dim " << head_dim << ", n_q " << n_q
                               << ", n_pos " << n_pos);
            CHECK(std::memcmp(out.data(), want.data(), out.size() * 4) == 0);
          }
        }
      }
  });
}

TEST_CASE("silu and relu-squared gating match their definitions") {
  std::mt19937 rng(10);
  for (size_t n : kKs) {
    std::vector<float> g = random_floats(rng, n, -8.0f, 8.0f), u = random_floats(rng, n, -2.0f, 2.0f);
    std::vector<float> out(n), want(n);
    lutra_f32_silu_mul__scalar(g.data(), u.data(), want.data(), n);
    for_each_variant(kernel_inventory().silu_mul, [&](const Variant<GluFn>& v) {
      v.fn(g.data(), u.data(), out.data(), n);
      CHECK(std::memcmp(out.data(), want.data(), n * 4) == 0);
      for (size_t j = 0; j < n; j++) {
        double ref = g[j] / (1.0 + std::exp(-double(g[j]))) * u[j];
        CHECK(std::fabs(out[j] - ref) <= 8 * kU * std::fabs(ref) + 1e-30);
      }
    });
    lutra_f32_relu2_mul__scalar(g.data(), u.data(), want.data(), n);
    for_each_variant(kernel_inventory().relu2_mul, [&](const Variant<GluFn>& v) {
      v.fn(g.data(), u.data(), out.data(), n);
      CHECK(std::memcmp(out.data(), want.data(), n * 4) == 0);
      for (size_t j = 0; j < n; j++) {
        double r = std::max(double(g[j]), 0.0), ref = r * r * u[j];
        CHECK(std::fabs(out[j] - ref) <= 4 * kU * std::fabs(ref));
      }
    });
  }
}

TEST_CASE("relu-squared gating variants equal the scalar reference bit for bit on infinities, signed zeros and subnormals, and give NaN where it does") {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const float tiny = std::numeric_limits<float>::denorm_min(), small = 1e-20f;
  const std::vector<float> specials = {nan, -nan, inf, -inf, 0.0f, -0.0f, tiny, -tiny, small, -small, 1.0f, -1.0f, 3e19f};
  // Every (gate, up) pair of specials, in a ragged length so each lands in the vector body and the tail.
  std::vector<float> g, u;
  for (float a : specials)
    for (float b : specials) g.push_back(a), u.push_back(b);
  g.push_back(2.0f), u.push_back(nan);
  const size_t n = g.size();
  std::vector<float> want(n), out(n);
  lutra_f32_relu2_mul__scalar(g.data(), u.data(), want.data(), n);
  for_each_variant(kernel_inventory().relu2_mul, [&](const Variant<GluFn>& v) {
    for (size_t off : {size_t(0), size_t(1), size_t(5)}) {  // every element at another lane
      std::fill(out.begin(), out.end(), 7.0f);
      v.fn(g.data() + off, u.data() + off, out.data() + off, n - off);
      // Bit for bit, except which payload a NaN result carries when two NaNs meet: C++ leaves
      // it open (a compiler may swap a commutative multiply's operands; GCC does for aarch64).
      for (size_t j = off; j < n; j++) {
        INFO("gate " << g[j] << ", up " << u[j]);
        if (std::isnan(want[j])) CHECK(std::isnan(out[j]));
        else CHECK(std::memcmp(&out[j], &want[j], 4) == 0);
      }
      for (size_t j = 0; j < off; j++) CHECK(out[j] == 7.0f);  // nothing written before
    }
  });
}

TEST_CASE("dequant_row reads back every weight format") {
  std::mt19937 rng(11);
  for_each_variant(kernel_inventory().dequant_row, [&](const Variant<DequantRowFn>& v) {
    auto check_rows = [&](const TestWeights& t, double rel, double scale) {
      std::vector<float> out(t.view.k + 1, 5.0f);
      for (size_t r = 0; r < t.view.n; r++) {
        v.fn(t.view, r, out.data());
        for (size_t j = 0; j < t.view.k; j++) {
          double ref = scale * t.dense[r * t.view.k + j];
          CHECK(std::fabs(out[j] - ref) <= rel * std::fabs(ref));
        }
        CHECK(out[t.view.k] == 5.0f);
      }
    };
    for (size_t k : {1, 3, 33, 257}) {
      check_rows(make_f32(rng, 5, k), 0.0, 1.0);
      check_rows(make_f16(rng, 5, k), 0.0, 1.0);
      TestWeights t = make_t2(rng, 5, k);
      check_rows(t, kU, t.view.scale);
    }
    for (int bits = 1; bits <= 8; bits++)
      for (int group : {32, 64, 128})
        for (bool asym : {false, true}) check_rows(make_bq(rng, 3, 256, bits, group, asym), 2 * kU, 1.0);
  });
}

TEST_CASE("an ISA cap limits every chosen kernel and the default picks the strongest supported one") {
  auto isas = [](const KernelTable& t) {
    return std::vector<Isa>{t.gemm_f32.isa,    t.gemm_f16.isa, t.gemm_bq.isa,   t.gemm_t2.isa,
                            t.quantize_i8.isa, t.rmsnorm.isa,  t.softmax.isa,   t.rope.isa,
                            t.attention.isa,   t.silu_mul.isa, t.relu2_mul.isa, t.dequant_row.isa,
                            t.lut_build_t5.isa, t.gemm_t5.isa, t.attention_gqa.isa,
                            t.gemm_t3_madd_scaled.isa};
  };
  const Isa saved = isa_cap();
  set_isa_cap(Isa::scalar);
  CHECK(isa_cap() == Isa::scalar);
  for (Isa isa : isas(kernels())) CHECK(isa == Isa::scalar);
  CHECK(bool(kernels().gemm_t2.fn == kernel_inventory().gemm_t2.front().fn));

  const auto is_avx512 = [](Isa isa) {
    return isa == Isa::avx512 || isa == Isa::avx512vnni || isa == Isa::avx512vbmi;
  };
  set_isa_cap(Isa::avx2);
  for (Isa isa : isas(kernels())) {
    CHECK(!is_avx512(isa));
    CHECK(isa != Isa::avxvnni);
  }
  if (cpu_supports(Isa::avx2)) CHECK(kernels().gemm_t2.isa == Isa::avx2);

  // avxvnni: the laptop level between avx2 and avx512. Its prefill kernel where the CPU has
  // AVX-VNNI, else the AVX2 one; never an AVX-512 variant.
  set_isa_cap(Isa::avxvnni);
  for (Isa isa : isas(kernels())) CHECK(!is_avx512(isa));
  if (cpu_supports(Isa::avxvnni)) CHECK(kernels().gemm_t3_madd_scaled.isa == Isa::avxvnni);
  else if (cpu_supports(Isa::avx2)) CHECK(kernels().gemm_t3_madd_scaled.isa == Isa::avx2);

  set_isa_cap(Isa::avx512);
  for (Isa isa : isas(kernels())) {
    CHECK(cpu_supports(isa));
    CHECK(isa != Isa::avx512vnni);  // the extensions rank above plain avx512
    CHECK(isa != Isa::avx512vbmi);
  }
  if (cpu_supports(Isa::avx512)) CHECK(kernels().gemm_t2.isa == Isa::avx512);
  else if (cpu_supports(Isa::avx2)) CHECK(kernels().gemm_t2.isa == Isa::avx2);

  // aarch64, the NEON chain: a cap at neon skips the dot-product (and i8mm) variants, neondot
  // skips i8mm, and every cap picks the strongest variant under it (neoni8mm: the default).
  if (cpu_supports(Isa::neon)) {
    const auto rank = [](Isa isa) {
      return isa == Isa::neon ? 1 : isa == Isa::neondot ? 2 : isa == Isa::neoni8mm ? 3 : 0;
    };
    const KernelInventory& inv = kernel_inventory();
    for (Isa cap : {Isa::neon, Isa::neondot, Isa::neoni8mm}) {
      if (!cpu_supports(cap)) continue;
      set_isa_cap(cap);
      const std::string cap_name = to_string(cap);
      CAPTURE(cap_name);
      for (Isa isa : isas(kernels())) {
        CHECK(cpu_supports(isa));
        CHECK(rank(isa) <= rank(cap));
      }
      const auto strongest = [&](const auto& variants) {
        std::string name;
        for (const auto& v : variants)
          if (cpu_supports(v.isa) && rank(v.isa) <= rank(cap)) name = v.name;
        return name;
      };
      const KernelTable& k = kernels();
      CHECK(std::string(k.gemm_t2.name) == strongest(inv.gemm_t2));
      CHECK(std::string(k.lut_build_t3.name) == strongest(inv.lut_build_t3));
      CHECK(std::string(k.gemm_t3.name) == strongest(inv.gemm_t3));
      CHECK(std::string(k.gemm_t3_madd.name) == strongest(inv.gemm_t3_madd));
      CHECK(std::string(k.lut_build_t5.name) == strongest(inv.lut_build_t5));
      CHECK(std::string(k.gemm_t5.name) == strongest(inv.gemm_t5));
      CHECK(k.gemm_t2.isa == cap);
      CHECK(k.gemm_t3.isa == Isa::neon);
      CHECK(k.gemm_t3_madd.isa == (cap == Isa::neon ? Isa::scalar : cap));
    }
  }

  set_isa_cap(saved);
  CHECK(isa_cap() == saved);
}

TEST_CASE("ISA names round-trip and unknown names are rejected") {
  for (Isa isa : kAllIsas) {
    Isa parsed = Isa::scalar;
    CHECK(parse_isa(to_string(isa), parsed));
    CHECK(parsed == isa);
  }
  Isa untouched = Isa::avx2;
  CHECK_FALSE(parse_isa("sse9", untouched));
  CHECK(untouched == Isa::avx2);
  CHECK(cpu_supports(Isa::scalar));
}

TEST_CASE("bq gemm variants equal the scalar bq reference bit for bit for bits 1..8, LM-head shapes, m up to 16 and any row split") {
  // Each variant against lutra_bq_f32_gemm__scalar bit for bit (the canonical float order);
  // every split must give the same bits, and a call must leave rows outside its range alone.
  // Groups 16 and 24 do not divide or are not divided by the 16 lanes (k = 72, 2424 ragged).
  std::mt19937 rng(11);
  const Variant<GemmFloatFn>& ref = kernel_inventory().gemm_bq.front();
  REQUIRE(ref.isa == Isa::scalar);
  size_t checked = 0;
  for (int bits = 1; bits <= 8; bits++)
    for (int group : {16, 24, 32, 64, 128})
      for (bool asym : {false, true})
        for (size_t k : {size_t(32), size_t(64), size_t(72), size_t(96), size_t(128), size_t(256), size_t(1024),
                         size_t(2424), size_t(2560)}) {
          if (k % size_t(group) != 0) continue;
          for (size_t n : {size_t(1), size_t(3), size_t(4), size_t(5), size_t(17), size_t(64)}) {
            TestWeights t = make_bq(rng, n, k, bits, group, asym);
            for (size_t m : {size_t(1), size_t(2), size_t(5), size_t(16)}) {
              INFO("bits=" << bits << " group=" << group << " asym=" << asym << " k=" << k << " n=" << n << " m=" << m);
              std::vector<float> x = random_floats(rng, m * k);
              std::vector<float> want(m * n);
              ref.fn(t.view, x.data(), want.data(), m, 0, n);
              for_each_variant(kernel_inventory().gemm_bq, [&](const Variant<GemmFloatFn>& v) {
                std::vector<float> first;
                for (const std::vector<size_t>& cut : splits(rng, n)) {
                  std::vector<float> y(m * n, std::numeric_limits<float>::quiet_NaN());
                  for (size_t p = 0; p + 1 < cut.size(); p++) v.fn(t.view, x.data(), y.data(), m, cut[p], cut[p + 1]);
                  for (size_t e = 0; e < m * n; e++) {
                    if (std::memcmp(&y[e], &want[e], 4) != 0) {
                      FAIL_CHECK("token " << e / n << " row " << e % n << ": " << y[e] << " vs scalar " << want[e]);
                      return;
                    }
                  }
                  checked += m * n;
                  if (first.empty()) first = y;
                  else if (std::memcmp(first.data(), y.data(), y.size() * 4) != 0) {
                    FAIL_CHECK("a row's result depends on the split");
                    return;
                  }
                }
                // One random range: rows outside it keep their sentinel.
                std::uniform_int_distribution<size_t> d(0, n);
                size_t a = d(rng), b = d(rng);
                if (a > b) std::swap(a, b);
                std::vector<float> y(m * n, -7.25f);
                v.fn(t.view, x.data(), y.data(), m, a, b);
                for (size_t i = 0; i < m; i++)
                  for (size_t r = 0; r < n; r++)
                    if ((r < a || r >= b) && y[i * n + r] != -7.25f) {
                      FAIL_CHECK("range [" << a << ", " << b << ") wrote row " << r << " of token " << i);
                      return;
                    }
              }, /*skip_scalar=*/true);
            }
          }
        }
  // A CPU with no SIMD bq variant (ARM until the NEON ones arrive) has nothing to compare.
  const bool any_simd = std::ranges::any_of(kernel_inventory().gemm_bq, [](const Variant<GemmFloatFn>& v) {
    return v.isa != Isa::scalar && cpu_supports(v.isa);
  });
  if (any_simd) CHECK(checked > 0);
}

TEST_CASE("ternary gemm variants stay exact for every token-tile remainder, token chunks, and int16 sums at their limit") {
  std::mt19937 rng(40);
  for_each_variant(kernel_inventory().gemm_t2, [&](const Variant<GemmTernaryFn>& v) {
    size_t compared = 0;
    // m = 1..9, 13, 17: full register tiles of 2, 4 or 8 tokens and each remainder after them
    // (n = 1, 5, 13: row tiles of 4 and row pairs with their remainders).
    for (size_t k : {size_t(255), size_t(256), size_t(1000)})
      for (size_t n : {size_t(1), size_t(5), size_t(8), size_t(13)}) {
        TestWeights t = make_t2(rng, n, k);
        for (size_t m : {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 17})
          check_ternary_gemm(v, t, random_i8(rng, m * k), m, rng, compared);
      }
    // Many tokens at long k: more activations than one L2-sized token chunk holds.
    {
      TestWeights t = make_t2(rng, 6, 6912);
      check_ternary_gemm(v, t, random_i8(rng, 41 * 6912), 41, rng, compared);
    }
    // Every product at its extreme over long k, 5 tokens (a 4-token tile and one more); code 3
    // is invalid but must read as +2 like the reference, without int16 overflow.
    for (int code : {2, 3})
      for (int8_t xv : {int8_t(-128), int8_t(127)}) {
        TestWeights t = make_t2(rng, 6, 6912, code);
        check_ternary_gemm(v, t, std::vector<int8_t>(5 * 6912, xv), 5, rng, compared);
      }
    MESSAGE(std::string(v.name) << ": " << compared << " int32 sums compared exactly");
  });
}
