// `lutra perplexity`: a model's perplexity on a text file, measured as llama-perplexity does
// (chunks of -c tokens, the second half of each scored), printing the running value per chunk
// and the final value with its standard error.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "apps/lutra/common.h"
#include "runtime/perplexity.h"
#include "runtime/tokenizer.h"

using namespace lutra;
using namespace lutra::cli;

int cmd_perplexity(int argc, char** argv) {
  cxxopts::Options o("lutra perplexity", "Measure a model's perplexity on a text");
  add_model_options(o);
  add_text_options(o, "text");
  o.add_options("text")
      ("chunks", "evaluate at most this many chunks (0: all)", cxxopts::value<int>()->default_value("0"));
  cxxopts::ParseResult r;
  int code;
  if (!parse(o, argc, argv, r, code)) return code;
  if (!r.count("file") && r["prompt"].as<std::string>().empty()) return fail("perplexity needs a text: -f FILE (or -p TEXT)");
  auto text = read_text_option(r);
  if (!text.ok()) return fail(text.message());
  auto model = load_model(r);
  if (!model.ok()) return fail(model.message());
  auto ids = (*model)->tokenizer().encode_checked(*text, true);
  if (!ids.ok()) return fail("text: " + ids.message());
  // Without -c, llama-perplexity's chunk of 512 tokens (not the whole training context).
  auto ctx = make_context(**model, r, /*logits_all=*/true, std::min(512, (*model)->config().max_seq_len));
  if (!ctx.ok()) return fail(ctx.message());

  install_interrupt_handler();
  const auto t0 = std::chrono::steady_clock::now();
  auto res = perplexity(**ctx, *ids, r["chunks"].as<int>(), [](const PerplexityResult& p) {
    char running[48];
    std::snprintf(running, sizeof running, "[%d]%.4f,", p.n_chunks, p.ppl);
    print_text(running);
  }, &g_interrupted);
  print_text("\n");
  if (!res.ok()) return fail(res.message());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  char line[160];
  std::snprintf(line, sizeof line, "Final estimate: PPL = %.4f +/- %.5f\n", res->ppl, res->ppl_error);
  print_text(line);
  std::fprintf(stderr, "lutra: %zu tokens in the text; %d chunks of %d evaluated, %zu tokens scored; %.1f s "
               "(%.1f tokens/s, %d threads)\n", ids->size(), res->n_chunks, (*ctx)->n_ctx(), res->n_scored, secs,
               double(res->n_chunks) * (*ctx)->n_ctx() / secs, (*ctx)->n_threads());
  return 0;
}
