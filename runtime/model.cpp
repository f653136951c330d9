#include "runtime/model.h"

#include <nlohmann/json.hpp>

#include "runtime/head.h"

namespace lutra {

using json = nlohmann::json;

std::string layer_tensor(int layer, const char* what) {
  return "blk." + std::to_string(layer) + "." + what;
}

WeightView weight_view(const ModelFile& file, const TensorInfo& t) {
  WeightView w;
  parse_weight_format(t.format, w.format);
  w.n = t.shape[0];
  w.k = t.shape.size() > 1 ? t.shape[1] : 1;
  w.data = file.data(t).data();
  w.scale = t.scale;
  w.bits = t.bits;
  w.group = t.group;
  w.asymmetric = t.asymmetric;
  return w;
}

namespace {

// Looks tensors up by name and checks their shapes against the config.
struct Binder {
  const ModelFile& file;
  Status status;

  const TensorInfo* get(const std::string& name, std::vector<uint64_t> shape) {
    if (!status.ok()) return nullptr;
    const TensorInfo* t = file.find(name);
    if (!t) {
      status = Status::error("model '" + file.path() + "' lacks tensor '" + name + "'");
      return nullptr;
    }
    if (t->shape != shape) {
      auto str = [](const std::vector<uint64_t>& s) {
        std::string r = "[";
        for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
        return r + "]";
      };
      status = Status::error("model '" + file.path() + "': tensor '" + name + "' has shape " +
                             str(t->shape) + ", the config needs " + str(shape));
      return nullptr;
    }
    return t;
  }
  const float* vec(const std::string& name, int n) {
    const TensorInfo* t = get(name, {uint64_t(n)});
    if (t && t->format != "f32") {
      status = Status::error("model '" + file.path() + "': vector '" + name + "' must be f32");
      return nullptr;
    }
    return t ? reinterpret_cast<const float*>(file.data(*t).data()) : nullptr;
  }
  WeightView mat(const std::string& name, int n, int k) {
    const TensorInfo* t = get(name, {uint64_t(n), uint64_t(k)});
    if (t && (t->format == "u8")) {
      status = Status::error("model '" + file.path() + "': '" + name + "' is not a weight matrix");
      return {};
    }
    return t ? weight_view(file, *t) : WeightView{};
  }
};

}  // namespace

Result<std::unique_ptr<Model>> Model::load(const std::string& path) {
  auto file = ModelFile::open(path);
  if (!file.ok()) return file.status();
  std::unique_ptr<Model> m(new Model());
  m->file_ = std::move(file.value());
  const ModelFile& f = *m->file_;

  json meta;
  try {
    meta = json::parse(f.metadata_json());
  } catch (const std::exception& e) {
    return Status::error("model '" + path + "': " + e.what());
  }
  if (!meta.contains("config")) return Status::error("model '" + path + "' has no config");
  auto cfg = ModelConfig::from_json(meta["config"].dump());
  if (!cfg.ok()) return Status::error("model '" + path + "': " + cfg.message());
  m->config_ = cfg.value();
  if (meta.contains("provenance")) m->provenance_json_ = meta["provenance"].dump();
  const ModelConfig& c = m->config_;

  Binder b{f, {}};
  Weights& w = m->weights_;
  w.token_embd = b.mat(kTokenEmbd, c.vocab_size, c.dim);
  w.layers.resize(size_t(c.n_layers));
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights& L = w.layers[size_t(l)];
    L.attn_norm = b.vec(layer_tensor(l, "attn_norm"), c.dim);
    L.wq = b.mat(layer_tensor(l, "attn_q"), c.q_dim(), c.dim);
    L.wk = b.mat(layer_tensor(l, "attn_k"), c.kv_dim(), c.dim);
    L.wv = b.mat(layer_tensor(l, "attn_v"), c.kv_dim(), c.dim);
    L.wo = b.mat(layer_tensor(l, "attn_output"), c.dim, c.q_dim());
    L.ffn_norm = b.vec(layer_tensor(l, "ffn_norm"), c.dim);
    L.w_gate = b.mat(layer_tensor(l, "ffn_gate"), c.hidden_dim, c.dim);
    L.w_up = b.mat(layer_tensor(l, "ffn_up"), c.hidden_dim, c.dim);
    L.w_down = b.mat(layer_tensor(l, "ffn_down"), c.dim, c.hidden_dim);
    if (c.sub_norms) {
      L.attn_sub_norm = b.vec(layer_tensor(l, "attn_sub_norm"), c.q_dim());
      L.ffn_sub_norm = b.vec(layer_tensor(l, "ffn_sub_norm"), c.hidden_dim);
    }
  }
  w.output_norm = b.vec(kOutputNorm, c.dim);
  // The head: a separate `output` when the file has one (untied models always; tied ones with a
  // low-bit screen of the embedding), else the tied embedding itself. Its rescoring rows
  // (runtime/head.h): `output_exact`, else a tied embedding a float GEMV can read.
  w.output = f.find(kOutput) || !c.tied_embeddings ? b.mat(kOutput, c.vocab_size, c.dim) : w.token_embd;
  if (f.find(kOutputExact)) w.output_exact = b.mat(kOutputExact, c.vocab_size, c.dim);
  else if (c.tied_embeddings && w.output.data != w.token_embd.data) w.output_exact = w.token_embd;
  if (!b.status.ok()) return b.status;
  if (w.output_exact.data && !can_rescore_from(w.output_exact.format, w.output.format))
    w.output_exact = WeightView{};
  // Matrices that read one input share its bit-plane tables, which are laid out per
  // quantization group: their groups must agree (the converter always writes them so).
  auto same_bp_group = [](std::initializer_list<const WeightView*> ws) {
    int group = 0;
    for (const WeightView* v : ws)
      if (v->format == WeightFormat::bp) {
        if (group && v->group != group) return false;
        group = v->group;
      }
    return true;
  };
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& L = w.layers[l];
    if (!same_bp_group({&L.wq, &L.wk, &L.wv}) || !same_bp_group({&L.w_gate, &L.w_up}))
      return Status::error("model '" + path + "': layer " + std::to_string(l) +
                           " has bit-plane matrices of one input with different group sizes");
  }

  // The tokenizer: the directory names its type, a u8 tensor holds it.
  std::string tok_type = meta.value("tokenizer", json::object()).value("type", std::string());
  if (tok_type != "spm" && tok_type != "bpe")
    return Status::error("model '" + path + "': unsupported tokenizer type '" + tok_type + "'");
  const TensorInfo* tt = f.find(tok_type == "spm" ? kTokenizerSpm : kTokenizerBpe);
  if (!tt || tt->format != "u8") return Status::error("model '" + path + "' has no tokenizer");
  auto span = f.data(*tt);
  std::string_view blob(reinterpret_cast<const char*>(span.data()), span.size());
  auto tok = tok_type == "spm" ? Tokenizer::from_spm_proto(std::string(blob)) : Tokenizer::from_bpe_blob(blob);
  if (!tok.ok()) return Status::error("model '" + path + "': " + tok.message());
  if (tok->vocab_size() != size_t(c.vocab_size))
    return Status::error("model '" + path + "': tokenizer has " + std::to_string(tok->vocab_size()) +
                         " tokens, the config " + std::to_string(c.vocab_size));
  m->tokenizer_ = std::make_unique<Tokenizer>(std::move(tok.value()));
  return m;
}

uint64_t Model::weight_bytes_per_token(int head_candidates) const {
  auto bytes = [](const WeightView& w) {
    return uint64_t(weight_bytes(w.format, w.n, w.k, w.bits, w.group, w.asymmetric));
  };
  uint64_t total = bytes(weights_.output);
  if (const WeightView& e = weights_.output_exact; e.data && head_candidates > 0)
    total += bytes(e) / e.n * std::min(uint64_t(head_candidates), uint64_t(e.n));
  for (const LayerWeights& L : weights_.layers)
    total += bytes(L.wq) + bytes(L.wk) + bytes(L.wv) + bytes(L.wo) + bytes(L.w_gate) +
             bytes(L.w_up) + bytes(L.w_down);
  return total;
}

}  // namespace lutra
