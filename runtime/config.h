// The model's hyperparameters as stored in the model file's "config" object.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/kernels.h"
#include "runtime/status.h"

namespace lutra {

enum class Activation : uint8_t { silu, relu2 };

// One block shape covers every supported architecture:
//   x → RMSNorm → q,k,v → RoPE → GQA attention → [attn_sub_norm] → o → +x
//     → RMSNorm → act(gate) * up → [ffn_sub_norm] → down → +x
// "llama":        llama2.c, Llama-2/3 (SiLU, no sub-norms)
// "bitnet":       1bitLLM bitnet_b1_58 (SiLU, sub-norms, ternary)
// "bitnet-b1.58": BitNet b1.58 2B4T (relu², sub-norms, ternary, tied head)
struct ModelConfig {
  std::string arch = "llama";
  int dim = 0;          // residual stream width
  int hidden_dim = 0;   // FFN width
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;   // < n_heads: grouped-query attention
  int head_dim = 0;     // dim / n_heads unless the checkpoint says otherwise
  int vocab_size = 0;
  int max_seq_len = 0;  // training context
  float norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  RopeStyle rope_style = RopeStyle::interleaved;
  Activation activation = Activation::silu;
  bool sub_norms = false;
  bool tied_embeddings = true;   // LM head = token embedding
  int32_t bos_id = 1;
  int32_t eos_id = 2;
  std::vector<int32_t> stop_ids;  // generation ends at any of these (EOS, EOT, ...)
  std::string chat_template = "plain";  // "plain", "llama2", "llama3", "bitnet"

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
  Status validate() const;
  std::string to_json() const;
  static Result<ModelConfig> from_json(const std::string& text);
  // Defaults (activation, sub-norms, rope style) for an architecture name; false if unknown.
  static bool apply_arch_defaults(const std::string& arch, ModelConfig& c);
};

}  // namespace lutra
