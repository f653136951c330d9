// Chat templates: how a user turn is wrapped in tokens for each model family (design.md §6).
#pragma once

#include <string_view>
#include <vector>

#include "runtime/model.h"

namespace lutra {

// Tokens to append to the context for one user turn, up to where the assistant's reply
// begins. `first`: the context is empty (add BOS, the system prompt). `previous_stop`: the
// stop token that ended the previous reply (-1 if none), which some templates keep.
Result<std::vector<int32_t>> chat_turn_tokens(const Model& model, std::string_view user_text,
                                              std::string_view system_prompt, bool first,
                                              int32_t previous_stop);

}  // namespace lutra
