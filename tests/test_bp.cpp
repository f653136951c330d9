// Bit-serial table-lookup kernels (WeightFormat::bp): the packing holds bq's codes, scales and
// zeros; every table build writes the same bytes whole or in group ranges; every exact GEMM
// equals the bq-qs8 scalar reference bit for bit on the same quantized matrix; every fast
// GEMM equals the fast reference bit for bit, and the fast mode's error is measured.
// Variants the CPU cannot run are skipped with a message.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "convert/convert.h"
#include "convert/pack.h"
#include "runtime/context.h"
#include "runtime/kernel_variants.h"
#include "runtime/kernels.h"
#include "runtime/model.h"
#include "tests/kernel_cases.h"
#include "tests/synthetic_model.h"
#include "tests/test_data.h"

using namespace lutra;

namespace {

// One float matrix quantized by the bq packer, and the same as bit planes.
struct Pair {
  std::vector<uint8_t> bq, bp;
  WeightView vq, vp;
};

// Rows of normal floats; every fifth row a positive constant (all codes at the maximum: the
// int16 limits of the sums) and every seventh a negative one (the minimum code).
Pair make_pair(std::mt19937& rng, size_t n, size_t k, int bits, int group, bool asym) {
  Pair p;
  const PackSpec spec{WeightFormat::bq, bits, group, asym};
  const size_t cb = bq_code_bytes_per_row(k, bits), gpr = k / size_t(group);
  p.bq.assign(weight_bytes(WeightFormat::bq, n, k, bits, group, asym), 0);
  p.vq = WeightView{.format = WeightFormat::bq, .n = n, .k = k, .data = p.bq.data(), .bits = bits,
                    .group = group, .asymmetric = asym};
  uint16_t* scales = const_cast<uint16_t*>(p.vq.bq_scales());
  uint16_t* zeros = const_cast<uint16_t*>(p.vq.bq_zeros());
  std::normal_distribution<float> dn(0.0f, 1.0f);
  std::vector<float> row(k);
  for (size_t r = 0; r < n; r++) {
    for (size_t j = 0; j < k; j++) row[j] = r % 5 == 4 ? 1.0f : r % 7 == 6 ? -1.0f : dn(rng);
    if (asym && r % 5 == 4)  // asymmetric constant groups take code 0: give them a spread top
      for (size_t j = 0; j < k; j += 2) row[j] = 2.0f;
    pack_row_bq(row.data(), k, spec, p.bq.data() + r * cb, scales + r * gpr, zeros ? zeros + r * gpr : nullptr);
  }
  p.bp.assign(weight_bytes(WeightFormat::bp, n, k, bits, group, asym), 0xEE);
  pack_bp_from_bq(p.vq, p.bp.data());
  p.vp = p.vq;
  p.vp.format = WeightFormat::bp;
  p.vp.data = p.bp.data();
  return p;
}

// Every token's tables, `stride` apart, built by `build` in one call per token.
std::vector<uint8_t> build_tables(BpLutBuildFn build, const std::vector<int8_t>& x, size_t m, size_t k,
                                  size_t group, size_t stride) {
  std::vector<uint8_t> t(m * stride, 0x5A);
  for (size_t i = 0; i < m; i++) build(x.data() + i * k, k, group, 0, k / group, t.data() + i * stride);
  return t;
}

constexpr float kUntouched = -12345.5f;

// Runs `gemm` over every split and checks each row against `want` bit for bit, and that rows
// outside the split stay untouched. Returns the number of mismatching calls.
size_t check_gemm(std::mt19937& rng, GemmBpFn gemm, const WeightView& w, const uint8_t* tables, size_t stride,
                  const std::vector<float>& xs, size_t m, const std::vector<float>& want) {
  size_t bad = 0;
  for (const std::vector<size_t>& cut : splits_of_32(rng, w.n)) {
    for (size_t c = 0; c + 1 < cut.size(); c++) {
      std::vector<float> y(m * w.n, kUntouched);
      gemm(w, tables, stride, xs.data(), y.data(), m, cut[c], cut[c + 1]);
      bool ok = true;
      for (size_t i = 0; i < m; i++)
        for (size_t r = 0; r < w.n; r++) {
          const float got = y[i * w.n + r];
          if (r >= cut[c] && r < cut[c + 1]) ok = ok && std::memcmp(&got, &want[i * w.n + r], sizeof got) == 0;
          else ok = ok && got == kUntouched;
        }
      if (!ok) bad++;
    }
  }
  return bad;
}

}  // namespace

