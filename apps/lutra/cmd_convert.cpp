// `lutra convert`: a checkpoint (or a synthetic preset) in, a lutra model file out.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>

#include "apps/lutra/common.h"
#include "convert/convert.h"

using namespace lutra;
using namespace lutra::cli;

namespace {

// One line about the written file: its size, and the bits per weight of the layers' matrices
// (blk.*), of the head the decode multiplies (output, else the tied token_embd) and of the
// embedding and exact rows (read a row at a time), with their formats.
std::string summary(const std::string& path) {
  auto f = ModelFile::open(path);
  if (!f.ok()) return "";
  struct Sum { uint64_t weights = 0, bytes = 0; std::map<std::string, int> formats; };
  Sum layers, head, rows;
  const bool own_head = (*f)->find(kOutput) != nullptr;
  for (const TensorInfo& t : (*f)->tensors()) {
    if (t.shape.size() != 2) continue;
    Sum& s = t.name.rfind("blk.", 0) == 0                                  ? layers
             : t.name == kOutput || (t.name == kTokenEmbd && !own_head) ? head
                                                                          : rows;
    s.weights += t.shape[0] * t.shape[1];
    s.bytes += t.bytes;
    s.formats[t.format == "bq" ? "b" + std::to_string(t.bits) + "g" + std::to_string(t.group) + (t.asymmetric ? "a" : "")
                               : t.format]++;
  }
  auto describe = [](const char* what, const Sum& s) {
    if (s.weights == 0) return std::string();
    std::string formats;
    for (const auto& [name, count] : s.formats) formats += (formats.empty() ? "" : "+") + name;
    char buf[128];
    std::snprintf(buf, sizeof buf, ", %s %.2f bits/weight (%s)", what, 8.0 * double(s.bytes) / double(s.weights),
                  formats.c_str());
    return std::string(buf);
  };
  char size[64];
  std::snprintf(size, sizeof size, "%.1f MB", double((*f)->size()) / 1e6);
  return size + describe("layers", layers) + describe(own_head ? "head" : "embedding/head", head) +
         describe("embedding and exact head rows", rows);
}

}  // namespace

int cmd_convert(int argc, char** argv) {
  cxxopts::Options o("lutra convert", "Convert a checkpoint into a lutra model file");
  o.positional_help("INPUT");
  o.add_options()
      ("input", "checkpoint: a llama2.c .bin, a GGUF file, or a Hugging Face folder (config.json + safetensors + tokenizer)", cxxopts::value<std::string>())
      ("o,output", "model file to write", cxxopts::value<std::string>())
      ("tokenizer", "tokenizer file (llama2.c tokenizer.bin / tok*.bin; for a Hugging Face folder, a sentencepiece model instead of its own; with --synthetic, a LLaMA-3 tiktoken tokenizer.model)", cxxopts::value<std::string>()->default_value(""))
      ("weights", "format of the linear layers: f32, f16, t2, t3, t5, b<bits>g<group>[a] (default: t3 for ternary/BitNet layers, b4g32 for other GGUF and Llama layers, a llama2.c file's own)", cxxopts::value<std::string>()->default_value(""))
      ("embedding", "format of the token embedding (default: the source's precision, f16 or f32); given alone, the head multiplies it (tied) or takes its format (untied), with no second stage", cxxopts::value<std::string>()->default_value(""))
      ("head", "format of the LM head's screen (default: b4g32, its best candidates rescored per token from the source-precision rows); 'tied' multiplies the embedding itself; q8, q4, f16, ...", cxxopts::value<std::string>()->default_value(""))
      ("chat-template", "plain, llama2, llama3 or bitnet (default: from the checkpoint)", cxxopts::value<std::string>()->default_value(""))
      ("synthetic", std::string("make a model with random weights: ") + synthetic_presets(), cxxopts::value<std::string>())
      ("seed", "seed of a synthetic model", cxxopts::value<uint64_t>()->default_value("1"))
      ("progress", "show the progress line even when stderr is not a terminal")
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
  opts.head = r["head"].as<std::string>();
  opts.chat_template = r["chat-template"].as<std::string>();
  opts.seed = r["seed"].as<uint64_t>();
  opts.interrupt = &g_interrupted;
  // A live progress line on a terminal (or one line per tensor with --progress); logs get
  // only the summary.
  const bool tty = ::isatty(STDERR_FILENO);
  const bool show = !r.count("quiet") && (tty || r.count("progress"));
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  double fraction = -1;  // unknown unless the importer counts its tensors
  opts.progress_count = [&](size_t done, size_t total) { fraction = total ? double(done) / double(total) : -1; };
  opts.progress = [&](const std::string& tensor, uint64_t bytes) {
    if (!show) return;
    double s = elapsed();
    char pct[16] = "";
    if (fraction >= 0) std::snprintf(pct, sizeof pct, "%5.1f %%", 100.0 * fraction);
    std::fprintf(stderr, "%s%-32s %8.1f MB  %6.1f MB/s  %s%s", tty ? "\r\033[K" : "", tensor.c_str(),
                 double(bytes) / 1e6, s > 0 ? double(bytes) / 1e6 / s : 0.0, pct, tty ? "" : "\n");
    std::fflush(stderr);
  };

  const std::string out = r["output"].as<std::string>();
  Status s = r.count("synthetic") ? make_synthetic(r["synthetic"].as<std::string>(), out, opts)
                                  : convert_model(r["input"].as<std::string>(), out, opts);
  if (show && tty) std::fputc('\n', stderr);
  if (!s.ok()) return fail(s.message());
  if (!r.count("quiet")) std::fprintf(stderr, "wrote %s: %s in %.1f s\n", out.c_str(), summary(out).c_str(), elapsed());
  return 0;
}
