#include "runtime/config.h"

#include <nlohmann/json.hpp>

namespace lutra {

using json = nlohmann::json;

bool ModelConfig::apply_arch_defaults(const std::string& arch, ModelConfig& c) {
  c.arch = arch;
  if (arch == "llama") {
    c.activation = Activation::silu;
    c.sub_norms = false;
  } else if (arch == "bitnet") {
    c.activation = Activation::silu;
    c.sub_norms = true;
  } else if (arch == "bitnet-b1.58") {
    c.activation = Activation::relu2;
    c.sub_norms = true;
    c.tied_embeddings = true;
  } else {
    return false;
  }
  return true;
}

Status ModelConfig::validate() const {
  auto bad = [](const std::string& what) { return Status::error("invalid model config: " + what); };
  if (arch != "llama" && arch != "bitnet" && arch != "bitnet-b1.58")
    return Status::error("unknown architecture '" + arch + "' (supported: llama, bitnet, bitnet-b1.58)");
  if (dim <= 0 || hidden_dim <= 0 || n_layers <= 0 || n_heads <= 0 || n_kv_heads <= 0 ||
      head_dim <= 0 || vocab_size <= 0 || max_seq_len <= 0)
    return bad("every dimension must be positive");
  if (n_heads % n_kv_heads != 0) return bad("n_heads must be a multiple of n_kv_heads");
  if (head_dim % 2 != 0) return bad("head_dim must be even (RoPE rotates pairs)");
  if (dim > (1 << 20) || hidden_dim > (1 << 20) || n_layers > 4096 || vocab_size > (1 << 24) ||
      head_dim > 4096 || n_heads > 4096 || n_kv_heads > 4096 || max_seq_len > (1 << 24))
    return bad("dimensions out of range");
  if (!(norm_eps > 0) || !(rope_theta > 0)) return bad("norm_eps and rope_theta must be positive");
  if (bos_id < 0 || bos_id >= vocab_size || eos_id < 0 || eos_id >= vocab_size)
    return bad("bos/eos ids outside the vocabulary");
  for (int32_t id : stop_ids)
    if (id < 0 || id >= vocab_size) return bad("stop id outside the vocabulary");
  return ok_status();
}

std::string ModelConfig::to_json() const {
  json j = {{"arch", arch},
            {"dim", dim},
            {"hidden_dim", hidden_dim},
            {"n_layers", n_layers},
            {"n_heads", n_heads},
            {"n_kv_heads", n_kv_heads},
            {"head_dim", head_dim},
            {"vocab_size", vocab_size},
            {"max_seq_len", max_seq_len},
            {"norm_eps", norm_eps},
            {"rope_theta", rope_theta},
            {"rope_style", rope_style == RopeStyle::interleaved ? "interleaved" : "half_split"},
            {"activation", activation == Activation::silu ? "silu" : "relu2"},
            {"sub_norms", sub_norms},
            {"tied_embeddings", tied_embeddings},
            {"bos_id", bos_id},
            {"eos_id", eos_id},
            {"stop_ids", stop_ids},
            {"chat_template", chat_template}};
  return j.dump();
}

Result<ModelConfig> ModelConfig::from_json(const std::string& text) {
  ModelConfig c;
  try {
    json j = json::parse(text);
    c.arch = j.at("arch").get<std::string>();
    c.dim = j.at("dim").get<int>();
    c.hidden_dim = j.at("hidden_dim").get<int>();
    c.n_layers = j.at("n_layers").get<int>();
    c.n_heads = j.at("n_heads").get<int>();
    c.n_kv_heads = j.at("n_kv_heads").get<int>();
    c.head_dim = j.at("head_dim").get<int>();
    c.vocab_size = j.at("vocab_size").get<int>();
    c.max_seq_len = j.at("max_seq_len").get<int>();
    c.norm_eps = j.at("norm_eps").get<float>();
    c.rope_theta = j.at("rope_theta").get<float>();
    std::string rope = j.at("rope_style").get<std::string>();
    if (rope != "interleaved" && rope != "half_split")
      return Status::error("invalid model config: unknown rope_style '" + rope + "'");
    c.rope_style = rope == "interleaved" ? RopeStyle::interleaved : RopeStyle::half_split;
    std::string act = j.at("activation").get<std::string>();
    if (act != "silu" && act != "relu2")
      return Status::error("invalid model config: unknown activation '" + act + "'");
    c.activation = act == "silu" ? Activation::silu : Activation::relu2;
    c.sub_norms = j.at("sub_norms").get<bool>();
    c.tied_embeddings = j.at("tied_embeddings").get<bool>();
    c.bos_id = j.at("bos_id").get<int32_t>();
    c.eos_id = j.at("eos_id").get<int32_t>();
    c.stop_ids = j.value("stop_ids", std::vector<int32_t>{});
    c.chat_template = j.value("chat_template", std::string("plain"));
  } catch (const std::exception& e) {
    return Status::error(std::string("invalid model config: ") + e.what());
  }
  LUTRA_TRY(c.validate());
  return c;
}

}  // namespace lutra
