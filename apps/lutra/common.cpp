#include "apps/lutra/common.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <iostream>

namespace lutra::cli {

std::atomic<bool> g_interrupted{false};

namespace {
void on_sigint(int) { g_interrupted.store(true); }
}  // namespace

void install_interrupt_handler() {
  struct sigaction sa{};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a read blocked on the terminal returns
  sigaction(SIGINT, &sa, nullptr);
}

int fail(const std::string& message) {
  std::fflush(stdout);
  std::fprintf(stderr, "lutra: %s\n", message.c_str());
  return 1;
}

void add_model_options(cxxopts::Options& o) {
  o.add_options("model")
      ("m,model", "model file (default: $LUTRA_MODEL, else the default model)", cxxopts::value<std::string>())
      ("t,threads", "worker threads (default: one per physical core)", cxxopts::value<int>()->default_value("0"))
      ("c,ctx-size", "context size in tokens (default: the model's, at most 4096)", cxxopts::value<int>()->default_value("0"))
      ("b,batch-size", "tokens per forward pass during prompt processing", cxxopts::value<int>()->default_value("64"))
      ("h,help", "show this help");
  add_compute_options(o);
}

void add_compute_options(cxxopts::Options& o) {
  o.add_options("compute")
      ("isa", "cap the kernels' instruction set: " + isa_names(), cxxopts::value<std::string>())
      ("float-bq", "multiply b-bit weights (the head's screen, 4-bit layers) by float activations: exact, ~3x slower than the default int8 activations")
      ("int8-bq", "int8 activations for b-bit weights (the default; kept for old scripts)")
      ("head-candidates", "head rows rescored from the exact rows per token (0: the screen's logits only)",
       cxxopts::value<int>()->default_value(std::to_string(kDefaultHeadCandidates)))
      ("fast-bp", "bit-plane (p<bits>g<group>) weights through int8 tables: faster, approximate")
      ("kv-type", "KV cache elements: f16 (half the memory and the bytes read per token at depth), "
                  "q8 (int8 with a scale per 32 values: 0.56x f16's bytes, approximate) or f32 (exact)",
       cxxopts::value<std::string>()->default_value("f16"));
}

Status apply_compute_options(const cxxopts::ParseResult& r, ContextParams& p) {
  if (r.count("float-bq") && r.count("int8-bq")) return Status::error("--float-bq and --int8-bq contradict each other");
  p.bq_int8 = !r.count("float-bq");
  p.bp_fast = r.count("fast-bp") > 0;
  p.head_candidates = r["head-candidates"].as<int>();
  if (p.head_candidates < 0) return Status::error("--head-candidates must be >= 0");
  const std::string kv = r["kv-type"].as<std::string>();
  for (KvType t : {KvType::f32, KvType::f16, KvType::q8})
    if (kv == kv_type_name(t)) {
      p.kv_type = t;
      return ok_status();
    }
  return Status::error("--kv-type takes f16, q8 or f32, not '" + kv + "'");
}

void add_sampling_options(cxxopts::Options& o) {
  o.add_options("sampling")
      ("temp", "temperature (0: greedy)", cxxopts::value<float>()->default_value("0.8"))
      ("top-k", "keep the k most likely tokens (0: all)", cxxopts::value<int>()->default_value("40"))
      ("top-p", "keep the most likely tokens up to this probability mass (1: off)", cxxopts::value<float>()->default_value("0.95"))
      ("min-p", "drop tokens below this fraction of the top probability (0: off)", cxxopts::value<float>()->default_value("0.05"))
      ("repeat-penalty", "penalty for recently seen tokens (1: off)", cxxopts::value<float>()->default_value("1.0"))
      ("repeat-last-n", "how many recent tokens the penalty looks at", cxxopts::value<int>()->default_value("64"))
      ("seed", "random seed (default: from the clock)", cxxopts::value<uint64_t>());
}

Result<SamplerParams> sampler_params(const cxxopts::ParseResult& r) {
  SamplerParams p;
  p.temperature = r["temp"].as<float>();
  p.top_k = r["top-k"].as<int>();
  p.top_p = r["top-p"].as<float>();
  p.min_p = r["min-p"].as<float>();
  p.repeat_penalty = r["repeat-penalty"].as<float>();
  p.repeat_last_n = std::max(0, r["repeat-last-n"].as<int>());
  p.seed = r.count("seed") ? r["seed"].as<uint64_t>()
                           : uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
  LUTRA_TRY(validate(p));
  return p;
}

Result<std::string> resolve_model_path(const cxxopts::ParseResult& r) {
  if (r.count("model")) return r["model"].as<std::string>();
  if (const char* env = std::getenv("LUTRA_MODEL"); env && *env) return std::string(env);
  std::error_code ec;
  for (const char* p : {LUTRA_DEFAULT_MODEL_BUILD, LUTRA_DEFAULT_MODEL_INSTALL})
    if (std::filesystem::exists(p, ec)) return std::string(p);
  return Status::error("no model given (-m) and the default model is missing: build the project first");
}

Status apply_isa_option(const cxxopts::ParseResult& r) {
  if (!r.count("isa")) return ok_status();
  Isa isa;
  if (!parse_isa(r["isa"].as<std::string>(), isa))
    return Status::error("unknown --isa '" + r["isa"].as<std::string>() + "' (expected one of: " + isa_names() + ")");
  set_isa_cap(isa);
  return ok_status();
}

Result<std::unique_ptr<Model>> load_model(const cxxopts::ParseResult& r) {
  LUTRA_TRY(apply_isa_option(r));
  auto path = resolve_model_path(r);
  if (!path.ok()) return path.status();
  return Model::load(*path);
}

Result<std::unique_ptr<Context>> make_context(const Model& model, const cxxopts::ParseResult& r,
                                              bool logits_all, int default_n_ctx) {
  ContextParams p;
  p.logits_all = logits_all;
  p.n_ctx = r["ctx-size"].as<int>();
  if (p.n_ctx == 0) p.n_ctx = default_n_ctx;
  p.n_threads = r["threads"].as<int>();
  p.n_batch = r["batch-size"].as<int>();
  LUTRA_TRY(apply_compute_options(r, p));
  if (p.n_ctx < 0 || p.n_threads < 0 || p.n_batch <= 0)
    return Status::error("-c and -t must be >= 0 and -b > 0");
  if (p.n_threads > usable_cpu_count())
    std::fprintf(stderr, "lutra: warning: -t %d exceeds the %d CPUs available; using %d\n", p.n_threads,
                 usable_cpu_count(), usable_cpu_count());
  if (p.n_ctx > model.config().max_seq_len)
    std::fprintf(stderr, "lutra: warning: -c %d exceeds the %d positions the model was trained on\n", p.n_ctx,
                 model.config().max_seq_len);
  return Context::create(model, p);
}

void add_text_options(cxxopts::Options& o, const char* group) {
  o.add_options(group)
      ("p,prompt", "the text", cxxopts::value<std::string>()->default_value(""))
      ("f,file", "read the text from a file", cxxopts::value<std::string>());
}

Result<std::string> read_text_option(const cxxopts::ParseResult& r) {
  if (!r.count("file")) return r["prompt"].as<std::string>();
  const std::string path = r["file"].as<std::string>();
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::error("cannot read '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool parse(cxxopts::Options& o, int argc, char** argv, cxxopts::ParseResult& out, int& exit_code) {
  try {
    out = o.parse(argc, argv);
  } catch (const std::exception& e) {
    exit_code = fail(std::string(e.what()) + " (see --help)");
    return false;
  }
  if (out.count("help")) {
    std::cout << o.help();
    exit_code = 0;
    return false;
  }
  if (!out.unmatched().empty()) {
    exit_code = fail("unexpected argument '" + out.unmatched()[0] + "' (see --help)");
    return false;
  }
  return true;
}

void print_text(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

void print_stats(const GenerationStats& s) {
  auto rate = [](int n, double sec) { return sec > 0 ? double(n) / sec : 0.0; };
  std::fprintf(stderr, "\nprompt: %d tokens, %.2f tokens/s | generation: %d tokens, %.2f tokens/s\n",
               s.n_prompt, rate(s.n_prompt, s.prompt_seconds), s.n_generated,
               rate(s.n_generated, s.gen_seconds));
}

}  // namespace lutra::cli
