// llama2.c checkpoints (karpathy/llama2.c run.c and export.py). All little-endian.
//   legacy:  int32 dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size (< 0: untied
//            classifier), seq_len; then fp32 token_embedding (vocab, dim), rms_att (L, dim),
//            wq (L, dim, dim), wk (L, kv_dim, dim), wv (L, kv_dim, dim), wo (L, dim, dim),
//            rms_ffn (L, dim), w1 (L, hidden, dim), w2 (L, dim, hidden), w3 (L, hidden, dim),
//            rms_final (dim), freq_cis_real/imag (seq_len, head_size/2) each, [wcls (vocab, dim)]
//   v1/v2:   256-byte header: uint32 magic "ak42", int32 version, the 7 ints (vocab > 0),
//            uint8 shared_classifier, [v2: int32 group_size]; then fp32 norms (rms_att all
//            layers, rms_ffn all layers, rms_final); then the matrices token_embedding, wq,
//            wk, wv, wo, w1, w2, w3 (all layers each), [wcls] — fp32 in v1; in v2 each matrix
//            is int8 values followed by fp32 scales, one per group_size values.
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "convert/convert.h"
#include "convert/llama2c_tokenizer.h"
#include "convert/head_plan.h"
#include "convert/mapped_file.h"
#include "convert/pack.h"
#include "runtime/model.h"
#include "runtime/tokenizer.h"

