// Table-lookup ternary kernels (t3, t5): every table build writes the same bytes (whole or in group
// ranges), and every t3 or t5 GEMM, on tables from every build, equals the t2 multiply-add reference
// bit for bit on the same ternary matrix. Both packings also round-trip through the file.
// Variants the CPU cannot run are skipped with a message.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "convert/convert.h"
#include "convert/pack.h"
#include "runtime/context.h"
#include "runtime/kernel_variants.h"
#include "runtime/kernels.h"
#include "runtime/model.h"
#include "runtime/model_file.h"
#include "tests/kernel_cases.h"
#include "tests/kernel_twins/kernel_twins.h"
#include "tests/test_data.h"

using namespace lutra;

namespace {

const size_t kNs[] = {1, 5, 31, 32, 33, 64, 100};
const size_t kKs[] = {1, 2, 3, 4, 5, 31, 32, 33, 96, 127, 128, 129, 2560};
const size_t kMs[] = {1, 2, 3, 7};

enum class WKind { random, minus_one, plus_one, sparse };

// A ternary matrix in the t2 layout: codes 0/1/2 (-1/0/+1).
std::vector<uint8_t> make_t2(std::mt19937& rng, size_t n, size_t k, WKind kind) {
  std::vector<uint8_t> t2(n * t2_row_bytes(k), 0);
  std::uniform_int_distribution<int> d(0, 2), sparse(0, 9);
  for (size_t r = 0; r < n; r++)
    for (size_t j = 0; j < k; j++) {
      int c = kind == WKind::minus_one ? 0
              : kind == WKind::plus_one ? 2
              : kind == WKind::sparse   ? (sparse(rng) == 0 ? 2 * (sparse(rng) & 1) : 1)
                                          : d(rng);
      t2[r * t2_row_bytes(k) + j / 4] |= uint8_t(c << (2 * (j % 4)));
    }
  return t2;
}

// A table-lookup ternary layout as the tests see it: its variants, its scalar table build and
// its packer from the t2 layout.
struct LutLayout {
  WeightFormat format;
  std::span<const Variant<LutBuildFn>> builds;
  std::span<const Variant<GemmLutFn>> gemms;
  LutBuildFn reference_build;
  void (*pack_from_t2)(const uint8_t* t2, size_t n, size_t k, uint8_t* out);
};

// Every table build variant writes the reference's bytes, whole and in two group ranges, and
// nothing past the tables.
void check_table_builds(const LutLayout& layout, std::span<const size_t> ks, uint32_t seed) {
  std::mt19937 rng(seed);
  const auto builds = runnable(layout.builds);
  for (size_t k : ks) {
    for (Acts a : kAllActs) {
      CAPTURE(k);
      const size_t groups = lut_groups(layout.format, k), bytes = lut_table_bytes(layout.format, k);
      std::vector<int8_t> x = make_acts(rng, k, a);
      std::vector<uint8_t> ref(bytes, 0x55);
      layout.reference_build(x.data(), k, 0, groups, ref.data());
      std::uniform_int_distribution<size_t> d(0, groups);
      for (const auto& v : builds) {
        const std::string build = v.name;
        CAPTURE(build);
        std::vector<uint8_t> whole(bytes + 64, 0x77);  // 64 guard bytes must stay untouched
        v.fn(x.data(), k, 0, groups, whole.data());
        CHECK(std::memcmp(whole.data(), ref.data(), bytes) == 0);
        CHECK(std::all_of(whole.begin() + long(bytes), whole.end(), [](uint8_t b) { return b == 0x77; }));
        for (size_t cut : {size_t(0), groups / 2, groups / 2 / 2 * 2 + 1 < groups ? groups / 2 / 2 * 2 + 1 : groups, d(rng), groups}) {
          std::vector<uint8_t> parts(bytes, 0x33);
          v.fn(x.data(), k, 0, cut, parts.data());
          v.fn(x.data(), k, cut, groups, parts.data());
          CAPTURE(cut);
          CHECK(std::memcmp(parts.data(), ref.data(), bytes) == 0);
        }
      }
    }
  }
}

// Every GEMM variant, on tables from every build variant, equals the t2 multiply-add
// reference on the same ternary matrix, for every row range of a split, and writes no row
// outside it.
void check_lut_gemms(const LutLayout& layout, std::span<const size_t> ns, std::span<const size_t> ks, uint32_t seed) {
  std::mt19937 rng(seed);
  const auto builds = runnable(layout.builds);
  const auto gemms = runnable(layout.gemms);
  constexpr int32_t kUntouched = 0x7eadbeef;
  size_t cases = 0;
  for (size_t n : ns)
    for (size_t k : ks)
      for (size_t m : kMs) {
        // Every shape gets random weights and activations; the extremes rotate through shapes
        // (all -1 or +1 weights against -128/127 activations test the int16 sums' headroom).
        const WKind wk[] = {WKind::random, WKind::minus_one, WKind::plus_one, WKind::sparse};
        const auto& ak = kAllActs;
        std::vector<std::pair<WKind, Acts>> kinds{{WKind::random, Acts::random}};
        kinds.push_back({wk[cases % 4], ak[(cases / 4) % 4]});
        kinds.push_back({wk[(cases + 1) % 4], ak[(cases + 2) % 4]});
        cases++;
        for (auto [wkind, akind] : kinds) {
          CAPTURE(n);
          CAPTURE(k);
          CAPTURE(m);
          CAPTURE(int(wkind));
          CAPTURE(int(akind));
          std::vector<uint8_t> t2 = make_t2(rng, n, k, wkind);
          std::vector<uint8_t> packed(weight_bytes(layout.format, n, k));
          layout.pack_from_t2(t2.data(), n, k, packed.data());
          const WeightView w2{.format = WeightFormat::t2, .n = n, .k = k, .data = t2.data(), .scale = 0.5f};
          const WeightView wl{.format = layout.format, .n = n, .k = k, .data = packed.data(), .scale = 0.5f};
          std::vector<int8_t> x = make_acts(rng, m * k, akind);
          std::vector<int32_t> want(m * n);
          lutra_t2_qs8_gemm__scalar(w2, x.data(), want.data(), m, 0, n);

          const size_t groups = lut_groups(layout.format, k);
          const size_t stride = lut_table_bytes(layout.format, k) + 96;  // not a multiple of 64
          for (const auto& b : builds) {
            std::vector<uint8_t> tables(m * stride, 0);
            for (size_t i = 0; i < m; i++) b.fn(x.data() + i * k, k, 0, groups, tables.data() + i * stride);
            for (const auto& g : gemms) {
              const std::string build = b.name, gemm = g.name;
              CAPTURE(build);
              CAPTURE(gemm);
              for (const auto& cut : splits_of_32(rng, n)) {
                for (size_t p = 0; p + 1 < cut.size(); p++) {
                  const size_t r0 = cut[p], r1 = cut[p + 1];
                  std::vector<int32_t> got(m * n, kUntouched);
                  g.fn(wl, tables.data(), stride, got.data(), m, r0, r1);
                  bool ok = true;
                  for (size_t i = 0; i < m; i++)
                    for (size_t r = 0; r < n; r++)
                      ok &= got[i * n + r] == (r >= r0 && r < r1 ? want[i * n + r] : kUntouched);
                  CAPTURE(r0);
                  CAPTURE(r1);
                  REQUIRE(ok);
                }
              }
            }
          }
        }
      }
}

// Matrices written as t2 and as `layout` by the converter (absmean from the same floats) read
// back from the model file through dequant_row as the same ternary weights, with the same scale.
void check_packing_reads_back(WeightFormat layout, std::initializer_list<std::pair<size_t, size_t>> shapes,
                              uint32_t seed) {
  const std::string name(to_string(layout));
  TempDir tmp;
  const std::string path = tmp.file(name + ".lutra");
  struct M {
    size_t n, k;
    std::vector<float> w;
  };
  std::vector<M> ms;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  for (auto [n, k] : shapes) {
    M m{n, k, std::vector<float>(n * k)};
    for (float& v : m.w) v = d(rng) * d(rng) * 3.0f;  // heavy tails: some clamping
    ms.push_back(std::move(m));
  }
  {
    auto w = ModelWriter::create(path);
    REQUIRE_MESSAGE(w.ok(), w.message());
    for (size_t i = 0; i < ms.size(); i++) {
      for (const std::string f : {std::string("t2"), name}) {
        auto spec = PackSpec::parse(f);
        REQUIRE(spec.ok());
        CHECK(spec->to_string() == f);
        const M& m = ms[i];
        Status s = write_matrix(**w, f + "." + std::to_string(i), m.n, m.k, *spec,
                                [&](size_t r, float* out) { std::memcpy(out, m.w.data() + r * m.k, m.k * 4); });
        REQUIRE_MESSAGE(s.ok(), s.message());
      }
    }
    REQUIRE((*w)->finish("{}").ok());
  }
  auto f = ModelFile::open(path);
  REQUIRE_MESSAGE(f.ok(), f.message());
  REQUIRE((*f)->verify().ok());
  for (size_t i = 0; i < ms.size(); i++) {
    const TensorInfo* a = (*f)->find("t2." + std::to_string(i));
    const TensorInfo* b = (*f)->find(name + "." + std::to_string(i));
    REQUIRE(a);
    REQUIRE(b);
    WeightView v2 = weight_view(**f, *a), vl = weight_view(**f, *b);
    CHECK(vl.format == layout);
    CHECK(vl.scale == v2.scale);
    CHECK(b->bytes == weight_bytes(layout, ms[i].n, ms[i].k));
    std::vector<float> r2(v2.k), rl(vl.k);
    for (size_t r = 0; r < v2.n; r++) {
      kernels().dequant_row.fn(v2, r, r2.data());
      kernels().dequant_row.fn(vl, r, rl.data());
      CAPTURE(i);
      CAPTURE(r);
      CHECK(std::memcmp(r2.data(), rl.data(), v2.k * 4) == 0);
    }
  }
}

LutLayout t3_layout() {
  const KernelInventory& inv = kernel_inventory();
  return {WeightFormat::t3, inv.lut_build_t3, inv.gemm_t3, lutra_t3_lut_build__scalar, pack_t3_from_t2};
}
LutLayout t5_layout() {
  const KernelInventory& inv = kernel_inventory();
  return {WeightFormat::t5, inv.lut_build_t5, inv.gemm_t5, lutra_t5_lut_build__scalar, pack_t5_from_t2};
}

}  // namespace

