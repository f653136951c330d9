// Hugging Face folders: the safetensors reader (values of every dtype, refusal of truncated
// and corrupt files, shards), and the importer: the two BitNet folders transformers wrote
// convert to the same model, a Llama folder gives the logits of the same weights read from a
// llama2.c checkpoint, a sharded BitNet folder and its packed copy agree, and every refusal
// names what it found.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "convert/bpe_import.h"
#include "convert/convert.h"
#include "convert/safetensors.h"
#include "runtime/context.h"
#include "runtime/half.h"
#include "runtime/model.h"
#include "runtime/model_file.h"
#include "runtime/spm_model.h"
#include "runtime/tokenizer.h"
#include "tests/golden.h"
#include "tests/llama3_lists.h"
#include "tests/run_process.h"
#include "tests/test_data.h"

using namespace lutra;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// ---- a safetensors writer for fixtures --------------------------------------------------------

struct FixtureTensor {
  std::string name, dtype;  // "F32", "F16", "BF16", "U8", "I8", "I64", ...
  std::vector<uint64_t> shape;
  std::vector<uint8_t> bytes;
};

std::vector<uint8_t> encode(const std::vector<float>& v, const std::string& dtype) {
  std::vector<uint8_t> out;
  for (float x : v) {
    if (dtype == "F32") {
      uint8_t b[4];
      std::memcpy(b, &x, 4);
      out.insert(out.end(), b, b + 4);
    } else {
      uint16_t h = dtype == "F16" ? f32_to_f16(x) : f32_to_bf16(x);
      out.push_back(uint8_t(h));
      out.push_back(uint8_t(h >> 8));
    }
  }
  return out;
}

// The header padded with spaces to a multiple of 8, as the safetensors library writes it.
void write_safetensors(const fs::path& path, const std::vector<FixtureTensor>& tensors) {
  json h = {{"__metadata__", {{"format", "pt"}}}};
  uint64_t at = 0;
  for (const FixtureTensor& t : tensors) {
    h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {at, at + t.bytes.size()}}};
    at += t.bytes.size();
  }
  std::string text = h.dump();
  text.resize((text.size() + 7) / 8 * 8, ' ');
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  const uint64_t n = text.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f.write(text.data(), std::streamsize(text.size()));
  for (const FixtureTensor& t : tensors) f.write(reinterpret_cast<const char*>(t.bytes.data()), std::streamsize(t.bytes.size()));
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(text.data(), std::streamsize(text.size()));
}

// ---- tiny models in Hugging Face layout -------------------------------------------------------

struct Shape {
  int dim, hidden, layers, heads, kv_heads, seq;
  int head_dim() const { return dim / heads; }
};

// <unk> <s> </s>, 256 byte pieces, "▁" and the letters: a sentencepiece vocabulary any text encodes in.
std::vector<TokenPiece> fixture_pieces() {
  using K = TokenPiece::Kind;
  std::vector<TokenPiece> p = {{"<unk>", 0, K::unknown}, {"<s>", 0, K::control}, {"</s>", 0, K::control}};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    p.push_back({buf, 0, K::byte});
  }
  p.push_back({"\xe2\x96\x81", -1.0f, K::normal});
  for (char ch = 'a'; ch <= 'z'; ++ch) p.push_back({std::string(1, ch), -2.0f - float(ch - 'a'), K::normal});
  return p;
}

int fixture_vocab() { return int(fixture_pieces().size()); }

// A model's weights by Hugging Face name: shape and float values (bf16-exact, so every
// dtype used below stores them without rounding).
using HfWeights = std::map<std::string, std::pair<std::vector<uint64_t>, std::vector<float>>>;

// `vocab`: embedding rows (0: the fixture tokenizer's).
HfWeights random_weights(const Shape& s, bool sub_norms, bool untied, uint32_t seed, uint64_t vocab = 0) {
  std::mt19937 rng(seed);
  HfWeights w;
  auto fill = [&](const std::string& name, std::vector<uint64_t> shape, float lo, float hi) {
    std::uniform_real_distribution<float> d(lo, hi);
    uint64_t n = 1;
    for (uint64_t x : shape) n *= x;
    std::vector<float> v(n);
    for (float& x : v) x = bf16_to_f32(f32_to_bf16(d(rng)));
    w[name] = {shape, v};
  };
  const uint64_t D = uint64_t(s.dim), H = uint64_t(s.hidden), V = vocab ? vocab : uint64_t(fixture_vocab()),
                 Q = uint64_t(s.heads * s.head_dim()), KV = uint64_t(s.kv_heads * s.head_dim());
  const float a = 1.0f / std::sqrt(float(s.dim));
  fill("model.embed_tokens.weight", {V, D}, -1.0f, 1.0f);
  for (int l = 0; l < s.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    fill(p + "input_layernorm.weight", {D}, 0.8f, 1.2f);
    fill(p + "self_attn.q_proj.weight", {Q, D}, -a, a);
    fill(p + "self_attn.k_proj.weight", {KV, D}, -a, a);
    fill(p + "self_attn.v_proj.weight", {KV, D}, -a, a);
    fill(p + "self_attn.o_proj.weight", {D, Q}, -a, a);
    fill(p + "post_attention_layernorm.weight", {D}, 0.8f, 1.2f);
    fill(p + "mlp.gate_proj.weight", {H, D}, -a, a);
    fill(p + "mlp.up_proj.weight", {H, D}, -a, a);
    fill(p + "mlp.down_proj.weight", {D, H}, -a, a);
    if (sub_norms) {
      fill(p + "self_attn.attn_sub_norm.weight", {Q}, 0.8f, 1.2f);
      fill(p + "mlp.ffn_sub_norm.weight", {H}, 0.8f, 1.2f);
    }
  }
  fill("model.norm.weight", {D}, 0.8f, 1.2f);
  if (untied) fill("lm_head.weight", {V, D}, -1.0f, 1.0f);
  return w;
}

json base_config(const Shape& s, const char* arch, bool tied) {
  return {{"architectures", {arch}},
          {"hidden_size", s.dim},
          {"intermediate_size", s.hidden},
          {"num_hidden_layers", s.layers},
          {"num_attention_heads", s.heads},
          {"num_key_value_heads", s.kv_heads},
          {"vocab_size", fixture_vocab()},
          {"max_position_embeddings", s.seq},
          {"rms_norm_eps", 1e-5},
          {"tie_word_embeddings", tied},
          {"bos_token_id", 1},
          {"eos_token_id", 2}};
}

