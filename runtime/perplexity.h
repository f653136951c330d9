// Perplexity of a model on a token stream, measured as llama.cpp's llama-perplexity does, so
// the numbers can be compared: the text is cut into chunks of the context's size; each chunk
// starts afresh (its first token replaced by BOS when the model has one) and only the second
// half of its positions is scored, so every scored token sees at least half a context.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>

#include "runtime/context.h"

namespace lutra {

struct PerplexityResult {
  int n_chunks = 0;       // chunks evaluated
  size_t n_scored = 0;    // tokens whose negative log-likelihood was summed
  double nll_mean = 0;    // mean negative log-likelihood (nats per token)
  double ppl = 0;         // exp(nll_mean)
  double ppl_error = 0;   // standard error of ppl (from the spread of the per-token NLL)
};

// `ctx` must keep every token's logits (ContextParams::logits_all); chunks are n_ctx() tokens.
// max_chunks <= 0: all whole chunks in `tokens`. on_chunk receives the running result after
// each chunk. Fails if `tokens` holds less than one chunk, or on an interrupt.
Result<PerplexityResult> perplexity(Context& ctx, std::span<const int32_t> tokens, int max_chunks,
                                    const std::function<void(const PerplexityResult&)>& on_chunk,
                                    const std::atomic<bool>* interrupt = nullptr);

}  // namespace lutra
