// GGUF checkpoints (convert/gguf.h) into lutra model files.
//
// Architectures, by general.architecture:
//   "llama"         llama.cpp's LLaMA graph. Its converter permutes the q/k rows of Hugging
//                   Face checkpoints so that RoPE rotates adjacent pairs: interleaved RoPE.
//   "bitnet"        llama.cpp's 1bitLLM BitNet graph (SiLU FFN, attn/ffn sub-norms, tied head);
//                   llama.cpp rotates it NeoX-style (pairs i, i + d/2) on unpermuted weights.
//   "bitnet-b1.58", "bitnet-25"
//                   bitnet.cpp's BitNet b1.58 2B4T (relu² FFN, sub-norms, tied head); its
//                   converter does not permute q/k either: half-split RoPE.
// Hyperparameters come from "<arch>.*" keys, tensors from llama.cpp's names
// ("blk.N.attn_q.weight", ...; dims[0] is the input width). llama.cpp's bitnet graph also
// accepts optional per-tensor "<name>.scale" factors: they are folded into the weights.
#include "convert/gguf_import.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "convert/bpe_import.h"
#include "convert/convert.h"
#include "convert/gguf_decode.h"
#include "convert/head_plan.h"
#include "convert/pack.h"
#include "runtime/model.h"
#include "runtime/tokenizer.h"

namespace lutra {

namespace {

// llama.cpp's token types (llama_token_type / gguf TokenType).
TokenPiece::Kind piece_kind(int64_t type) {
  switch (type) {
    case 2: return TokenPiece::Kind::unknown;
    case 3: return TokenPiece::Kind::control;
    case 4: return TokenPiece::Kind::user_defined;
    case 5: return TokenPiece::Kind::unused;
    case 6: return TokenPiece::Kind::byte;
    default: return TokenPiece::Kind::normal;  // 1 normal, 0 undefined
  }
}

// An optional u32 key, or a fallback.
Result<uint32_t> u32_or(const GgufFile& f, const std::string& key, uint32_t fallback) {
  auto v = f.find_u32(key);
  if (!v.ok()) return v.status();
  return v->value_or(fallback);
}

// A tensor's values are all 0 or ±s for one s > 0: ternary weights stored as floats (llama.cpp
// and bitnet.cpp converters write BitNet weights pre-quantized). Absmean would ternarize them
// to the same codes but with the wrong scale (s times the fraction of non-zeros).
std::optional<TernaryMatrix> exact_ternary(size_t n, size_t k, const RowSource& rows, float factor) {
  TernaryMatrix m;
  m.n = n;
  m.k = k;
  m.t2.assign(n * t2_row_bytes(k), 0);
  std::vector<float> row(k);
  float s = 0;
  for (size_t r = 0; r < n; ++r) {
    rows(r, row.data());
    uint8_t* out = m.t2.data() + r * t2_row_bytes(k);
    for (size_t j = 0; j < k; ++j) {
      const float v = row[j];
      int code = 1;
      if (v != 0) {
        if (s == 0) s = std::fabs(v);
        if (std::fabs(v) != s || !std::isfinite(v)) return std::nullopt;
        code = v > 0 ? 2 : 0;
      }
      out[j / 4] |= uint8_t(code << (2 * (j % 4)));
    }
  }
  m.scale = (s == 0 ? 1.0f : s) * factor;
  if (!(m.scale > 0) || !std::isfinite(m.scale)) return std::nullopt;
  return m;
}

bool is_bitnet(const std::string& arch) { return arch == "bitnet" || arch == "bitnet-b1.58"; }

class GgufImporter {
 public:
  GgufImporter(const GgufFile& f, const std::string& input, const ConvertOptions& opts)
      : f_(f), input_(input), opts_(opts) {}
  Status run(const std::string& output);

 private:
  Status read_config();
  Result<Tokenizer> read_vocabulary();
  Result<const GgufTensorInfo*> tensor(const std::string& name, std::vector<uint64_t> dims);
  Status matrix(ModelWriter& w, const std::string& name, const GgufTensorInfo& t);
  // The rows of a tensor as floats, times its optional ".scale" factor.
  Result<RowSource> float_rows(const std::string& name, const GgufTensorInfo& t);
  Status vector(ModelWriter& w, const std::string& name, const GgufTensorInfo& t);
  Result<float> scale_factor(const std::string& gguf_name);

