// Test support: the synthetic "tiny" model converted with given options and loaded.
#pragma once

#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "convert/convert.h"
#include "runtime/model.h"
#include "tests/test_data.h"

// "tiny" converted with `opts`, written to `dir` as `name` and loaded.
inline std::unique_ptr<lutra::Model> tiny_model(const TempDir& dir, const std::string& name,
                                                const lutra::ConvertOptions& opts) {
  const std::string path = dir.file(name);
  const lutra::Status made = lutra::make_synthetic("tiny", path, opts);
  REQUIRE_MESSAGE(made.ok(), made.message());
  auto m = lutra::Model::load(path);
  REQUIRE_MESSAGE(m.ok(), m.message());
  return std::move(m).value();
}

// "tiny" with its linear layers as `weights` and its embedding (and tied head) as `embedding`
// ("" = the default).
inline std::unique_ptr<lutra::Model> tiny_model_as(const TempDir& dir, const std::string& weights,
                                                   const std::string& embedding) {
  lutra::ConvertOptions opts;
  opts.weights = weights;
  opts.embedding = embedding;
  return tiny_model(dir, "tiny-" + weights + "-" + embedding + ".lutra", opts);
}