TEST_CASE("t3 tables hold the exact sums of each magnitude pattern, padded groups are zero") {
  std::mt19937 rng(11);
  for (size_t k : kKs) {
    CAPTURE(k);
    const size_t groups = lut_groups(WeightFormat::t3, k);
    REQUIRE(groups % 2 == 0);
    REQUIRE(groups * 3 >= k);
    REQUIRE(lut_table_bytes(WeightFormat::t3, k) == groups * 32);
    std::vector<int8_t> x = make_acts(rng, k, Acts::random);
    std::vector<uint8_t> tab(lut_table_bytes(WeightFormat::t3, k), 0xAA);
    lutra_t3_lut_build__scalar(x.data(), k, 0, groups, tab.data());
    for (size_t g = 0; g < groups; g++) {
      for (int i = 0; i < 16; i++) {
        // Pattern i's weights, written out independently: base-3 digits of i, minus 1.
        int w[3] = {i / 9 - 1, (i / 3) % 3 - 1, i % 3 - 1};
        int want = 0;
        for (int j = 0; j < 3 && i < 14; j++)
          if (3 * g + size_t(j) < k) want += w[j] * x[3 * g + size_t(j)];
        const size_t at = (g / 2) * 64 + (g % 2) * 16 + size_t(i);
        int got = int16_t(uint16_t(tab[at] | tab[at + 32] << 8));
        REQUIRE(got == want);
      }
    }
  }
  CHECK(lut_groups(WeightFormat::t2, 2560) == 0);
  CHECK(lut_table_bytes(WeightFormat::t2, 2560) == 0);
  CHECK(lut_table_bytes(WeightFormat::t3, 2560) == 854 * 32);
}