TEST_CASE("bp packing holds the same codes, scales and zeros as bq, and dequantizes to the same rows") {
  std::mt19937 rng(31);
  const DequantRowFn dequant = kernel_inventory().dequant_row.front().fn;
  for (int bits = 1; bits <= 4; bits++)
    for (bool asym : {false, true}) {
      if (bits == 1 && !asym) continue;  // 1-bit weights are asymmetric
      for (int group : {16, 32, 128})
        for (size_t n : {1, 33, 64}) {
          const size_t k = size_t(group) * 3;
          Pair p = make_pair(rng, n, k, bits, group, asym);
          CAPTURE(bits);
          CAPTURE(group);
          CAPTURE(n);
          std::vector<float> a(k), b(k);
          for (size_t r = 0; r < n; r++) {
            dequant(p.vq, r, a.data());
            dequant(p.vp, r, b.data());
            REQUIRE(std::memcmp(a.data(), b.data(), k * 4) == 0);
            for (size_t j = 0; j < k; j++) {
              size_t bit = j * size_t(bits);
              uint32_t v = p.bq[r * bq_code_bytes_per_row(k, bits) + bit / 8] |
                           (bit / 8 + 1 < bq_code_bytes_per_row(k, bits) ? p.bq[r * bq_code_bytes_per_row(k, bits) + bit / 8 + 1] : 0) << 8;
              REQUIRE(bp_code(p.vp, r, j) == ((v >> (bit % 8)) & ((1u << bits) - 1)));
            }
          }
          // Padding rows of the last tile are zero codes and zero scales.
          for (size_t r = n; r % bp_tile_rows; r++)
            for (size_t j = 0; j < k; j++) REQUIRE(bp_code(p.vp, r, j) == 0);
        }
    }
}

TEST_CASE("bit-plane pack specs parse as p<bits>g<group>[a] and refuse shapes the kernels cannot take") {
  auto p = PackSpec::parse("p4g32");
  REQUIRE(p.ok());
  CHECK(p->format == WeightFormat::bp);
  CHECK(p->bits == 4);
  CHECK(p->group == 32);
  CHECK(!p->asymmetric);
  CHECK(p->to_string() == "p4g32");
  auto a = PackSpec::parse("p2g64a");
  REQUIRE(a.ok());
  CHECK(a->asymmetric);
  CHECK(a->to_string() == "p2g64a");
  CHECK(PackSpec::parse("p1g32a").ok());
  for (const char* bad : {"p1g32", "p5g32", "p4g24", "p4g512", "p4g", "p4g32x", "bp"}) {
    CAPTURE(bad);
    CHECK(!PackSpec::parse(bad).ok());
  }
  CHECK(weight_bytes(WeightFormat::bp, 33, 64, 4, 32, false) == 2 * bp_tile_bytes(64, 4, 32, false));
  CHECK(bp_tile_bytes(64, 4, 32, false) == 2 * (64 + 2 * 4 * 64));
  CHECK(weight_bytes(WeightFormat::bp, 32, 48, 4, 32, false) == 0);  // k not a multiple of the group
}

