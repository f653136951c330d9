// How faithful each LM-head recipe is, against a float head of the same checkpoint: the data
// behind the default head (convert/head_plan.h, runtime/head.h). Not a speed benchmark.
//
//   lutra_head_study SOURCE TEXT [--tokenizer T] [--synthetic PRESET] [-c 128] [--chunks 8]
//
// SOURCE is converted (into a temporary folder) once per recipe: the reference with a float
// head (--embedding f32, tied; untied models --embedding f32), each screen alone (--head
// b<bits>g32, second stage off) and each screen with the second stage at several candidate
// counts. TEXT is cut into chunks of -c tokens (each starting with BOS); every position's
// logits are compared with the reference's. Per recipe it prints: mean |Δlogit| over the
// vocabulary, the same over the reference's top 40, argmax agreement, the mean KL divergence
// of the reference's distribution from the recipe's, and for a screen alone how often the
// reference's top 40 are not all among the screen's best K ("miss@K").
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "convert/convert.h"
#include "runtime/context.h"
#include "runtime/head.h"
#include "runtime/model.h"

using namespace lutra;
namespace fs = std::filesystem;

namespace {

struct Recipe {
  std::string name, embedding, head;
  int candidates;  // head_candidates at run time
};

// Every position's logits ([positions][vocab]) of a model over the chunks.
std::vector<float> all_logits(const Model& m, const std::vector<std::vector<int32_t>>& chunks, int candidates) {
  ContextParams p;
  p.n_ctx = int(chunks[0].size());
  p.n_batch = p.n_ctx;
  p.logits_all = true;
  p.head_candidates = candidates;
  auto ctx = Context::create(m, p);
  if (!ctx.ok()) throw std::runtime_error(ctx.message());
  const size_t V = size_t(m.config().vocab_size);
  std::vector<float> out;
  for (const auto& c : chunks) {
    (*ctx)->reset();
    if (Status s = (*ctx)->eval(c); !s.ok()) throw std::runtime_error(s.message());
    for (size_t i = 0; i < c.size(); ++i) out.insert(out.end(), (*ctx)->logits(i), (*ctx)->logits(i) + V);
  }
  return out;
}

std::vector<int32_t> top_ids(const float* l, size_t V, size_t k) {
  std::vector<int32_t> ids(V);
  for (size_t i = 0; i < V; ++i) ids[i] = int32_t(i);
  k = std::min(k, V);
  std::partial_sort(ids.begin(), ids.begin() + long(k), ids.end(), [&](int32_t a, int32_t b) {
    return l[a] > l[b] || (l[a] == l[b] && a < b);
  });
  ids.resize(k);
  return ids;
}

// log softmax in double.
std::vector<double> log_softmax(const float* l, size_t V) {
  double mx = *std::max_element(l, l + V), sum = 0;
  for (size_t i = 0; i < V; ++i) sum += std::exp(double(l[i]) - mx);
  std::vector<double> out(V);
  for (size_t i = 0; i < V; ++i) out[i] = double(l[i]) - mx - std::log(sum);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string source, text_path, tokenizer, synthetic;
  int n_ctx = 128, n_chunks = 8;
  std::vector<std::string> args(argv + 1, argv + argc);
  std::vector<std::string> pos;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--tokenizer" && i + 1 < args.size()) tokenizer = args[++i];
    else if (args[i] == "--synthetic" && i + 1 < args.size()) synthetic = args[++i];
    else if (args[i] == "-c" && i + 1 < args.size()) n_ctx = std::stoi(args[++i]);
    else if (args[i] == "--chunks" && i + 1 < args.size()) n_chunks = std::stoi(args[++i]);
    else pos.push_back(args[i]);
  }
  if (pos.size() != (synthetic.empty() ? 2u : 1u)) {
    std::fprintf(stderr, "usage: lutra_head_study SOURCE TEXT [--tokenizer T] [-c 128] [--chunks 8]\n"
                         "       lutra_head_study --synthetic PRESET TEXT [--tokenizer T]\n");
    return 2;
  }
  if (synthetic.empty()) source = pos[0];
  text_path = pos.back();

