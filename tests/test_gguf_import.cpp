// GGUF tensors and checkpoints: every supported tensor encoding decodes to the values it was
// built from (ternary ones exactly, to lutra's t2 codes), and real GGUF files written by other
// projects' tools convert and run.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "convert/bpe_import.h"
#include "convert/convert.h"
#include "convert/gguf.h"
#include "convert/gguf_decode.h"
#include "convert/gguf_import.h"
#include "runtime/context.h"
#include "runtime/half.h"
#include "runtime/model.h"
#include "runtime/model_file.h"
#include "runtime/tokenizer.h"
#include "runtime/weights.h"
#include "tests/gguf_builder.h"
#include "tests/golden.h"
#include "tests/llama3_lists.h"
#include "tests/run_process.h"
#include "tests/test_data.h"

using namespace lutra;

namespace {

void put_f16(std::vector<uint8_t>& out, size_t at, float v) {
  uint16_t h = f32_to_f16(v);
  std::memcpy(out.data() + at, &h, 2);
}

// Encoders written from the block definitions in convert/gguf_decode.h. `w` holds ternary
// values -1/0/+1, row-major, rows of k (a multiple of the block).
std::vector<uint8_t> encode_tq2_0(const std::vector<int>& w, float d) {
  std::vector<uint8_t> out(w.size() / 256 * 66, 0);
  for (size_t b = 0; b < w.size() / 256; ++b) {
    uint8_t* blk = out.data() + 66 * b;
    for (size_t i = 0; i < 256; ++i) {
      size_t h = i / 128, l = (i % 128) / 32, m = i % 32;
      blk[32 * h + m] |= uint8_t((w[256 * b + i] + 1) << (2 * l));
    }
    put_f16(out, 66 * b + 64, d);
  }
  return out;
}

// Base-3 fixed point: trits t0..t4 (t0 most significant) as ceil(value * 256 / 243).
uint8_t pack_trits(const int* t, int count) {
  unsigned q = 0;
  for (int n = 0; n < 5; ++n) q = q * 3 + unsigned(n < count ? t[n] : 0);
  return uint8_t((q * 256 + 242) / 243);
}

std::vector<uint8_t> encode_tq1_0(const std::vector<int>& w, float d) {
  std::vector<uint8_t> out(w.size() / 256 * 54, 0);
  for (size_t b = 0; b < w.size() / 256; ++b) {
    const int* x = w.data() + 256 * b;
    uint8_t* blk = out.data() + 54 * b;
    int t[5];
    for (int m = 0; m < 32; ++m) {
      for (int n = 0; n < 5; ++n) t[n] = x[32 * n + m] + 1;
      blk[m] = pack_trits(t, 5);
    }
    for (int m = 0; m < 16; ++m) {
      for (int n = 0; n < 5; ++n) t[n] = x[160 + 16 * n + m] + 1;
      blk[32 + m] = pack_trits(t, 5);
    }
    for (int m = 0; m < 4; ++m) {
      for (int n = 0; n < 4; ++n) t[n] = x[240 + 4 * n + m] + 1;
      blk[48 + m] = pack_trits(t, 4);
    }
    put_f16(out, 54 * b + 52, d);
  }
  return out;
}

std::vector<uint8_t> encode_i2_s(const std::vector<int>& w, float scale) {
  std::vector<uint8_t> out(w.size() / 4 + 32, 0);
  for (size_t e = 0; e < w.size(); ++e) {
    size_t j = e % 128;
    out[e / 128 * 32 + j % 32] |= uint8_t((w[e] + 1) << (6 - 2 * (j / 32)));
  }
  std::memcpy(out.data() + w.size() / 4, &scale, 4);
  return out;
}

std::vector<uint8_t> encode_f32(const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * 4);
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

std::vector<int> random_ternary(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int> w(count);
  for (int& x : w) x = int(rng() % 3) - 1;
  return w;
}

// The t2 packing of ternary values (runtime/weights.h).
std::vector<uint8_t> t2_of(const std::vector<int>& w, size_t n, size_t k) {
  std::vector<uint8_t> out(n * t2_row_bytes(k), 0);
  for (size_t r = 0; r < n; ++r)
    for (size_t j = 0; j < k; ++j) out[r * t2_row_bytes(k) + j / 4] |= uint8_t((w[r * k + j] + 1) << (2 * (j % 4)));
  return out;
}

std::unique_ptr<GgufFile> parse(const std::vector<uint8_t>& bytes) {
  auto g = GgufFile::parse(bytes, "fixture");
  REQUIRE_MESSAGE(g.ok(), g.message());
  return std::move(g.value());
}

std::vector<float> rows_of(const GgufFile& f, const std::string& name) {
  const GgufTensorInfo* t = f.find_tensor(name);
  REQUIRE(t);
  auto rows = GgufRows::open(f, *t);
  REQUIRE_MESSAGE(rows.ok(), rows.message());
  std::vector<float> out(rows->rows() * rows->row_length());
  for (size_t r = 0; r < rows->rows(); ++r) rows->row(r, out.data() + r * rows->row_length());
  return out;
}

}  // namespace