// config.json, tokenizer.model and the weights (norms F32, the rest `dtype`) in `shards` files.
void write_hf_folder(const fs::path& dir, const json& config, const HfWeights& w, const std::string& dtype,
                     int shards = 1) {
  fs::create_directories(dir);
  write_text(dir / "config.json", config.dump(2));
  write_text(dir / "tokenizer.model", make_spm_model_proto(fixture_pieces(), SpmOptions{}));
  std::vector<std::vector<FixtureTensor>> parts(static_cast<size_t>(shards));
  json weight_map = json::object();
  size_t i = 0;
  for (const auto& [name, sv] : w) {
    const bool norm = sv.first.size() == 1;
    const size_t shard = i++ % size_t(shards);
    parts[shard].push_back({name, norm ? "F32" : dtype, sv.first, encode(sv.second, norm ? "F32" : dtype)});
    weight_map[name] = "model-0000" + std::to_string(shard + 1) + "-of-0000" + std::to_string(shards) + ".safetensors";
  }
  if (shards == 1) return write_safetensors(dir / "model.safetensors", parts[0]);
  for (size_t s = 0; s < parts.size(); ++s)
    write_safetensors(dir / ("model-0000" + std::to_string(s + 1) + "-of-0000" + std::to_string(shards) + ".safetensors"),
                      parts[s]);
  write_text(dir / "model.safetensors.index.json", json({{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}}).dump());
}

// transformers' offline BitNet packing of one master weight: absmean ternary (as lutra
// computes it), rows i*R + r in bits 2i..2i+1 of packed row r as w + 1, and weight_scale =
// 1/mean|W| in bf16.
void pack_like_transformers(const std::vector<uint64_t>& shape, const std::vector<float>& w,
                            std::vector<uint8_t>& packed, float& weight_scale) {
  const size_t n = shape[0], k = shape[1], R = (n + 3) / 4;
  double sum = 0;
  for (float x : w) sum += std::fabs(x);
  const float mean = std::max(float(sum / double(w.size())), 1e-5f), inv = 1.0f / mean;
  packed.assign(R * k, 0);
  for (size_t r = 0; r < n; ++r)
    for (size_t j = 0; j < k; ++j) {
      const float q = std::clamp(std::nearbyint(w[r * k + j] * inv), -1.0f, 1.0f);
      packed[(r % R) * k + j] |= uint8_t(int(q) + 1) << (2 * (r / R));
    }
  weight_scale = bf16_to_f32(f32_to_bf16(inv));
}

// ---- running converted models ------------------------------------------------------------------

std::unique_ptr<Model> convert_and_load(const fs::path& input, const fs::path& out, ConvertOptions o = {}) {
  Status s = convert_model(input.string(), out.string(), o);
  REQUIRE_MESSAGE(s.ok(), s.message());
  auto m = Model::load(out.string());
  REQUIRE_MESSAGE(m.ok(), m.message());
  return std::move(m.value());
}

// Logits after the prompt (batched prefill), then after one more token.
std::vector<float> logits_of(const Model& m, const std::vector<int32_t>& prompt, int threads = 1) {
  ContextParams p;
  p.n_threads = threads;
  p.n_batch = 4;
  auto c = Context::create(m, p);
  REQUIRE_MESSAGE(c.ok(), c.message());
  Status s = (*c)->eval(prompt);
  REQUIRE_MESSAGE(s.ok(), s.message());
  const size_t V = size_t(m.config().vocab_size);
  std::vector<float> out((*c)->logits(), (*c)->logits() + V);
  const int32_t next = 5;
  REQUIRE((*c)->eval(std::span<const int32_t>(&next, 1)).ok());
  out.insert(out.end(), (*c)->logits(), (*c)->logits() + V);
  return out;
}

// Every tensor of `a` is in `b` with the same format, shape, scale and bytes.
void check_same_tensors(const ModelFile& a, const ModelFile& b) {
  REQUIRE(a.tensors().size() == b.tensors().size());
  for (const TensorInfo& t : a.tensors()) {
    CAPTURE(t.name);
    const TensorInfo* u = b.find(t.name);
    REQUIRE(u != nullptr);
    CHECK(u->format == t.format);
    CHECK(u->shape == t.shape);
    CHECK(u->scale == t.scale);
    REQUIRE(u->bytes == t.bytes);
    CHECK(std::memcmp(a.data(t).data(), b.data(*u).data(), t.bytes) == 0);
  }
}

}  // namespace

// ---- the safetensors reader --------------------------------------------------------------------

TEST_CASE("safetensors reader gives F32, F16, BF16, U8 and I8 values as floats and names unreadable dtypes") {
  TempDir tmp;
  const std::vector<float> v = {1.5f, -2.25f, 0.0f, 65504.0f, -0.125f, 3.0f};
  write_safetensors(tmp / "m.safetensors",
                    {{"f32", "F32", {2, 3}, encode(v, "F32")},
                     {"f16", "F16", {3, 2}, encode(v, "F16")},
                     {"bf16", "BF16", {6}, encode({1.5f, -2.25f, 0.0f, 65536.0f, -0.125f, 3.0f}, "BF16")},
                     {"u8", "U8", {2, 2}, {0, 1, 200, 255}},
                     {"i8", "I8", {4}, {0x80, 0xff, 0, 127}},
                     {"ids", "I64", {2}, std::vector<uint8_t>(16, 0)},
                     {"scalar", "F32", {}, encode({7.0f}, "F32")}});
  auto set = SafetensorsSet::open_file(tmp.file("m.safetensors"));
  REQUIRE_MESSAGE(set.ok(), set.message());
  auto values = [&](const std::string& name, std::vector<uint64_t> shape) {
    auto t = set->get(name, shape);
    REQUIRE_MESSAGE(t.ok(), t.message());
    return (*t)->to_f32();
  };
  CHECK(values("f32", {2, 3}) == v);
  CHECK(values("f16", {3, 2}) == v);
  CHECK(values("bf16", {6}) == std::vector<float>{1.5f, -2.25f, 0.0f, 65536.0f, -0.125f, 3.0f});
  CHECK(values("u8", {2, 2}) == std::vector<float>{0, 1, 200, 255});
  CHECK(values("i8", {4}) == std::vector<float>{-128, -1, 0, 127});
  CHECK(values("scalar", {}) == std::vector<float>{7.0f});
  std::vector<float> row(3);
  (*set->get("f32", {2, 3}))->row_f32(1, row.data());
  CHECK(row == std::vector<float>{65504.0f, -0.125f, 3.0f});

  auto ids = set->get("ids", {2});
  REQUIRE_FALSE(ids.ok());
  CHECK(contains(ids.message(), "I64"));
  CHECK(contains(ids.message(), "'ids'"));
  auto shape = set->get("f32", {3, 2});
  REQUIRE_FALSE(shape.ok());
  CHECK(contains(shape.message(), "[2, 3]"));
  CHECK(contains(shape.message(), "[3, 2]"));
  CHECK_FALSE(set->get("nope", {1}).ok());
}

