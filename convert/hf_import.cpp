// Hugging Face folders, as transformers' save_pretrained writes them:
//   config.json            architectures[0], hyperparameters, [quantization_config]
//   model.safetensors      or model.safetensors.index.json + shards (convert/safetensors.h)
//   tokenizer.model        a sentencepiece ModelProto (LLaMA-2, 1bitLLM), or tiktoken text
//                          (LLaMA-3); or tokenizer.json (byte-level BPE: BitNet b1.58 2B4T)
//   tokenizer_config.json  [chat_template];  generation_config.json  [bos/eos ids]
//
// Tensor names (transformers' Llama naming, which both BitNet families share):
//   model.embed_tokens.weight (vocab, dim)               → token_embd
//   model.layers.N.input_layernorm.weight (dim)          → blk.N.attn_norm
//   model.layers.N.self_attn.{q,k,v,o}_proj.weight       → blk.N.attn_{q,k,v,output}
//   model.layers.N.self_attn.attn_sub_norm.weight (q_dim) → blk.N.attn_sub_norm
//                                        (1bitLLM: self_attn.inner_attn_ln.weight)
//   model.layers.N.post_attention_layernorm.weight (dim) → blk.N.ffn_norm
//   model.layers.N.mlp.{gate,up,down}_proj.weight        → blk.N.ffn_{gate,up,down}
//   model.layers.N.mlp.ffn_sub_norm.weight (hidden)      → blk.N.ffn_sub_norm
//                                        (1bitLLM: mlp.ffn_layernorm.weight)
//   model.norm.weight (dim) → output_norm;   lm_head.weight (vocab, dim) → output, if untied
// q/k rows stay in transformers' order: its RoPE rotates halves (rotate_half), which is
// lutra's half_split style.
//
// The packed BitNet release (quantization_config.quant_method "bitnet"; transformers'
// integrations/bitnet.py): a ternary weight (n, k) is stored as uint8 (ceil(n/4), k); with
// R = ceil(n/4), bits 2i..2i+1 of packed row r hold row i*R + r as w + 1. Beside it,
// `weight_scale` (one value): linear_class "bitlinear" (the default) computes
// y = acc / (input_scale * weight_scale), so it holds 1 / mean|W|; "autobitlinear" multiplies
// by it, so there it holds mean|W|.
#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "convert/bpe_import.h"
#include "convert/convert.h"
#include "convert/head_plan.h"
#include "convert/pack.h"
#include "convert/safetensors.h"
#include "runtime/half.h"
#include "runtime/model.h"
#include "runtime/tokenizer.h"

