// Synthetic models: the real architectures and shapes with random weights, made in seconds,
// for tests, demos and benchmarks. Their tokenizer is a real sentencepiece model over a
// made-up vocabulary (bytes, letters, common English words), so any prompt encodes; or, with
// --tokenizer, a real LLaMA-3 tiktoken vocabulary (the one BitNet b1.58 2B4T uses).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "convert/bpe_import.h"
#include "convert/convert.h"
#include "convert/head_plan.h"
#include "convert/pack.h"
#include "runtime/half.h"
#include "runtime/model.h"
#include "runtime/tokenizer.h"

namespace lutra {

namespace {

struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float uniform() { return float(next() >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f; }  // [-1, 1)
};

struct Preset {
  const char* name;
  const char* arch;
  int dim, hidden, layers, heads, kv_heads, vocab, seq;
  float rope_theta;
  const char* weights;    // linear layers
  const char* chat_template;
};

// The embedding and tied head get the importers' default plan (convert/head_plan.h) for an f16
// source; bitnet-2b4t's layers are what a real 2B4T import gets (t3), so it measures the
// default recipe. tiny keeps t2 layers: tests use it for the multiply-add path.
constexpr Preset kPresets[] = {
    {"tiny", "bitnet-b1.58", 128, 352, 4, 8, 2, 1024, 4096, 10000.0f, "t2", "bitnet"},
    {"llama-tiny", "llama", 96, 256, 3, 6, 2, 1024, 4096, 10000.0f, "f16", "llama2"},
    {"bitnet-2b4t", "bitnet-b1.58", 2560, 6912, 30, 20, 5, 128256, 4096, 500000.0f, "t3", "bitnet"},
};

const char* kWords[] = {
    "the", "and", "was", "to", "a", "of", "he", "she", "it", "in", "said", "his", "her", "that",
    "they", "with", "for", "on", "you", "had", "but", "one", "day", "little", "time", "there",
    "very", "big", "happy", "saw", "wanted", "play", "went", "friend", "named", "girl", "boy",
    "dog", "cat", "tree", "sun", "home", "mom", "dad", "not", "so", "we", "what", "all", "were",
    "when", "then", "up", "out", "go", "can", "see", "like", "help", "found", "looked", "good",
    "new", "came", "made", "them", "from", "could", "this", "be", "is", "at", "me", "do", "no",
    "yes", "are", "have", "after", "ran", "park", "ball", "bird", "fish", "red", "blue", "green",
    "sky", "water", "toy", "box", "book", "run", "jump", "smile", "laugh", "love", "together",
};

// Pieces: <unk> <s> </s> [<|eot_id|>], 256 bytes, "▁", single characters, "▁word" for the
// word list, then filler pieces up to the vocabulary size.
std::vector<TokenPiece> synthetic_pieces(int vocab, bool eot) {
  using K = TokenPiece::Kind;
  std::vector<TokenPiece> p = {{"<unk>", 0, K::unknown}, {"<s>", 0, K::control}, {"</s>", 0, K::control}};
  if (eot) p.push_back({"<|eot_id|>", 0, K::control});
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    p.push_back({buf, 0, K::byte});
  }
  float score = -1.0f;
  p.push_back({"\xe2\x96\x81", score, K::normal});
  for (char ch = 33; ch < 127; ++ch) p.push_back({std::string(1, ch), score -= 0.01f, K::normal});
  for (const char* w : kWords) {
    // BPE needs the intermediate merges of a word to exist to reach the word itself.
    for (size_t len = 2; len <= std::strlen(w) + 1 && int(p.size()) < vocab; ++len) {
      std::string prefix = "\xe2\x96\x81" + std::string(w, len - 1);
      bool have = std::any_of(p.begin(), p.end(), [&](const TokenPiece& t) { return t.text == prefix; });
      if (!have) p.push_back({prefix, score -= 0.01f, K::normal});
    }
  }
  // Filler: made-up words of two to four syllables, all distinct.
  static const char* kSyllables[] = {"ba", "ko", "ri", "tu", "me", "sa", "lo", "ni", "da", "fe",
                                     "go", "hu", "pa", "ve", "zo", "mi"};
  for (uint32_t i = 0; int(p.size()) < vocab; ++i) {
    std::string word = "\xe2\x96\x81";
    uint32_t x = i + 16 * 16;  // at least two syllables, and distinct for distinct i
    for (; x; x /= 16) word += kSyllables[x % 16];
    p.push_back({word, -1000.0f - float(i), K::normal});
  }
  p.resize(size_t(vocab));
  return p;
}

// Random ternary codes in {0, 1, 2}, from 8 random bits each (bias below 1%).
void random_t2(Rng& rng, size_t n, size_t k, std::vector<uint8_t>& out) {
  const size_t rb = t2_row_bytes(k);
  out.assign(n * rb, 0);
  for (size_t r = 0; r < n; ++r) {
    uint8_t* row = out.data() + r * rb;
    uint64_t bits = 0;
    for (size_t j = 0; j < k; ++j) {
      if (j % 8 == 0) bits = rng.next();
      unsigned code = unsigned((bits & 0xff) * 3) >> 8;
      bits >>= 8;
      row[j / 4] |= uint8_t(code << (2 * (j % 4)));
    }
  }
}

}  // namespace

