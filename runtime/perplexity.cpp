#include "runtime/perplexity.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace lutra {

namespace {
// -log softmax(logits)[target], in double: the max is taken out before exp.
double token_nll(const float* logits, size_t vocab, int32_t target) {
  const float mx = *std::max_element(logits, logits + vocab);
  double sum = 0;
  for (size_t v = 0; v < vocab; ++v) sum += std::exp(double(logits[v]) - double(mx));
  return std::log(sum) - (double(logits[target]) - double(mx));
}
}  // namespace

Result<PerplexityResult> perplexity(Context& ctx, std::span<const int32_t> tokens, int max_chunks,
                                    const std::function<void(const PerplexityResult&)>& on_chunk,
                                    const std::atomic<bool>* interrupt) {
  const ModelConfig& c = ctx.model().config();
  const size_t n_ctx = size_t(ctx.n_ctx()), vocab = size_t(c.vocab_size), batch = size_t(ctx.n_batch());
  // At n_ctx = 2 the scored half (positions n_ctx/2 .. n_ctx-2) is empty.
  if (n_ctx < 3) return Status::error("perplexity needs a context of at least 3 tokens (-c)");
  size_t n_chunks = tokens.size() / n_ctx;
  if (n_chunks == 0)
    return Status::error("the text has " + std::to_string(tokens.size()) + " tokens, fewer than one chunk of " +
                         std::to_string(n_ctx) + " (lower -c)");
  if (max_chunks > 0) n_chunks = std::min(n_chunks, size_t(max_chunks));

  const size_t first = n_ctx / 2;  // positions scored: first .. n_ctx - 2 (each predicts the next)
  PerplexityResult r;
  double nll_sum = 0, nll2_sum = 0;
  std::vector<int32_t> chunk(n_ctx);
  for (size_t ch = 0; ch < n_chunks; ++ch) {
    std::copy_n(tokens.begin() + ptrdiff_t(ch * n_ctx), n_ctx, chunk.begin());
    if (c.bos_id >= 0) chunk[0] = c.bos_id;
    ctx.reset();
    for (size_t at = 0; at < n_ctx; at += batch) {
      if (interrupt && interrupt->load()) return Status::error("interrupted");
      const size_t n = std::min(batch, n_ctx - at);
      LUTRA_TRY(ctx.eval(std::span<const int32_t>(chunk.data() + at, n)));
      for (size_t i = 0; i < n; ++i) {
        const size_t pos = at + i;
        if (pos < first || pos + 1 >= n_ctx) continue;
        // The target is the text's own next token (chunk[pos + 1] is never the BOS swap).
        const double nll = token_nll(ctx.logits(i), vocab, chunk[pos + 1]);
        nll_sum += nll;
        nll2_sum += nll * nll;
        r.n_scored++;
      }
    }
    r.n_chunks = int(ch + 1);
    const double n = double(r.n_scored);
    r.nll_mean = nll_sum / n;
    r.ppl = std::exp(r.nll_mean);
    // Standard error of the mean NLL, carried to ppl by its derivative (ppl' = ppl).
    const double var = n > 1 ? std::max(0.0, nll2_sum / n - r.nll_mean * r.nll_mean) / (n - 1) : 0.0;
    r.ppl_error = r.ppl * std::sqrt(var);
    if (on_chunk) on_chunk(r);
  }
  return r;
}

}  // namespace lutra