TEST_CASE("bp table builds hold the exact chunk sums and group sums, and every variant writes the same bytes in any group split") {
  std::mt19937 rng(32);
  const auto exact = runnable(kernel_inventory().lut_build_bp);
  const auto fast = runnable(kernel_inventory().lut_build_bp_fast);
  for (size_t group : {16, 32, 64, 128, 256})
    for (size_t k : {group, 3 * group, 2560 / group * group}) {
      for (int kind = 0; kind < 4; kind++) {
        CAPTURE(group);
        CAPTURE(k);
        CAPTURE(kind);
        const std::vector<int8_t> x = make_acts(rng, k, kAllActs[kind]);
        const size_t gpr = k / group;
        // The exact tables against the definition, written out independently.
        std::vector<uint8_t> ref(bp_table_bytes(k, int(group), false), 0x11);
        lutra_bp_lut_build__scalar(x.data(), k, group, 0, gpr, ref.data());
        for (size_t c = 0; c < k / 4; c++)
          for (int p = 0; p < 16; p++) {
            int want = 0;
            for (int e = 0; e < 4; e++) want += (p >> e & 1) * x[4 * c + size_t(e)];
            const size_t at = c / 4 * 128 + c % 4 * 16 + size_t(p);
            REQUIRE(int(int16_t(uint16_t(ref[at] | ref[at + 64] << 8))) == want);
          }
        for (size_t g = 0; g < gpr; g++) {
          int32_t xsum = 0, got;
          for (size_t j = g * group; j < (g + 1) * group; j++) xsum += x[j];
          std::memcpy(&got, ref.data() + k / 16 * 128 + 4 * g, 4);
          REQUIRE(got == xsum);
        }
        std::vector<uint8_t> fref(bp_table_bytes(k, int(group), true), 0x11);
        lutra_bp_lut_build_fast__scalar(x.data(), k, group, 0, gpr, fref.data());
        for (auto [variants, bytes, want] :
             {std::tuple{&exact, ref.size(), &ref}, std::tuple{&fast, fref.size(), &fref}}) {
          for (const auto& v : *variants) {
            const std::string name = v.name;
            CAPTURE(name);
            std::uniform_int_distribution<size_t> d(0, gpr);
            for (size_t cut : {size_t(0), gpr / 2, d(rng), gpr}) {
              std::vector<uint8_t> t(bytes + 64, 0x77);  // 64 guard bytes stay untouched
              v.fn(x.data(), k, group, 0, cut, t.data());
              v.fn(x.data(), k, group, cut, gpr, t.data());
              CHECK(std::memcmp(t.data(), want->data(), bytes) == 0);
              CHECK(std::all_of(t.begin() + long(bytes), t.end(), [](uint8_t b) { return b == 0x77; }));
            }
          }
        }
      }
    }
}

TEST_CASE("bp exact gemm variants are bit-identical to the bq int8 scalar reference for bits 1..4, groups 16..256, ragged shapes and row splits") {
  const auto gemms = runnable(kernel_inventory().gemm_bp);
  const GemmBqI8Fn bq_ref = kernel_inventory().gemm_bq_i8.front().fn;
  std::mt19937 rng(33);
  size_t calls = 0;
  for (int bits = 1; bits <= 4; bits++)
    for (bool asym : {false, true}) {
      if (bits == 1 && !asym) continue;
      for (int group : {16, 32, 64, 128, 256})
        for (size_t k : {size_t(group), size_t(3 * group), size_t(2560 / group * group)})
          for (size_t n : {1, 5, 31, 32, 33, 100}) {
            if (k > 1000 && n != 33) continue;  // the big k at one ragged n keeps the sweep quick
            Pair p = make_pair(rng, n, k, bits, group, asym);
            for (size_t m : {1, 2, 7}) {
              std::vector<int8_t> x = make_acts(rng, m * k, kAllActs[calls % 4]);
              std::vector<float> xs(m);
              for (float& s : xs) s = std::uniform_real_distribution<float>(0.5f, 400.0f)(rng);
              std::vector<float> want(m * n);
              bq_ref(p.vq, x.data(), xs.data(), want.data(), m, 0, n);
              const size_t stride = bp_table_bytes(k, group, false) + 64;
              const auto tables = build_tables(lutra_bp_lut_build__scalar, x, m, k, size_t(group), stride);
              for (const auto& v : gemms) {
                const size_t bad = check_gemm(rng, v.fn, p.vp, tables.data(), stride, xs, m, want);
                if (bad)
                  FAIL_CHECK(std::string(v.name) << ": bits " << bits << std::string(asym ? " asym" : " sym") << " group "
                                                 << group << " k " << k << " n " << n << " m " << m);
                calls++;
              }
            }
          }
    }
  MESSAGE("bit-exact checks: " << calls);
}

TEST_CASE("bp fast gemm variants are bit-identical to the fast scalar reference over ragged shapes and row splits") {
  const auto gemms = runnable(kernel_inventory().gemm_bp_fast);
  std::mt19937 rng(34);
  for (int bits = 1; bits <= 4; bits++)
    for (bool asym : {false, true}) {
      if (bits == 1 && !asym) continue;
      for (int group : {16, 32, 128, 256})
        for (size_t n : {1, 31, 33, 100}) {
          const size_t k = size_t(group) * (n % 3 + 1);
          Pair p = make_pair(rng, n, k, bits, group, asym);
          for (size_t m : {1, 3}) {
            std::vector<int8_t> x = make_acts(rng, m * k, kAllActs[n % 4]);
            std::vector<float> xs(m, 37.5f);
            const size_t stride = bp_table_bytes(k, group, true);
            const auto tables = build_tables(lutra_bp_lut_build_fast__scalar, x, m, k, size_t(group), stride);
            std::vector<float> want(m * n);
            lutra_bp_qs8_gemm_fast__scalar(p.vp, tables.data(), stride, xs.data(), want.data(), m, 0, n);
            for (const auto& v : gemms) {
              if (v.isa == Isa::scalar) continue;
              const size_t bad = check_gemm(rng, v.fn, p.vp, tables.data(), stride, xs, m, want);
              if (bad)
                FAIL_CHECK(std::string(v.name) << ": bits " << bits << std::string(asym ? " asym" : " sym") << " group "
                                               << group << " k " << k << " n " << n << " m " << m);
            }
          }
        }
    }
}