TEST_CASE("a truncated or corrupt safetensors file is refused with one line saying what is wrong") {
  TempDir tmp;
  write_safetensors(tmp / "good.safetensors", {{"w", "F32", {4, 4}, encode(std::vector<float>(16, 1.0f), "F32")}});
  const std::vector<uint8_t> good = read_bytes(tmp.file("good.safetensors"));
  REQUIRE(SafetensorsSet::open_file(tmp.file("good.safetensors")).ok());
  uint64_t n;
  std::memcpy(&n, good.data(), 8);

  auto refused = [&](std::vector<uint8_t> bytes, const char* must_mention) {
    CAPTURE(must_mention);
    write_bytes(tmp.file("bad.safetensors"), bytes);
    auto r = SafetensorsSet::open_file(tmp.file("bad.safetensors"));
    REQUIRE_FALSE(r.ok());
    CHECK(contains(r.message(), must_mention));
    CHECK_FALSE(contains(r.message(), "\n"));
  };
  refused(std::vector<uint8_t>(good.begin(), good.end() - 1), "outside the file");      // data cut short
  refused(std::vector<uint8_t>(good.begin(), good.begin() + 8 + long(n) / 2), "truncated");  // header cut
  refused(std::vector<uint8_t>(good.begin(), good.begin() + 5), "too small");
  std::vector<uint8_t> huge = good;
  huge[7] = 0x40;  // a header length of exabytes
  refused(huge, "implausible header length");
  std::vector<uint8_t> not_json = good;
  not_json[8] = '[';
  not_json[9] = '!';
  refused(not_json, "not JSON");
  // Offsets that disagree with dtype x shape.
  std::string text(good.begin() + 8, good.begin() + 8 + long(n));
  std::string wrong = text;
  wrong.replace(wrong.find("[4,4]"), 5, "[4,5]");
  std::vector<uint8_t> mismatch(good.begin(), good.begin() + 8);
  mismatch.insert(mismatch.end(), wrong.begin(), wrong.end());
  mismatch.insert(mismatch.end(), good.begin() + 8 + long(n), good.end());
  refused(mismatch, "needs 80");
  std::string odd = text;
  odd.replace(odd.find("\"F32\""), 5, "\"F31\"");
  std::vector<uint8_t> bad_dtype(good.begin(), good.begin() + 8);
  bad_dtype.insert(bad_dtype.end(), odd.begin(), odd.end());
  bad_dtype.insert(bad_dtype.end(), good.begin() + 8 + long(n), good.end());
  refused(bad_dtype, "unknown dtype 'F31'");
}

TEST_CASE("a sharded checkpoint is read across its shards, and an index that disagrees with them is refused") {
  TempDir tmp;
  const fs::path dir = tmp / "sharded";
  fs::create_directories(dir);
  write_safetensors(dir / "a.safetensors", {{"x", "F32", {2}, encode({1, 2}, "F32")}});
  write_safetensors(dir / "b.safetensors", {{"y", "F16", {1}, encode({3}, "F16")}});
  write_text(dir / "model.safetensors.index.json", R"({"weight_map": {"x": "a.safetensors", "y": "b.safetensors"}})");
  auto set = SafetensorsSet::open_folder(dir.string());
  REQUIRE_MESSAGE(set.ok(), set.message());
  CHECK(set->shard_count() == 2);
  CHECK((*set->get("y", {1}))->to_f32() == std::vector<float>{3});
  CHECK((*set->get("x", {2}))->file == (dir / "a.safetensors").string());

  write_text(dir / "model.safetensors.index.json", R"({"weight_map": {"x": "a.safetensors", "y": "a.safetensors"}})");
  auto misplaced = SafetensorsSet::open_folder(dir.string());
  REQUIRE_FALSE(misplaced.ok());
  CHECK(contains(misplaced.message(), "'y'"));
  write_text(dir / "model.safetensors.index.json", R"({"weight_map": {"x": "c.safetensors"}})");
  auto missing = SafetensorsSet::open_folder(dir.string());
  REQUIRE_FALSE(missing.ok());
  CHECK(contains(missing.message(), "c.safetensors"));
  write_text(dir / "model.safetensors.index.json", R"({"weight_map": {"x": "../a.safetensors"}})");
  CHECK_FALSE(SafetensorsSet::open_folder(dir.string()).ok());
  fs::remove(dir / "model.safetensors.index.json");
  auto none = SafetensorsSet::open_folder(dir.string());
  REQUIRE_FALSE(none.ok());
  CHECK(contains(none.message(), "model.safetensors"));
}

// ---- the importer: transformers-written BitNet folders -----------------------------------------

TEST_CASE("the transformers-written BitNet master and packed folders convert to identical ternary weights and logits") {
  TempDir tmp;
  auto master = extract_test_tar("bitnet-tiny-master.tar", tmp);
  if (!master) return;
  auto packed = extract_test_tar("bitnet-tiny-packed.tar", tmp);
  if (!packed) return;
  for (const char* weights : {"t3", "t2"}) {
    CAPTURE(weights);
    ConvertOptions o;
    o.weights = weights;
    auto a = convert_and_load(*master, tmp / (std::string("master-") + weights + ".lutra"), o);
    auto b = convert_and_load(*packed, tmp / (std::string("packed-") + weights + ".lutra"), o);
    CHECK(a->weights().layers[0].wq.format == (std::string(weights) == "t3" ? WeightFormat::t3 : WeightFormat::t2));
    check_same_tensors(a->file(), b->file());
    const std::vector<int32_t> prompt = a->tokenizer().encode("Once upon a time, a tiny model", true);
    REQUIRE(prompt == b->tokenizer().encode("Once upon a time, a tiny model", true));
    const std::vector<float> la = logits_of(*a, prompt), lb = logits_of(*b, prompt);
    CHECK(std::memcmp(la.data(), lb.data(), la.size() * sizeof(float)) == 0);
  }
  // The config as the folder gives it, and the defaults: t3 layers, the embedding at the source's
  // precision (bf16 → f16), a 4-bit screen of it as the head.
  auto m = convert_and_load(*packed, tmp / "packed.lutra");
  const ModelConfig& c = m->config();
  CHECK(c.arch == "bitnet-b1.58");
  CHECK(c.activation == Activation::relu2);
  CHECK(c.sub_norms);
  CHECK(c.tied_embeddings);
  CHECK(c.rope_style == RopeStyle::half_split);
  CHECK(c.rope_theta == 500000.0f);
  CHECK(c.dim == 128);
  CHECK(c.hidden_dim == 352);
  CHECK(c.n_layers == 4);
  CHECK(c.n_heads == 8);
  CHECK(c.n_kv_heads == 2);
  CHECK(c.vocab_size == 32000);
  CHECK(c.max_seq_len == 512);
  CHECK(c.chat_template == "plain");  // the LLaMA-2 vocabulary has no <|eot_id|>
  CHECK(m->weights().layers[0].wq.format == WeightFormat::t3);
  CHECK(m->weights().token_embd.format == WeightFormat::f16);
  CHECK(m->weights().output.format == WeightFormat::bq);
  CHECK(m->weights().output.bits == 4);
  CHECK(m->weights().output_exact.data == m->weights().token_embd.data);
  const json prov = json::parse(m->provenance_json());
  CHECK(prov["architecture"] == "BitNetForCausalLM");
  CHECK(prov["source"] == "bitnet-tiny-packed");
  CHECK(contains(prov["source_dtypes"].get<std::string>(), "U8 (packed ternary)"));
  CHECK(contains(prov["quantization"].get<std::string>(), "1/mean|W|"));
  CHECK(prov["recipe"]["weights"] == "t3");
  CHECK(prov["recipe"]["embedding"] == "f16");
  CHECK(prov["recipe"]["head"] == "b4g32, candidates rescored from token_embd (f16)");
}