TEST_CASE("t3 table build variants write identical bytes, whole and built in two group ranges") {
  check_table_builds(t3_layout(), kKs, 12);
}

TEST_CASE("t3 lut gemm variants equal the t2 multiply-add reference bit for bit over ragged shapes and row splits") {
  check_lut_gemms(t3_layout(), kNs, kKs, 13);
}

// The multiply-add (prefill) form of t3: token counts that fill the 12-token (AVX-512), 4-token
// (sdot) and 8-token (smmla: 4 pairs) register tiles, leave every remainder of them (odd counts:
// a half pair), and (k = 2560, m = 220) cross the 96-token (NEON) activation chunk, (k = 6912,
// m = 620) the 606-token one of AVX-512 (4 MiB of activations in whole 12-token tiles).
TEST_CASE("t3 multiply-add gemm variants equal the t2 multiply-add reference bit for bit over ragged shapes, token tiles and row splits") {
  std::mt19937 rng(17);
  std::vector<Variant<GemmTernaryFn>> gemms = runnable(kernel_inventory().gemm_t3_madd);
  for (const auto& twin : runnable<GemmTernaryFn>(t3_madd_twins())) gemms.push_back(twin);
  constexpr int32_t kUntouched = 0x7eadbeef;
  std::vector<std::tuple<size_t, size_t, size_t>> shapes;  // n, k, m
  for (size_t n : kNs)
    for (size_t k : kKs)
      for (size_t m : {size_t(1), size_t(3), size_t(5), size_t(7), size_t(12), size_t(13), size_t(25)})
        if (k < 2560 || m <= 5) shapes.emplace_back(n, k, m);
  shapes.emplace_back(33, 2560, 220);
  shapes.emplace_back(9, 6912, 620);
  size_t cases = 0;
  for (auto [n, k, m] : shapes) {
    const WKind wk[] = {WKind::random, WKind::minus_one, WKind::plus_one, WKind::sparse};
    const auto& ak = kAllActs;
    std::vector<std::pair<WKind, Acts>> kinds{{WKind::random, Acts::random}};
    kinds.push_back({wk[cases % 4], ak[(cases / 4) % 4]});
    cases++;
    for (auto [wkind, akind] : kinds) {
      CAPTURE(n);
      CAPTURE(k);
      CAPTURE(m);
      CAPTURE(int(wkind));
      CAPTURE(int(akind));
      std::vector<uint8_t> t2 = make_t2(rng, n, k, wkind);
      std::vector<uint8_t> t3(weight_bytes(WeightFormat::t3, n, k));
      pack_t3_from_t2(t2.data(), n, k, t3.data());
      const WeightView w2{.format = WeightFormat::t2, .n = n, .k = k, .data = t2.data(), .scale = 0.5f};
      const WeightView w3{.format = WeightFormat::t3, .n = n, .k = k, .data = t3.data(), .scale = 0.5f};
      std::vector<int8_t> x = make_acts(rng, m * k, akind);
      std::vector<int32_t> want(m * n);
      lutra_t2_qs8_gemm__scalar(w2, x.data(), want.data(), m, 0, n);
      for (const auto& g : gemms) {
        const std::string gemm = g.name;
        CAPTURE(gemm);
        for (const auto& cut : splits_of_32(rng, n)) {
          for (size_t p = 0; p + 1 < cut.size(); p++) {
            const size_t r0 = cut[p], r1 = cut[p + 1];
            std::vector<int32_t> got(m * n, kUntouched);
            g.fn(w3, x.data(), got.data(), m, r0, r1);
            bool ok = true;
            for (size_t i = 0; i < m; i++)
              for (size_t r = 0; r < n; r++)
                ok &= got[i * n + r] == (r >= r0 && r < r1 ? want[i * n + r] : kUntouched);
            CAPTURE(r0);
            CAPTURE(r1);
            REQUIRE(ok);
          }
        }
      }
    }
  }
}