  const fs::path dir = fs::temp_directory_path() / ("lutra-head-study-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::vector<Recipe> recipes = {{"reference: f32 head", "f32", "", 0}};
  for (const char* s : {"b2g32", "b3g32", "b4g32", "b5g32", "b6g32", "b8g32"}) recipes.push_back({s, "", s, 0});
  for (const char* s : {"b2g32", "b3g32", "b4g32"})
    for (int k : {64, 256}) recipes.push_back({std::string(s) + " + rescore " + std::to_string(k), "", s, k});

  std::map<std::string, std::unique_ptr<Model>> models;  // by file (recipes with equal files share)
  auto model_for = [&](const Recipe& r) -> const Model& {
    const std::string key = r.embedding + "|" + r.head;
    if (!models.count(key)) {
      ConvertOptions o;
      o.embedding = r.embedding;
      o.head = r.head;
      o.tokenizer = tokenizer;
      const std::string out = (dir / (std::to_string(models.size()) + ".lutra")).string();
      Status s = synthetic.empty() ? convert_model(source, out, o) : make_synthetic(synthetic, out, o);
      if (!s.ok()) throw std::runtime_error(s.message());
      auto m = Model::load(out);
      if (!m.ok()) throw std::runtime_error(m.message());
      models[key] = std::move(m).value();
    }
    return *models[key];
  };

  try {
    const Model& ref = model_for(recipes[0]);
    std::ifstream in(text_path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::vector<int32_t> ids = ref.tokenizer().encode(ss.str(), false);
    std::vector<std::vector<int32_t>> chunks;
    for (size_t at = 0; chunks.size() < size_t(n_chunks) && at + size_t(n_ctx) <= ids.size(); at += size_t(n_ctx) - 1) {
      std::vector<int32_t> c = {ref.config().bos_id};
      c.insert(c.end(), ids.begin() + long(at), ids.begin() + long(at) + n_ctx - 1);
      chunks.push_back(std::move(c));
    }
    if (chunks.empty()) throw std::runtime_error("the text is shorter than one chunk");
    const size_t V = size_t(ref.config().vocab_size), P = chunks.size() * size_t(n_ctx);
    std::printf("source: %s, vocab %zu, %zu positions (%zu chunks of %d tokens)\n",
                synthetic.empty() ? source.c_str() : ("synthetic:" + synthetic).c_str(), V, P, chunks.size(), n_ctx);
    const std::vector<float> L = all_logits(ref, chunks, 0);
    double spread = 0;  // the reference logits' standard deviation, for scale
    {
      double s = 0, s2 = 0;
      for (float v : L) s += v, s2 += double(v) * v;
      spread = std::sqrt(s2 / double(L.size()) - (s / double(L.size())) * (s / double(L.size())));
    }
    std::printf("reference logits: standard deviation %.4f\n\n", spread);
    std::printf("| head | mean abs dlogit | over ref top 40 | argmax agrees | mean KL (nats) | miss@40 | miss@64 | miss@128 | miss@256 | miss@512 |\n");
    std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t ri = 1; ri < recipes.size(); ++ri) {
      const Recipe& r = recipes[ri];
      const std::vector<float> T = all_logits(model_for(r), chunks, r.candidates);
      double abs_all = 0, abs_top = 0, kl = 0;
      size_t agree = 0, miss[5] = {};
      const size_t ks[5] = {40, 64, 128, 256, 512};
      for (size_t p = 0; p < P; ++p) {
        const float* l = L.data() + p * V;
        const float* t = T.data() + p * V;
        for (size_t i = 0; i < V; ++i) abs_all += std::fabs(double(t[i]) - l[i]);
        const std::vector<int32_t> top = top_ids(l, V, 40);
        for (int32_t i : top) abs_top += std::fabs(double(t[i]) - l[i]) / double(top.size());
        agree += top_ids(t, V, 1)[0] == top[0];
        const std::vector<double> lp = log_softmax(l, V), lq = log_softmax(t, V);
        for (size_t i = 0; i < V; ++i) kl += std::exp(lp[i]) * (lp[i] - lq[i]);
        if (r.candidates == 0) {
          for (int j = 0; j < 5; ++j) {
            const std::vector<int32_t> cand = top_ids(t, V, ks[j]);
            bool all_in = true;
            for (int32_t i : top) all_in &= std::find(cand.begin(), cand.end(), i) != cand.end();
            miss[j] += !all_in;
          }
        }
      }
      std::printf("| %s | %.5f | %.5f | %.2f %% | %.6f |", r.name.c_str(), abs_all / double(P * V),
                  abs_top / double(P), 100.0 * double(agree) / double(P), kl / double(P));
      for (int j = 0; j < 5; ++j)
        if (r.candidates == 0 && ks[j] < V) std::printf(" %.2f %% |", 100.0 * double(miss[j]) / double(P));
        else std::printf(" - |");
      std::printf("\n");
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lutra_head_study: %s\n", e.what());
    fs::remove_all(dir);
    return 1;
  }
  fs::remove_all(dir);
  return 0;
}