TEST_CASE("bp fast mode stays close to the exact mode on realistic weights and activations (measured error)") {
  // Normal weights through the bq quantizer, normal activations through the int8 quantizer;
  // error of the fast outputs against the exact ones, relative to the largest exact output.
  // Measured (n 256, k 2560, m 4; max |err| / max |y|, rms err / rms y): p4g32 0.012, 0.013;
  // p4g128 0.025, 0.017; p2g32 0.015, 0.017; p4g32a 0.011, 0.010. The int8 entries carry a
  // rounding error of up to ts/2 = max|T| / 254 of the group, weighted 2^i by plane, so the
  // error grows with the group (one scale for more chunks) and is independent of the codes.
  std::mt19937 rng(35);
  const QuantizeI8Fn quantize = kernel_inventory().quantize_i8.front().fn;
  for (auto [bits, group, asym] : {std::tuple{4, 32, false}, std::tuple{4, 128, false}, std::tuple{2, 32, false},
                                   std::tuple{4, 32, true}}) {
    const size_t n = 256, k = 2560, m = 4;
    Pair p = make_pair(rng, n, k, bits, group, asym);
    const auto [x, xq, xs] = normal_acts_i8(rng, m, k, quantize);
    const size_t se = bp_table_bytes(k, group, false), sf = bp_table_bytes(k, group, true);
    const auto te = build_tables(lutra_bp_lut_build__scalar, xq, m, k, size_t(group), se);
    const auto tf = build_tables(lutra_bp_lut_build_fast__scalar, xq, m, k, size_t(group), sf);
    std::vector<float> ye(m * n), yf(m * n);
    lutra_bp_qs8_gemm__scalar(p.vp, te.data(), se, xs.data(), ye.data(), m, 0, n);
    lutra_bp_qs8_gemm_fast__scalar(p.vp, tf.data(), sf, xs.data(), yf.data(), m, 0, n);
    double max_err = 0, max_y = 0, sq_err = 0, sq_y = 0;
    for (size_t i = 0; i < m * n; i++) {
      const double e = double(yf[i]) - double(ye[i]);
      max_err = std::max(max_err, std::fabs(e));
      max_y = std::max(max_y, std::fabs(double(ye[i])));
      sq_err += e * e;
      sq_y += double(ye[i]) * double(ye[i]);
    }
    const std::string spec = "p" + std::to_string(bits) + "g" + std::to_string(group) + (asym ? "a" : "");
    MESSAGE("fast vs exact, " << spec << ": max |err| " << max_err << " (max |y| " << max_y << ", relative "
                              << max_err / max_y << "), rms err / rms y " << std::sqrt(sq_err / sq_y));
    CHECK(max_err <= 0.05 * max_y);
  }
}