// The scaled form: y = float(sum) * (scale / xs[i]) (or y += that), every variant bit for bit
// against the plain multiply-add reference's sums converted so, for both modes, over ragged
// shapes, token tiles and row splits; rows outside the split keep their old values.
TEST_CASE("scaled t3 multiply-add gemm variants equal the reference sums scaled to floats bit for bit, written or added, over ragged shapes and row splits") {
  std::mt19937 rng(23);
  std::vector<Variant<GemmTernaryScaledFn>> gemms = runnable(kernel_inventory().gemm_t3_madd_scaled);
  for (const auto& twin : runnable<GemmTernaryScaledFn>(t3_madd_scaled_twins())) gemms.push_back(twin);
  std::vector<std::tuple<size_t, size_t, size_t>> shapes;  // n, k, m
  for (size_t n : {size_t(1), size_t(17), size_t(32), size_t(33), size_t(64), size_t(100)})
    for (size_t k : {size_t(1), size_t(5), size_t(31), size_t(64), size_t(127), size_t(256)})
      for (size_t m : {size_t(1), size_t(7), size_t(12), size_t(13), size_t(25)}) shapes.emplace_back(n, k, m);
  shapes.emplace_back(40, 2560, 30);
  for (auto [n, k, m] : shapes) {
    CAPTURE(n);
    CAPTURE(k);
    CAPTURE(m);
    std::vector<uint8_t> t2 = make_t2(rng, n, k, WKind::random);
    std::vector<uint8_t> t3(weight_bytes(WeightFormat::t3, n, k));
    pack_t3_from_t2(t2.data(), n, k, t3.data());
    const WeightView w3{.format = WeightFormat::t3, .n = n, .k = k, .data = t3.data(), .scale = 0.37f};
    std::vector<int8_t> x = make_acts(rng, m * k, Acts::random);
    std::uniform_real_distribution<float> scale_d(0.5f, 300.0f), y_d(-50.0f, 50.0f);
    std::vector<float> xs(m), y0(m * n);
    for (float& v : xs) v = scale_d(rng);
    for (float& v : y0) v = y_d(rng);
    std::vector<int32_t> sums(m * n);
    lutra_t3_qs8_gemm_madd__scalar(w3, x.data(), sums.data(), m, 0, n);
    for (bool accumulate : {false, true}) {
      CAPTURE(accumulate);
      std::vector<float> want = y0;
      for (size_t i = 0; i < m; i++) {
        const float s = w3.scale / xs[i];
        for (size_t r = 0; r < n; r++) {
          const float v = float(sums[i * n + r]) * s;
          want[i * n + r] = accumulate ? want[i * n + r] + v : v;
        }
      }
      for (const auto& g : gemms) {
        const std::string gemm = g.name;
        CAPTURE(gemm);
        for (const auto& cut : splits_of_32(rng, n)) {
          std::vector<float> got = y0;
          for (size_t p = 0; p + 1 < cut.size(); p++) g.fn(w3, x.data(), xs.data(), got.data(), m, cut[p], cut[p + 1], accumulate);
          REQUIRE(std::memcmp(got.data(), want.data(), got.size() * 4) == 0);
          // one piece alone: the other rows untouched
          if (cut.size() > 2) {
            std::vector<float> one = y0;
            g.fn(w3, x.data(), xs.data(), one.data(), m, cut[0], cut[1], accumulate);
            bool ok = true;
            for (size_t i = 0; i < m; i++)
              for (size_t r = 0; r < n; r++) {
                const float e = r < cut[1] ? want[i * n + r] : y0[i * n + r];
                ok &= std::memcmp(&one[i * n + r], &e, 4) == 0;
              }
            REQUIRE(ok);
          }
        }
      }
    }
  }
}