TEST_CASE("packed BitNet weights decode to the ternary codes of the master weights, with scale 1/weight_scale") {
  TempDir tmp;
  auto master = extract_test_tar("bitnet-tiny-master.tar", tmp);
  if (!master) return;
  auto packed = extract_test_tar("bitnet-tiny-packed.tar", tmp);
  if (!packed) return;
  // Read the packed tensors straight from the checkpoint and compare with lutra's t2 packing.
  ConvertOptions o;
  o.weights = "t2";
  auto m = convert_and_load(*master, tmp / "m.lutra", o);
  auto set = SafetensorsSet::open_folder(packed->string());
  REQUIRE(set.ok());
  const StTensor* p = set->find("model.layers.2.mlp.gate_proj.weight");
  const StTensor* ws = set->find("model.layers.2.mlp.gate_proj.weight_scale");
  REQUIRE(p != nullptr);
  REQUIRE(ws != nullptr);
  CHECK(p->shape == std::vector<uint64_t>{88, 128});
  const WeightView w = m->weights().layers[2].w_gate;
  REQUIRE(w.format == WeightFormat::t2);
  float scale;
  ws->row_f32(0, &scale);
  CHECK(w.scale == 1.0f / scale);
  const size_t R = 88, rb = t2_row_bytes(128);
  for (size_t r = 0; r < 352; ++r)
    for (size_t j = 0; j < 128; ++j) {
      const int from_packed = (p->data[(r % R) * 128 + j] >> (2 * (r / R))) & 3;
      const int from_master = (w.data[r * rb + j / 4] >> (2 * (j % 4))) & 3;
      REQUIRE(from_packed == from_master);
    }
}

// ---- the importer: fixtures written here -------------------------------------------------------

namespace {

// A llama2.c legacy checkpoint (see convert/llama2c.cpp) of the same weights, q/k rows moved
// from transformers' rotate_half order to llama2.c's interleaved pairs: HF row
// h*hd + a*hd/2 + i is llama2.c row h*hd + 2i + a.
void write_llama2c(const fs::path& path, const Shape& s, const HfWeights& w, bool untied) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  const int32_t V = fixture_vocab();
  const int32_t header[7] = {s.dim, s.hidden, s.layers, s.heads, s.kv_heads, untied ? -V : V, s.seq};
  f.write(reinterpret_cast<const char*>(header), sizeof header);
  auto put = [&](const std::vector<float>& v) { f.write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * 4)); };
  auto interleave = [&](const std::vector<float>& v, int heads) {
    const size_t hd = size_t(s.head_dim()), k = size_t(s.dim);
    std::vector<float> out(v.size());
    for (size_t h = 0; h < size_t(heads); ++h)
      for (size_t a = 0; a < 2; ++a)
        for (size_t i = 0; i < hd / 2; ++i)
          std::memcpy(&out[(h * hd + 2 * i + a) * k], &v[(h * hd + a * hd / 2 + i) * k], k * 4);
    return out;
  };
  auto all = [&](const char* what, int heads = 0) {
    for (int l = 0; l < s.layers; ++l) {
      const auto& v = w.at("model.layers." + std::to_string(l) + "." + what).second;
      put(heads ? interleave(v, heads) : v);
    }
  };
  put(w.at("model.embed_tokens.weight").second);
  all("input_layernorm.weight");
  all("self_attn.q_proj.weight", s.heads);
  all("self_attn.k_proj.weight", s.kv_heads);
  all("self_attn.v_proj.weight");
  all("self_attn.o_proj.weight");
  all("post_attention_layernorm.weight");
  all("mlp.gate_proj.weight");
  all("mlp.down_proj.weight");
  all("mlp.up_proj.weight");
  put(w.at("model.norm.weight").second);
  put(std::vector<float>(size_t(s.seq) * size_t(s.head_dim()), 0.0f));  // freq_cis real + imag
  if (untied) put(w.at("lm_head.weight").second);
}

void write_llama2c_tokenizer(const fs::path& path) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  const int32_t max_len = 16;
  f.write(reinterpret_cast<const char*>(&max_len), 4);
  for (const TokenPiece& p : fixture_pieces()) {
    std::string text = p.text == "\xe2\x96\x81" ? " " : p.text;
    const int32_t len = int32_t(text.size());
    f.write(reinterpret_cast<const char*>(&p.score), 4);
    f.write(reinterpret_cast<const char*>(&len), 4);
    f.write(text.data(), len);
  }
}

}  // namespace

