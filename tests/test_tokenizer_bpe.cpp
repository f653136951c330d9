// Byte-level BPE: the LLaMA-3 and GPT-2 golden vectors, specials, round trips, the model-file
// blob, and the importers (tiktoken, GGUF lists, tokenizer.json).
#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "convert/bpe_import.h"
#include "runtime/bpe.h"
#include "tests/test_data.h"

using namespace lutra;

namespace {

std::string read_all(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// llama.cpp's golden files (the format is described in tests/test_tokenizer.cpp).
std::vector<std::pair<std::string, std::vector<int32_t>>> read_golden(const std::filesystem::path& inp,
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

}  // namespace

TEST_CASE("LLaMA-3 golden vectors pass with the vocabulary read from llama3_tokenizer.model") {
  auto model = test_data_file("llama3_tokenizer.model");
  auto inp = test_data_file("ggml-vocab-llama-bpe.gguf.inp");
  auto out = test_data_file("ggml-vocab-llama-bpe.gguf.out");
  if (!model || !inp || !out) return;
  const auto specials = llama3_special_tokens();
  auto vocab = read_tiktoken_bpe(model->string(), specials, BpePreTokenizer::llama3);
  REQUIRE_MESSAGE(vocab.ok(), vocab.message());
  auto t0 = std::chrono::steady_clock::now();
  auto bpe = BpeModel::create(std::move(vocab).value());
  MESSAGE("create: " << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  REQUIRE_MESSAGE(bpe.ok(), bpe.message());
  CHECK(bpe->size() == 128256);
  auto cases = read_golden(*inp, *out);
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& [text, expected] = cases[i];
    INFO("golden #" << i << ": \"" << text << "\"");
    std::vector<int32_t> ids;
    REQUIRE(bpe->encode(text, false, ids).ok());
    CHECK(ids == expected);
  }
  auto wiki = test_data_file("wikitext2-test-crlf.txt");
  if (!wiki) return;
  std::string w = read_all(*wiki);
  t0 = std::chrono::steady_clock::now();
  std::vector<int32_t> ids;
  REQUIRE(bpe->encode(w, false, ids).ok());
  MESSAGE("wiki: " << ids.size() << " tokens in " << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}