TEST_CASE("TQ1_0 base-3 bytes decode every 5-trit pattern") {
  // All 243 patterns of 5 trits (and all 81 of the 4-trit tail) through one block each way.
  for (int p = 0; p < 243; ++p) {
    int digit[5];  // digit[0] most significant
    for (int n = 4, v = p; n >= 0; --n, v /= 3) digit[n] = v % 3;
    std::vector<int> w(256);
    for (int n = 0; n < 5; ++n) {
      for (int m = 0; m < 32; ++m) w[32 * n + m] = digit[n] - 1;
      for (int m = 0; m < 16; ++m) w[160 + 16 * n + m] = digit[n] - 1;
    }
    for (int n = 0; n < 4; ++n)
      for (int m = 0; m < 4; ++m) w[240 + 4 * n + m] = digit[n + 1] - 1;  // p % 81 covers all 81
    GgufBuilder b;
    b.tensor("w", {256}, uint32_t(GgmlType::tq1_0), encode_tq1_0(w, 1.0f));
    auto bytes = b.bytes();
    auto f = parse(bytes);
    auto m = decode_ternary(*f, *f->find_tensor("w"));
    REQUIRE_MESSAGE(m.ok(), m.message());
    REQUIRE_MESSAGE(m->t2 == t2_of(w, 1, 256), "pattern " << p);
  }
}

TEST_CASE("TQ1_0, TQ2_0 and I2_S fixtures decode to the same ternary values and scale") {
  const size_t n = 3, k = 512;
  const auto w = random_ternary(n * k, 7);
  const float scale = 0.375f;  // exact in f16
  GgufBuilder b;
  b.tensor("tq1", {k, n}, uint32_t(GgmlType::tq1_0), encode_tq1_0(w, scale));
  b.tensor("tq2", {k, n}, uint32_t(GgmlType::tq2_0), encode_tq2_0(w, scale));
  b.tensor("i2", {k, n}, uint32_t(GgmlType::i2_s), encode_i2_s(w, scale));
  auto bytes = b.bytes();
  auto f = parse(bytes);
  for (const char* name : {"tq1", "tq2", "i2"}) {
    INFO(name);
    const GgufTensorInfo* t = f->find_tensor(name);
    REQUIRE(t);
    auto m = decode_ternary(*f, *t);
    REQUIRE_MESSAGE(m.ok(), m.message());
    CHECK(m->n == n);
    CHECK(m->k == k);
    CHECK(m->scale == scale);
    CHECK(m->t2 == t2_of(w, n, k));
    // The float view agrees value for value.
    auto rows = rows_of(*f, name);
    for (size_t i = 0; i < n * k; ++i) REQUIRE(rows[i] == scale * float(w[i]));
  }
  CHECK(f->find_tensor("i2")->bytes == n * k / 4 + 32);
}

TEST_CASE("TQ blocks with different scales are refused as one ternary tensor; all-zero blocks are not counted") {
  auto w = random_ternary(512, 3);
  auto bytes_differ = encode_tq2_0(w, 0.5f);
  put_f16(bytes_differ, 66 + 64, 0.25f);  // second block's scale
  std::fill(w.begin() + 256, w.end(), 0);
  auto bytes_zero = encode_tq2_0(w, 0.5f);
  put_f16(bytes_zero, 66 + 64, 0.0f);  // an all-zero block with its own (zero) scale
  GgufBuilder b;
  b.tensor("differ", {512}, uint32_t(GgmlType::tq2_0), bytes_differ);
  b.tensor("zero", {512}, uint32_t(GgmlType::tq2_0), bytes_zero);
  auto bytes = b.bytes();
  auto f = parse(bytes);
  auto bad = decode_ternary(*f, *f->find_tensor("differ"));
  REQUIRE(!bad.ok());
  CHECK(bad.message().find("different scales") != std::string::npos);
  auto good = decode_ternary(*f, *f->find_tensor("zero"));
  REQUIRE_MESSAGE(good.ok(), good.message());
  CHECK(good->scale == 0.5f);
  CHECK(good->t2 == t2_of(w, 1, 512));
}

