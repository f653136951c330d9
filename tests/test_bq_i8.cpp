// bq weights x int8 activations (GemmBqI8Fn): every variant is bit-identical to the scalar
// reference, and the path approximates the float product within what int8 activations allow.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "runtime/half.h"
#include "runtime/kernels.h"
#include "tests/kernel_cases.h"

using namespace lutra;

namespace {

struct BqI8Weights {
  std::vector<uint8_t> bytes;  // one byte of padding first, so the sections start misaligned
  std::vector<int> codes;      // n * k
  std::vector<double> s, z;    // n * groups, as stored (f16 rounded)
  WeightView view;
};

BqI8Weights make_weights(std::mt19937& rng, size_t n, size_t k, int bits, int group, bool asym) {
  BqI8Weights t;
  const size_t row_bytes = bq_code_bytes_per_row(k, bits), groups = k / size_t(group);
  t.bytes.assign(1 + weight_bytes(WeightFormat::bq, n, k, bits, group, asym), 0);
  uint8_t* base = t.bytes.data() + 1;
  std::uniform_int_distribution<int> dq(0, (1 << bits) - 1);
  t.codes.resize(n * k);
  for (size_t r = 0; r < n; r++) {
    for (size_t j = 0; j < k; j++) {
      // Mostly random, with runs of the extreme codes (int16 limits of the SIMD sums).
      int c = t.codes[r * k + j] = (r % 5 == 4) ? (1 << bits) - 1 : dq(rng);
      for (int b = 0; b < bits; b++) {  // bit by bit: independent of the kernels' readers
        size_t bit = j * size_t(bits) + size_t(b);
        if (c >> b & 1) base[r * row_bytes + bit / 8] |= uint8_t(1u << (bit % 8));
      }
    }
  }
  std::uniform_real_distribution<float> ds(0.001f, 0.1f), dz(0.0f, float((1 << bits) - 1));
  auto put = [&](size_t section, size_t i, float v) {
    uint16_t h = f32_to_f16(v);
    std::memcpy(base + n * row_bytes + (section * n * groups + i) * 2, &h, 2);
    return double(f16_to_f32(h));
  };
  t.s.resize(n * groups);
  t.z.assign(n * groups, std::ldexp(1.0, bits - 1));
  for (size_t i = 0; i < n * groups; i++) {
    t.s[i] = put(0, i, ds(rng));
    if (asym) t.z[i] = put(1, i, dz(rng));
  }
  t.view = WeightView{.format = WeightFormat::bq, .n = n, .k = k, .data = base, .bits = bits,
                      .group = group, .asymmetric = asym};
  return t;
}

// A few row splits of [0, n): whole, halves at a random cut, and single rows at the ends.
std::vector<std::vector<size_t>> row_splits(std::mt19937& rng, size_t n) {
  std::vector<std::vector<size_t>> out{{0, n}};
  if (n > 1) {
    size_t cut = std::uniform_int_distribution<size_t>(1, n - 1)(rng);
    out.push_back({0, cut, n});
    out.push_back({0, 1, n - 1, n});
  }
  if (n > 5) out.push_back({0, 3, 5, n});
  return out;
}

constexpr float kUntouched = -12345.5f;

}  // namespace

TEST_CASE("bq int8 gemm variants are bit-identical to the scalar reference for bits 1..8, groups 16..128 (also not multiples of 16 or 32), any row split") {
  const auto& variants = kernel_inventory().gemm_bq_i8;
  REQUIRE(!variants.empty());
  REQUIRE(variants.front().isa == Isa::scalar);
  const GemmBqI8Fn ref = variants.front().fn;
  std::mt19937 rng(20261123);
  size_t checked = 0;
  for (int bits = 1; bits <= 8; bits++)
    for (bool asym : {false, true})
      // Groups 16, 24 and 48 take the SIMD variants' other paths (not whole 32-code blocks,
      // not whole 16-byte vectors).
      for (int group : {16, 24, 32, 48, 64, 128})
        for (size_t k : {32, 48, 64, 96, 128, 144, 256, 2560}) {
          if (k % size_t(group)) continue;
          for (size_t n : {1, 3, 4, 5, 17, 64}) {
            // The big k only at a few n: the sweep stays quick with the scalar reference.
            if (k == 2560 && n > 5 && n != 17) continue;
            BqI8Weights t = make_weights(rng, n, k, bits, group, asym);
            for (size_t m : {1, 2, 5}) {
              std::vector<int8_t> xq(m * k);
              std::uniform_int_distribution<int> dx(-128, 127);
              for (size_t i = 0; i < m * k; i++)
                xq[i] = int8_t(i % 7 == 3 ? (i % 2 ? 127 : -128) : dx(rng));
              std::vector<float> xs(m);
              for (size_t i = 0; i < m; i++) xs[i] = std::uniform_real_distribution<float>(0.5f, 400.0f)(rng);
              std::vector<float> want(m * n);
              ref(t.view, xq.data(), xs.data(), want.data(), m, 0, n);
              for (const Variant<GemmBqI8Fn>& v : variants) {
                if (v.isa == Isa::scalar || !cpu_supports(v.isa)) continue;
                for (const std::vector<size_t>& cut : row_splits(rng, n)) {
                  for (size_t c = 0; c + 1 < cut.size(); c++) {
                    std::vector<float> y(m * n, kUntouched);
                    v.fn(t.view, xq.data(), xs.data(), y.data(), m, cut[c], cut[c + 1]);
                    bool ok = true;
                    for (size_t i = 0; i < m; i++)
                      for (size_t r = 0; r < n; r++) {
                        const float got = y[i * n + r];
                        if (r >= cut[c] && r < cut[c + 1]) {
                          ok = ok && std::memcmp(&got, &want[i * n + r], sizeof got) == 0;
                        } else {
                          ok = ok && got == kUntouched;
                        }
                      }
                    if (!ok) {
                      FAIL_CHECK(std::string(v.name) << ": bits " << bits << std::string(asym ? " asym" : " sym")
                                                     << " group " << group << " k " << k << " n " << n
                                                     << " m " << m << " rows [" << cut[c] << ", "
                                                     << cut[c + 1] << ")");
                    }
                    checked++;
                  }
                }
              }
            }
          }
        }
  MESSAGE("bit-exact calls checked: " << checked);
}