// End to end: batches of 40 tokens take the multiply-add path (from 8 tokens with VNNI or sdot,
// 32 with maddubs), batches of 4 the lookup path; t2 is the reference either way.
TEST_CASE("t3 prefill by multiply-add gives the t2 model's logits bit for bit for every token, under every ISA cap and thread count") {
  TempDir tmp;
  ConvertOptions t2_opts, t3_opts;
  t3_opts.weights = "t3";
  REQUIRE(make_synthetic("tiny", tmp.file("t2.lutra"), t2_opts).ok());
  REQUIRE(make_synthetic("tiny", tmp.file("t3.lutra"), t3_opts).ok());
  auto m2 = Model::load(tmp.file("t2.lutra"));
  auto m3 = Model::load(tmp.file("t3.lutra"));
  REQUIRE(m2.ok());
  REQUIRE(m3.ok());
  REQUIRE((*m3)->weights().layers[0].w_down.format == WeightFormat::t3);
  std::vector<int32_t> prompt;
  for (int i = 0; i < 6 && prompt.size() < 45; i++)
    for (int32_t t : (*m2)->tokenizer().encode("Once upon a time there was a dog who ran to the park", i == 0))
      prompt.push_back(t);
  prompt.resize(std::min<size_t>(prompt.size(), 45));
  REQUIRE(prompt.size() >= 41);
  const size_t vocab = size_t((*m2)->config().vocab_size);
  auto context = [](const Model& m, int threads, int batch) {
    ContextParams p;
    p.n_threads = threads;
    p.n_batch = batch;
    p.logits_all = true;
    auto c = Context::create(m, p);
    REQUIRE_MESSAGE(c.ok(), c.message());
    return std::move(c.value());
  };
  const Isa before = isa_cap();
  for (Isa cap : {Isa::scalar, Isa::avx512, Isa::avx512vnni, Isa::neon, Isa::neondot, Isa::neoni8mm}) {
    if (cap != Isa::scalar && !cpu_supports(cap)) continue;
    set_isa_cap(cap);
    for (int threads : {1, 2})
      for (int batch : {4, 40}) {
        const std::string isa = to_string(cap);
        CAPTURE(isa);
        CAPTURE(threads);
        CAPTURE(batch);
        auto c2 = context(**m2, threads, batch);
        auto c3 = context(**m3, threads, batch);
        for (size_t at = 0; at < prompt.size(); at += size_t(batch)) {
          auto chunk = std::span<const int32_t>(prompt).subspan(at, std::min(size_t(batch), prompt.size() - at));
          REQUIRE(c2->eval(chunk).ok());
          REQUIRE(c3->eval(chunk).ok());
          for (size_t i = 0; i < chunk.size(); ++i)
            CHECK(std::memcmp(c2->logits(i), c3->logits(i), vocab * sizeof(float)) == 0);
        }
      }
  }
  set_isa_cap(before);
}