TEST_CASE("F16, BF16, Q8_0 and Q4_0 tensors decode to the floats their blocks define") {
  std::mt19937 rng(11);
  const size_t n = 2, k = 64;
  // F16: known encodings (checked with numpy.float16) and random ones.
  const std::vector<std::pair<uint16_t, float>> known = {
      {0x3C00, 1.0f}, {0xC000, -2.0f}, {0x7BFF, 65504.0f}, {0x0001, 5.9604644775390625e-08f},
      {0x3555, 0.333251953125f}, {0x8400, -6.103515625e-05f}, {0x0000, 0.0f}, {0x5640, 100.0f}};
  std::vector<uint8_t> f16(known.size() * 2);
  for (size_t i = 0; i < known.size(); ++i) std::memcpy(f16.data() + 2 * i, &known[i].first, 2);
  // BF16: the top halves of random floats.
  std::vector<uint8_t> bf16(n * k * 2);
  std::vector<float> bf16_expected(n * k);
  for (size_t i = 0; i < n * k; ++i) {
    float v = std::normal_distribution<float>(0, 3)(rng);
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    uint16_t top = uint16_t(bits >> 16);
    std::memcpy(bf16.data() + 2 * i, &top, 2);
    uint32_t back = uint32_t(top) << 16;
    std::memcpy(&bf16_expected[i], &back, 4);
  }
  // Q8_0 and Q4_0: random codes and block scales.
  std::vector<uint8_t> q8(n * k / 32 * 34), q4(n * k / 32 * 18);
  std::vector<float> q8_expected(n * k), q4_expected(n * k);
  for (size_t b = 0; b < n * k / 32; ++b) {
    const float d = f16_to_f32(f32_to_f16(std::uniform_real_distribution<float>(0.01f, 0.1f)(rng)));
    put_f16(q8, 34 * b, d);
    put_f16(q4, 18 * b, d);
    for (size_t i = 0; i < 32; ++i) {
      int8_t q = int8_t(int(rng() % 255) - 127);
      q8[34 * b + 2 + i] = uint8_t(q);
      q8_expected[32 * b + i] = d * float(q);
    }
    for (size_t i = 0; i < 16; ++i) {
      uint8_t lo = uint8_t(rng() % 16), hi = uint8_t(rng() % 16);
      q4[18 * b + 2 + i] = uint8_t(lo | hi << 4);
      q4_expected[32 * b + i] = d * float(int(lo) - 8);
      q4_expected[32 * b + 16 + i] = d * float(int(hi) - 8);
    }
  }
  GgufBuilder b;
  b.tensor("f16", {known.size()}, uint32_t(GgmlType::f16), f16);
  b.tensor("bf16", {k, n}, uint32_t(GgmlType::bf16), bf16);
  b.tensor("q8", {k, n}, uint32_t(GgmlType::q8_0), q8);
  b.tensor("q4", {k, n}, uint32_t(GgmlType::q4_0), q4);
  auto bytes = b.bytes();
  auto f = parse(bytes);
  auto got = rows_of(*f, "f16");
  for (size_t i = 0; i < known.size(); ++i) CHECK(got[i] == known[i].second);
  CHECK(rows_of(*f, "bf16") == bf16_expected);
  CHECK(rows_of(*f, "q8") == q8_expected);
  CHECK(rows_of(*f, "q4") == q4_expected);
}

TEST_CASE("a tensor type lutra cannot decode is refused naming the type and the tensor") {
  GgufBuilder b;
  b.tensor("blk.0.attn_q.weight", {256}, uint32_t(GgmlType::q4_k), std::vector<uint8_t>(144, 0));
  b.tensor("mystery", {16}, 77, {});
  auto bytes = b.bytes();
  auto f = parse(bytes);
  auto r = GgufRows::open(*f, *f->find_tensor("blk.0.attn_q.weight"));
  REQUIRE(!r.ok());
  CHECK(r.message().find("'blk.0.attn_q.weight'") != std::string::npos);
  CHECK(r.message().find("Q4_K (12)") != std::string::npos);
  auto u = GgufRows::open(*f, *f->find_tensor("mystery"));
  REQUIRE(!u.ok());
  CHECK(u.message().find("type 77 (77)") != std::string::npos);
  CHECK(!decode_ternary(*f, *f->find_tensor("mystery")).ok());
}

TEST_CASE("chat templates are recognized by their markers") {
  CHECK(chat_template_from_jinja("{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>' }}") == "llama3");
  CHECK(chat_template_from_jinja("{{ bos_token + '[INST] ' + content + ' [/INST]' }}") == "llama2");
  CHECK(chat_template_from_jinja("{{ role | capitalize + ': ' + content + '<|eot_id|>' }}{{ 'Assistant: ' }}") ==
        "bitnet");
  CHECK(chat_template_from_jinja("{{ 'Human: ' + c + '\\n\\nBITNETAssistant: ' + eos_token }}") == "bitnet");
  CHECK(chat_template_from_jinja("{{ '<|im_start|>' }}") == "plain");
}

TEST_CASE("ggml-vocab-llama-spm.gguf's vocabulary passes the llama-spm golden vectors") {
  auto gguf = test_data_file("ggml-vocab-llama-spm.gguf");
  auto inp = test_data_file("ggml-vocab-llama-spm.gguf.inp");
  auto out = test_data_file("ggml-vocab-llama-spm.gguf.out");
  if (!gguf || !inp || !out) return;
  auto f = GgufFile::open(gguf->string());
  REQUIRE_MESSAGE(f.ok(), f.message());
  auto vocab = read_gguf_spm_vocab(**f);
  REQUIRE_MESSAGE(vocab.ok(), vocab.message());
  auto tok = Tokenizer::from_spm_proto(make_spm_model_proto(vocab->pieces, vocab->options));
  REQUIRE_MESSAGE(tok.ok(), tok.message());
  CHECK(tok->vocab_size() == 32000);
  auto cases = read_golden(*inp, *out);
  CHECK(cases.size() == 46);
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& [text, expected] = cases[i];
    INFO("golden #" << i << ": \"" << text << "\"");
    CHECK(tok->encode(text, false) == expected);
    CHECK(tok->decode(expected) == text);
  }
}