TEST_CASE("bq int8 gemm approximates the double-precision float product within the int8 activation error") {
  // x is quantized per token (xq = round(x * xs), |xq / xs - x| <= 1 / (2 xs) = max|x| / 254),
  // so |y - sum_j w_j x_j| <= sum_j |w_j| max|x| / 254, plus the float rounding of the combine:
  // per group at most 3 roundings on s (|acc| + |z||xsum|), then gpr + 1 more for the sum and the
  // division, bounded as (gpr + 5) u sum_g |s| (sum|q xq| + |z| |xsum|) / xs. Checked at 1.01x.
  const auto& variants = kernel_inventory().gemm_bq_i8;
  const QuantizeI8Fn quantize = kernel_inventory().quantize_i8.front().fn;
  std::mt19937 rng(7);
  for (int bits : {2, 4, 8})
    for (bool asym : {false, true})
      for (int group : {32, 128}) {
        const size_t n = 9, k = 512, m = 3, groups = k / size_t(group);
        BqI8Weights t = make_weights(rng, n, k, bits, group, asym);
        const auto [x, xq, xs] = normal_acts_i8(rng, m, k, quantize);
        for (const Variant<GemmBqI8Fn>& v : variants) {
          if (!cpu_supports(v.isa)) continue;
          INFO("variant " << std::string(v.name) << " bits " << bits << " group " << group << std::string(asym ? " asym" : " sym"));
          std::vector<float> y(m * n);
          v.fn(t.view, xq.data(), xs.data(), y.data(), m, 0, n);
          for (size_t i = 0; i < m; i++) {
            double amax = 0;
            for (size_t j = 0; j < k; j++) amax = std::max(amax, std::fabs(double(x[i * k + j])));
            for (size_t r = 0; r < n; r++) {
              double exact = 0, wabs = 0, comb = 0;
              for (size_t g = 0; g < groups; g++) {
                const double s = t.s[r * groups + g], z = t.z[r * groups + g];
                double qx = 0, xsum = 0;
                for (size_t j = g * size_t(group); j < (g + 1) * size_t(group); j++) {
                  const double w = s * (t.codes[r * k + j] - z);
                  exact += w * double(x[i * k + j]);
                  wabs += std::fabs(w);
                  qx += std::fabs(double(t.codes[r * k + j]) * xq[i * k + j]);
                  xsum += xq[i * k + j];
                }
                comb += s * (qx + std::fabs(z * xsum));
              }
              const double u = std::ldexp(1.0, -24);
              const double bound = 1.01 * (wabs * amax / 254.0 + double(groups + 5) * u * comb / xs[i]) + 1e-30;
              const double err = std::fabs(double(y[i * n + r]) - exact);
              CHECK_MESSAGE(err <= bound, "row " << r << " token " << i << ": |" << y[i * n + r] << " - "
                                                 << exact << "| = " << err << " > " << bound);
            }
          }
        }
      }
}

TEST_CASE("under each ARM cap the dispatcher picks the int8 quantize, bq int8 and bp kernels of the strongest ISA allowed") {
  if (!cpu_supports(Isa::neon)) {
    MESSAGE("skipped: no NEON on this CPU");
    return;
  }
  const Isa saved = isa_cap();
  set_isa_cap(Isa::scalar);
  CHECK(kernels().gemm_bq_i8.isa == Isa::scalar);
  CHECK(kernels().quantize_i8.isa == Isa::scalar);
  CHECK(kernels().gemm_bp.isa == Isa::scalar);
  for (Isa cap : {Isa::neon, Isa::neondot, Isa::neoni8mm}) {
    if (!cpu_supports(cap)) continue;
    set_isa_cap(cap);
    const KernelTable& t = kernels();
    CAPTURE(to_string(cap));
    CHECK(t.gemm_bq_i8.isa == cap);  // one bq int8 variant per ARM ISA
    CHECK(t.quantize_i8.isa == Isa::neon);
    for (Isa isa : {t.lut_build_bp.isa, t.lut_build_bp_fast.isa, t.gemm_bp.isa, t.gemm_bp_fast.isa})
      CHECK(isa == Isa::neon);
  }
  set_isa_cap(saved);
}
