// A loaded model: the mapped file, its config, the weights walked into place (zero copy) and
// the tokenizer.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/config.h"
#include "runtime/model_file.h"
#include "runtime/tokenizer.h"

namespace lutra {

// Tensor names in the model file (GGUF's naming, so files are easy to compare).
inline constexpr const char* kTokenEmbd = "token_embd";
inline constexpr const char* kOutputNorm = "output_norm";
inline constexpr const char* kOutput = "output";
// An untied model's head at the source's precision, for rescoring the candidates of a low-bit
// `output` (runtime/head.h).
inline constexpr const char* kOutputExact = "output_exact";
inline constexpr const char* kTokenizerSpm = "tokenizer.spm";  // serialized sentencepiece ModelProto
inline constexpr const char* kTokenizerBpe = "tokenizer.bpe";  // BpeModel::serialize() (runtime/bpe.h)
std::string layer_tensor(int layer, const char* what);  // "blk.<layer>.<what>"

struct LayerWeights {
  const float* attn_norm = nullptr;      // (dim)
  WeightView wq;                         // (q_dim, dim)
  WeightView wk, wv;                     // (kv_dim, dim)
  const float* attn_sub_norm = nullptr;  // (q_dim), sub-norm architectures only
  WeightView wo;                         // (dim, q_dim)
  const float* ffn_norm = nullptr;       // (dim)
  WeightView w_gate, w_up;               // (hidden_dim, dim)
  const float* ffn_sub_norm = nullptr;   // (hidden_dim), sub-norm architectures only
  WeightView w_down;                     // (dim, hidden_dim)
};

struct Weights {
  WeightView token_embd;  // (vocab, dim)
  std::vector<LayerWeights> layers;
  const float* output_norm = nullptr;  // (dim)
  WeightView output;                   // (vocab, dim): the head multiplied; token_embd when tied
                                       // and the file has no separate `output`
  // (vocab, dim): the rows the head's best candidates are rescored from (output_exact, or
  // token_embd of a tied model with a low-bit `output`); data == nullptr: no rescoring.
  WeightView output_exact;
};

class Model {
 public:
  static Result<std::unique_ptr<Model>> load(const std::string& path);

  const ModelConfig& config() const { return config_; }
  const Weights& weights() const { return weights_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const ModelFile& file() const { return *file_; }
  // The "provenance" object of the file (source, recipe), as JSON text; "{}" if absent.
  const std::string& provenance_json() const { return provenance_json_; }
  // Bytes of weights one decode step reads: all layers, the head, and the exact rows of
  // `head_candidates` rescored candidates (not the embedding row).
  uint64_t weight_bytes_per_token(int head_candidates) const;

 private:
  std::unique_ptr<ModelFile> file_;
  ModelConfig config_;
  Weights weights_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::string provenance_json_ = "{}";
};

// A WeightView of a matrix tensor of the file (no checks beyond the file's own).
WeightView weight_view(const ModelFile& file, const TensorInfo& t);

}  // namespace lutra