namespace {

// A plain float forward pass of a GGUF llama over the file's own (dequantized) tensors, as
// llama.cpp's graph defines it: interleaved RoPE, SiLU-gated FFN. Logits of every position.
std::vector<std::vector<float>> reference_llama_logits(const GgufFile& f, const std::vector<int32_t>& tokens) {
  const int dim = int(*f.get_u32("llama.embedding_length")), hid = int(*f.get_u32("llama.feed_forward_length")),
            L = int(*f.get_u32("llama.block_count")), H = int(*f.get_u32("llama.attention.head_count")),
            KV = int(*f.get_u32("llama.attention.head_count_kv")), hd = dim / H;
  const float eps = *f.get_f32("llama.attention.layer_norm_rms_epsilon");
  const float theta = f.has("llama.rope.freq_base") ? *f.get_f32("llama.rope.freq_base") : 10000.0f;
  auto W = [&](const std::string& n) { return rows_of(f, n + ".weight"); };
  // y = M x for a GGUF matrix with rows of `k`.
  auto matvec = [](const std::vector<float>& m, const std::vector<float>& x) {
    const size_t k = x.size(), n = m.size() / k;
    std::vector<float> y(n, 0.0f);
    for (size_t r = 0; r < n; ++r) {
      double acc = 0;
      for (size_t j = 0; j < k; ++j) acc += double(m[r * k + j]) * x[j];
      y[r] = float(acc);
    }
    return y;
  };
  auto rmsnorm = [&](const std::vector<float>& x, const std::vector<float>& w) {
    double ss = 0;
    for (float v : x) ss += double(v) * v;
    const float inv = float(1.0 / std::sqrt(ss / double(x.size()) + eps));
    std::vector<float> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * w[i];
    return y;
  };
  auto rope = [&](std::vector<float>& v, int pos) {
    for (size_t h = 0; h < v.size() / size_t(hd); ++h)
      for (int i = 0; i < hd / 2; ++i) {
        const double a = pos * std::pow(double(theta), -2.0 * i / hd);
        float& x0 = v[h * hd + 2 * i];
        float& x1 = v[h * hd + 2 * i + 1];
        const float r0 = float(x0 * std::cos(a) - x1 * std::sin(a)), r1 = float(x0 * std::sin(a) + x1 * std::cos(a));
        x0 = r0;
        x1 = r1;
      }
  };
  const auto embd = W("token_embd");
  const auto out_w = f.find_tensor("output.weight") ? W("output") : embd;
  std::vector<std::vector<std::vector<float>>> kc(L), vc(L);
  std::vector<std::vector<float>> logits;
  for (size_t pos = 0; pos < tokens.size(); ++pos) {
    std::vector<float> x(embd.begin() + tokens[pos] * dim, embd.begin() + (tokens[pos] + 1) * dim);
    for (int l = 0; l < L; ++l) {
      const std::string b = "blk." + std::to_string(l) + ".";
      auto h = rmsnorm(x, W(b + "attn_norm"));
      auto q = matvec(W(b + "attn_q"), h), k = matvec(W(b + "attn_k"), h), v = matvec(W(b + "attn_v"), h);
      rope(q, int(pos));
      rope(k, int(pos));
      kc[l].push_back(k);
      vc[l].push_back(v);
      std::vector<float> att(size_t(dim), 0.0f);
      for (int head = 0; head < H; ++head) {
        const int kvh = head / (H / KV);
        std::vector<double> s(pos + 1);
        double mx = -1e30;
        for (size_t t = 0; t <= pos; ++t) {
          double d = 0;
          for (int i = 0; i < hd; ++i) d += double(q[head * hd + i]) * kc[l][t][kvh * hd + i];
          s[t] = d / std::sqrt(double(hd));
          mx = std::max(mx, s[t]);
        }
        double sum = 0;
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (size_t t = 0; t <= pos; ++t)
          for (int i = 0; i < hd; ++i) att[head * hd + i] += float(s[t] / sum * vc[l][t][kvh * hd + i]);
      }
      auto o = matvec(W(b + "attn_output"), att);
      for (int i = 0; i < dim; ++i) x[i] += o[i];
      h = rmsnorm(x, W(b + "ffn_norm"));
      auto g = matvec(W(b + "ffn_gate"), h), u = matvec(W(b + "ffn_up"), h);
      for (int i = 0; i < hid; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
      auto d = matvec(W(b + "ffn_down"), g);
      for (int i = 0; i < dim; ++i) x[i] += d[i];
    }
    logits.push_back(matvec(out_w, rmsnorm(x, W("output_norm"))));
  }
  return logits;
}

// Logits of every position, one token per step.
std::vector<std::vector<float>> lutra_logits(const Model& m, const std::vector<int32_t>& tokens) {
  ContextParams p;
  p.n_threads = 1;
  p.n_ctx = 64;
  auto ctx = Context::create(m, p);
  REQUIRE_MESSAGE(ctx.ok(), ctx.message());
  std::vector<std::vector<float>> out;
  for (int32_t t : tokens) {
    REQUIRE((*ctx)->eval(std::span<const int32_t>(&t, 1)).ok());
    const float* l = (*ctx)->logits();
    out.emplace_back(l, l + m.config().vocab_size);
  }
  return out;
}

std::unique_ptr<Model> convert_and_load(const std::string& in, const TempDir& tmp, const std::string& name,
                                        const std::string& weights = "", const std::string& embedding = "") {
  ConvertOptions o;
  o.weights = weights;
  o.embedding = embedding;
  const std::string out = tmp.file(name);
  Status s = convert_model(in, out, o);
  REQUIRE_MESSAGE(s.ok(), s.message());
  auto m = Model::load(out);
  REQUIRE_MESSAGE(m.ok(), m.message());
  return std::move(m.value());
}

}  // namespace

TEST_CASE("llama-2-tiny-random.gguf (another project's tooling) converts, runs, and in f32 matches a float reference") {
  auto gguf = test_data_file("llama-2-tiny-random.gguf");
  if (!gguf) return;
  TempDir tmp;
  const std::vector<int32_t> tokens = {1, 450, 4996, 17354, 1701, 29916};
  // Default recipe: runs with finite logits.
  auto dflt = convert_and_load(gguf->string(), tmp, "default.lutra");
  const auto got_default = lutra_logits(*dflt, tokens);
  size_t non_finite = 0;
  for (const auto& row : got_default)
    for (float v : row) non_finite += !std::isfinite(v);
  CHECK(non_finite == 0);
  // f32 weights: the same numbers as the GGUF's own tensors through llama.cpp's graph.
  auto f32 = convert_and_load(gguf->string(), tmp, "f32.lutra", "f32", "f32");
  auto file = GgufFile::open(gguf->string());
  REQUIRE(file.ok());
  const auto ref = reference_llama_logits(**file, tokens);
  const auto got = lutra_logits(*f32, tokens);
  REQUIRE(got.size() == ref.size());
  auto worst_difference = [&](const std::vector<std::vector<float>>& a) {
    float worst = 0, largest = 0;
    for (size_t p = 0; p < ref.size(); ++p)
      for (size_t i = 0; i < ref[p].size(); ++i) {
        worst = std::max(worst, std::fabs(a[p][i] - ref[p][i]));
        largest = std::max(largest, std::fabs(ref[p][i]));
      }
    MESSAGE("largest logit difference against the float reference: " << worst << " (largest logit " << largest
                                                                     << ")");
    return worst;
  };
  CHECK(worst_difference(got) < 1e-4f);
  worst_difference(got_default);  // measured, not bounded: this model is too small for 4-bit groups
}

namespace {

// Copies a GGUF file's tokenizer.* metadata into a fixture; returns the number of tokens.
size_t copy_tokenizer_keys(const GgufFile& from, GgufBuilder& b) {
  size_t tokens = 0;
  for (const GgufKeyValue& kv : from.metadata()) {
    if (kv.key.rfind("tokenizer.", 0) != 0) continue;
    const GgufValue& v = kv.value;
    CAPTURE(kv.key);
    switch (v.type) {
      case GgufType::string: b.kv_string(kv.key, std::string(v.str)); break;
      case GgufType::u32: b.kv_u32(kv.key, uint32_t(v.u)); break;
      case GgufType::i32: b.kv_i32(kv.key, int32_t(v.i)); break;
      case GgufType::boolean: b.kv_bool(kv.key, v.i != 0); break;
      case GgufType::array:
        if (v.elem_type == GgufType::string) {
          b.kv_strings(kv.key, std::vector<std::string>(v.strings.begin(), v.strings.end()));
        } else {
          REQUIRE(v.items.empty());
          std::vector<uint8_t> bytes;
          GgufBuilder::put(bytes, uint32_t(v.elem_type));
          GgufBuilder::put(bytes, v.count);
          bytes.insert(bytes.end(), v.raw.begin(), v.raw.end());
          b.kv(kv.key, 9, bytes);
        }
        if (kv.key == "tokenizer.ggml.tokens") tokens = v.count;
        break;
      default: FAIL("metadata type " << gguf_type_name(v.type) << " is not copied");
    }
  }
  REQUIRE(tokens > 0);
  return tokens;
}

// A one-layer ternary model as a GGUF file: dim = hidden = 256 (the TQ block), 4 heads of 64
// (2 KV heads), a 264-piece SPM vocabulary or `vocabulary`'s tokenizer keys. Every linear layer holds random ternary weights
// times its own scale, stored as `type` (TQ1_0, TQ2_0, I2_S, or F32/F16 values); with
// `scale_tensors` the weights are stored unscaled and each scale goes into a separate
// "<name>.scale" tensor, as llama.cpp's bitnet graph allows. The same seed gives the same model.
struct TinyTernary {
  static constexpr size_t dim = 256, hidden = 256, heads = 4, kv_heads = 2, head_dim = 64;
  std::map<std::string, std::vector<int>> weights;  // linear layers, row-major [out][in]
  std::map<std::string, float> scales;
};

std::vector<uint8_t> tiny_ternary_gguf(const std::string& arch, GgmlType type, TinyTernary& model,
                                       bool scale_tensors = false,
                                       const std::function<void(GgufBuilder&)>& more_metadata = {},
                                       const GgufFile* vocabulary = nullptr) {
  std::mt19937 rng(5);
  GgufBuilder b;
  if (more_metadata) more_metadata(b);
  b.kv_string("general.architecture", arch);
  b.kv_u32(arch + ".context_length", 64);
  b.kv_u32(arch + ".embedding_length", TinyTernary::dim);
  b.kv_u32(arch + ".feed_forward_length", TinyTernary::hidden);
  b.kv_u32(arch + ".block_count", 1);
  b.kv_u32(arch + ".attention.head_count", TinyTernary::heads);
  b.kv_u32(arch + ".attention.head_count_kv", TinyTernary::kv_heads);
  b.kv_f32(arch + ".attention.layer_norm_rms_epsilon", 1e-5f);
  b.kv_f32(arch + ".rope.freq_base", 500000.0f);
  size_t V = 0;
  if (vocabulary) {
    V = copy_tokenizer_keys(*vocabulary, b);
  } else {
    std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
    std::vector<int32_t> types = {2, 3, 3};
    for (int i = 0; i < 256; ++i) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "<0x%02X>", i);
      tokens.push_back(hex);
      types.push_back(6);
    }
    for (const char* w : {"\xE2\x96\x81" "a", "\xE2\x96\x81" "b", "c", "\xE2\x96\x81" "the", "d"}) {
      tokens.push_back(w);
      types.push_back(1);
    }
    std::vector<float> scores(tokens.size());
    for (size_t i = 0; i < scores.size(); ++i) scores[i] = -float(i);
    b.kv_string("tokenizer.ggml.model", "llama");
    b.kv_strings("tokenizer.ggml.tokens", tokens);
    b.kv_array<float>("tokenizer.ggml.scores", 6, scores);
    b.kv_array<int32_t>("tokenizer.ggml.token_type", 5, types);
    b.kv_u32("tokenizer.ggml.bos_token_id", 1);
    b.kv_u32("tokenizer.ggml.eos_token_id", 2);
    V = tokens.size();
  }
  std::vector<uint8_t> embd(V * TinyTernary::dim * 2);
  for (size_t i = 0; i < V * TinyTernary::dim; ++i) put_f16(embd, 2 * i, std::normal_distribution<float>(0, 1)(rng));
  b.tensor("token_embd.weight", {TinyTernary::dim, V}, uint32_t(GgmlType::f16), embd);
  auto vec = [&](const std::string& name, size_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = std::uniform_real_distribution<float>(0.5f, 1.5f)(rng);
    b.tensor(name + ".weight", {n}, uint32_t(GgmlType::f32), encode_f32(v));
  };
  auto mat = [&](const std::string& name, size_t out, size_t in) {
    auto w = random_ternary(out * in, uint32_t(rng()));
    const float s = float(1 + rng() % 8) / 16.0f;  // exact in f16
    model.weights[name] = w;
    model.scales[name] = s;
    const float stored = scale_tensors ? 1.0f : s;
    std::vector<uint8_t> bytes;
    if (type == GgmlType::tq1_0) bytes = encode_tq1_0(w, stored);
    else if (type == GgmlType::tq2_0) bytes = encode_tq2_0(w, stored);
    else if (type == GgmlType::i2_s) bytes = encode_i2_s(w, stored);
    else {
      std::vector<float> v(w.size());
      for (size_t i = 0; i < w.size(); ++i) v[i] = stored * float(w[i]);
      if (type == GgmlType::f32) {
        bytes = encode_f32(v);
      } else {
        bytes.resize(v.size() * 2);
        for (size_t i = 0; i < v.size(); ++i) put_f16(bytes, 2 * i, v[i]);
      }
    }
    b.tensor(name + ".weight", {in, out}, uint32_t(type), bytes);
    if (scale_tensors) b.tensor(name + ".scale", {1}, uint32_t(GgmlType::f32), encode_f32({s}));
  };
  const size_t q = TinyTernary::heads * TinyTernary::head_dim, kv = TinyTernary::kv_heads * TinyTernary::head_dim;
  vec("blk.0.attn_norm", TinyTernary::dim);
  mat("blk.0.attn_q", q, TinyTernary::dim);
  mat("blk.0.attn_k", kv, TinyTernary::dim);
  mat("blk.0.attn_v", kv, TinyTernary::dim);
  vec("blk.0.attn_sub_norm", q);
  mat("blk.0.attn_output", TinyTernary::dim, q);
  vec("blk.0.ffn_norm", TinyTernary::dim);
  mat("blk.0.ffn_gate", TinyTernary::hidden, TinyTernary::dim);
  mat("blk.0.ffn_up", TinyTernary::hidden, TinyTernary::dim);
  vec("blk.0.ffn_sub_norm", TinyTernary::hidden);
  mat("blk.0.ffn_down", TinyTernary::dim, TinyTernary::hidden);
  vec("output_norm", TinyTernary::dim);
  return b.bytes();
}

}  // namespace

