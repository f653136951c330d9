// Test support for the tokenizers: llama.cpp's golden vectors (`<vocab>.inp` / `<vocab>.out`)
// and streaming decode.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "runtime/tokenizer.h"
#include "tests/test_data.h"

inline std::string read_all(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// Texts separated by "\n__ggml_vocab_test__\n" (the file ends with one, so the piece after the
// last is empty and not a test); one line of ids per text.
using GoldenCases = std::vector<std::pair<std::string, std::vector<int32_t>>>;

inline GoldenCases read_golden(const std::filesystem::path& inp, const std::filesystem::path& out) {
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::string all = read_all(inp);
  std::vector<std::string> texts;
  for (size_t pos = 0;;) {
    size_t next = all.find(sep, pos);
    if (next == std::string::npos) {
      REQUIRE(pos == all.size());
      break;
    }
    texts.push_back(all.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::ifstream f(out);
  GoldenCases cases;
  std::string line;
  for (const std::string& t : texts) {
    REQUIRE(std::getline(f, line));
    std::istringstream ls(line);
    std::vector<int32_t> ids;
    for (int32_t id; ls >> id;) ids.push_back(id);
    cases.emplace_back(t, std::move(ids));
  }
  return cases;
}

// The golden cases of `vocab` (e.g. "ggml-vocab-llama-bpe.gguf") from the test data, or nullopt
// after test_data_file's skip message when either file is missing.
inline std::optional<GoldenCases> golden_cases(const std::string& vocab) {
  auto inp = test_data_file((vocab + ".inp").c_str());
  auto out = test_data_file((vocab + ".out").c_str());
  if (!inp || !out) return std::nullopt;
  return read_golden(*inp, *out);
}

// Every golden text encodes (UTF-8 checked, no BOS) to its ids, and they decode back to it.
inline void check_golden(const lutra::Tokenizer& tok, const GoldenCases& cases) {
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& [text, expected] = cases[i];
    INFO("golden #" << i << ": \"" << text << "\"");
    auto ids = tok.encode_checked(text, false);
    REQUIRE_MESSAGE(ids.ok(), ids.message());
    CHECK(*ids == expected);
    CHECK(tok.decode(expected) == text);
  }
}

// All of `ids` pushed through the stream one by one, then flushed.
inline std::string stream_all(lutra::TextStream& ts, const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += ts.push(id);
  s += ts.flush();
  return s;
}