TEST_CASE("a Llama folder converted to f32 gives the logits of the same weights read from a llama2.c checkpoint, and its default untied head gives its candidates the f16 head's logits") {
  // Proves the tensor mapping and the RoPE convention: transformers' q/k rows are in
  // rotate_half order, which lutra runs as half_split; llama2.c's are interleaved pairs.
  TempDir tmp;
  const Shape s{64, 96, 2, 4, 2, 64};
  const HfWeights w = random_weights(s, false, true, 11);
  json config = base_config(s, "LlamaForCausalLM", false);
  config["rope_theta"] = 10000.0;
  config["hidden_act"] = "silu";
  write_hf_folder(tmp / "llama", config, w, "BF16");
  write_llama2c(tmp / "llama.bin", s, w, true);
  write_llama2c_tokenizer(tmp / "tok.bin");

  ConvertOptions f32;
  f32.weights = "f32";
  f32.embedding = "f32";
  auto hf = convert_and_load(tmp / "llama", tmp / "hf.lutra", f32);
  ConvertOptions l2c;
  l2c.tokenizer = tmp.file("tok.bin");
  l2c.embedding = "f32";  // the checkpoint's f32 embedding and head, no second stage
  auto ref = convert_and_load(tmp / "llama.bin", tmp / "ref.lutra", l2c);
  CHECK(hf->config().rope_style == RopeStyle::half_split);
  CHECK(ref->config().rope_style == RopeStyle::interleaved);
  CHECK_FALSE(hf->config().tied_embeddings);

  const std::vector<int32_t> prompt = {1, 40, 7, 285, 100, 261, 3, 77, 200};
  const std::vector<float> a = logits_of(*hf, prompt), b = logits_of(*ref, prompt);
  float amax = 0, diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    amax = std::max(amax, std::fabs(b[i]));
    diff = std::max(diff, std::fabs(a[i] - b[i]));
  }
  CAPTURE(amax);
  CHECK(amax > 0.5f);  // logits of some size, so the comparison means something
  CHECK(diff <= 1e-4f * amax);

  // The default recipe (4-bit layers; the untied head a 4-bit screen, rescored from its f16
  // copy) converts and runs.
  auto q = convert_and_load(tmp / "llama", tmp / "q.lutra");
  CHECK(q->weights().layers[1].w_down.format == WeightFormat::bq);
  CHECK(q->weights().layers[1].w_down.bits == 4);
  CHECK(q->weights().output.bits == 4);
  CHECK(q->weights().output_exact.format == WeightFormat::f16);
  CHECK(q->weights().token_embd.format == WeightFormat::f16);
  const json prov = json::parse(q->provenance_json());
  CHECK(prov["recipe"]["weights"] == "b4g32");
  CHECK(prov["recipe"]["head"] == "b4g32, candidates rescored from output_exact (f16)");
  CHECK(prov["source_dtypes"] == "BF16, F32");

  // The untied two-stage head: its candidates get the logits of the f16 head (the same f16
  // rows), the rest the screen's. Layers in f32 on both sides, so only the head differs.
  ConvertOptions f32_layers, f16_head;
  f32_layers.weights = f16_head.weights = "f32";
  f16_head.embedding = "f16";  // one f16 head, no second stage
  auto two = convert_and_load(tmp / "llama", tmp / "two.lutra", f32_layers);
  auto one = convert_and_load(tmp / "llama", tmp / "one.lutra", f16_head);
  REQUIRE(two->weights().output_exact.data != nullptr);
  const size_t V = size_t(two->config().vocab_size), K = 8;
  auto run = [&](const Model& m, int candidates) {
    ContextParams p;
    p.head_candidates = candidates;
    auto c = Context::create(m, p);
    REQUIRE(c.ok());
    REQUIRE((*c)->eval(prompt).ok());
    return std::vector<float>((*c)->logits(), (*c)->logits() + V);
  };
  const std::vector<float> want = run(*one, 0), screen = run(*two, 0), got = run(*two, int(K));
  std::vector<int32_t> order(V);
  for (size_t i = 0; i < V; ++i) order[i] = int32_t(i);
  std::sort(order.begin(), order.end(), [&](int32_t x, int32_t y) { return screen[x] > screen[y] || (screen[x] == screen[y] && x < y); });
  for (size_t j = 0; j < V; ++j) {
    const size_t i = size_t(order[j]);
    CAPTURE(j);
    CHECK(got[i] == (j < K ? want[i] : screen[i]));
  }
}

TEST_CASE("a sharded BitNet master folder and its transformers-style packed copy convert to identical weights and logits") {
  // Ragged shapes: 30 KV rows and 90 FFN rows are not multiples of 4 (packed rows pad).
  TempDir tmp;
  const Shape s{60, 90, 2, 6, 3, 64};
  const HfWeights w = random_weights(s, true, false, 5);
  json config = base_config(s, "BitNetForCausalLM", true);
  config["hidden_act"] = "relu2";
  config["rope_parameters"] = {{"rope_theta", 500000.0}, {"rope_type", "default"}};
  // As the 2B4T bf16 release says: master weights that transformers ternarizes on the fly.
  config["quantization_config"] = {{"quant_method", "bitnet"}, {"linear_class", "autobitlinear"}, {"quantization_mode", "online"}};
  write_hf_folder(tmp / "master", config, w, "BF16", 2);
  REQUIRE(fs::exists(tmp / "master" / "model.safetensors.index.json"));

  std::vector<FixtureTensor> packed;
  for (const auto& [name, sv] : w) {
    const bool linear = sv.first.size() == 2 && name != "model.embed_tokens.weight";
    if (!linear) {
      packed.push_back({name, "BF16", sv.first, encode(sv.second, "BF16")});
      continue;
    }
    std::vector<uint8_t> bytes;
    float ws;
    pack_like_transformers(sv.first, sv.second, bytes, ws);
    packed.push_back({name, "U8", {(sv.first[0] + 3) / 4, sv.first[1]}, bytes});
    packed.push_back({name + "_scale", "BF16", {1}, encode({ws}, "BF16")});
  }
  fs::create_directories(tmp / "packed");
  config["quantization_config"] = {{"quant_method", "bitnet"}, {"linear_class", "bitlinear"}, {"quantization_mode", "offline"}};
  write_text(tmp / "packed" / "config.json", config.dump());
  write_text(tmp / "packed" / "tokenizer.model", make_spm_model_proto(fixture_pieces(), SpmOptions{}));
  write_safetensors(tmp / "packed" / "model.safetensors", packed);

  ConvertOptions o;
  o.embedding = "f16";  // 60 columns: no 32-groups
  auto a = convert_and_load(tmp / "master", tmp / "a.lutra", o);
  auto b = convert_and_load(tmp / "packed", tmp / "b.lutra", o);
  check_same_tensors(a->file(), b->file());
  CHECK(a->config().rope_theta == 500000.0f);
  CHECK(a->config().q_dim() == 60);
  CHECK(a->weights().layers[1].wk.n == 30);
  const std::vector<int32_t> prompt = {1, 280, 281, 282, 259, 283};
  const std::vector<float> la = logits_of(*a, prompt, 2), lb = logits_of(*b, prompt, 2);
  CHECK(std::memcmp(la.data(), lb.data(), la.size() * sizeof(float)) == 0);
  CHECK(json::parse(a->provenance_json())["source_format"] == "Hugging Face safetensors (2 shards)");

  // A packed byte holding the code 3 (no ternary value) is refused, naming the tensor.
  // A packed byte holding the code 3 (no ternary value) is refused, naming the tensor, in
  // every output format.
  fs::create_directories(tmp / "corrupt");
  for (const char* f : {"config.json", "tokenizer.model"}) fs::copy_file(tmp / "packed" / f, tmp / "corrupt" / f);
  for (FixtureTensor& t : packed)
    if (t.name == "model.layers.1.mlp.up_proj.weight") t.bytes[7] = 0xff;
  write_safetensors(tmp / "corrupt" / "model.safetensors", packed);

  // The packed weights written as floats (f32) are the ternary values times mean|W|.
  ConvertOptions f;
  f.weights = "f32";
  f.embedding = "f16";
  auto fl = convert_and_load(tmp / "packed", tmp / "f.lutra", f);
  const WeightView& wk = fl->weights().layers[0].wk;
  const float* vals = reinterpret_cast<const float*>(wk.data);
  const float scale = b->weights().layers[0].wk.scale;
  for (size_t i = 0; i < wk.n * wk.k; ++i) CHECK((vals[i] == 0 || std::fabs(vals[i]) == scale));

  for (const ConvertOptions& opts : {o, f}) {
    Status bad = convert_model((tmp / "corrupt").string(), tmp.file("bad.lutra"), opts);
    CHECK(contains(bad.message(), "invalid code 3"));
    CHECK(contains(bad.message(), "model.layers.1.mlp.up_proj.weight"));
  }
}