TEST_CASE("the dispatcher picks the t3 multiply-add variant of the ISA cap") {
  const Isa before = isa_cap();
  set_isa_cap(Isa::scalar);
  CHECK(std::string(kernels().gemm_t3_madd.name) == "t3-qs8-gemm-madd-scalar");
  CHECK(std::string(kernels().gemm_t3_madd_scaled.name) == "t3-qs8-gemm-madd-scaled-scalar");
  if (cpu_supports(Isa::avx512)) {
    set_isa_cap(Isa::avx512);
    CHECK(std::string(kernels().gemm_t3_madd.name) == "t3-qs8-gemm-madd32x12-avx512");
    CHECK(std::string(kernels().gemm_t3_madd_scaled.name) == "t3-qs8-gemm-madd32x12-scaled-avx512");
  }
  if (cpu_supports(Isa::avx512vnni)) {
    set_isa_cap(Isa::avx512vnni);
    CHECK(std::string(kernels().gemm_t3_madd.name) == "t3-qs8-gemm-madd32x12-avx512vnni");
    CHECK(std::string(kernels().gemm_t3_madd_scaled.name) == "t3-qs8-gemm-madd32x12-scaled-avx512vnni");
  }
  if (cpu_supports(Isa::neon)) {  // no plain NEON multiply-add: prefill keeps table lookup
    set_isa_cap(Isa::neon);
    CHECK(std::string(kernels().gemm_t3_madd.name) == "t3-qs8-gemm-madd-scalar");
  }
  if (cpu_supports(Isa::neondot)) {
    set_isa_cap(Isa::neondot);
    CHECK(std::string(kernels().gemm_t3_madd.name) == "t3-qs8-gemm-madd4x16-neondot");
  }
  if (cpu_supports(Isa::neoni8mm)) {
    set_isa_cap(Isa::neoni8mm);
    CHECK(std::string(kernels().gemm_t3_madd.name) == "t3-qs8-gemm-madd8x8-neoni8mm");
  }
  set_isa_cap(before);
}