TEST_CASE("bitnet-b1.58 GGUFs with I2_S, TQ1_0, TQ2_0 or float ternary weights convert to the same exact t2 codes") {
  TempDir tmp;
  std::vector<std::vector<float>> first_logits;
  const std::vector<int32_t> tokens = {1, 259, 260, 261};
  for (GgmlType type : {GgmlType::i2_s, GgmlType::tq1_0, GgmlType::tq2_0, GgmlType::f32, GgmlType::f16}) {
    CAPTURE(ggml_type_name(uint32_t(type)));
    TinyTernary model;
    const std::string in = tmp.file("tiny-" + ggml_type_name(uint32_t(type)) + ".gguf");
    write_bytes(in, tiny_ternary_gguf("bitnet-b1.58", type, model));
    auto t2 = convert_and_load(in, tmp, "t2.lutra", "t2");
    const ModelConfig& c = t2->config();
    CHECK(c.arch == "bitnet-b1.58");
    CHECK(c.activation == Activation::relu2);
    CHECK(c.sub_norms);
    CHECK(c.tied_embeddings);
    CHECK(c.rope_style == RopeStyle::half_split);
    CHECK(c.rope_theta == 500000.0f);
    for (const auto& [name, w] : model.weights) {
      CAPTURE(name);
      const TensorInfo* t = t2->file().find(name);
      REQUIRE(t);
      REQUIRE(t->format == "t2");
      CHECK(t->scale == model.scales[name]);
      const auto data = t2->file().data(*t);
      CHECK(std::vector<uint8_t>(data.begin(), data.end()) == t2_of(w, t->shape[0], t->shape[1]));
    }
    // The default recipe (t3 table lookup) computes the same logits from every source.
    auto t3 = convert_and_load(in, tmp, "t3.lutra");
    CHECK(t3->weights().layers[0].wq.format == WeightFormat::t3);
    auto logits = lutra_logits(*t3, tokens);
    if (first_logits.empty()) first_logits = logits;
    else CHECK(logits == first_logits);
  }
}

