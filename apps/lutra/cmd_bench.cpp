// `lutra bench`: prompt-processing and generation speed, llama-bench style, with the memory
// bandwidth of this machine measured in the same run so decode speed can be read against
// its floor (bytes of weights per token / bandwidth).
#include <sys/mman.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <span>
#include <sstream>
#include <vector>

#include "apps/lutra/common.h"

using namespace lutra;
using namespace lutra::cli;

namespace {

using Clock = std::chrono::steady_clock;
double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

struct Spread {
  double mean = 0, stddev = 0, median = 0;
};
Spread spread(std::vector<double> v) {
  Spread s;
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= double(v.size());
  for (double x : v) s.stddev += (x - s.mean) * (x - s.mean);
  s.stddev = v.size() > 1 ? std::sqrt(s.stddev / double(v.size() - 1)) : 0;
  std::sort(v.begin(), v.end());
  s.median = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  return s;
}

std::vector<int> parse_int_list(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(std::stoi(item));
  return out;
}

// Read bandwidth with n workers over a buffer far larger than the last-level cache: the
// best of several passes, in GB/s. The buffer is in 2 MiB pages where the kernel gives them, as
// the model's weights are (ModelFile), so the floor is not lowered by 4 KiB page walks.
double measure_bandwidth(int n_threads, size_t bytes) {
  void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 0;
  ::madvise(mem, bytes, MADV_HUGEPAGE);
  std::span<uint64_t> buf(static_cast<uint64_t*>(mem), bytes / sizeof(uint64_t));
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = i;  // touch every page before timing
  ThreadPool pool(n_threads);
  std::vector<uint64_t> sink(size_t(n_threads) * 8);
  double best = 0;
  for (int pass = 0; pass < 5; ++pass) {
    auto body = [&](int ith, int nth) {
      size_t b, e;
      ThreadPool::split(buf.size(), ith, nth, 4096, b, e);
      uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;  // independent sums: loads, not adds, limit
      size_t i = b;
      for (; i + 4 <= e; i += 4) s0 += buf[i], s1 += buf[i + 1], s2 += buf[i + 2], s3 += buf[i + 3];
      for (; i < e; ++i) s0 += buf[i];
      sink[size_t(ith) * 8] = s0 + s1 + s2 + s3;
    };
    auto t0 = Clock::now();
    pool.run(body);
    best = std::max(best, double(bytes) / seconds(t0, Clock::now()) / 1e9);
  }
  ::munmap(mem, bytes);
  return best;
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  cxxopts::Options o("lutra bench", "Measure prompt and generation speed (llama-bench style)");
  o.add_options()
      ("m,model", "model file (default: $LUTRA_MODEL, else the default model)", cxxopts::value<std::string>())
      ("p,n-prompt", "prompt tokens evaluated in one batch (0: skip)", cxxopts::value<int>()->default_value("128"))
      ("n,n-gen", "tokens generated one at a time (0: skip)", cxxopts::value<int>()->default_value("64"))
      ("t,threads", "comma-separated thread counts", cxxopts::value<std::string>()->default_value("1,2"))
      ("b,batch-size", "prompt batch", cxxopts::value<int>()->default_value("128"))
      ("d,n-depth", "comma-separated KV cache depths: tokens already in the cache before each test (llama-bench's -d)", cxxopts::value<std::string>()->default_value("0"))
      ("r,repetitions", "runs of each test (interleaved across thread counts)", cxxopts::value<int>()->default_value("3"))
      ("bandwidth", "measure the machine's read bandwidth at each thread count (on by default with a model)")
      ("no-bandwidth", "skip the bandwidth measurement")
      ("json", "print JSON instead of a table")
      ("h,help", "show this help");
  add_compute_options(o);
  cxxopts::ParseResult r;
  int code;
  if (!parse(o, argc, argv, r, code)) return code;
  if (Status s = apply_isa_option(r); !s.ok()) return fail(s.message());
  // A comma-separated list of integers >= lowest, or an empty list.
  auto int_list = [&](const char* option, int lowest) {
    std::vector<int> v;
    try {
      v = parse_int_list(r[option].as<std::string>());
    } catch (const std::exception&) {
      return std::vector<int>{};
    }
    return !v.empty() && *std::min_element(v.begin(), v.end()) >= lowest ? v : std::vector<int>{};
  };
  const std::vector<int> threads = int_list("threads", 1), depths = int_list("n-depth", 0);
  if (threads.empty()) return fail("-t takes a comma-separated list of thread counts >= 1, e.g. 1,2");
  if (depths.empty()) return fail("-d takes a comma-separated list of depths >= 0, e.g. 0,1024,4096");
  const int n_prompt = r["n-prompt"].as<int>(), n_gen = r["n-gen"].as<int>(), reps = r["repetitions"].as<int>();
  if (n_prompt < 0 || n_gen < 0 || reps < 1) return fail("-p and -n must be >= 0 and -r >= 1");
  const bool want_bw = !r.count("no-bandwidth");
  const bool json_out = r.count("json") > 0;

  auto path = resolve_model_path(r);
  if (!path.ok()) return fail(path.message());
  auto model = Model::load(*path);
  if (!model.ok()) return fail(model.message());
  const Model& m = **model;
  const ModelConfig& c = m.config();
  ContextParams base;
  if (Status s = apply_compute_options(r, base); !s.ok()) return fail(s.message());
  const double bytes_per_token = double(m.weight_bytes_per_token(base.head_candidates));
  // What was measured: the file's recipe, as its converter recorded it.
  const nlohmann::json prov = nlohmann::json::parse(m.provenance_json(), nullptr, false);
  const nlohmann::json recipe = prov.is_object() && prov.contains("recipe") ? prov["recipe"] : nlohmann::json::object();

  // Bandwidth first, while the model's pages are not yet competing for the cache.
  std::map<int, double> bandwidth;
  if (want_bw)
    for (int t : threads) bandwidth[t] = measure_bandwidth(t, size_t(1) << 30);

  const int max_depth = *std::max_element(depths.begin(), depths.end());
  std::map<int, std::unique_ptr<Context>> contexts;
  for (int t : threads) {
    ContextParams p = base;
    p.n_threads = t;
    p.n_ctx = max_depth + std::max(n_prompt, n_gen) + 1;
    p.n_batch = std::max(1, r["batch-size"].as<int>());
    auto ctx = Context::create(m, p);
    if (!ctx.ok()) return fail(ctx.message());
    contexts[t] = std::move(ctx.value());
  }
  // Deterministic pseudo-random ids (any id is a valid input): the prompt, and the tokens that
  // fill the cache to each depth.
  auto pseudo_ids = [&](size_t n, uint32_t salt) {
    std::vector<int32_t> ids(n);
    for (size_t i = 0; i < n; ++i) ids[i] = int32_t(((i + salt) * 2654435761u + 7) % uint32_t(c.vocab_size));
    return ids;
  };
  const std::vector<int32_t> prompt = pseudo_ids(size_t(n_prompt), 0);
  const std::vector<int32_t> filler = pseudo_ids(size_t(max_depth), 12345);

  // One untimed token per context first (llama-bench warms up too): it reads every weight once,
  // so the first timed run does not pay for page faults, or for reading the file back from disk
  // where the kernel has evicted idle page cache (seen here: DAMON's pageout of pages unused for
  // a minute, which made the first of two runs 2.5x slower).
  for (int t : threads) {
    Context& ctx = *contexts[t];
    ctx.reset();
    const int32_t tok = c.bos_id;
    if (Status s = ctx.eval(std::span<const int32_t>(&tok, 1)); !s.ok()) return fail(s.message());
  }

  // Samples per (depth, threads): the cache is filled to the depth once (untimed), and each
  // run starts from there (Context::truncate), as llama-bench's -d runs do.
  using Key = std::pair<int, int>;
  std::map<Key, std::vector<double>> pp, tg;
  for (int d : depths) {
    for (int t : threads) {
      Context& ctx = *contexts[t];
      ctx.reset();
      if (Status s = ctx.eval(std::span<const int32_t>(filler.data(), size_t(d))); d > 0 && !s.ok())
        return fail(s.message());
    }
    for (int rep = 0; rep < reps; ++rep) {
      for (int t : threads) {
        Context& ctx = *contexts[t];
        if (n_prompt > 0) {
          ctx.truncate(d);
          auto t0 = Clock::now();
          if (Status s = ctx.eval(prompt); !s.ok()) return fail(s.message());
          pp[{d, t}].push_back(double(n_prompt) / seconds(t0, Clock::now()));
        }
        if (n_gen > 0) {
          ctx.truncate(d);
          int32_t tok = c.bos_id;
          auto t0 = Clock::now();
          for (int i = 0; i < n_gen; ++i) {
            if (Status s = ctx.eval(std::span<const int32_t>(&tok, 1)); !s.ok()) return fail(s.message());
            tok = int32_t(std::max_element(ctx.logits(), ctx.logits() + c.vocab_size) - ctx.logits());
          }
          tg[{d, t}].push_back(double(n_gen) / seconds(t0, Clock::now()));
        }
      }
    }
  }
  // Peak resident memory of the whole run: the pages of the file it read, every context's KV
  // cache and buffers, and the bandwidth probe's 1 GiB buffer if it ran (its pages are gone, but
  // the peak keeps them; --no-bandwidth leaves it out).
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  const double peak_rss = double(ru.ru_maxrss) * 1024.0;
  double kv_bytes = 0;
  for (const auto& [t, ctx] : contexts) kv_bytes += double(ctx->kv_cache_bytes());
  const double kv_per_position = double(contexts.begin()->second->kv_bytes_per_position());

  // Weights streamed from 4 KiB pages run 2-3x slower on some machines (a page walk each):
  // say how much of the file the kernel maps with 2 MiB pages, now that the runs have read it
  // (pages never read, such as most embedding rows, are not mapped at all).
  const double huge_bytes = double(m.file().huge_page_bytes());
  std::string recipe_text;
  for (const char* key : {"weights", "embedding", "head"})
    if (recipe.contains(key) && recipe[key].is_string())
      recipe_text += (recipe_text.empty() ? "" : "; ") + std::string(key) + " " + recipe[key].get<std::string>();
  std::string run_text = base.bq_int8 ? "int8 activations for b-bit weights" : "float activations for b-bit weights";
  run_text += std::string(", ") + kv_type_name(base.kv_type) + " KV cache";
  if (m.weights().output_exact.data)
    run_text += ", " + std::to_string(base.head_candidates) + " head candidates rescored";

  nlohmann::json results = nlohmann::json::array();
  auto record = [&](int d, int t, const std::string& test, const std::vector<double>& v) {
    Spread s = spread(v);
    // A generated token reads the weights and the KV cache so far: on average depth + n/2
    // positions of it during a tg run.
    const double kv_read = test.rfind("tg", 0) == 0 ? kv_per_position * (d + (n_gen - 1) / 2.0) : 0.0;
    nlohmann::json j = {{"model", m.file().path()}, {"arch", c.arch}, {"model_bytes", m.file().size()},
                        {"weight_bytes_per_token", bytes_per_token}, {"kv_bytes_per_token", kv_read},
                        {"depth", d}, {"threads", t}, {"test", test},
                        {"tokens_per_s_mean", s.mean}, {"tokens_per_s_stddev", s.stddev},
                        {"tokens_per_s_median", s.median}, {"samples", v},
                        {"recipe", recipe}, {"bq_int8", base.bq_int8}, {"kv_type", kv_type_name(base.kv_type)}, {"head_candidates", base.head_candidates},
                        {"huge_page_bytes", huge_bytes}, {"peak_rss_bytes", peak_rss},
                        {"kv_cache_bytes", kv_bytes}, {"kernel_gemm_t2", kernels().gemm_t2.name}};
    if (bandwidth.count(t)) {
      j["bandwidth_gb_s"] = bandwidth[t];
      if (test.rfind("tg", 0) == 0)
        j["floor_fraction"] = s.median * (bytes_per_token + kv_read) / (bandwidth[t] * 1e9);
    }
    results.push_back(j);
  };
  for (int d : depths)
    for (int t : threads) {
      if (n_prompt > 0) record(d, t, "pp" + std::to_string(n_prompt), pp[{d, t}]);
      if (n_gen > 0) record(d, t, "tg" + std::to_string(n_gen), tg[{d, t}]);
    }

  if (json_out) {
    std::printf("%s\n", results.dump(2).c_str());
    return 0;
  }
  std::printf("model: %s (%s, %.2f GB, %.1f MB of weights read per token), %d runs each\n",
              m.file().path().c_str(), c.arch.c_str(), double(m.file().size()) / 1e9, bytes_per_token / 1e6, reps);
  std::printf("recipe: %s\nrun: %s; %.1f MB of the file mapped in 2 MiB pages\n",
              recipe_text.empty() ? "(not recorded)" : recipe_text.c_str(), run_text.c_str(), huge_bytes / 1e6);
  std::printf("memory: peak RSS %.1f MB (KV cache %.1f MB in %zu context%s of %d positions%s)\n", peak_rss / 1e6,
              kv_bytes / 1e6, contexts.size(), contexts.size() == 1 ? "" : "s", contexts.begin()->second->n_ctx(),
              want_bw ? "; the bandwidth probe's 1 GiB buffer counts too" : "");
  std::printf("| threads | depth | test | tokens/s (mean ± sd) | median | read GB/s (KV) | machine GB/s | of floor |\n");
  std::printf("|---:|---:|---|---:|---:|---:|---:|---:|\n");
  auto num = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", v);
    return std::string(buf);
  };
  for (const auto& j : results) {
    const std::string test = j["test"];
    const bool gen = test.rfind("tg", 0) == 0;
    const double med = j["tokens_per_s_median"];
    const double kv_read = j["kv_bytes_per_token"];
    char read_gbs[48] = "-";
    if (gen) std::snprintf(read_gbs, sizeof read_gbs, "%.1f (%.1f)", med * (bytes_per_token + kv_read) / 1e9, med * kv_read / 1e9);
    const std::string machine_gbs = j.contains("bandwidth_gb_s") ? num(j["bandwidth_gb_s"].get<double>()) : "-";
    const std::string floor = gen && j.contains("floor_fraction")
                                  ? std::to_string(std::lround(j["floor_fraction"].get<double>() * 100)) + " %"
                                  : "-";
    std::printf("| %d | %d | %s | %.2f ± %.2f | %.2f | %s | %s | %s |\n", j["threads"].get<int>(), j["depth"].get<int>(), test.c_str(),
                j["tokens_per_s_mean"].get<double>(), j["tokens_per_s_stddev"].get<double>(), med,
                read_gbs, machine_gbs.c_str(), floor.c_str());
  }
  return 0;
}
