// The C API (include/lutra.h) over Model, Context and generate().
#include <cstring>
#include <string>

#include "lutra.h"
#include "runtime/context.h"
#include "runtime/generate.h"
#include "runtime/model.h"
#include "runtime/tokenizer.h"

struct lutra_model {
  std::unique_ptr<lutra::Model> model;
};

namespace {
void set_error(char* err, size_t len, const std::string& msg) {
  if (!err || len == 0) return;
  std::strncpy(err, msg.c_str(), len - 1);
  err[len - 1] = '\0';
}

// Nothing may unwind across extern "C": what the standard library throws (out of memory,
// thread creation) becomes the error message.
template <class F, class R>
R guarded(char* err, size_t err_len, R on_error, F&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    set_error(err, err_len, std::string("lutra: ") + e.what());
  } catch (...) {
    set_error(err, err_len, "lutra: unknown error");
  }
  return on_error;
}
}  // namespace

extern "C" {

const char* lutra_version(void) { return LUTRA_VERSION; }

lutra_params lutra_default_params(void) {
  lutra_params p{};
  p.n_predict = 128;
  p.temperature = 0.8f;
  p.top_k = 40;
  p.top_p = 0.95f;
  p.min_p = 0.05f;
  return p;
}

lutra_model* lutra_model_load(const char* path, char* err, size_t err_len) {
  return guarded(err, err_len, static_cast<lutra_model*>(nullptr), [&]() -> lutra_model* {
    auto m = lutra::Model::load(path ? path : "");
    if (!m.ok()) {
      set_error(err, err_len, m.message());
      return nullptr;
    }
    return new lutra_model{std::move(m.value())};
  });
}

void lutra_model_free(lutra_model* model) { delete model; }

int lutra_generate(lutra_model* model, const lutra_params* params, const char* prompt,
                   lutra_text_callback on_text, void* user, char* err, size_t err_len) {
  return guarded(err, err_len, 1, [&]() -> int {
    if (!model || !params) {
      set_error(err, err_len, "lutra_generate: model and params are required");
      return 1;
    }
    const lutra::Model& m = *model->model;
    auto ids = m.tokenizer().encode_checked(prompt ? prompt : "", true);
    if (!ids.ok()) {
      set_error(err, err_len, "prompt: " + ids.message());
      return 1;
    }
    lutra::ContextParams cp;
    cp.n_ctx = params->n_ctx;
    cp.n_threads = params->n_threads;
    auto ctx = lutra::Context::create(m, cp);
    if (!ctx.ok()) {
      set_error(err, err_len, ctx.message());
      return 1;
    }
    lutra::SamplerParams sp;
    sp.temperature = params->temperature;
    sp.top_k = params->top_k;
    sp.top_p = params->top_p;
    sp.min_p = params->min_p;
    sp.seed = params->seed;
    if (lutra::Status s = lutra::validate(sp); !s.ok()) {
      set_error(err, err_len, s.message());
      return 1;
    }
    lutra::Sampler sampler(size_t(m.config().vocab_size), sp);
    lutra::TextStream stream(m.tokenizer());
    lutra::GenerationStats stats;
    auto r = lutra::generate(**ctx, sampler, *ids, params->n_predict, [&](int32_t id) {
      std::string_view s = stream.push(id);
      return !on_text || s.empty() || on_text(s.data(), s.size(), user) != 0;
    }, stats);
    if (!r.ok()) {
      set_error(err, err_len, r.message());
      return 1;
    }
    std::string_view rest = stream.flush();
    if (on_text && !rest.empty()) on_text(rest.data(), rest.size(), user);
    return 0;
  });
}

}  // extern "C"