TEST_CASE("t3 packing reads back through dequant_row as the same ternary weights as t2") {
  check_packing_reads_back(WeightFormat::t3, {{1, 1}, {5, 4}, {33, 7}, {31, 130}, {70, 96}}, 14);
}

TEST_CASE("t3 is 1.67 bits per weight plus a 4-byte count per row, and parses as a weight format") {
  WeightFormat f;
  REQUIRE(parse_weight_format("t3", f));
  CHECK(f == WeightFormat::t3);
  CHECK(to_string(WeightFormat::t3) == "t3");
  // 2560 x 2560: 80 tiles of 128 + 427 * 40 bytes.
  CHECK(weight_bytes(WeightFormat::t3, 2560, 2560) == 80 * (128 + 427 * 40));
  CHECK(weight_bytes(WeightFormat::t3, 33, 3) == 2 * (128 + 40));
  CHECK(weight_bytes(WeightFormat::t3, 0, 3) == 0);
}

TEST_CASE("the dispatcher picks a t3 lut build and gemm under every ISA cap") {
  const Isa saved = isa_cap();
  for (Isa cap : kAllIsas) {
    set_isa_cap(cap);
    CHECK(bool(kernels().lut_build_t3.fn));
    CHECK(bool(kernels().gemm_t3.fn));
    if (cap == Isa::scalar) {
      CHECK(std::string(kernels().lut_build_t3.name) == "t3-lut-build-scalar");
      CHECK(std::string(kernels().gemm_t3.name) == "t3-qs8-gemm-scalar");
    }
    if ((cap == Isa::neon || cap == Isa::neondot || cap == Isa::neoni8mm) && cpu_supports(Isa::neon)) {
      CHECK(std::string(kernels().lut_build_t3.name) == "t3-lut-build-neon");
      CHECK(std::string(kernels().gemm_t3.name) == "t3-qs8-gemm-1x32-neon");
    }
  }
  set_isa_cap(saved);
}

// ---- t5: sign-folded groups of 5, 128-entry tables (AVX-512 VBMI) ----------------------------

namespace {

// Row counts around the 64-row tile and the two-tile step; k around groups of 5 and the
// kernels' 48-group int16 flush (240 columns).
const size_t kNs5[] = {1, 5, 63, 64, 65, 100, 128, 129, 200, 320};
const size_t kKs5[] = {1, 2, 4, 5, 6, 9, 10, 11, 96, 239, 240, 241, 481, 2560};

}  // namespace