TEST_CASE("a 1bitLLM Bitnet folder with inner_attn_ln / ffn_layernorm sub-norms converts as arch bitnet") {
  TempDir tmp;
  const Shape s{64, 96, 1, 4, 4, 32};
  HfWeights w = random_weights(s, true, true, 3);
  for (const auto& [from, to] : {std::pair<std::string, std::string>{"self_attn.attn_sub_norm", "self_attn.inner_attn_ln"},
                                 {"mlp.ffn_sub_norm", "mlp.ffn_layernorm"}}) {
    auto node = w.extract("model.layers.0." + from + ".weight");
    node.key() = "model.layers.0." + to + ".weight";
    w.insert(std::move(node));
  }
  json config = base_config(s, "BitnetForCausalLM", false);
  config["hidden_act"] = "silu";
  config["vocab_size"] = fixture_vocab() + 2;  // embedding rows past the tokenizer's pieces
  config["eos_token_id"] = json::array({2, 0});
  w["model.embed_tokens.weight"].first[0] += 2;
  w["model.embed_tokens.weight"].second.resize(w["model.embed_tokens.weight"].second.size() + 2 * 64, 0.5f);
  w["lm_head.weight"].first[0] += 2;
  w["lm_head.weight"].second.resize(w["lm_head.weight"].second.size() + 2 * 64, 0.5f);
  write_hf_folder(tmp / "b", config, w, "F16");
  auto m = convert_and_load(tmp / "b", tmp / "b.lutra");
  CHECK(m->config().arch == "bitnet");
  CHECK(m->config().activation == Activation::silu);
  CHECK(m->config().vocab_size == fixture_vocab() + 2);
  CHECK(m->tokenizer().vocab_size() == size_t(fixture_vocab() + 2));
  CHECK(m->config().stop_ids == std::vector<int32_t>{2, 0});
  CHECK(m->weights().layers[0].wq.format == WeightFormat::t3);
  CHECK(m->weights().layers[0].attn_sub_norm[0] == w.at("model.layers.0.self_attn.inner_attn_ln.weight").second[0]);
  CHECK_FALSE(m->config().tied_embeddings);
}

TEST_CASE("the chat template follows tokenizer_config.json's markers, else the architecture, else plain") {
  TempDir tmp;
  const Shape s{32, 64, 1, 2, 2, 32};
  const HfWeights w = random_weights(s, false, false, 9);
  write_hf_folder(tmp / "l", base_config(s, "LlamaForCausalLM", true), w, "F32");
  ConvertOptions o;
  o.weights = "f16";
  o.embedding = "f16";
  CHECK(convert_and_load(tmp / "l", tmp / "a.lutra", o)->config().chat_template == "plain");
  write_text(tmp / "l" / "tokenizer_config.json",
             R"({"chat_template": "{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}"})");
  CHECK(convert_and_load(tmp / "l", tmp / "b.lutra", o)->config().chat_template == "llama2");
  o.chat_template = "bitnet";
  CHECK(convert_and_load(tmp / "l", tmp / "c.lutra", o)->config().chat_template == "bitnet");
}

