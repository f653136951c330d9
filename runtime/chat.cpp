#include "runtime/chat.h"

namespace lutra {

Result<std::vector<int32_t>> chat_turn_tokens(const Model& model, std::string_view user_text,
                                              std::string_view system_prompt, bool first,
                                              int32_t previous_stop) {
  const Tokenizer& tok = model.tokenizer();
  const ModelConfig& cfg = model.config();
  std::vector<int32_t> out;
  Status status;
  // Only the conversation's first text gets sentencepiece's dummy-prefix space, as when the
  // whole prompt is encoded at once; every later piece continues the text before it.
  bool at_start = first;
  auto text = [&](std::string_view s) {
    if (!status.ok() || s.empty()) return;
    auto ids = at_start ? tok.encode_checked(s, false) : tok.encode_continuation(s);
    at_start = false;
    if (!ids.ok()) {
      status = ids.status();
      return;
    }
    out.insert(out.end(), ids->begin(), ids->end());
  };
  // A special token by its piece: spelled out as text it would mean something else.
  auto special = [&](std::string_view piece) {
    int32_t id = tok.piece_id(piece);
    if (id >= 0) out.push_back(id);
    else if (status.ok())
      status = Status::error("the vocabulary lacks " + std::string(piece) + ", which the " + cfg.chat_template +
                             " chat template needs (choose another with convert --chat-template)");
    at_start = false;
  };

  const std::string& t = cfg.chat_template;
  if (t == "llama2") {
    // <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {reply}</s>
    if (!first && previous_stop >= 0) out.push_back(previous_stop);
    out.push_back(cfg.bos_id);
    std::string turn = "[INST] ";
    if (first && !system_prompt.empty())
      turn += "<<SYS>>\n" + std::string(system_prompt) + "\n<</SYS>>\n\n";
    turn += std::string(user_text) + " [/INST]";
    text(turn);
  } else if (t == "llama3") {
    auto header = [&](std::string_view role) {
      special("<|start_header_id|>");
      text(role);
      special("<|end_header_id|>");
      text("\n\n");
    };
    if (first) {
      out.push_back(cfg.bos_id);
      if (!system_prompt.empty()) {
        header("system");
        text(system_prompt);
        special("<|eot_id|>");
      }
    } else if (previous_stop >= 0) {
      out.push_back(previous_stop);
    }
    header("user");
    text(user_text);
    special("<|eot_id|>");
    header("assistant");
  } else if (t == "bitnet") {
    // BitNet b1.58 2B4T: "System: ...<|eot_id|>User: ...<|eot_id|>Assistant: "
    if (first) {
      out.push_back(cfg.bos_id);
      if (!system_prompt.empty()) {
        text("System: " + std::string(system_prompt));
        special("<|eot_id|>");
      }
    } else if (previous_stop >= 0) {
      out.push_back(previous_stop);
    }
    text("User: " + std::string(user_text));
    special("<|eot_id|>");
    text("Assistant: ");
  } else {
    // plain: a transcript the model continues
    if (first) {
      out.push_back(cfg.bos_id);
      if (!system_prompt.empty()) text(std::string(system_prompt) + "\n");
    }
    text((first ? "User: " : "\nUser: ") + std::string(user_text) + "\nAssistant:");
  }
  if (!status.ok()) return status;
  return out;
}

}  // namespace lutra
