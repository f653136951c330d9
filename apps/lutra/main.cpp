// The `lutra` command line: one subcommand per job.
#include <cstdio>
#include <cstring>
#include <string>

#include "apps/lutra/common.h"

namespace {

void usage(FILE* f) {
  std::fprintf(f,
               "lutra %s: fast CPU inference for low-bit LLMs\n\n"
               "usage: lutra <command> [options]\n\n"
               "  chat      talk with a model (the default model if no -m)\n"
               "  run       generate text from a prompt\n"
               "  convert   turn a checkpoint into a lutra model file\n"
               "  info      show a model, the CPU and the kernels lutra picked\n"
               "  bench     measure prompt and generation speed against the memory-bandwidth floor\n"
               "  tokenize  print the token ids of a text\n"
               "  eval      run token ids through a model and write their logits (.npy)\n"
               "  perplexity  measure a model's perplexity on a text file\n\n"
               "`lutra <command> --help` lists a command's options.\n",
               LUTRA_VERSION);
}

}  // namespace

int dispatch(int argc, char** argv);

// Errors are values inside lutra; this catches what the standard library may still throw
// (out of memory, thread creation), so even that ends in one line and a non-zero exit.
int main(int argc, char** argv) {
  try {
    return dispatch(argc, argv);
  } catch (const std::bad_alloc&) {
    return lutra::cli::fail("out of memory (a smaller -c or model?)");
  } catch (const std::exception& e) {
    return lutra::cli::fail(e.what());
  }
}

int dispatch(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 1;
  }
  const std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    usage(stdout);
    return 0;
  }
  if (cmd == "--version" || cmd == "version") {
    std::printf("lutra %s\n", LUTRA_VERSION);
    return 0;
  }
  // Subcommands parse argv from their own name on.
  if (cmd == "run") return cmd_run(argc - 1, argv + 1);
  if (cmd == "chat") return cmd_chat(argc - 1, argv + 1);
  if (cmd == "convert") return cmd_convert(argc - 1, argv + 1);
  if (cmd == "info") return cmd_info(argc - 1, argv + 1);
  if (cmd == "bench") return cmd_bench(argc - 1, argv + 1);
  if (cmd == "tokenize") return cmd_tokenize(argc - 1, argv + 1);
  if (cmd == "eval") return cmd_eval(argc - 1, argv + 1);
  if (cmd == "perplexity") return cmd_perplexity(argc - 1, argv + 1);
  return lutra::cli::fail("unknown command '" + cmd + "' (try `lutra --help`)");
}