const char* synthetic_presets() { return "tiny, llama-tiny, bitnet-2b4t"; }

Status make_synthetic(const std::string& preset_name, const std::string& output, const ConvertOptions& opts) {
  const Preset* pr = nullptr;
  for (const Preset& p : kPresets)
    if (preset_name == p.name) pr = &p;
  if (!pr)
    return Status::error("unknown synthetic preset '" + preset_name + "' (available: " + synthetic_presets() + ")");

  const bool bitnet_chat = std::string(pr->chat_template) == "bitnet";
  ModelConfig c;
  ModelConfig::apply_arch_defaults(pr->arch, c);
  c.dim = pr->dim;
  c.hidden_dim = pr->hidden;
  c.n_layers = pr->layers;
  c.n_heads = pr->heads;
  c.n_kv_heads = pr->kv_heads;
  c.head_dim = pr->dim / pr->heads;
  c.vocab_size = pr->vocab;
  c.max_seq_len = pr->seq;
  c.rope_theta = pr->rope_theta;
  c.rope_style = RopeStyle::half_split;
  c.tied_embeddings = true;
  c.bos_id = 1;
  c.eos_id = 2;
  if (bitnet_chat) c.stop_ids = {3};  // <|eot_id|>
  c.chat_template = opts.chat_template.empty() ? pr->chat_template : opts.chat_template;

  // A real tokenizer replaces the made-up one: a tiktoken file (LLaMA-3's tokenizer.model) with
  // LLaMA-3's special tokens right after its ranks. The vocabulary size follows it.
  std::optional<Tokenizer> bpe;
  if (!opts.tokenizer.empty()) {
    auto vocab = read_tiktoken_bpe(opts.tokenizer, {}, BpePreTokenizer::llama3);
    if (!vocab.ok())
      return Status::error(vocab.message() + " (synthetic models take a tiktoken tokenizer such as LLaMA-3's tokenizer.model)");
    const int32_t first_special = int32_t(vocab->tokens.size());
    for (const SpecialToken& st : llama3_special_tokens(first_special))
      vocab->tokens.push_back({st.text, BpeVocab::Kind::control});
    vocab->bos_id = first_special;      // <|begin_of_text|>
    vocab->eos_id = first_special + 1;  // <|end_of_text|>
    auto tok = Tokenizer::from_bpe(std::move(vocab).value());
    if (!tok.ok()) return Status::error("tokenizer '" + opts.tokenizer + "': " + tok.message());
    bpe = std::move(tok).value();
    c.vocab_size = int(bpe->vocab_size());
    c.bos_id = bpe->bos_id();
    c.eos_id = bpe->eos_id();
    c.stop_ids = {bpe->piece_id("<|eot_id|>")};
  }
  LUTRA_TRY(c.validate());

  auto wspec = PackSpec::parse(opts.weights.empty() ? pr->weights : opts.weights);
  if (!wspec.ok()) return wspec.status();
  auto plan = plan_head(opts, true, *PackSpec::parse("f16"), size_t(c.dim));
  if (!plan.ok()) return plan.status();

  auto writer = ModelWriter::create(output);
  if (!writer.ok()) return writer.status();
  ModelWriter& w = **writer;
  Rng rng{opts.seed * 0x2545f4914f6cdd1dull + 7};
  TensorSteps steps(opts, w, c, plan->head_tensors());
  auto step = [&](const std::string& name) { return steps.step(name); };
  std::vector<uint8_t> packed;
  // A random matrix: ternary codes drawn directly (fast at 2B parameters), other formats from
  // uniform floats scaled by 1/sqrt(k) so activations keep their size.
  auto mat = [&](const std::string& name, size_t n, size_t k, const PackSpec& spec) -> Status {
    const float scale = 1.0f / std::sqrt(float(k));
    if (is_ternary(spec.format)) {
      random_t2(rng, n, k, packed);
      LUTRA_TRY(write_ternary(w, name, spec.format, n, k, scale, packed));
    } else {
      Rng row_rng = rng;
      rng.next();
      LUTRA_TRY(write_matrix(w, name, n, k, spec, [&](size_t r, float* out) {
        Rng rr{row_rng.s ^ (uint64_t(r) * 0x9e3779b97f4a7c15ull)};
        for (size_t j = 0; j < k; ++j) out[j] = rr.uniform() * scale * 1.7f;
      }));
    }
    return step(name);
  };
  auto ones = [&](const std::string& name, size_t n) -> Status {
    std::vector<float> v(n, 1.0f);
    LUTRA_TRY(write_vector(w, name, v));
    return step(name);
  };

  if (bpe) LUTRA_TRY(write_bpe_tokenizer(w, bpe->bpe_blob()));
  else LUTRA_TRY(write_spm_tokenizer(w, make_spm_model_proto(synthetic_pieces(c.vocab_size, bitnet_chat), SpmOptions{})));
  LUTRA_TRY(step(bpe ? kTokenizerBpe : kTokenizerSpm));
  const size_t dim = size_t(c.dim), hid = size_t(c.hidden_dim), qd = size_t(c.q_dim()), kvd = size_t(c.kv_dim());
  // The embedding doubles as the head: unit-scale rows give logits of a useful spread.
  const Rng erng{rng.next()};
  const RowSource embedding_rows = [&](size_t r, float* out) {
    Rng rr{erng.s ^ (uint64_t(r) * 0x9e3779b97f4a7c15ull)};
    for (size_t j = 0; j < dim; ++j) out[j] = rr.uniform() * 0.5f;
  };
  LUTRA_TRY(write_embedding(w, *plan, size_t(c.vocab_size), dim, embedding_rows));
  LUTRA_TRY(step(kTokenEmbd));
  for (int l = 0; l < c.n_layers; ++l) {
    LUTRA_TRY(ones(layer_tensor(l, "attn_norm"), dim));
    LUTRA_TRY(mat(layer_tensor(l, "attn_q"), qd, dim, *wspec));
    LUTRA_TRY(mat(layer_tensor(l, "attn_k"), kvd, dim, *wspec));
    LUTRA_TRY(mat(layer_tensor(l, "attn_v"), kvd, dim, *wspec));
    if (c.sub_norms) LUTRA_TRY(ones(layer_tensor(l, "attn_sub_norm"), qd));
    LUTRA_TRY(mat(layer_tensor(l, "attn_output"), dim, qd, *wspec));
    LUTRA_TRY(ones(layer_tensor(l, "ffn_norm"), dim));
    LUTRA_TRY(mat(layer_tensor(l, "ffn_gate"), hid, dim, *wspec));
    LUTRA_TRY(mat(layer_tensor(l, "ffn_up"), hid, dim, *wspec));
    if (c.sub_norms) LUTRA_TRY(ones(layer_tensor(l, "ffn_sub_norm"), hid));
    LUTRA_TRY(mat(layer_tensor(l, "ffn_down"), dim, hid, *wspec));
  }
  LUTRA_TRY(ones(kOutputNorm, dim));
  LUTRA_TRY(write_head(w, *plan, size_t(c.vocab_size), dim, embedding_rows, steps));

  nlohmann::json prov = {{"source", "synthetic:" + preset_name},
                         {"source_format", "synthetic (random weights)"},
                         {"seed", opts.seed},
                         {"recipe", {{"weights", wspec->to_string()}, {"embedding", plan->embedding_name()}, {"head", plan->head_name()}}},
                         {"converter", std::string("lutra ") + LUTRA_VERSION}};
  if (bpe) prov["tokenizer_source"] = std::filesystem::path(opts.tokenizer).filename().string();
  return w.finish(model_metadata(c, prov.dump(), bpe ? "bpe" : "spm"));
}

}  // namespace lutra