namespace lutra {

namespace {

constexpr uint32_t kLlama2cMagic = 0x616b3432;  // "ak42"

struct Header {
  int32_t dim, hidden, layers, heads, kv_heads, vocab, seq;
  bool shared = true;
  int version = 0;  // 0 legacy, 1 fp32, 2 int8 groups
  int32_t group = 0;
  size_t data_offset = 0;
};

// A matrix in the checkpoint: fp32 values, or int8 values with fp32 group scales (v2).
struct SourceMatrix {
  size_t n = 0, k = 0;
  const float* f32 = nullptr;
  const int8_t* q = nullptr;
  const float* scales = nullptr;
  size_t group = 0;
  void row(size_t r, float* out) const {
    if (f32) {
      std::memcpy(out, f32 + r * k, k * sizeof(float));
      return;
    }
    for (size_t j = 0; j < k; ++j) {
      size_t i = r * k + j;
      float s;
      std::memcpy(&s, scales + i / group, sizeof s);  // unaligned-safe
      out[j] = float(q[i]) * s;
    }
  }
};

}  // namespace

Status convert_llama2c(const std::string& input, const std::string& output, const ConvertOptions& opts) {
  MappedFile f;
  LUTRA_TRY(f.open(input));
  const std::string where = "llama2.c checkpoint '" + input + "'";
  if (f.size() < 28) return Status::error(where + " is too small");

  Header h{};
  uint32_t magic;
  std::memcpy(&magic, f.data(), 4);
  if (magic == kLlama2cMagic) {
    if (f.size() < 256) return Status::error(where + " is truncated (header)");
    std::memcpy(&h.version, f.data() + 4, 4);
    if (h.version != 1 && h.version != 2)
      return Status::error(where + " has export version " + std::to_string(h.version) + " (supported: 1, 2)");
    std::memcpy(&h.dim, f.data() + 8, 28);
    h.shared = f.data()[36] != 0;
    if (h.version == 2) std::memcpy(&h.group, f.data() + 37, 4);
    h.data_offset = 256;
  } else {
    std::memcpy(&h.dim, f.data(), 28);
    h.shared = h.vocab > 0;
    h.vocab = h.vocab == INT32_MIN ? 0 : std::abs(h.vocab);  // 0 is refused below
    h.data_offset = 28;
  }
  if (h.dim <= 0 || h.hidden <= 0 || h.layers <= 0 || h.heads <= 0 || h.kv_heads <= 0 || h.vocab <= 0 ||
      h.seq <= 0 || h.dim % h.heads != 0 || h.heads % h.kv_heads != 0 || h.dim > (1 << 16) ||
      h.hidden > (1 << 18) || h.layers > 1024 || h.vocab > (1 << 22) || h.seq > (1 << 22))
    return Status::error(where + " has an implausible header (is it a llama2.c checkpoint?)");
  if (h.version == 2 && (h.group <= 0 || h.dim % h.group != 0 || h.hidden % h.group != 0))
    return Status::error(where + " has an invalid group size " + std::to_string(h.group));

  const size_t dim = size_t(h.dim), hid = size_t(h.hidden), L = size_t(h.layers),
               head = dim / size_t(h.heads), kvd = head * size_t(h.kv_heads), V = size_t(h.vocab);

  // Walk the file, checking every tensor lies inside it.
  size_t at = h.data_offset;
  bool truncated = false;
  auto take = [&](size_t bytes) -> const uint8_t* {
    if (truncated || bytes > f.size() - std::min(at, f.size())) {
      truncated = true;
      return nullptr;
    }
    const uint8_t* p = f.data() + at;
    at += bytes;
    return p;
  };
  auto f32s = [&](size_t count) { return reinterpret_cast<const float*>(take(count * 4)); };
  auto matrix = [&](size_t n, size_t k) {
    SourceMatrix m{n, k};
    if (h.version == 2) {
      m.q = reinterpret_cast<const int8_t*>(take(n * k));
      m.scales = f32s(n * k / size_t(h.group));
      m.group = size_t(h.group);
    } else {
      m.f32 = f32s(n * k);
    }
    return m;
  };
  std::vector<const float*> rms_att(L), rms_ffn(L);
  const float* rms_final = nullptr;
  SourceMatrix emb, cls;
  std::vector<SourceMatrix> wq(L), wk(L), wv(L), wo(L), w1(L), w2(L), w3(L);
  auto layers = [&](std::vector<SourceMatrix>& v, size_t n, size_t k) {
    for (auto& m : v) m = matrix(n, k);
  };
  if (h.version == 0) {
    emb = matrix(V, dim);
    for (auto& p : rms_att) p = f32s(dim);
    layers(wq, dim, dim); layers(wk, kvd, dim); layers(wv, kvd, dim); layers(wo, dim, dim);
    for (auto& p : rms_ffn) p = f32s(dim);
    layers(w1, hid, dim); layers(w2, dim, hid); layers(w3, hid, dim);
    rms_final = f32s(dim);
    take(size_t(h.seq) * head / 2 * 4 * 2);  // freq_cis_real, freq_cis_imag: recomputed at load
  } else {
    for (auto& p : rms_att) p = f32s(dim);
    for (auto& p : rms_ffn) p = f32s(dim);
    rms_final = f32s(dim);
    emb = matrix(V, dim);
    layers(wq, dim, dim); layers(wk, kvd, dim); layers(wv, kvd, dim); layers(wo, dim, dim);
    layers(w1, hid, dim); layers(w2, dim, hid); layers(w3, hid, dim);
  }
  if (!h.shared) cls = matrix(V, dim);
  if (truncated) return Status::error(where + " is truncated: its header describes more weights than the file holds");
  if (at != f.size())
    return Status::error(where + " has " + std::to_string(f.size() - at) +
                         " bytes more than its header describes (wrong file or format?)");

  if (opts.tokenizer.empty())
    return Status::error("llama2.c checkpoints carry no tokenizer: pass its tokenizer.bin with --tokenizer");
  auto pieces = read_llama2c_tokenizer(opts.tokenizer, V);
  if (!pieces.ok()) return pieces.status();

  ModelConfig c;
  ModelConfig::apply_arch_defaults("llama", c);
  c.dim = h.dim;
  c.hidden_dim = h.hidden;
  c.n_layers = h.layers;
  c.n_heads = h.heads;
  c.n_kv_heads = h.kv_heads;
  c.head_dim = int(head);
  c.vocab_size = h.vocab;
  c.max_seq_len = h.seq;
  c.norm_eps = 1e-5f;
  c.rope_theta = 10000.0f;
  c.rope_style = RopeStyle::interleaved;
  c.tied_embeddings = h.shared;
  c.bos_id = 1;
  c.eos_id = 2;
  c.stop_ids = {1, 2};  // llama2.c's stories models delimit texts with BOS
  c.chat_template = opts.chat_template.empty() ? "plain" : opts.chat_template;
  LUTRA_TRY(c.validate());

  // Defaults keep the checkpoint's precision: f32 for fp32 exports, 8-bit groups for v2.
  const std::string dflt = h.version == 2 ? "b8g" + std::to_string(h.group) : "f32";
  auto wspec = PackSpec::parse(opts.weights.empty() ? dflt : opts.weights);
  if (!wspec.ok()) return wspec.status();
  auto plan = plan_head(opts, h.shared, *PackSpec::parse(dflt), size_t(h.dim));
  if (!plan.ok()) return plan.status();

  auto writer = ModelWriter::create(output);
  if (!writer.ok()) return writer.status();
  ModelWriter& w = **writer;
  TensorSteps steps(opts, w, c, plan->head_tensors());
  auto step = [&](const std::string& name) { return steps.step(name); };
  auto mat = [&](const std::string& name, const SourceMatrix& m, const PackSpec& spec) -> Status {
    LUTRA_TRY(write_matrix(w, name, m.n, m.k, spec, [&](size_t r, float* out) { m.row(r, out); }));
    return step(name);
  };
  auto vec = [&](const std::string& name, const float* p, size_t n) -> Status {
    std::vector<float> copy(n);
    std::memcpy(copy.data(), p, n * sizeof(float));
    LUTRA_TRY(write_vector(w, name, copy));
    return step(name);
  };

  LUTRA_TRY(write_spm_tokenizer(w, make_spm_model_proto(*pieces, SpmOptions{})));
  LUTRA_TRY(step(kTokenizerSpm));
  LUTRA_TRY(write_embedding(w, *plan, emb.n, emb.k, [&](size_t r, float* out) { emb.row(r, out); }));
  LUTRA_TRY(step(kTokenEmbd));
  for (size_t l = 0; l < L; ++l) {
    int li = int(l);
    LUTRA_TRY(vec(layer_tensor(li, "attn_norm"), rms_att[l], dim));
    LUTRA_TRY(mat(layer_tensor(li, "attn_q"), wq[l], *wspec));
    LUTRA_TRY(mat(layer_tensor(li, "attn_k"), wk[l], *wspec));
    LUTRA_TRY(mat(layer_tensor(li, "attn_v"), wv[l], *wspec));
    LUTRA_TRY(mat(layer_tensor(li, "attn_output"), wo[l], *wspec));
    LUTRA_TRY(vec(layer_tensor(li, "ffn_norm"), rms_ffn[l], dim));
    LUTRA_TRY(mat(layer_tensor(li, "ffn_gate"), w1[l], *wspec));
    LUTRA_TRY(mat(layer_tensor(li, "ffn_down"), w2[l], *wspec));
    LUTRA_TRY(mat(layer_tensor(li, "ffn_up"), w3[l], *wspec));
  }
  LUTRA_TRY(vec(kOutputNorm, rms_final, dim));
  const SourceMatrix& head_rows = h.shared ? emb : cls;
  LUTRA_TRY(write_head(w, *plan, head_rows.n, head_rows.k, [&](size_t r, float* out) { head_rows.row(r, out); }, steps));

  nlohmann::json prov = {
      {"source", std::filesystem::path(input).filename().string()},
      {"source_format", h.version == 0 ? "llama2.c legacy" : "llama2.c export v" + std::to_string(h.version)},
      {"tokenizer_source", std::filesystem::path(opts.tokenizer).filename().string()},
      {"recipe", {{"weights", wspec->to_string()}, {"embedding", plan->embedding_name()}, {"head", plan->head_name()}}},
      {"converter", std::string("lutra ") + LUTRA_VERSION}};
  return w.finish(model_metadata(c, prov.dump()));
}

}  // namespace lutra