  const GgufFile& f_;
  const std::string& input_;
  const ConvertOptions& opts_;
  std::string gguf_arch_;
  ModelConfig c_;
  std::set<std::string> used_;
  nlohmann::json source_types_ = nlohmann::json::object();
  nlohmann::json fallbacks_ = nlohmann::json::object();
  std::optional<PackSpec> weights_;
  bool ternary_layers_ = false;  // the default recipe kept some layers ternary
};

Status GgufImporter::read_config() {
  auto arch = f_.get_string("general.architecture");
  if (!arch.ok()) return arch.status();
  gguf_arch_ = *arch;
  std::string lutra_arch;
  if (gguf_arch_ == "llama") lutra_arch = "llama";
  else if (gguf_arch_ == "bitnet") lutra_arch = "bitnet";
  else if (gguf_arch_ == "bitnet-b1.58" || gguf_arch_ == "bitnet-25") lutra_arch = "bitnet-b1.58";
  else
    return Status::error(f_.name() + " has architecture '" + gguf_arch_ +
                         "' (supported: llama, bitnet, bitnet-b1.58, bitnet-25)");
  ModelConfig::apply_arch_defaults(lutra_arch, c_);
  c_.rope_style = lutra_arch == "llama" ? RopeStyle::interleaved : RopeStyle::half_split;

  const std::string a = gguf_arch_ + ".";
  auto need = [&](const std::string& key, int& out) -> Status {
    auto v = f_.get_u32(a + key);
    if (!v.ok()) return v.status();
    if (*v > uint32_t(INT32_MAX)) return Status::error(f_.name() + ": metadata '" + a + key + "' is out of range");
    out = int(*v);
    return ok_status();
  };
  LUTRA_TRY(need("embedding_length", c_.dim));
  LUTRA_TRY(need("feed_forward_length", c_.hidden_dim));
  LUTRA_TRY(need("block_count", c_.n_layers));
  LUTRA_TRY(need("attention.head_count", c_.n_heads));
  LUTRA_TRY(need("context_length", c_.max_seq_len));
  auto kv = u32_or(f_, a + "attention.head_count_kv", uint32_t(c_.n_heads));
  if (!kv.ok()) return kv.status();
  c_.n_kv_heads = int(*kv);
  if (c_.n_heads <= 0) return Status::error(f_.name() + ": metadata '" + a + "attention.head_count' is 0");
  auto head = u32_or(f_, a + "attention.key_length", uint32_t(c_.dim / c_.n_heads));
  if (!head.ok()) return head.status();
  c_.head_dim = int(*head);
  auto rope_dims = u32_or(f_, a + "rope.dimension_count", uint32_t(c_.head_dim));
  if (!rope_dims.ok()) return rope_dims.status();
  if (int(*rope_dims) != c_.head_dim)
    return Status::error(f_.name() + " rotates " + std::to_string(*rope_dims) + " of " + std::to_string(c_.head_dim) +
                         " head dimensions: partial RoPE is not supported");
  // llama.cpp's bitnet converter writes linear scaling with factor 1: no scaling at all.
  auto scaling = f_.find_string(a + "rope.scaling.type");
  auto factor = f_.find_f32(a + "rope.scaling.factor");
  if (!scaling.ok()) return scaling.status();
  if (!factor.ok()) return factor.status();
  const std::string kind = scaling->value_or("none");
  if (kind != "none" && !(kind == "linear" && factor->value_or(1.0f) == 1.0f))
    return Status::error(f_.name() + " uses RoPE scaling '" + kind + "', which lutra does not support");
  auto eps = f_.find_f32(a + "attention.layer_norm_rms_epsilon");
  if (!eps.ok()) return eps.status();
  c_.norm_eps = eps->value_or(1e-5f);
  auto theta = f_.find_f32(a + "rope.freq_base");
  if (!theta.ok()) return theta.status();
  c_.rope_theta = theta->value_or(10000.0f);

  auto tokens = f_.find("tokenizer.ggml.tokens");
  if (!tokens || tokens->type != GgufType::array)
    return Status::error(f_.name() + " has no vocabulary (tokenizer.ggml.tokens)");
  if (tokens->count > (uint64_t(1) << 24))
    return Status::error(f_.name() + " has " + std::to_string(tokens->count) + " tokens, more than lutra supports");
  c_.vocab_size = int(tokens->count);
  c_.tied_embeddings = f_.find_tensor("output.weight") == nullptr;
  return ok_status();  // validated once the vocabulary gives the token ids (read_vocabulary)
}

// The vocabulary (sentencepiece for tokenizer.ggml.model "llama", byte-level BPE for "gpt2"),
// and what the config takes from it: BOS/EOS, the ids that stop generation (EOS, EOT; a
// vocabulary with <|eot_id|> but no eot_token_id, as bitnet.cpp's 2B4T file, stops at it too)
// and the chat template.
Result<Tokenizer> GgufImporter::read_vocabulary() {
  auto model = f_.get_string("tokenizer.ggml.model");
  if (!model.ok()) return model.status();
  Result<Tokenizer> tok = Status::error(f_.name() + " has tokenizer model '" + *model + "' (supported: llama, gpt2)");
  if (*model == "llama") {
    auto vocab = read_gguf_spm_vocab(f_);
    if (!vocab.ok()) return vocab.status();
    tok = Tokenizer::from_spm_proto(make_spm_model_proto(vocab->pieces, vocab->options));
  } else if (*model == "gpt2") {
    auto vocab = bpe_vocab_from_gguf(f_);
    if (!vocab.ok()) return vocab.status();
    tok = Tokenizer::from_bpe(std::move(vocab).value());
  }
  if (!tok.ok()) return Status::error(f_.name() + ": " + tok.message());
  if (tok->vocab_size() != size_t(c_.vocab_size))
    return Status::error(f_.name() + ": the vocabulary has " + std::to_string(tok->vocab_size()) + " tokens, not " +
                         std::to_string(c_.vocab_size));
  c_.bos_id = tok->bos_id();
  c_.eos_id = tok->eos_id();
  if (c_.bos_id < 0 || c_.eos_id < 0)
    return Status::error(f_.name() + " gives no tokenizer.ggml.bos_token_id or eos_token_id");
  c_.stop_ids = {c_.eos_id};
  auto eot = f_.find_u32("tokenizer.ggml.eot_token_id");
  if (!eot.ok()) return eot.status();
  const int32_t eot_id = eot->has_value() ? int32_t(**eot) : tok->piece_id("<|eot_id|>");
  if (eot_id >= 0 && eot_id != c_.eos_id) c_.stop_ids.push_back(eot_id);

  if (!opts_.chat_template.empty()) {
    c_.chat_template = opts_.chat_template;
  } else {
    auto jinja = f_.find_string("tokenizer.chat_template");
    if (!jinja.ok()) return jinja.status();
    if (jinja->has_value()) c_.chat_template = chat_template_from_jinja(**jinja);
    else if (c_.arch == "bitnet-b1.58" && tok->piece_id("<|eot_id|>") >= 0) c_.chat_template = "bitnet";
    else c_.chat_template = "plain";
  }
  if (Status s = c_.validate(); !s.ok()) return Status::error(f_.name() + ": " + s.message());
  return tok;
}

// The GGUF tensor "<name>.weight" with the given dims (GGUF order), marked as used.
Result<const GgufTensorInfo*> GgufImporter::tensor(const std::string& name, std::vector<uint64_t> dims) {
  const std::string full = name + ".weight";
  const GgufTensorInfo* t = f_.find_tensor(full);
  if (!t)
    return Status::error(f_.name() + " lacks tensor '" + full + "', which the " + gguf_arch_ + " architecture needs");
  // Vectors may be stored as [n] or [n, 1].
  std::vector<uint64_t> got = t->dims;
  while (got.size() > dims.size() && got.back() == 1) got.pop_back();
  if (got != dims) {
    auto show = [](const std::vector<uint64_t>& d) {
      std::string s = "[";
      for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
      return s + "]";
    };
    return Status::error(f_.name() + ": tensor '" + full + "' has shape " + show(t->dims) + ", expected " + show(dims) +
                         " from the metadata");
  }
  used_.insert(full);
  source_types_[ggml_type_name(t->type)] = source_types_.value(ggml_type_name(t->type), 0) + 1;
  return t;
}

// llama.cpp's optional per-tensor scale "<name>.scale" (one float), else 1.
Result<float> GgufImporter::scale_factor(const std::string& name) {
  const GgufTensorInfo* s = f_.find_tensor(name + ".scale");
  if (!s) return 1.0f;
  used_.insert(s->name);
  if (s->n_elements() != 1) return Status::error(f_.name() + ": tensor '" + s->name + "' should hold one value");
  auto rows = GgufRows::open(f_, *s);
  if (!rows.ok()) return rows.status();
  float v;
  rows->row(0, &v);
  if (!std::isfinite(v) || v <= 0.0f)  // it multiplies a ternary scale: 0 or NaN breaks the layer
    return Status::error(f_.name() + ": tensor '" + s->name + "' holds " + std::to_string(v) +
                         ", not a positive scale");
  return v;
}

Result<RowSource> GgufImporter::float_rows(const std::string& name, const GgufTensorInfo& t) {
  auto factor = scale_factor(name);
  if (!factor.ok()) return factor.status();
  auto rows = GgufRows::open(f_, t);
  if (!rows.ok()) return rows.status();
  return RowSource([rows = *rows, f = *factor](size_t r, float* out) {
    rows.row(r, out);
    if (f != 1.0f)
      for (size_t j = 0; j < rows.row_length(); ++j) out[j] *= f;
  });
}

Status GgufImporter::matrix(ModelWriter& w, const std::string& name, const GgufTensorInfo& t) {
  const size_t n = t.rows(), k = t.row_length();
  const bool ternary_source = ggml_type_is_ternary(t.type);
  auto factor = scale_factor(name);
  if (!factor.ok()) return factor.status();
  const float f = *factor;
  auto rows = GgufRows::open(f_, t);
  if (!rows.ok()) return rows.status();
  auto source = float_rows(name, t);
  if (!source.ok()) return source.status();

  // Defaults: ternary weights stay exact (t3); other linear layers get 4-bit groups. Shapes a
  // group does not divide keep the source's precision. (The embedding and head:
  // convert/head_plan.h.)
  PackSpec spec;
  if (weights_) spec = *weights_;
  else {
    const bool ternary_layer = ternary_source || is_bitnet(c_.arch);
    ternary_layers_ |= ternary_layer;
    spec = *PackSpec::parse(ternary_layer ? "t3" : "b4g32");
  }
  if (spec.format == WeightFormat::bq && k % size_t(spec.group) != 0) {
    spec = *PackSpec::parse(GgmlType(t.type) == GgmlType::f32 ? "f32" : "f16");
    // Recorded per role ("ffn_down"), not per layer.
    const std::string role = name.rfind("blk.", 0) == 0 ? name.substr(name.find('.', 4) + 1) : name;
    fallbacks_[role] = spec.to_string();
  }

  if (is_ternary(spec.format)) {  // t2, t3, t5: ternary sources stay exact
    if (ternary_source) {
      auto m = decode_ternary(f_, t);
      if (!m.ok()) return m.status();
      return write_ternary(w, name, spec.format, n, k, m->scale * f, m->t2);
    }
    if (auto m = exact_ternary(n, k, [&](size_t r, float* out) { rows->row(r, out); }, f))
      return write_ternary(w, name, spec.format, n, k, m->scale, m->t2);
  }
  return write_matrix(w, name, n, k, spec, *source);
}

Status GgufImporter::vector(ModelWriter& w, const std::string& name, const GgufTensorInfo& t) {
  auto rows = GgufRows::open(f_, t);
  if (!rows.ok()) return rows.status();
  std::vector<float> v(t.n_elements());
  for (size_t r = 0; r < rows->rows(); ++r) rows->row(r, v.data() + r * rows->row_length());
  return write_vector(w, name, v);
}

Status GgufImporter::run(const std::string& output) {
  LUTRA_TRY(read_config());
  if (!opts_.weights.empty()) {
    auto s = PackSpec::parse(opts_.weights);
    if (!s.ok()) return s.status();
    weights_ = *s;
  }

  // The vocabulary, before anything is written.
  auto tok = read_vocabulary();
  if (!tok.ok()) return tok.status();
  const bool bpe = tok->type() == Tokenizer::Type::bpe;

  const uint64_t dim = uint64_t(c_.dim), hid = uint64_t(c_.hidden_dim), qd = uint64_t(c_.q_dim()),
                 kvd = uint64_t(c_.kv_dim()), V = uint64_t(c_.vocab_size);
  // The embedding and head (convert/head_plan.h): the source's precision is f32 for F32
  // tensors, else f16.
  auto embd = tensor(kTokenEmbd, {dim, V});
  if (!embd.ok()) return embd.status();
  auto head = c_.tied_embeddings ? embd : tensor(kOutput, {dim, V});
  if (!head.ok()) return head.status();
  auto embd_rows = float_rows(kTokenEmbd, **embd);
  if (!embd_rows.ok()) return embd_rows.status();
  auto head_rows = c_.tied_embeddings ? embd_rows : float_rows(kOutput, **head);
  if (!head_rows.ok()) return head_rows.status();
  auto plan = plan_head(opts_, c_.tied_embeddings,
                        *PackSpec::parse(GgmlType((*embd)->type) == GgmlType::f32 ? "f32" : "f16"), size_t(dim));
  if (!plan.ok()) return plan.status();

  auto writer = ModelWriter::create(output);
  if (!writer.ok()) return writer.status();
  ModelWriter& w = **writer;
  TensorSteps steps(opts_, w, c_, plan->head_tensors());
  auto step = [&](const std::string& name) { return steps.step(name); };
  auto mat = [&](const std::string& name, std::vector<uint64_t> dims) -> Status {
    auto t = tensor(name, std::move(dims));
    if (!t.ok()) return t.status();
    LUTRA_TRY(matrix(w, name, **t));
    return step(name);
  };
  auto vec = [&](const std::string& name, uint64_t n) -> Status {
    auto t = tensor(name, {n});
    if (!t.ok()) return t.status();
    LUTRA_TRY(vector(w, name, **t));
    return step(name);
  };

  LUTRA_TRY(bpe ? write_bpe_tokenizer(w, tok->bpe_blob()) : write_spm_tokenizer(w, tok->spm_proto()));
  LUTRA_TRY(step(bpe ? kTokenizerBpe : kTokenizerSpm));
  LUTRA_TRY(write_embedding(w, *plan, size_t(V), size_t(dim), *embd_rows));
  LUTRA_TRY(step(kTokenEmbd));
  for (int l = 0; l < c_.n_layers; ++l) {
    LUTRA_TRY(vec(layer_tensor(l, "attn_norm"), dim));
    LUTRA_TRY(mat(layer_tensor(l, "attn_q"), {dim, qd}));
    LUTRA_TRY(mat(layer_tensor(l, "attn_k"), {dim, kvd}));
    LUTRA_TRY(mat(layer_tensor(l, "attn_v"), {dim, kvd}));
    if (c_.sub_norms) LUTRA_TRY(vec(layer_tensor(l, "attn_sub_norm"), qd));
    LUTRA_TRY(mat(layer_tensor(l, "attn_output"), {qd, dim}));
    LUTRA_TRY(vec(layer_tensor(l, "ffn_norm"), dim));
    LUTRA_TRY(mat(layer_tensor(l, "ffn_gate"), {dim, hid}));
    LUTRA_TRY(mat(layer_tensor(l, "ffn_up"), {dim, hid}));
    if (c_.sub_norms) LUTRA_TRY(vec(layer_tensor(l, "ffn_sub_norm"), hid));
    LUTRA_TRY(mat(layer_tensor(l, "ffn_down"), {hid, dim}));
  }
  LUTRA_TRY(vec(kOutputNorm, dim));
  LUTRA_TRY(write_head(w, *plan, size_t(V), size_t(dim), *head_rows, steps));
  // A tensor the graph does not read would be silently dropped: refuse instead.
  for (const GgufTensorInfo& t : f_.tensors())
    if (!used_.count(t.name))
      return Status::error(f_.name() + ": tensor '" + t.name + "' is not part of lutra's " + c_.arch +
                           " graph (unsupported variant of the architecture)");

  auto spec_name = [](const std::optional<PackSpec>& s, const char* dflt) {
    return s ? s->to_string() : std::string(dflt) + " (default)";
  };
  nlohmann::json recipe = {{"weights", spec_name(weights_, ternary_layers_ ? "t3" : "b4g32")},
                           {"embedding", plan->embedding_name()},
                           {"head", plan->head_name()}};
  if (!fallbacks_.empty()) recipe["fallbacks (rows not a multiple of the group)"] = fallbacks_;
  nlohmann::json prov = {{"source", std::filesystem::path(input_).filename().string()},
                         {"source_format", "GGUF v" + std::to_string(f_.version())},
                         {"gguf_architecture", gguf_arch_},
                         {"source_types", source_types_},
                         {"recipe", recipe},
                         {"converter", std::string("lutra ") + LUTRA_VERSION}};
  if (auto name = f_.find_string("general.name"); name.ok() && name->has_value()) prov["source_name"] = **name;
  if (auto add_bos = f_.find_bool("tokenizer.ggml.add_bos_token"); add_bos.ok() && add_bos->has_value())
    prov["add_bos"] = **add_bos;
  return w.finish(model_metadata(c_, prov.dump(), bpe ? "bpe" : "spm"));
}

}  // namespace

Result<GgufSpmVocab> read_gguf_spm_vocab(const GgufFile& f) {
  auto tokens = f.get_string_array("tokenizer.ggml.tokens");
  if (!tokens.ok()) return tokens.status();
  const size_t n = tokens->size();
  std::vector<float> scores(n, 0.0f);
  if (f.has("tokenizer.ggml.scores")) {
    auto s = f.get_float_array("tokenizer.ggml.scores");
    if (!s.ok()) return s.status();
    if (s->size() != n) return Status::error(f.name() + ": tokenizer.ggml.scores and tokens differ in length");
    scores = std::move(*s);
  }
  std::vector<int64_t> types(n, 1);
  if (f.has("tokenizer.ggml.token_type")) {
    auto t = f.get_int_array("tokenizer.ggml.token_type");
    if (!t.ok()) return t.status();
    if (t->size() != n) return Status::error(f.name() + ": tokenizer.ggml.token_type and tokens differ in length");
    types = std::move(*t);
  }
  GgufSpmVocab v;
  v.pieces.resize(n);
  for (size_t i = 0; i < n; ++i) v.pieces[i] = {std::move((*tokens)[i]), scores[i], piece_kind(types[i])};
  auto id = [&](const char* key, int32_t fallback) -> Result<int32_t> {
    auto x = f.find_u32(key);
    if (!x.ok()) return x.status();
    if (!x->has_value()) return fallback;
    if (**x >= n) return Status::error(f.name() + ": metadata '" + key + "' is outside the vocabulary");
    return int32_t(**x);
  };
  auto bos = id("tokenizer.ggml.bos_token_id", 1);
  auto eos = id("tokenizer.ggml.eos_token_id", 2);
  auto unk = id("tokenizer.ggml.unknown_token_id", 0);
  if (!bos.ok()) return bos.status();
  if (!eos.ok()) return eos.status();
  if (!unk.ok()) return unk.status();
  v.options.bos_id = *bos;
  v.options.eos_id = *eos;
  v.options.unk_id = *unk;
  auto prefix = f.find_bool("tokenizer.ggml.add_space_prefix");
  if (!prefix.ok()) return prefix.status();
  v.options.add_dummy_prefix = prefix->value_or(true);
  return v;
}

std::string chat_template_from_jinja(const std::string& jinja) {
  auto has = [&](const char* s) { return jinja.find(s) != std::string::npos; };
  if (has("<|start_header_id|>")) return "llama3";
  if (has("[INST]")) return "llama2";
  // BitNet b1.58 2B4T: "Role: content<|eot_id|>" turns (bitnet.cpp's converter writes a
  // variant ending in "BITNETAssistant: ").
  if ((has("<|eot_id|>") && has("Assistant: ")) || has("BITNETAssistant")) return "bitnet";
  return "plain";
}

Status convert_gguf(const std::string& input, const std::string& output, const ConvertOptions& opts) {
  auto file = GgufFile::open(input);
  if (!file.ok()) return file.status();
  GgufImporter importer(**file, input, opts);
  return importer.run(output);
}

}  // namespace lutra