TEST_CASE("stories260K with a bit-plane head: exact mode gives the bq int8 logits bit for bit, fast mode stays close to f16 (measured)") {
  auto bin = test_data_file("stories260K.bin");
  auto tok = test_data_file("tok512.bin");
  if (!bin || !tok) return;
  TempDir tmp;
  // The tied embedding / head in each format; the layers as the converter's default.
  const std::vector<std::string> formats = {"f16", "b8g32", "b4g32", "p4g32"};
  std::vector<std::unique_ptr<Model>> models;
  for (const std::string& f : formats) {
    ConvertOptions o;
    o.tokenizer = tok->string();
    o.embedding = f;
    REQUIRE(convert_llama2c(bin->string(), tmp.file(f + ".lutra"), o).ok());
    auto m = Model::load(tmp.file(f + ".lutra"));
    REQUIRE_MESSAGE(m.ok(), m.message());
    models.push_back(std::move(m.value()));
  }
  REQUIRE(models[3]->weights().output.format == WeightFormat::bp);
  auto ctx = [](const Model& m, bool bq_int8, bool bp_fast) {
    ContextParams p;
    p.n_threads = 1;  // six contexts: one worker each keeps the test quick on a busy machine
    p.bq_int8 = bq_int8;
    p.bp_fast = bp_fast;
    auto c = Context::create(m, p);
    REQUIRE_MESSAGE(c.ok(), c.message());
    return std::move(c.value());
  };
  // Contexts: f16 (reference), b8g32 float, b4g32 float, b4g32 int8, p4g32 exact, p4g32 fast.
  std::vector<std::unique_ptr<Context>> cs;
  cs.push_back(ctx(*models[0], false, false));
  cs.push_back(ctx(*models[1], false, false));
  cs.push_back(ctx(*models[2], false, false));
  cs.push_back(ctx(*models[2], true, false));
  cs.push_back(ctx(*models[3], false, false));
  cs.push_back(ctx(*models[3], false, true));
  const char* names[] = {"f16", "b8g32", "b4g32", "b4g32 int8", "p4g32 exact", "p4g32 fast"};
  const size_t vocab = size_t(models[0]->config().vocab_size);
  // Teacher-forced along the f16 head's greedy path, 200 tokens. Measured (max |logit
  // difference| against f16, argmax agreement of 200): b8g32 0.15, 199; b4g32 3.11, 177;
  // b4g32 int8 = p4g32 exact 3.09, 176; p4g32 fast 3.01, 175. The 4-bit quantization of this
  // tiny model's head dominates; the int8 tables add little.
  std::vector<float> max_diff(cs.size(), 0.0f);
  std::vector<int> agree(cs.size(), 0);
  int32_t token = 1;
  bool exact_identical = true;
  for (int step = 0; step < 200; ++step) {
    for (auto& c : cs) REQUIRE(c->eval(std::span<const int32_t>(&token, 1)).ok());
    const float* ref = cs[0]->logits();
    const int32_t next = int32_t(std::max_element(ref, ref + vocab) - ref);
    for (size_t c = 0; c < cs.size(); ++c) {
      const float* l = cs[c]->logits();
      for (size_t v = 0; v < vocab; ++v) max_diff[c] = std::max(max_diff[c], std::fabs(l[v] - ref[v]));
      agree[c] += int32_t(std::max_element(l, l + vocab) - l) == next;
    }
    exact_identical = exact_identical && std::memcmp(cs[3]->logits(), cs[4]->logits(), vocab * 4) == 0;
    token = next;
  }
  for (size_t c = 1; c < cs.size(); ++c)
    MESSAGE(std::string(names[c]) << ": max |logit - f16| " << max_diff[c] << ", argmax agrees " << agree[c] << "/200");
  CHECK(exact_identical);
  CHECK(agree[5] >= 165);
  CHECK(max_diff[5] < 5.0f);
}

TEST_CASE("bit-plane linear layers and head give the bq int8 logits bit for bit, batched and token by token, on 2 threads") {
  // Every matrix of a synthetic model as p4g32a (head p4g32) against the same as b4g32a / b4g32
  // through the bq int8 kernels: the exact bp path must not differ by a bit, in any batch.
  TempDir tmp;
  const auto mq = tiny_model_as(tmp, "b4g32a", "b4g32");
  const auto mp = tiny_model_as(tmp, "p4g32a", "p4g32");
  REQUIRE(mp->weights().layers[0].w_down.format == WeightFormat::bp);
  const std::vector<int32_t> prompt = mq->tokenizer().encode("the dog ran to the park and back", true);
  const size_t vocab = size_t(mq->config().vocab_size);
  for (int batch : {1, 5}) {
    CAPTURE(batch);
    ContextParams p;
    p.n_threads = 2;
    p.n_batch = batch;
    p.logits_all = true;
    p.bq_int8 = true;
    auto cq = Context::create(*mq, p);
    p.bq_int8 = false;
    auto cp = Context::create(*mp, p);
    REQUIRE(cq.ok());
    REQUIRE(cp.ok());
    for (size_t at = 0; at < prompt.size(); at += size_t(batch)) {
      auto chunk = std::span<const int32_t>(prompt).subspan(at, std::min(size_t(batch), prompt.size() - at));
      REQUIRE((*cq)->eval(chunk).ok());
      REQUIRE((*cp)->eval(chunk).ok());
      for (size_t i = 0; i < chunk.size(); ++i)
        CHECK(std::memcmp((*cq)->logits(i), (*cp)->logits(i), vocab * sizeof(float)) == 0);
    }
  }
}
