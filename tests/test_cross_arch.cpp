// One model file, the same tokens everywhere: the shipped model generates the tokens (and the
// logits, compared by hash) recorded in tests/golden/default-model-generation.json under every
// ISA cap this CPU has, on x86 and on aarch64 alike. Every kernel follows one summation order
// (runtime/float_order.h), so nothing here may depend on the machine.
//
// CI runs this suite natively and then under qemu-aarch64 with LUTRA_CROSS_MODEL naming the
// x86 build's default.lutra: the aarch64 run then generates from the file converted on x86,
// after checking that its own conversion of the checkpoint is the same file byte for byte.
//
// After a deliberate change of the numbers (a retrained model, another summation order), write
// the golden file again from the scalar reference:
//   LUTRA_UPDATE_GOLDEN=1 build/lutra_tests -tc='*committed tokens*'
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <xxhash.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "convert/convert.h"
#include "runtime/context.h"
#include "runtime/generate.h"
#include "runtime/kernels.h"
#include "runtime/model.h"
#include "runtime/sampler.h"
#include "tests/test_data.h"

using namespace lutra;
namespace fs = std::filesystem;

namespace {

const fs::path kCheckpoint = fs::path(LUTRA_SOURCE_DIR) / "models" / "lutra-tiny-bitnet";
const fs::path kGolden = fs::path(LUTRA_SOURCE_DIR) / "tests" / "golden" / "default-model-generation.json";

struct Generated {
  std::vector<int32_t> tokens;
  std::string logits_hash;  // XXH3-64 of the logits each token was sampled from, in order
};

Generated generate_case(const Model& model, const nlohmann::json& c) {
  ContextParams cp;
  cp.n_threads = 2;  // a row split across workers, as on any multi-core board
  cp.n_batch = 8;    // a prompt longer than one batch
  auto ctx = Context::create(model, cp);
  REQUIRE_MESSAGE(ctx.ok(), ctx.message());
  SamplerParams sp;
  sp.temperature = c["temperature"].get<float>();
  sp.seed = c["seed"].get<uint64_t>();
  Sampler sampler(size_t(model.config().vocab_size), sp);
  const std::vector<int32_t> prompt = model.tokenizer().encode(c["prompt"].get<std::string>(), true);
  const size_t vocab = size_t(model.config().vocab_size);
  XXH3_state_t* state = XXH3_createState();
  REQUIRE(state);
  XXH3_64bits_reset(state);
  Generated g;
  GenerationStats stats;
  auto r = generate(**ctx, sampler, prompt, c["n"].get<int>(), [&](int32_t t) {
    g.tokens.push_back(t);
    XXH3_64bits_update(state, (*ctx)->logits(), vocab * sizeof(float));
    return true;
  }, stats);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(XXH3_64bits_digest(state)));
  XXH3_freeState(state);
  REQUIRE_MESSAGE(r.ok(), r.message());
  g.logits_hash = hex;
  return g;
}

}  // namespace

TEST_CASE("the default model generates the committed tokens under every ISA cap, from a file converted on any machine") {
  TempDir tmp;
  const std::string local = tmp.file("default.lutra");
  Status s = convert_model(kCheckpoint.string(), local, ConvertOptions{});
  REQUIRE_MESSAGE(s.ok(), s.message());
  std::string path = local;
  if (const char* cross = std::getenv("LUTRA_CROSS_MODEL"); cross && *cross) {
    INFO("LUTRA_CROSS_MODEL=" << cross);
    CHECK(read_bytes(cross) == read_bytes(local));  // the converter gives the same file here
    path = cross;
  }
  auto model = Model::load(path);
  REQUIRE_MESSAGE(model.ok(), model.message());

  std::ifstream in(kGolden);
  REQUIRE_MESSAGE(in, "missing " << kGolden);
  nlohmann::json golden = nlohmann::json::parse(in);
  const char* update = std::getenv("LUTRA_UPDATE_GOLDEN");
  const Isa before = isa_cap();
  for (Isa cap : kAllIsas) {
    if (!cpu_supports(cap)) continue;
    set_isa_cap(cap);
    for (nlohmann::json& c : golden["cases"]) {
      INFO("isa " << std::string(to_string(cap)) << ", prompt '" << c["prompt"].get<std::string>()
                  << "', temperature " << c["temperature"].get<float>());
      const Generated g = generate_case(**model, c);
      if (update && cap == Isa::scalar) {
        c["tokens"] = g.tokens;
        c["logits_xxh3"] = g.logits_hash;
        continue;
      }
      CHECK(nlohmann::json(g.tokens).dump() == c["tokens"].dump());
      CHECK(g.logits_hash == c["logits_xxh3"].get<std::string>());
    }
  }
  set_isa_cap(before);
  if (update) {
    std::ofstream out(kGolden);  // one line per case, so a diff shows which case changed
    out << "{\n \"cases\": [\n";
    for (size_t i = 0; i < golden["cases"].size(); ++i)
      out << "  " << golden["cases"][i].dump() << (i + 1 < golden["cases"].size() ? ",\n" : "\n");
    out << " ]\n}\n";
    MESSAGE("wrote " << kGolden);
  }
}
