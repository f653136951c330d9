// `lutra convert`: a checkpoint (or a synthetic preset) in, a lutra model file out.
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "apps/lutra/common.h"
#include "convert/convert.h"

using namespace lutra;
using namespace lutra::cli;

int cmd_convert(int argc, char** argv) {
  cxxopts::Options o("lutra convert", "Convert a checkpoint into a lutra model file");
  o.positional_help("INPUT");
  o.add_options()
      ("input", "checkpoint: a llama2.c .bin", cxxopts::value<std::string>())
      ("o,output", "model file to write", cxxopts::value<std::string>())
      ("tokenizer", "tokenizer file (llama2.c tokenizer.bin / tok*.bin)", cxxopts::value<std::string>()->default_value(""))
      ("weights", "format of the linear layers: f32, f16, t2, t3, t5, b<bits>g<group>[a] (default: the source's)", cxxopts::value<std::string>()->default_value(""))
      ("embedding", "format of the token embedding / tied head (same choices)", cxxopts::value<std::string>()->default_value(""))
      ("chat-template", "plain, llama2, llama3 or bitnet (default: from the checkpoint)", cxxopts::value<std::string>()->default_value(""))
      ("synthetic", std::string("make a model with random weights: ") + synthetic_presets(), cxxopts::value<std::string>())
      ("seed", "seed of a synthetic model", cxxopts::value<uint64_t>()->default_value("1"))
      ("q,quiet", "no progress output")
      ("h,help", "show this help");
  o.parse_positional({"input"});
  cxxopts::ParseResult r;
  int code;
  if (!parse(o, argc, argv, r, code)) return code;
  if (!r.count("output")) return fail("convert needs an output file (-o)");
  if (!r.count("input") && !r.count("synthetic")) return fail("convert needs an input checkpoint or --synthetic PRESET");

  install_interrupt_handler();
  ConvertOptions opts;
  opts.tokenizer = r["tokenizer"].as<std::string>();
  opts.weights = r["weights"].as<std::string>();
  opts.embedding = r["embedding"].as<std::string>();
  opts.chat_template = r["chat-template"].as<std::string>();
  opts.seed = r["seed"].as<uint64_t>();
  opts.interrupt = &g_interrupted;
  // A live progress line on a terminal; logs get only the summary.
  const bool quiet = r.count("quiet") > 0 || !::isatty(STDERR_FILENO);
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  uint64_t last_bytes = 0;
  opts.progress = [&](const std::string& tensor, uint64_t bytes) {
    last_bytes = bytes;
    if (quiet) return;
    double s = elapsed();
    std::fprintf(stderr, "\r\033[K%-32s %8.1f MB  %6.1f MB/s", tensor.c_str(), double(bytes) / 1e6,
                 s > 0 ? double(bytes) / 1e6 / s : 0.0);
    std::fflush(stderr);
  };

  const std::string out = r["output"].as<std::string>();
  Status s = r.count("synthetic") ? make_synthetic(r["synthetic"].as<std::string>(), out, opts)
                                  : convert_model(r["input"].as<std::string>(), out, opts);
  if (!quiet) std::fputc('\n', stderr);
  if (!s.ok()) return fail(s.message());
  if (!r.count("quiet"))
    std::fprintf(stderr, "wrote %s: %.1f MB in %.1f s\n", out.c_str(), double(last_bytes) / 1e6, elapsed());
  return 0;
}
