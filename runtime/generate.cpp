#include "runtime/generate.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace lutra {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

bool is_stop_token(const ModelConfig& config, int32_t token) {
  return token == config.eos_id ||
         std::find(config.stop_ids.begin(), config.stop_ids.end(), token) != config.stop_ids.end();
}

Result<GenerationResult> generate(Context& ctx, Sampler& sampler, std::span<const int32_t> prompt,
                                  int n_predict, const std::function<bool(int32_t)>& on_token,
                                  GenerationStats& stats, const std::atomic<bool>* interrupt) {
  const ModelConfig& cfg = ctx.model().config();
  auto interrupted = [&] { return interrupt && interrupt->load(std::memory_order_relaxed); };
  GenerationResult result;

  auto t0 = std::chrono::steady_clock::now();
  LUTRA_TRY(ctx.eval(prompt));
  if (!ctx.logits())
    return Status::error("nothing to continue from: the prompt is empty and the context holds no tokens");
  for (int32_t t : prompt) sampler.accept(t);
  stats.n_prompt += int(prompt.size());
  stats.prompt_seconds += seconds_since(t0);

  t0 = std::chrono::steady_clock::now();
  for (int produced = 0; n_predict < 0 || produced < n_predict; ++produced) {
    if (interrupted()) {
      result.reason = StopReason::interrupted;
      break;
    }
    // logits() of the last evaluated token; the sampler may modify them (penalties).
    int32_t token = sampler.sample(const_cast<float*>(ctx.logits()));
    // NaN spreads through every later layer, so the chosen logit tells.
    if (!std::isfinite(ctx.logits()[token]))
      return Status::error("the model produced non-finite logits (a corrupt file? `lutra info --verify` checks it)");
    if (is_stop_token(cfg, token)) {
      result = {StopReason::stop_token, token};
      break;
    }
    if (ctx.n_past() >= ctx.n_ctx()) {
      result.reason = StopReason::context_full;
      break;
    }
    // Show the token before evaluating it: streaming output should not wait a forward pass.
    bool go_on = on_token(token);
    LUTRA_TRY(ctx.eval(std::span<const int32_t>(&token, 1)));
    ++stats.n_generated;
    if (!go_on) {
      result.reason = StopReason::caller;
      break;
    }
  }
  stats.gen_seconds += seconds_since(t0);
  return result;
}

}  // namespace lutra
