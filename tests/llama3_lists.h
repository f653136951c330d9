// Test support: LLaMA-3's vocabulary (the tiktoken llama3_tokenizer.model) as the lists a GGUF
// "llama-bpe" vocabulary or a Hugging Face tokenizer.json holds.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "convert/bpe_import.h"
#include "runtime/tokenizer.h"

// Tokens in byte-level spelling (the 256 specials as their text), llama.cpp token types
// (1 normal, 3 control), and a merge "left right" for every split of a token into two earlier
// tokens, in the order of the token they make.
struct Llama3Lists {
  std::vector<std::string> tokens, merges;
  std::vector<int32_t> types;
};

inline Llama3Lists llama3_lists(const std::filesystem::path& tiktoken) {
  using namespace lutra;
  auto vocab = read_tiktoken_bpe(tiktoken.string(), llama3_special_tokens(), BpePreTokenizer::llama3);
  REQUIRE_MESSAGE(vocab.ok(), vocab.message());
  auto ranked = Tokenizer::from_bpe(std::move(vocab).value());
  REQUIRE_MESSAGE(ranked.ok(), ranked.message());
  Llama3Lists out;
  const std::vector<SpecialToken> specials = llama3_special_tokens();
  for (int32_t id = 0; id < int32_t(ranked->vocab_size()); ++id) {
    if (ranked->is_control(id)) {
      out.tokens.push_back(specials.at(size_t(id - 128000)).text);
      out.types.push_back(3);
      continue;
    }
    const std::string_view bytes = ranked->token_bytes(id);
    out.tokens.push_back(byte_level_encode(bytes));
    out.types.push_back(1);
    for (size_t k = 1; k < bytes.size(); ++k) {
      const int32_t l = ranked->piece_id(bytes.substr(0, k)), r = ranked->piece_id(bytes.substr(k));
      if (l >= 0 && r >= 0 && l < id && r < id)
        out.merges.push_back(byte_level_encode(bytes.substr(0, k)) + " " + byte_level_encode(bytes.substr(k)));
    }
  }
  return out;
}