TEST_CASE("llama.cpp bitnet GGUFs with separate .scale tensors fold the scales into the ternary weights") {
  TempDir tmp;
  TinyTernary model;
  const std::string in = tmp.file("bitnet-scales.gguf");
  // With linear RoPE scaling by 1 (no scaling), as llama.cpp's bitnet converter writes it.
  write_bytes(in, tiny_ternary_gguf("bitnet", GgmlType::tq2_0, model, true, [](GgufBuilder& b) {
                b.kv_string("bitnet.rope.scaling.type", "linear");
                b.kv_f32("bitnet.rope.scaling.factor", 1.0f);
              }));
  auto m = convert_and_load(in, tmp, "bitnet.lutra", "t2");
  CHECK(m->config().arch == "bitnet");
  CHECK(m->config().activation == Activation::silu);
  CHECK(m->config().rope_style == RopeStyle::half_split);
  for (const auto& [name, w] : model.weights) {
    const TensorInfo* t = m->file().find(name);
    REQUIRE(t);
    CHECK(t->scale == model.scales[name]);
    const auto data = m->file().data(*t);
    CHECK(std::vector<uint8_t>(data.begin(), data.end()) == t2_of(w, t->shape[0], t->shape[1]));
  }
  auto logits = lutra_logits(*m, {1, 259});
  size_t non_finite = 0;
  for (const auto& row : logits)
    for (float v : row) non_finite += !std::isfinite(v);
  CHECK(non_finite == 0);
}

