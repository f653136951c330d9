// Byte-level BPE (GPT-2, LLaMA-3 / BitNet b1.58 2B4T): special tokens are cut out of the text
// first, a regex pre-tokenizer (PCRE2 with Unicode properties) splits the rest into pieces, and
// ranked merges join each piece's bytes into tokens. Tokens are raw bytes here; GPT-2's
// byte-to-unicode spelling (tokenizer.json, GGUF) is undone by the importers (convert/bpe_import.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runtime/status.h"

namespace lutra {

// Which regex splits text into pieces before merging.
enum class BpePreTokenizer : uint8_t {
  gpt2 = 0,    // GPT-2: 's|'t|... | ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  llama3 = 1,  // LLaMA-3 (tiktoken cl100k): case-insensitive contractions, digits in threes, ...
  custom = 2,  // BpeVocab::pattern, as a tokenizer.json Split gives it
};
// The regex of a known kind ("" for custom).
std::string_view bpe_pattern(BpePreTokenizer pre);

// How adjacent parts of a piece merge.
enum class BpeMerges : uint8_t {
  listed = 0,  // BpeVocab::merges: the pair listed first merges first (HF merges, GGUF)
  by_id = 1,   // tiktoken: two parts whose joined bytes are a normal token merge, lowest id first
};

struct BpeVocab {
  enum class Kind : uint8_t {
    normal = 0,        // reached by merges
    control = 1,       // special token (<|eot_id|>): its text is matched only when the caller allows
    user_defined = 2,  // added token matched verbatim in any text
  };
  struct Token {
    std::string bytes;  // raw bytes (a special token's text)
    Kind kind = Kind::normal;
  };
  std::vector<Token> tokens;  // by id
  std::vector<std::pair<int32_t, int32_t>> merges;  // BpeMerges::listed: (left, right) ids, best first
  BpeMerges merge_rule = BpeMerges::listed;
  BpePreTokenizer pre = BpePreTokenizer::gpt2;
  std::string pattern;          // custom pre-tokenizer only
  bool ignore_merges = false;   // a piece that is itself a normal token is that token (LLaMA-3)
  int32_t bos_id = -1, eos_id = -1;  // -1: none
};

// An encoder built from a BpeVocab: immutable, safe to share between threads.
class BpeModel {
 public:
  // Refuses vocabularies it cannot encode with: a single byte without a token, a merge whose
  // ids are out of range or whose joined bytes are not a token, duplicate normal tokens, a
  // pattern PCRE2 rejects.
  static Result<BpeModel> create(BpeVocab vocab);
  // The "tokenizer.bpe" blob of a model file (see serialize()).
  static Result<BpeModel> deserialize(std::string_view blob);

  // Version 1 blob, little-endian:
  //   "LBPE", u32 version = 1,
  //   u8 pre-tokenizer, u8 merge rule, u8 flags (bit 0: ignore_merges), u8 0,
  //   i32 bos_id, i32 eos_id,
  //   u32 pattern length, pattern bytes (custom pre-tokenizer; else length 0),
  //   u32 token count n, n × (u8 kind, u32 byte length), then all tokens' bytes back to back,
  //   u32 merge count m, m × (i32 left id, i32 right id), best first.
  std::string serialize() const;

  // Appends the tokens of `text`. Control tokens' text is matched only with allow_control;
  // user-defined tokens always are. Text that is not UTF-8 is an error (from PCRE2's check).
  Status encode(std::string_view text, bool allow_control, std::vector<int32_t>& out) const;

  const BpeVocab& vocab() const;
  size_t size() const { return vocab().tokens.size(); }
  // The id whose bytes are exactly `bytes` (normal tokens first, then special ones); -1 if none.
  int32_t find(std::string_view bytes) const;

  struct Impl;  // opaque state (public so the encoder's helpers can take it)

  ~BpeModel();
  BpeModel(BpeModel&&) noexcept;
  BpeModel& operator=(BpeModel&&) noexcept;

 private:
  BpeModel();
  std::unique_ptr<Impl> impl_;
};

}  // namespace lutra