namespace lutra {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

struct HfArch {
  const char* hf_name;     // architectures[0]
  const char* lutra_arch;  // ModelConfig::arch
  bool ternary;            // BitLinear layers: absmean ternary by default
};
constexpr HfArch kArchs[] = {
    {"BitNetForCausalLM", "bitnet-b1.58", true},  // BitNet b1.58 2B4T
    {"BitnetForCausalLM", "bitnet", true},        // 1bitLLM bitnet_b1_58-large / -3B
    {"LlamaForCausalLM", "llama", false},
};

// Default recipes. Ternary layers as t3 (1.67 bits/weight, table lookup). Llama layers at
// 4 bits in groups of 32. The embedding and head: convert/head_plan.h.
constexpr const char* kTernaryWeights = "t3";
constexpr const char* kLlamaWeights = "b4g32";

Result<json> read_json(const fs::path& p) {
  std::ifstream in(p);
  if (!in) return Status::error("cannot read '" + p.string() + "'");
  try {
    return json::parse(in);
  } catch (const std::exception& e) {
    return Status::error("'" + p.string() + "' is not valid JSON: " + e.what());
  }
}

// A JSON file the folder may lack (tokenizer_config.json, generation_config.json): {} when
// absent; an error when present but unreadable.
Result<json> read_optional_json(const fs::path& p) {
  std::error_code ec;
  if (!fs::exists(p, ec)) return json::object();
  return read_json(p);
}

// Token ids given as a number or a list of numbers (eos_token_id may be either); [] if absent.
std::vector<int32_t> ids_of(const json& j, const char* key) {
  std::vector<int32_t> ids;
  if (!j.is_object() || !j.contains(key)) return ids;
  // Read wide: an id past int32 becomes -1, which ModelConfig::validate refuses, instead of
  // wrapping to a small valid one.
  auto id = [](const json& e) {
    const int64_t v = e.get<int64_t>();
    return v < 0 || v > INT32_MAX ? int32_t(-1) : int32_t(v);
  };
  const json& v = j[key];
  if (v.is_number_integer()) ids.push_back(id(v));
  if (v.is_array())
    for (const json& e : v)
      if (e.is_number_integer()) ids.push_back(id(e));
  return ids;
}

// ---- tokenizer ------------------------------------------------------------------------------

// What the model's config needs from the tokenizer.
struct TokenizerFacts {
  std::string source;  // file name, for provenance
  std::string type;    // "spm" or "bpe" (model_metadata)
  int32_t bos_id = -1, eos_id = -1;
  int32_t eot_id = -1;  // <|eot_id|>, which the llama3 and bitnet chat templates need
};

// tiktoken's text form: one "<base64 bytes> <rank>" per line.
bool looks_like_tiktoken(const std::string& head) {
  size_t eol = head.find('\n');
  std::string line = head.substr(0, eol);
  size_t sp = line.find(' ');
  if (sp == std::string::npos || sp == 0 || sp + 1 == line.size()) return false;
  for (size_t i = 0; i < sp; ++i)
    if (!std::isalnum(uint8_t(line[i])) && line[i] != '+' && line[i] != '/' && line[i] != '=') return false;
  for (size_t i = sp + 1; i < line.size(); ++i)
    if (!std::isdigit(uint8_t(line[i])) && line[i] != '\r') return false;
  return true;
}

void append_varint(std::string& s, uint64_t v) {
  for (; v >= 0x80; v >>= 7) s += char(uint8_t(v) | 0x80);
  s += char(uint8_t(v));
}

// Pieces appended to a serialized ModelProto (field 1, repeated SentencePiece: piece = 1,
// type = 3; UNUSED = 5): checkpoints whose embedding has rows past the tokenizer's pieces
// (padding) get ids that never encode or decode.
std::string with_unused_pieces(std::string proto, size_t first_id, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    const std::string text = "<lutra_unused_" + std::to_string(first_id + i) + ">";
    std::string piece;
    piece += char(0x0a);
    append_varint(piece, text.size());
    piece += text;
    piece += char(0x18);
    piece += char(5);
    proto += char(0x0a);
    append_varint(proto, piece.size());
    proto += piece;
  }
  return proto;
}

// The special tokens of a tiktoken vocabulary: tokenizer_config.json's added_tokens_decoder
// ({"128000": {"content": "<|begin_of_text|>", ...}}), else tokenizer.json's added_tokens, else
// LLaMA-3's 256 when the file has LLaMA-3's 128000 ranks; none otherwise.
Result<std::vector<SpecialToken>> tiktoken_specials(const fs::path& folder, const json& tc, size_t ranks) {
  std::vector<SpecialToken> specials;
  auto add = [&](const json& id, const json& entry) {
    const int64_t n = id.is_string() ? std::stoll(id.get<std::string>()) : id.get<int64_t>();
    if (n < 0 || n > INT32_MAX) throw std::out_of_range("token id " + std::to_string(n));
    specials.push_back({entry.at("content").get<std::string>(), int32_t(n)});
  };
  try {
    if (tc.is_object() && tc.contains("added_tokens_decoder"))
      for (const auto& [id, entry] : tc["added_tokens_decoder"].items()) add(json(id), entry);
    if (specials.empty()) {
      auto tj = read_optional_json(folder / "tokenizer.json");
      if (!tj.ok()) return tj.status();
      if (tj->is_object() && tj->contains("added_tokens"))
        for (const json& a : (*tj)["added_tokens"]) add(a.at("id"), a);
    }
  } catch (const std::exception& e) {
    return Status::error("'" + folder.string() + "': special tokens: " + e.what());
  }
  if (specials.empty() && ranks == 128000) specials = llama3_special_tokens(128000);
  return specials;
}

