// `lutra run`: one-shot generation from a prompt (or from BOS alone).
#include <cstdio>

#include "apps/lutra/common.h"
#include "runtime/tokenizer.h"

using namespace lutra;
using namespace lutra::cli;

int cmd_run(int argc, char** argv) {
  cxxopts::Options o("lutra run", "Generate text from a prompt");
  add_model_options(o);
  add_sampling_options(o);
  add_text_options(o, "generation");
  o.add_options("generation")
      ("n,n-predict", "tokens to generate (-1: until end of text or full context)", cxxopts::value<int>()->default_value("128"));
  cxxopts::ParseResult r;
  int code;
  if (!parse(o, argc, argv, r, code)) return code;
  auto sp = sampler_params(r);
  if (!sp.ok()) return fail(sp.message());

  auto prompt = read_text_option(r);
  if (!prompt.ok()) return fail("prompt: " + prompt.message());

  auto model = load_model(r);
  if (!model.ok()) return fail(model.message());
  const Tokenizer& tok = (*model)->tokenizer();
  auto ids = tok.encode_checked(*prompt, true);
  if (!ids.ok()) return fail("prompt: " + ids.message());
  auto ctx = make_context(**model, r);
  if (!ctx.ok()) return fail(ctx.message());
  if (int(ids->size()) > (*ctx)->n_ctx())
    return fail("the prompt has " + std::to_string(ids->size()) + " tokens, more than the context of " +
                std::to_string((*ctx)->n_ctx()) + " (raise -c)");

  install_interrupt_handler();
  Sampler sampler(size_t((*model)->config().vocab_size), *sp);
  TextStream stream(tok);
  // Echo the prompt as the tokenizer sees it, then the continuation.
  for (int32_t id : *ids) print_text(stream.push(id));
  GenerationStats stats;
  auto result = generate(**ctx, sampler, *ids, r["n-predict"].as<int>(), [&](int32_t id) {
    print_text(stream.push(id));
    return true;
  }, stats, &g_interrupted);
  print_text(stream.flush());
  print_text("\n");
  if (!result.ok()) return fail(result.message());
  print_stats(stats);
  if (result->reason == StopReason::interrupted) return fail("interrupted");
  if (result->reason == StopReason::context_full)
    std::fprintf(stderr, "lutra: stopped: the context of %d tokens is full (raise -c)\n", (*ctx)->n_ctx());
  return 0;
}
