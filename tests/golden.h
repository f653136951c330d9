// Test support: llama.cpp's tokenizer golden vectors (`<vocab>.inp` / `<vocab>.out`).
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

inline std::string read_all(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// Texts separated by "\n__ggml_vocab_test__\n" (the file ends with one, so the piece after the
// last is empty and not a test); one line of ids per text.
inline std::vector<std::pair<std::string, std::vector<int32_t>>> read_golden(const std::filesystem::path& inp,
                                                                           const std::filesystem::path& out) {
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
  std::vector<std::pair<std::string, std::vector<int32_t>>> cases;
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
