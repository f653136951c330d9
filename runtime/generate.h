// The generation loop shared by `lutra run`, `lutra chat` and the C API.
#pragma once

#include <atomic>
#include <functional>
#include <span>

#include "runtime/context.h"
#include "runtime/sampler.h"

namespace lutra {

struct GenerationStats {
  int n_prompt = 0;
  double prompt_seconds = 0;
  int n_generated = 0;
  double gen_seconds = 0;
};

enum class StopReason { length, stop_token, context_full, interrupted, caller };

struct GenerationResult {
  StopReason reason = StopReason::length;
  int32_t stop_token = -1;  // the stop token sampled (not yet evaluated), for StopReason::stop_token
};

// Is `token` one at which generation ends (EOS, EOT, ...)?
bool is_stop_token(const ModelConfig& config, int32_t token);

// Evaluates `prompt` (appended to what the context holds), then samples up to n_predict
// tokens (< 0: until a stop token or a full context), passing each to on_token (return false
// to stop). Every emitted token has been evaluated, so the context can continue from here.
// `interrupt`, when set to true (Ctrl-C), ends generation after the current token.
Result<GenerationResult> generate(Context& ctx, Sampler& sampler, std::span<const int32_t> prompt,
                                  int n_predict, const std::function<bool(int32_t)>& on_token,
                                  GenerationStats& stats, const std::atomic<bool>* interrupt = nullptr);

}  // namespace lutra