// The BPE vocabulary of a tiktoken file or a tokenizer.json.
Result<BpeVocab> read_hf_bpe(const fs::path& file, const std::string& bytes, const fs::path& folder, const json& tc) {
  if (file.extension() == ".json") {
    auto v = bpe_vocab_from_hf_json(bytes);
    if (!v.ok()) return Status::error("'" + file.string() + "': " + v.message());
    return v;
  }
  // tiktoken files carry no regex; the ones model hubs ship are LLaMA-3's (cl100k-style).
  const std::string name = "tokenizer '" + file.string() + "'";
  auto v = parse_tiktoken_bpe(bytes, name, {}, BpePreTokenizer::llama3);
  if (!v.ok()) return v.status();
  auto specials = tiktoken_specials(folder, tc, v->tokens.size());
  if (!specials.ok()) return specials.status();
  LUTRA_TRY(add_special_tokens(*v, *specials, name));
  return v;
}

// The id of a tokenizer_config.json special ("bos_token": "<|begin_of_text|>" or {"content": ...}).
int32_t config_token_id(const json& tc, const char* key, const BpeVocab& v) {
  if (!tc.is_object() || !tc.contains(key)) return -1;
  const json& t = tc[key];
  if (t.is_string()) return special_token_id(v, t.get<std::string>());
  if (t.is_object() && t.contains("content") && t["content"].is_string())
    return special_token_id(v, t["content"].get<std::string>());
  return -1;
}