TEST_CASE("a GGUF whose tensors do not match its metadata, or has extra tensors, is refused naming the tensor") {
  TempDir tmp;
  TinyTernary model;
  auto good = tiny_ternary_gguf("bitnet-b1.58", GgmlType::i2_s, model);
  // Claim 4 KV heads instead of 2: k and v no longer have the shape the metadata implies.
  auto bytes = good;
  const std::string key = "bitnet-b1.58.attention.head_count_kv";
  auto it = std::search(bytes.begin(), bytes.end(), key.begin(), key.end());
  REQUIRE(it != bytes.end());
  uint32_t four = 4;
  std::memcpy(&*(it + long(key.size()) + 4), &four, 4);
  write_bytes(tmp.file("bad-shape.gguf"), bytes);
  Status s = convert_model(tmp.file("bad-shape.gguf"), tmp.file("bad.lutra"), ConvertOptions{});
  REQUIRE(!s.ok());
  CHECK(s.message().find("'blk.0.attn_k.weight' has shape [256, 128], expected [256, 256]") != std::string::npos);
  CHECK(!std::filesystem::exists(tmp.file("bad.lutra")));
  // llama-arch GGUF of the same tensors: the sub-norms are not part of the llama graph.
  auto llama = tiny_ternary_gguf("llama", GgmlType::i2_s, model);
  write_bytes(tmp.file("llama.gguf"), llama);
  s = convert_model(tmp.file("llama.gguf"), tmp.file("bad.lutra"), ConvertOptions{});
  REQUIRE(!s.ok());
  CHECK(s.message().find("attn_sub_norm.weight' is not part of lutra's llama graph") != std::string::npos);
  // RoPE scaling that changes the angles is refused.
  auto yarn = [](GgufBuilder& b) { b.kv_string("bitnet-b1.58.rope.scaling.type", "yarn"); };
  write_bytes(tmp.file("yarn.gguf"), tiny_ternary_gguf("bitnet-b1.58", GgmlType::i2_s, model, false, yarn));
  s = convert_model(tmp.file("yarn.gguf"), tmp.file("bad.lutra"), ConvertOptions{});
  REQUIRE(!s.ok());
  CHECK(s.message().find("RoPE scaling 'yarn'") != std::string::npos);
}

TEST_CASE("bitnet.cpp's earlier architecture name bitnet-25 imports as bitnet-b1.58") {
  TempDir tmp;
  TinyTernary model;
  write_bytes(tmp.file("b25.gguf"), tiny_ternary_gguf("bitnet-25", GgmlType::i2_s, model));
  auto m = convert_and_load(tmp.file("b25.gguf"), tmp, "b25.lutra");
  CHECK(m->config().arch == "bitnet-b1.58");
  CHECK(m->config().activation == Activation::relu2);
  CHECK(m->provenance_json().find("\"gguf_architecture\":\"bitnet-25\"") != std::string::npos);
  CHECK(m->provenance_json().find("\"weights\":\"t3 (default)\"") != std::string::npos);
}