TEST_CASE("t5 tables hold the exact sums of each magnitude pattern, padded groups and entries are zero") {
  std::mt19937 rng(21);
  for (size_t k : kKs5) {
    CAPTURE(k);
    const size_t groups = lut_groups(WeightFormat::t5, k);
    REQUIRE(groups == (k + 4) / 5);
    REQUIRE(lut_table_bytes(WeightFormat::t5, k) == groups * 256);
    for (Acts a : {Acts::random, Acts::min, Acts::extremes}) {
      std::vector<int8_t> x = make_acts(rng, k, a);
      std::vector<uint8_t> tab(lut_table_bytes(WeightFormat::t5, k), 0xAA);
      lutra_t5_lut_build__scalar(x.data(), k, 0, groups, tab.data());
      for (size_t g = 0; g < groups; g++) {
        for (int i = 0; i < 128; i++) {
          // Pattern i's weights, written out independently: base-3 digits of i, minus 1.
          const int w[5] = {i / 81 - 1, i / 27 % 3 - 1, i / 9 % 3 - 1, i / 3 % 3 - 1, i % 3 - 1};
          int want = 0;
          for (int j = 0; j < 5 && i < 122; j++)
            if (5 * g + size_t(j) < k) want += w[j] * x[5 * g + size_t(j)];
          const size_t at = 256 * g + size_t(i);
          const int got = int16_t(uint16_t(tab[at] | tab[at + 128] << 8));
          REQUIRE(got == want);
        }
      }
    }
  }
  CHECK(lut_table_bytes(WeightFormat::t5, 2560) == 512 * 256);
}

TEST_CASE("t5 table build variants write identical bytes, whole and built in two group ranges") {
  check_table_builds(t5_layout(), kKs5, 22);
}

TEST_CASE("t5 lut gemm variants equal the t2 multiply-add reference bit for bit over ragged shapes and row splits") {
  check_lut_gemms(t5_layout(), kNs5, kKs5, 23);
}

TEST_CASE("t5 packing reads back through dequant_row as the same ternary weights as t2") {
  check_packing_reads_back(WeightFormat::t5, {{1, 1}, {5, 4}, {33, 7}, {65, 130}, {129, 96}}, 24);
}

TEST_CASE("t5 is 1.6 bits per weight plus a 4-byte count per row, and parses as a weight format") {
  WeightFormat f;
  REQUIRE(parse_weight_format("t5", f));
  CHECK(f == WeightFormat::t5);
  CHECK(to_string(WeightFormat::t5) == "t5");
  // 2560 x 2560: 40 tiles of 256 + 512 * 64 bytes.
  CHECK(weight_bytes(WeightFormat::t5, 2560, 2560) == 40 * (256 + 512 * 64));
  CHECK(weight_bytes(WeightFormat::t5, 65, 5) == 2 * (256 + 64));
  CHECK(weight_bytes(WeightFormat::t5, 0, 5) == 0);
}

TEST_CASE("the dispatcher picks a t5 lut build and gemm under every ISA cap, VBMI only where the CPU has it") {
  const Isa saved = isa_cap();
  for (Isa cap : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::avx512vnni, Isa::avx512vbmi}) {
    set_isa_cap(cap);
    const std::string cap_name = to_string(cap), gemm = kernels().gemm_t5.name;
    CAPTURE(cap_name);
    CHECK(bool(kernels().lut_build_t5.fn));
    CHECK(bool(kernels().gemm_t5.fn));
    CHECK(cpu_supports(kernels().gemm_t5.isa));
    const std::string build = kernels().lut_build_t5.name;
    if (cap == Isa::scalar || cap == Isa::avx2) {
      CHECK(build == "t5-lut-build-scalar");
      CHECK(gemm == "t5-qs8-gemm-scalar");
    }
    if ((cap == Isa::avx512 || cap == Isa::avx512vnni) && cpu_supports(Isa::avx512)) {
      CHECK(build == "t5-lut-build-avx512");  // the non-VBMI fallbacks
      CHECK(gemm == "t5-qs8-gemm-1x256-avx512");
    }
    if (cap == Isa::avx512vbmi && cpu_supports(Isa::avx512vbmi)) CHECK(kernels().gemm_t5.isa == Isa::avx512vbmi);
  }
  for (Isa cap : {Isa::neon, Isa::neondot, Isa::neoni8mm}) {
    if (!cpu_supports(Isa::neon)) break;
    set_isa_cap(cap);
    CHECK(std::string(kernels().lut_build_t5.name) == "t5-lut-build-neon");
    CHECK(std::string(kernels().gemm_t5.name) == "t5-qs8-gemm-1x256-neon");
  }
  set_isa_cap(saved);
}