// Writes the folder's tokenizer (or `given`, from --tokenizer) into the model file:
// tokenizer.model (a sentencepiece ModelProto, or tiktoken text), else tokenizer.json. Either is
// padded with ids that never encode up to the config's vocabulary (embedding rows past the
// tokenizer). BPE files name no BOS/EOS: `bos_id`/`eos_id` from the model's config, else
// tokenizer_config.json's (`tc`) bos_token/eos_token, else LLaMA-3's names.
Result<TokenizerFacts> write_hf_tokenizer(ModelWriter& w, const fs::path& folder, const json& tc,
                                          const std::string& given, size_t vocab_size, int32_t bos_id, int32_t eos_id) {
  std::error_code ec;
  fs::path file = given.empty() ? folder / "tokenizer.model" : fs::path(given);
  if (!given.empty() && !fs::is_regular_file(file, ec))
    return Status::error("tokenizer '" + given + "' is not a readable file");
  if (given.empty() && !fs::exists(file, ec)) file = folder / "tokenizer.json";
  if (!fs::exists(file, ec))
    return Status::error("'" + folder.string() + "' has no tokenizer (tokenizer.model or tokenizer.json)");
  const std::string path = file.string();  // an lvalue: GCC 12 warns falsely on "'" + temporary
  std::ifstream in(file, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto too_many = [&](size_t n) {
    return Status::error("'" + path + "' has " + std::to_string(n) + " tokens, more than the config's vocab_size " +
                         std::to_string(vocab_size));
  };

  if (file.extension() == ".json" || looks_like_tiktoken(bytes.substr(0, 512))) {
    auto vocab = read_hf_bpe(file, bytes, folder, tc);
    if (!vocab.ok()) return vocab.status();
    BpeVocab& v = *vocab;
    if (v.tokens.size() > vocab_size) return too_many(v.tokens.size());
    v.tokens.resize(vocab_size, {"", BpeVocab::Kind::control});
    auto pick = [&](int32_t from_config, const char* key, const char* llama3_name) {
      if (from_config >= 0) return from_config;
      const int32_t id = config_token_id(tc, key, v);
      return id >= 0 ? id : special_token_id(v, llama3_name);
    };
    v.bos_id = pick(bos_id, "bos_token", "<|begin_of_text|>");
    v.eos_id = pick(eos_id, "eos_token", "<|end_of_text|>");
    auto tok = Tokenizer::from_bpe(std::move(v));
    if (!tok.ok()) return Status::error("'" + path + "': " + tok.message());
    LUTRA_TRY(write_bpe_tokenizer(w, tok->bpe_blob()));
    return TokenizerFacts{file.filename().string(), "bpe", tok->bos_id(), tok->eos_id(), tok->piece_id("<|eot_id|>")};
  }

  auto tok = Tokenizer::from_spm_proto(bytes);
  if (!tok.ok()) return Status::error("'" + path + "' is not a sentencepiece model: " + tok.message());
  if (tok->vocab_size() > vocab_size) return too_many(tok->vocab_size());
  if (tok->vocab_size() < vocab_size) {
    bytes = with_unused_pieces(std::move(bytes), tok->vocab_size(), vocab_size - tok->vocab_size());
    tok = Tokenizer::from_spm_proto(bytes);
    if (!tok.ok()) return Status::error("'" + path + "' padded to the vocabulary: " + tok.message());
  }
  LUTRA_TRY(write_spm_tokenizer(w, bytes));
  return TokenizerFacts{file.filename().string(), "spm", tok->bos_id(), tok->eos_id(), tok->piece_id("<|eot_id|>")};
}

// lutra's chat template for the folder: tokenizer_config.json's chat_template recognized by
// its markers, else the architecture's own, else plain. Templates that need <|eot_id|> are
// picked only when the vocabulary has it.
std::string pick_chat_template(const json& tc, const std::string& hf_arch, bool has_eot) {
  std::string tmpl;
  if (tc.is_object() && tc.contains("chat_template")) {
    const json& ct = tc["chat_template"];
    if (ct.is_string()) tmpl = ct.get<std::string>();
    if (ct.is_array())  // named templates: [{"name": "default", "template": ...}, ...]
      for (const json& e : ct)
        if (e.is_object() && e.value("name", "") == "default") tmpl = e.value("template", "");
  }
  auto has = [&](const char* marker) { return tmpl.find(marker) != std::string::npos; };
  if (has("<|start_header_id|>") && has_eot) return "llama3";
  if (has("<|eot_id|>") && has_eot) return "bitnet";  // "Role: text<|eot_id|>" turns
  if (has("[INST]")) return "llama2";
  if (hf_arch == "BitNetForCausalLM" && has_eot) return "bitnet";
  return "plain";
}

// ---- weights --------------------------------------------------------------------------------

// A linear layer's weights as the checkpoint holds them: float master weights, or BitNet's
// packed ternary codes with their scale.
struct LinearSource {
  size_t n = 0, k = 0;
  const StTensor* dense = nullptr;
  const StTensor* packed = nullptr;  // (ceil(n/4), k) uint8
  float scale = 0;                   // packed: mean|W|

  // Row r's ternary code (0, 1, 2 = w + 1) at column j of the packed weights.
  int code(size_t r, size_t j) const {
    const size_t R = packed->rows();
    return (packed->data[(r % R) * k + j] >> (2 * (r / R))) & 3;
  }
  void row(size_t r, float* out) const {
    if (dense) return dense->row_f32(r, out);
    for (size_t j = 0; j < k; ++j) out[j] = scale * float(code(r, j) - 1);
  }
};

// The folder's own name, for provenance ("dir/" and "." included).
std::string folder_display_name(const fs::path& folder) {
  fs::path p = fs::absolute(folder).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

Status convert_hf_folder(const std::string& folder_name, const std::string& output, const ConvertOptions& opts) {
  const fs::path folder(folder_name);
  auto cfg_json = read_json(folder / "config.json");
  if (!cfg_json.ok()) return cfg_json.status();
  const json& hc = *cfg_json;
  const std::string where = "Hugging Face config '" + (folder / "config.json").string() + "'";
  if (!hc.is_object()) return Status::error(where + " is not a JSON object");

  // Architecture.
  std::string hf_arch;
  if (hc.contains("architectures") && hc["architectures"].is_array() && !hc["architectures"].empty() &&
      hc["architectures"][0].is_string())
    hf_arch = hc["architectures"][0].get<std::string>();
  const HfArch* arch = nullptr;
  for (const HfArch& a : kArchs)
    if (hf_arch == a.hf_name) arch = &a;
  if (!arch)
    return Status::error(where + " names architecture '" + (hf_arch.empty() ? "(none)" : hf_arch) +
                         "', which lutra does not convert (supported: BitNetForCausalLM, BitnetForCausalLM, "
                         "LlamaForCausalLM)");

  // Hyperparameters.
  Status bad;
  auto integer = [&](const char* key, int dflt, bool required) -> int {
    if (hc.contains(key) && hc[key].is_number_integer()) return hc[key].get<int>();
    if ((hc.contains(key) && !hc[key].is_null()) || required)
      if (bad.ok()) bad = Status::error(where + ": '" + key + "' is missing or not an integer");
    return dflt;
  };
  ModelConfig c;
  ModelConfig::apply_arch_defaults(arch->lutra_arch, c);
  c.dim = integer("hidden_size", 0, true);
  c.hidden_dim = integer("intermediate_size", 0, true);
  c.n_layers = integer("num_hidden_layers", 0, true);
  c.n_heads = integer("num_attention_heads", 0, true);
  c.n_kv_heads = integer("num_key_value_heads", c.n_heads, false);
  c.vocab_size = integer("vocab_size", 0, true);
  c.max_seq_len = integer("max_position_embeddings", 2048, false);
  c.head_dim = integer("head_dim", c.n_heads > 0 ? c.dim / c.n_heads : 0, false);
  LUTRA_TRY(bad);
  {
    // The dimensions, checked before anything is sized by them (token ids come later).
    ModelConfig dims = c;
    dims.bos_id = dims.eos_id = 0;
    if (Status s = dims.validate(); !s.ok()) return Status::error(where + ": " + s.message());
  }
  c.norm_eps = hc.value("rms_norm_eps", 1e-6f);
  // Newer transformers write rope_parameters.rope_theta; older configs a top-level rope_theta.
  const json rope = hc.contains("rope_parameters") && hc["rope_parameters"].is_object() ? hc["rope_parameters"]
                    : hc.contains("rope_scaling") && hc["rope_scaling"].is_object()    ? hc["rope_scaling"]
                                                                                       : json::object();
  c.rope_theta = rope.contains("rope_theta") ? rope.value("rope_theta", 10000.0f) : hc.value("rope_theta", 10000.0f);
  const std::string rope_type = rope.value("rope_type", rope.value("type", std::string("default")));
  if (rope_type != "default")
    return Status::error(where + " asks for RoPE scaling '" + rope_type + "', which lutra does not support yet");
  c.rope_style = RopeStyle::half_split;
  if (hc.value("attention_bias", false) || hc.value("mlp_bias", false))
    return Status::error(where + " has attention or MLP biases, which lutra's layers do not have");
  const std::string act = hc.value("hidden_act", std::string(c.activation == Activation::silu ? "silu" : "relu2"));
  if (act == "silu") c.activation = Activation::silu;
  else if (act == "relu2") c.activation = Activation::relu2;
  else return Status::error(where + " has hidden_act '" + act + "' (supported: silu, relu2)");

  // The optional side files, read (and checked) before anything is written.
  auto tc = read_optional_json(folder / "tokenizer_config.json");
  if (!tc.ok()) return tc.status();
  auto gen = read_optional_json(folder / "generation_config.json");
  if (!gen.ok()) return gen.status();

  auto weights_set = SafetensorsSet::open_folder(folder_name);
  if (!weights_set.ok()) return weights_set.status();
  const SafetensorsSet& st = *weights_set;
  // Tied unless the config says otherwise; a config that says nothing is tied exactly when
  // there is no separate head.
  c.tied_embeddings = hc.contains("tie_word_embeddings") && hc["tie_word_embeddings"].is_boolean()
                          ? hc["tie_word_embeddings"].get<bool>()
                          : st.find("lm_head.weight") == nullptr;

  // The packed BitNet release.
  bool packed_release = false, scale_is_reciprocal = true;
  if (hc.contains("quantization_config") && hc["quantization_config"].is_object()) {
    const json& q = hc["quantization_config"];
    const std::string method = q.value("quant_method", std::string());
    if (method != "bitnet")
      return Status::error(where + " is quantized with '" + method + "', which lutra does not read (supported: bitnet)");
    packed_release = q.value("quantization_mode", std::string("offline")) == "offline";
    const std::string linear_class = q.value("linear_class", std::string("bitlinear"));
    if (linear_class != "bitlinear" && linear_class != "autobitlinear")
      return Status::error(where + " has bitnet linear_class '" + linear_class + "' (supported: bitlinear, autobitlinear)");
    scale_is_reciprocal = linear_class == "bitlinear";
  }

  // Recipe.
  auto wspec = PackSpec::parse(!opts.weights.empty() ? opts.weights : arch->ternary ? kTernaryWeights : kLlamaWeights);
  if (!wspec.ok()) return wspec.status();
  const bool ternary_out = is_ternary(wspec->format);  // t2, t3, t5

  const size_t dim = size_t(c.dim), hid = size_t(c.hidden_dim), qd = size_t(c.q_dim()), kvd = size_t(c.kv_dim()),
               V = size_t(c.vocab_size);
  std::set<std::string> dtypes;
  auto vector = [&](const std::string& name, size_t n) -> Result<std::vector<float>> {
    auto t = st.get(name, {n});
    if (!t.ok()) return t.status();
    if (!(*t)->is_float())
      return Status::error("tensor '" + name + "' has dtype " + (*t)->dtype_name + "; norms must be F32, F16 or BF16");
    dtypes.insert((*t)->dtype_name);
    return (*t)->to_f32();
  };
  auto linear = [&](const std::string& name, size_t n, size_t k) -> Result<LinearSource> {
    LinearSource s{n, k};
    const StTensor* t = st.find(name);
    if (!t) return Status::error("the checkpoint lacks tensor '" + name + "'");
    if (t->dtype == StDtype::u8 && packed_release) {
      auto p = st.get(name, {(n + 3) / 4, k});
      if (!p.ok()) return Status::error(p.message() + " (packed ternary: (ceil(rows/4), cols) uint8)");
      const StTensor* ws = st.find(name + "_scale");
      if (!ws || !ws->is_float() || ws->elements() != 1)
        return Status::error("packed tensor '" + name + "' lacks its weight_scale (one float)");
      float v;
      ws->row_f32(0, &v);
      if (!std::isfinite(v) || !(v > 0))
        return Status::error("packed tensor '" + name + "' has weight_scale " + std::to_string(v));
      s.packed = *p;
      s.scale = scale_is_reciprocal ? 1.0f / v : v;
      for (size_t r = 0; r < n; ++r)  // 3 is no ternary value (rows past n are padding)
        for (size_t j = 0; j < k; ++j)
          if (s.code(r, j) == 3)
            return Status::error("packed tensor '" + name + "' holds the invalid code 3 at row " + std::to_string(r) +
                                 ", column " + std::to_string(j));
      dtypes.insert("U8 (packed ternary)");
      dtypes.insert(ws->dtype_name);
      return s;
    }
    auto d = st.get(name, {n, k});
    if (!d.ok()) return d.status();
    if (!(*d)->is_float())
      return Status::error("tensor '" + name + "' has dtype " + (*d)->dtype_name +
                           (t->dtype == StDtype::u8 ? " without a bitnet quantization_config" : "") +
                           "; lutra converts F32, F16 and BF16 weights, and BitNet's packed U8");
    s.dense = *d;
    dtypes.insert((*d)->dtype_name);
    return s;
  };
  for (const std::string& name : st.names())
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0)
      return Status::error("the checkpoint has a bias '" + name + "', which lutra's layers do not have");

  // The embedding's precision as stored (f32 stays f32, f16 and bf16 become f16).
  auto embed = st.get("model.embed_tokens.weight", {V, dim});
  if (!embed.ok()) return embed.status();
  const StTensor* embed_src = *embed;
  const StTensor* head_src = embed_src;
  if (!c.tied_embeddings) {
    auto h = st.get("lm_head.weight", {V, dim});
    if (!h.ok()) return h.status();
    head_src = *h;
  }
  for (const StTensor* t : {embed_src, head_src})
    if (!t->is_float()) return Status::error("tensor '" + t->name + "' has dtype " + t->dtype_name + "; it must be F32, F16 or BF16");
  dtypes.insert(embed_src->dtype_name);
  dtypes.insert(head_src->dtype_name);
  auto plan = plan_head(opts, c.tied_embeddings, *PackSpec::parse(embed_src->dtype == StDtype::f32 ? "f32" : "f16"), dim);
  if (!plan.ok()) return plan.status();

  auto writer = ModelWriter::create(output);
  if (!writer.ok()) return writer.status();
  ModelWriter& w = **writer;
  TensorSteps steps(opts, w, c, plan->head_tensors());
  auto step = [&](const std::string& name) { return steps.step(name); };

  // bos/eos: config.json, else generation_config.json, else the tokenizer's own. Every eos
  // id stops generation.
  std::vector<int32_t> bos = ids_of(hc, "bos_token_id"), eos = ids_of(hc, "eos_token_id");
  if (bos.empty()) bos = ids_of(*gen, "bos_token_id");
  if (eos.empty()) eos = ids_of(*gen, "eos_token_id");
  auto tok = write_hf_tokenizer(w, folder, *tc, opts.tokenizer, V, bos.empty() ? -1 : bos[0], eos.empty() ? -1 : eos[0]);
  if (!tok.ok()) return tok.status();
  LUTRA_TRY(step(tok->type == "bpe" ? kTokenizerBpe : kTokenizerSpm));
  if (bos.empty() && tok->bos_id >= 0) bos = {tok->bos_id};
  if (eos.empty() && tok->eos_id >= 0) eos = {tok->eos_id};
  if (bos.empty() || eos.empty()) return Status::error(where + " gives no bos_token_id or eos_token_id");
  c.bos_id = bos[0];
  c.eos_id = eos[0];
  c.stop_ids = eos;
  c.chat_template = !opts.chat_template.empty() ? opts.chat_template
                                                : pick_chat_template(*tc, hf_arch, tok->eot_id >= 0);
  // Chat turns end with <|eot_id|> (llama3, bitnet): a vocabulary that has it stops there too,
  // as the GGUF importer does.
  if (tok->eot_id >= 0 && std::find(eos.begin(), eos.end(), tok->eot_id) == eos.end())
    c.stop_ids.push_back(tok->eot_id);
  if (Status s = c.validate(); !s.ok()) return Status::error(where + ": " + s.message());

  auto mat = [&](const std::string& hf_name, const std::string& name, size_t n, size_t k) -> Status {
    auto src = linear(hf_name, n, k);
    if (!src.ok()) return src.status();
    const LinearSource& s = *src;
    if (s.packed && ternary_out) {
      // The exact ternary codes, in the t2 layout (the same w + 1 codes, 4 per byte along k).
      std::vector<uint8_t> t2(n * t2_row_bytes(k), 0);
      for (size_t r = 0; r < n; ++r)
        for (size_t j = 0; j < k; ++j) t2[r * t2_row_bytes(k) + j / 4] |= uint8_t(s.code(r, j) << (2 * (j % 4)));
      LUTRA_TRY(write_ternary(w, name, wspec->format, n, k, s.scale, t2));
    } else if (ternary_out && std::string(arch->hf_name) == "BitNetForCausalLM") {
      // Master weights: absmean ternary, with the scale rounded as the packed release stores
      // it (weight_scale = 1/mean|W| in bf16), so both releases convert to the same model.
      std::vector<uint8_t> t2;
      float scale = ternarize_t2(n, k, [&](size_t r, float* out) { s.row(r, out); }, t2);
      scale = 1.0f / bf16_to_f32(f32_to_bf16(1.0f / scale));
      LUTRA_TRY(write_ternary(w, name, wspec->format, n, k, scale, t2));
    } else {
      LUTRA_TRY(write_matrix(w, name, n, k, *wspec, [&](size_t r, float* out) { s.row(r, out); }));
    }
    return step(name);
  };
  auto vec = [&](const std::string& hf_name, const std::string& name, size_t n) -> Status {
    auto v = vector(hf_name, n);
    if (!v.ok()) return v.status();
    LUTRA_TRY(write_vector(w, name, *v));
    return step(name);
  };
  // The first of the names the checkpoint has (the sub-norms are spelled two ways).
  auto either = [&](const std::string& a, const std::string& b) { return st.find(a) || !st.find(b) ? a : b; };
  LUTRA_TRY(write_embedding(w, *plan, V, dim, [&](size_t r, float* out) { embed_src->row_f32(r, out); }));
  LUTRA_TRY(step(kTokenEmbd));
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    LUTRA_TRY(vec(p + "input_layernorm.weight", layer_tensor(l, "attn_norm"), dim));
    LUTRA_TRY(mat(p + "self_attn.q_proj.weight", layer_tensor(l, "attn_q"), qd, dim));
    LUTRA_TRY(mat(p + "self_attn.k_proj.weight", layer_tensor(l, "attn_k"), kvd, dim));
    LUTRA_TRY(mat(p + "self_attn.v_proj.weight", layer_tensor(l, "attn_v"), kvd, dim));
    if (c.sub_norms)
      LUTRA_TRY(vec(either(p + "self_attn.attn_sub_norm.weight", p + "self_attn.inner_attn_ln.weight"),
                    layer_tensor(l, "attn_sub_norm"), qd));
    LUTRA_TRY(mat(p + "self_attn.o_proj.weight", layer_tensor(l, "attn_output"), dim, qd));
    LUTRA_TRY(vec(p + "post_attention_layernorm.weight", layer_tensor(l, "ffn_norm"), dim));
    LUTRA_TRY(mat(p + "mlp.gate_proj.weight", layer_tensor(l, "ffn_gate"), hid, dim));
    LUTRA_TRY(mat(p + "mlp.up_proj.weight", layer_tensor(l, "ffn_up"), hid, dim));
    if (c.sub_norms)
      LUTRA_TRY(vec(either(p + "mlp.ffn_sub_norm.weight", p + "mlp.ffn_layernorm.weight"),
                    layer_tensor(l, "ffn_sub_norm"), hid));
    LUTRA_TRY(mat(p + "mlp.down_proj.weight", layer_tensor(l, "ffn_down"), dim, hid));
  }
  LUTRA_TRY(vec("model.norm.weight", kOutputNorm, dim));
  LUTRA_TRY(write_head(w, *plan, V, dim, [&](size_t r, float* out) { head_src->row_f32(r, out); }, steps));

  std::string dtype_list;
  for (const std::string& d : dtypes) dtype_list += (dtype_list.empty() ? "" : ", ") + d;
  json prov = {
      {"source", folder_display_name(folder)},
      {"source_format", "Hugging Face safetensors (" + std::to_string(st.shard_count()) +
                            (st.shard_count() == 1 ? " file)" : " shards)")},
      {"architecture", hf_arch},
      {"source_dtypes", dtype_list},
      {"tokenizer_source", tok->source},
      {"recipe", {{"weights", wspec->to_string()}, {"embedding", plan->embedding_name()}, {"head", plan->head_name()}}},
      {"converter", std::string("lutra ") + LUTRA_VERSION}};
  if (packed_release)
    prov["quantization"] = std::string("bitnet offline: packed ternary, weight_scale = ") +
                           (scale_is_reciprocal ? "1/mean|W|" : "mean|W|");
  return w.finish(model_metadata(c, prov.dump(), tok->type));
}

}  // namespace

Status convert_hf(const std::string& folder, const std::string& output, const ConvertOptions& opts) {
  try {
    return convert_hf_folder(folder, output, opts);
  } catch (const json::exception& e) {  // a config value of the wrong type
    return Status::error("'" + (fs::path(folder) / "config.json").string() + "': " + e.what());
  }
}

}  // namespace lutra