TEST_CASE("a bitnet-b1.58 GGUF with GPT-2's BPE vocabulary converts, and lutra tokenize gives the GPT-2 golden ids") {
  auto vocab_gguf = test_data_file("ggml-vocab-gpt-2.gguf");
  auto inp = test_data_file("ggml-vocab-gpt-2.gguf.inp");
  auto out = test_data_file("ggml-vocab-gpt-2.gguf.out");
  if (!vocab_gguf || !inp || !out) return;
  auto vocab = GgufFile::open(vocab_gguf->string());
  REQUIRE_MESSAGE(vocab.ok(), vocab.message());
  TempDir tmp;
  TinyTernary model;
  write_bytes(tmp.file("gpt2.gguf"), tiny_ternary_gguf("bitnet-b1.58", GgmlType::i2_s, model, false, {}, vocab->get()));
  auto m = convert_and_load(tmp.file("gpt2.gguf"), tmp, "gpt2.lutra");
  CHECK(m->config().vocab_size == 50257);
  CHECK(m->tokenizer().type() == Tokenizer::Type::bpe);
  CHECK(m->file().find(kTokenizerBpe) != nullptr);
  CHECK(m->config().chat_template == "plain");  // no template, no <|eot_id|>
  CHECK(m->config().stop_ids == std::vector<int32_t>{m->config().eos_id});

  auto cases = read_golden(*inp, *out);
  REQUIRE(cases.size() > 10);
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& [text, expected] = cases[i];
    INFO("golden #" << i << ": \"" << text << "\"");
    CHECK(m->tokenizer().encode(text, false) == expected);
    // A few through the command line as well.
    if (i % 8 != 1 || text.empty()) continue;
    ProcessResult r = run_process({LUTRA_CLI_PATH, "tokenize", "-m", tmp.file("gpt2.lutra"), "-p", text, "--json"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    CHECK(nlohmann::json::parse(r.out).get<std::vector<int32_t>>() == expected);
  }
}

TEST_CASE("a GGUF BPE vocabulary with an unknown pre-tokenizer is refused naming it") {
  auto vocab_gguf = test_data_file("ggml-vocab-gpt-2.gguf");
  if (!vocab_gguf) return;
  auto vocab = GgufFile::open(vocab_gguf->string());
  REQUIRE_MESSAGE(vocab.ok(), vocab.message());
  // GPT-2's tokens and merges under a pre-tokenizer name lutra does not know.
  GgufBuilder b;
  b.kv_string("tokenizer.ggml.pre", "qwen2");
  b.kv_string("tokenizer.ggml.model", "gpt2");
  b.kv_strings("tokenizer.ggml.tokens", *(*vocab)->get_string_array("tokenizer.ggml.tokens"));
  b.kv_strings("tokenizer.ggml.merges", *(*vocab)->get_string_array("tokenizer.ggml.merges"));
  const auto bytes = b.bytes();
  auto f = GgufFile::parse(bytes, "qwen.gguf");
  REQUIRE_MESSAGE(f.ok(), f.message());
  auto v = bpe_vocab_from_gguf(**f);
  REQUIRE(!v.ok());
  CHECK(v.message().find("pre-tokenizer 'qwen2'") != std::string::npos);
}

TEST_CASE("a 2B4T-style GGUF (LLaMA-3 lists, no tokenizer.ggml.pre, no eot id) tokenizes as LLaMA-3 and stops at <|eot_id|>") {
  auto tiktoken = test_data_file("llama3_tokenizer.model");
  auto inp = test_data_file("ggml-vocab-llama-bpe.gguf.inp");
  auto out = test_data_file("ggml-vocab-llama-bpe.gguf.out");
  if (!tiktoken || !inp || !out) return;
  // The tokenizer keys bitnet.cpp's 2B4T file has: model gpt2, tokens, token types, merges,
  // BOS/EOS, and neither tokenizer.ggml.pre nor eot_token_id nor a chat template.
  const Llama3Lists lists = llama3_lists(*tiktoken);
  GgufBuilder v;
  v.kv_string("tokenizer.ggml.model", "gpt2");
  v.kv_strings("tokenizer.ggml.tokens", lists.tokens);
  v.kv_array<int32_t>("tokenizer.ggml.token_type", 5, lists.types);
  v.kv_strings("tokenizer.ggml.merges", lists.merges);
  v.kv_u32("tokenizer.ggml.bos_token_id", 128000);
  v.kv_u32("tokenizer.ggml.eos_token_id", 128001);
  const auto vocab_bytes = v.bytes();
  auto vocab = GgufFile::parse(vocab_bytes, "llama3 lists");
  REQUIRE_MESSAGE(vocab.ok(), vocab.message());
  TempDir tmp;
  TinyTernary model;
  write_bytes(tmp.file("2b4t.gguf"), tiny_ternary_gguf("bitnet-b1.58", GgmlType::i2_s, model, false, {}, vocab->get()));
  auto m = convert_and_load(tmp.file("2b4t.gguf"), tmp, "2b4t.lutra");
  CHECK(m->config().vocab_size == 128256);
  CHECK(m->config().bos_id == 128000);
  CHECK(m->config().stop_ids == std::vector<int32_t>{128001, 128009});
  CHECK(m->config().chat_template == "bitnet");
  for (const auto& [text, expected] : read_golden(*inp, *out)) {
    INFO("golden: \"" << text << "\"");
    CHECK(m->tokenizer().encode(text, false) == expected);
  }
}