TEST_CASE("Hugging Face folders lutra cannot convert are refused in one line naming what was found") {
  TempDir tmp;
  const Shape s{32, 64, 1, 2, 2, 32};
  const HfWeights w = random_weights(s, false, false, 9);
  auto refused = [&](const fs::path& dir, std::vector<std::string> mentions) {
    Status st = convert_model(dir.string(), tmp.file("out.lutra"), ConvertOptions{});
    INFO(st.message());
    REQUIRE_FALSE(st.ok());
    CHECK_FALSE(contains(st.message(), "\n"));
    for (const std::string& m : mentions) CHECK(contains(st.message(), m));
    CHECK_FALSE(fs::exists(tmp / "out.lutra"));
    CHECK_FALSE(fs::exists(tmp.file("out.lutra") + ".tmp"));
  };
  json mistral = base_config(s, "MistralForCausalLM", true);
  write_hf_folder(tmp / "mistral", mistral, w, "F32");
  refused(tmp / "mistral", {"MistralForCausalLM", "LlamaForCausalLM"});

  write_hf_folder(tmp / "f64", base_config(s, "LlamaForCausalLM", true), w, "F32");
  {
    std::vector<FixtureTensor> ts;
    for (const auto& [name, sv] : w)
      ts.push_back({name, name == "model.layers.0.mlp.up_proj.weight" ? "F64" : "F32", sv.first,
                    name == "model.layers.0.mlp.up_proj.weight" ? std::vector<uint8_t>(sv.second.size() * 8, 0)
                                                                : encode(sv.second, "F32")});
    write_safetensors(tmp / "f64" / "model.safetensors", ts);
  }
  refused(tmp / "f64", {"F64", "model.layers.0.mlp.up_proj.weight"});

  json wrong = base_config(s, "LlamaForCausalLM", true);
  wrong["intermediate_size"] = 80;
  write_hf_folder(tmp / "shape", wrong, w, "F32");
  refused(tmp / "shape", {"[64, 32]", "[80, 32]"});

  json scaled = base_config(s, "LlamaForCausalLM", true);
  scaled["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  write_hf_folder(tmp / "scaled", scaled, w, "F32");
  refused(tmp / "scaled", {"llama3"});

  json huge = base_config(s, "LlamaForCausalLM", true);
  huge["vocab_size"] = 1 << 30;  // refused before a tokenizer is padded to it
  write_hf_folder(tmp / "huge", huge, w, "F32");
  refused(tmp / "huge", {"out of range"});

  json no_heads = base_config(s, "LlamaForCausalLM", true);
  no_heads.erase("num_attention_heads");
  write_hf_folder(tmp / "noheads", no_heads, w, "F32");
  refused(tmp / "noheads", {"num_attention_heads"});

  write_hf_folder(tmp / "bpe", base_config(s, "LlamaForCausalLM", true), w, "F32");
  fs::remove(tmp / "bpe" / "tokenizer.model");
  write_text(tmp / "bpe" / "tokenizer.json", "{}");
  refused(tmp / "bpe", {"tokenizer.json", "'model' not found"});
  write_text(tmp / "bpe" / "tokenizer.model", "IQ== 0\nIg== 1\n");  // tiktoken text without the 256 bytes
  refused(tmp / "bpe", {"tokenizer.model", "no token for byte 0"});
  fs::remove(tmp / "bpe" / "tokenizer.model");
  fs::remove(tmp / "bpe" / "tokenizer.json");
  refused(tmp / "bpe", {"no tokenizer"});
  write_text(tmp / "bpe" / "generation_config.json", "{\"eos_token_id\": [1,");  // side files are checked too
  refused(tmp / "bpe", {"generation_config.json' is not valid JSON"});
  fs::remove(tmp / "bpe" / "generation_config.json");
  // --tokenizer names the sentencepiece model instead.
  write_text(tmp / "spm.model", make_spm_model_proto(fixture_pieces(), SpmOptions{}));
  ConvertOptions with_tok;
  with_tok.tokenizer = tmp.file("spm.model");
  Status given = convert_model((tmp / "bpe").string(), tmp.file("given.lutra"), with_tok);
  CHECK_MESSAGE(given.ok(), given.message());
  with_tok.tokenizer = tmp.file("missing.model");
  CHECK(contains(convert_model((tmp / "bpe").string(), tmp.file("given.lutra"), with_tok).message(), "missing.model"));

  write_hf_folder(tmp / "notjson", base_config(s, "LlamaForCausalLM", true), w, "F32");
  write_text(tmp / "notjson" / "config.json", "{\"architectures\": [");
  refused(tmp / "notjson", {"config.json", "not valid JSON"});
}

TEST_CASE("every importer counts its tensors: the last progress call reports all of them done") {
  TempDir tmp;
  const Shape s{32, 64, 2, 2, 2, 32};
  const HfWeights w = random_weights(s, false, true, 4);
  write_hf_folder(tmp / "hf", base_config(s, "LlamaForCausalLM", false), w, "F32");
  write_llama2c(tmp / "l.bin", s, w, true);
  write_llama2c_tokenizer(tmp / "tok.bin");
  auto count = [&](const std::function<Status(const ConvertOptions&)>& convert) {
    std::vector<std::pair<size_t, size_t>> calls;
    size_t names = 0;
    ConvertOptions o;
    o.progress_count = [&](size_t done, size_t total) { calls.push_back({done, total}); };
    o.progress = [&](const std::string&, uint64_t) { ++names; };
    Status st = convert(o);
    REQUIRE_MESSAGE(st.ok(), st.message());
    REQUIRE_FALSE(calls.empty());
    CHECK(calls.back().first == calls.back().second);
    CHECK(calls.size() == names);
    for (size_t i = 0; i < calls.size(); ++i) CHECK(calls[i].first == i + 1);
  };
  count([&](const ConvertOptions& o) { return convert_model((tmp / "hf").string(), tmp.file("a.lutra"), o); });
  count([&](ConvertOptions o) {
    o.tokenizer = tmp.file("tok.bin");
    return convert_model(tmp.file("l.bin"), tmp.file("b.lutra"), o);
  });
  count([&](const ConvertOptions& o) { return make_synthetic("tiny", tmp.file("c.lutra"), o); });
  if (auto gguf = test_data_file("stories260K-f32.gguf"))
    count([&](const ConvertOptions& o) { return convert_model(gguf->string(), tmp.file("d.lutra"), o); });
}

TEST_CASE("lutra convert of a Hugging Face folder prints a summary, and lutra run and info use the result") {
  TempDir tmp;
  const Shape s{64, 96, 2, 4, 2, 64};
  json config = base_config(s, "BitNetForCausalLM", true);
  config["hidden_act"] = "relu2";
  write_hf_folder(tmp / "bitnet", config, random_weights(s, true, false, 21), "BF16");
  const fs::path out = tmp / "bitnet.lutra";
  ProcessResult c = run_process({LUTRA_CLI_PATH, "convert", (tmp / "bitnet").string(), "-o", out.string(), "--progress"});
  INFO(c.err);
  REQUIRE(c.exit_code == 0);
  CHECK(contains(c.err, "blk.1.ffn_down"));            // a progress line per tensor
  CHECK(contains(c.err, "100.0 %"));
  CHECK(contains(c.err, "bits/weight (t3)"));  // the summary
  CHECK(contains(c.err, "head 4.50 bits/weight (b4g32), embedding and exact head rows 16.00 bits/weight (f16)"));
  ProcessResult r = run_process({LUTRA_CLI_PATH, "run", "-m", out.string(), "-p", "abc", "-n", "8", "--temp", "0"});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK_FALSE(r.out.empty());
  ProcessResult i = run_process({LUTRA_CLI_PATH, "info", "-m", out.string()});
  CHECK(i.exit_code == 0);
  CHECK(contains(i.out, "BitNetForCausalLM"));
  CHECK(contains(i.out, "bitnet-b1.58"));
  CHECK(contains(i.out, "\"weights\":\"t3\""));
  // Without --progress (stderr is a pipe here) only the summary is printed.
  ProcessResult q = run_process({LUTRA_CLI_PATH, "convert", (tmp / "bitnet").string(), "-o", out.string()});
  CHECK(q.exit_code == 0);
  CHECK_FALSE(contains(q.err, "blk.1.ffn_down"));
  CHECK(contains(q.err, "wrote"));
}

namespace {

// LLaMA-3's vocabulary as a Hugging Face tokenizer.json spells it: the lists of
// tests/llama3_lists.h, LLaMA-3's Split regex before a regex-less ByteLevel, and the 256
// specials as added tokens.
std::string llama3_tokenizer_json(const fs::path& tiktoken) {
  const Llama3Lists lists = llama3_lists(tiktoken);
  json ids = json::object(), added = json::array();
  for (size_t id = 0; id < lists.tokens.size(); ++id) {
    if (lists.types[id] == 3) added.push_back({{"id", id}, {"content", lists.tokens[id]}, {"special", true}});
    else ids[lists.tokens[id]] = id;
  }
  json pre = {{"type", "Sequence"},
              {"pretokenizers",
               {{{"type", "Split"},
                 {"pattern", {{"Regex", std::string(bpe_pattern(BpePreTokenizer::llama3))}}},
                 {"behavior", "Isolated"},
                 {"invert", false}},
                {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}};
  return json({{"version", "1.0"},
               {"added_tokens", added},
               {"normalizer", nullptr},
               {"pre_tokenizer", pre},
               {"model", {{"type", "BPE"}, {"ignore_merges", true}, {"vocab", ids}, {"merges", lists.merges}}}})
      .dump();
}

// A chat template of the form BitNet b1.58 2B4T's tokenizer_config.json has: "Role: text<|eot_id|>"
// turns (role capitalized, text trimmed), then "Assistant: ".
constexpr const char* kBitnetStyleTemplate =
    "{% for message in messages %}{{ message['role'] | capitalize + ': ' + message['content'] | trim + "
    "'<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}";

}  // namespace

TEST_CASE("a 2B4T-style folder with a LLaMA-3 tokenizer.json or tiktoken tokenizer.model passes the LLaMA-3 goldens and chats") {
  auto tiktoken = test_data_file("llama3_tokenizer.model");
  auto inp = test_data_file("ggml-vocab-llama-bpe.gguf.inp");
  auto out = test_data_file("ggml-vocab-llama-bpe.gguf.out");
  if (!tiktoken || !inp || !out) return;
  TempDir tmp;
  const Shape s{64, 96, 1, 4, 2, 64};
  constexpr int kVocab = 128256;
  json config = base_config(s, "BitNetForCausalLM", true);
  config["hidden_act"] = "relu2";
  config["vocab_size"] = kVocab;
  config["bos_token_id"] = 128000;
  config["eos_token_id"] = 128001;
  config["rope_theta"] = 500000.0;
  config["rope_scaling"] = nullptr;
  const fs::path dir = tmp / "2b4t";
  write_hf_folder(dir, config, random_weights(s, true, false, 31, kVocab), "BF16");
  fs::remove(dir / "tokenizer.model");
  write_text(dir / "tokenizer.json", llama3_tokenizer_json(*tiktoken));
  write_text(dir / "tokenizer_config.json", json({{"bos_token", "<|begin_of_text|>"},
                                                  {"eos_token", "<|eot_id|>"},
                                                  {"chat_template", kBitnetStyleTemplate}})
                                                .dump());
  write_text(dir / "generation_config.json", R"({"bos_token_id": 128000, "eos_token_id": [128001, 128009]})");
  const auto cases = read_golden(*inp, *out);
  auto check_model = [&](const Model& m) {
    CHECK(m.tokenizer().type() == Tokenizer::Type::bpe);
    CHECK(m.config().bos_id == 128000);
    CHECK(m.tokenizer().bos_id() == 128000);
    CHECK(m.config().chat_template == "bitnet");
    CHECK(m.config().stop_ids == std::vector<int32_t>{128001, 128009});
    for (const auto& [text, expected] : cases) {
      INFO("golden: \"" << text << "\"");
      CHECK(m.tokenizer().encode(text, false) == expected);
    }
  };

  // tokenizer.json; config.json's single eos, then <|eot_id|>, which the bitnet turns end with.
  const fs::path json_out = tmp / "json.lutra";
  {
    auto m = convert_and_load(dir, json_out);
    check_model(*m);
    CHECK(contains(m->provenance_json(), "\"tokenizer_source\":\"tokenizer.json\""));
  }
  ProcessOptions o;
  o.stdin_text = "Hello there\n/exit\n";
  ProcessResult chat = run_process({LUTRA_CLI_PATH, "chat", "-m", json_out.string(), "--seed", "1", "-n", "4"}, o);
  INFO("chat stderr: " << chat.err);
  CHECK(chat.exit_code == 0);
  CHECK(contains(chat.err, "bitnet-b1.58"));

  // The same vocabulary as tiktoken text, its specials from tokenizer_config.json's
  // added_tokens_decoder; eos from generation_config.json's list.
  fs::remove(dir / "tokenizer.json");
  fs::copy_file(*tiktoken, dir / "tokenizer.model");
  json decoder = json::object();
  for (const SpecialToken& st : llama3_special_tokens())
    decoder[std::to_string(st.id)] = {{"content", st.text}, {"special", true}};
  write_text(dir / "tokenizer_config.json", json({{"added_tokens_decoder", decoder}, {"chat_template", kBitnetStyleTemplate}}).dump());
  config.erase("eos_token_id");
  write_text(dir / "config.json", config.dump());
  auto m = convert_and_load(dir, tmp / "tiktoken.lutra");
  check_model(*m);
  CHECK(contains(m->provenance_json(), "\"tokenizer_source\":\"tokenizer.model\""));
}

TEST_CASE("a tokenizer.json with more tokens than the config's vocab_size is refused naming both") {
  TempDir tmp;
  const Shape s{32, 64, 1, 2, 2, 32};
  write_hf_folder(tmp / "l", base_config(s, "LlamaForCausalLM", true), random_weights(s, false, false, 3), "F32");
  fs::remove(tmp / "l" / "tokenizer.model");
  // 256 byte tokens + 300 more: more than the fixture's vocab_size.
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_level_encode(std::string(1, char(b)))] = b;
  for (int i = 0; i < 300; ++i) vocab["tok" + std::to_string(i)] = 256 + i;
  write_text(tmp / "l" / "tokenizer.json",
             json({{"normalizer", nullptr},
                   {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
                   {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}}}})
                 .dump());
  Status st = convert_model((tmp / "l").string(), (tmp / "out.lutra").string(), ConvertOptions{});
  REQUIRE(!st.ok());
  CHECK(contains(st.message(), "556 tokens, more than the config's vocab_size"));
}
