// `lutra chat`: interactive, streaming, multi-turn. The KV cache holds the whole conversation,
// so each turn only evaluates its own new tokens.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "apps/lutra/common.h"
#include "runtime/chat.h"
#include "runtime/tokenizer.h"

using namespace lutra;
using namespace lutra::cli;

int cmd_chat(int argc, char** argv) {
  cxxopts::Options o("lutra chat", "Chat with a model (/reset starts over, /exit quits, Ctrl-C stops a reply)");
  add_model_options(o);
  add_sampling_options(o);
  o.add_options("chat")
      ("s,system", "system prompt", cxxopts::value<std::string>()->default_value(""))
      ("n,n-predict", "most tokens per reply (-1: until the model ends it)", cxxopts::value<int>()->default_value("256"));
  cxxopts::ParseResult r;
  int code;
  if (!parse(o, argc, argv, r, code)) return code;
  auto sp = sampler_params(r);
  if (!sp.ok()) return fail(sp.message());

  auto model = load_model(r);
  if (!model.ok()) return fail(model.message());
  auto ctx_r = make_context(**model, r);
  if (!ctx_r.ok()) return fail(ctx_r.message());
  Context& ctx = **ctx_r;
  const Tokenizer& tok = (*model)->tokenizer();
  Sampler sampler(size_t((*model)->config().vocab_size), *sp);
  const std::string system = r["system"].as<std::string>();
  const int n_predict = r["n-predict"].as<int>();
  const bool tty = ::isatty(STDIN_FILENO);

  install_interrupt_handler();
  std::fprintf(stderr, "lutra chat: %s (%s, %d threads, context %d). /reset starts over, /exit quits, "
               "Ctrl-C stops a reply.\n", (*model)->file().path().c_str(), (*model)->config().arch.c_str(),
               ctx.n_threads(), ctx.n_ctx());

  bool first = true;
  int32_t previous_stop = -1;
  TextStream stream(tok);
  GenerationStats total;
  std::string line;
  for (;;) {
    if (tty) std::fputs("\n> ", stdout);
    std::fflush(stdout);
    g_interrupted.store(false);
    if (!std::getline(std::cin, line)) break;  // end of input, or Ctrl-C at the prompt
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      ctx.reset();
      sampler.reset();
      first = true;
      previous_stop = -1;
      std::fputs("(conversation cleared)\n", stdout);
      continue;
    }
    if (line.empty()) continue;

    auto turn = chat_turn_tokens(**model, line, system, first, previous_stop);
    if (!turn.ok()) {
      fail(turn.message());
      continue;
    }
    if (ctx.n_past() + int(turn->size()) >= ctx.n_ctx()) {
      fail("the conversation no longer fits the context of " + std::to_string(ctx.n_ctx()) +
           " tokens: /reset to start over (or raise -c)");
      continue;
    }
    stream.reset();
    GenerationStats stats;
    auto result = generate(ctx, sampler, *turn, n_predict, [&](int32_t id) {
      print_text(stream.push(id));
      return true;
    }, stats, &g_interrupted);
    print_text(stream.flush());
    print_text("\n");
    if (!result.ok()) {
      fail(result.message());
      continue;
    }
    first = false;
    previous_stop = result->reason == StopReason::stop_token ? result->stop_token : -1;
    if (result->reason == StopReason::interrupted) std::fputs("[stopped]\n", stdout);
    if (result->reason == StopReason::context_full)
      fail("the context is full: /reset to start over (or raise -c)");
    total.n_prompt += stats.n_prompt;
    total.prompt_seconds += stats.prompt_seconds;
    total.n_generated += stats.n_generated;
    total.gen_seconds += stats.gen_seconds;
  }
  print_stats(total);
  return 0;
}
