// Text <-> token ids for sentencepiece vocabularies, and a streaming detokenizer.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/spm_model.h"  // TokenPiece, SpmOptions, make_spm_model_proto
#include "runtime/status.h"

namespace lutra {

class Tokenizer {
 public:
  // From a serialized sentencepiece ModelProto (what the model file stores).
  static Result<Tokenizer> from_spm_proto(std::string serialized);
  const std::string& spm_proto() const;  // the serialized proto it was built from

  // Text must be valid UTF-8: encode_checked refuses anything else; encode() encodes each
  // invalid byte as U+FFFD instead.
  std::vector<int32_t> encode(std::string_view text, bool add_bos) const;
  Result<std::vector<int32_t>> encode_checked(std::string_view text, bool add_bos) const;
  // Text that continues other text (a piece of a chat template): no dummy-prefix space.
  Result<std::vector<int32_t>> encode_continuation(std::string_view text) const;

  int32_t bos_id() const;  // -1: none
  int32_t eos_id() const;  // -1: none
  size_t vocab_size() const;
  bool is_control(int32_t id) const;
  bool is_byte(int32_t id) const;
  // The id of a piece given in sentencepiece form ("<|eot_id|>", "▁the"); -1 if absent.
  int32_t piece_id(std::string_view piece) const;
  // The raw bytes this token contributes to text: "▁"→" ", "<0x0A>"→"\n", control → "",
  // <unk> → " ⁇ " (sentencepiece's surface). Precomputed at load; empty for ids out of range.
  std::string_view token_bytes(int32_t id) const;
  // Whole text as sentencepiece decodes it: the leading dummy-prefix space removed, byte
  // runs that are not UTF-8 as U+FFFD per byte. Ids out of range contribute nothing.
  std::string decode(std::span<const int32_t> ids) const;

  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

 private:
  friend class TextStream;
  struct Impl;
  Tokenizer();
  bool starts_with_space(int32_t id) const;  // piece begins with "▁" (strippable)
  Result<std::vector<int32_t>> encode_impl(std::string_view text, bool add_bos, bool continuation) const;
  std::unique_ptr<Impl> impl_;
};

// Streaming detokenizer for generated text: feed ids one at a time and get back only complete
// UTF-8 characters (a multi-byte character split over byte tokens is held until complete).
// The first text at start and after each BOS loses its leading space (sentencepiece's dummy
// prefix), like llama2.c's decode does after BOS. Without BOS in mid-sequence, the
// concatenated output equals Tokenizer::decode of the same ids.
class TextStream {
 public:
  explicit TextStream(const Tokenizer& tok);
  std::string_view push(int32_t id);  // view valid until the next call; no allocation in steady state
  std::string_view flush();           // whatever is held (invalid/incomplete bytes as U+FFFD)
  void reset();                       // start of a new text

 private:
  friend class Tokenizer;
  void emit(std::string_view s);
  void flush_pending();
  void take_byte(uint8_t b);

  const Tokenizer* tok_;
  std::string out_;              // what the current call returns
  uint8_t pending_[4] = {};      // start of a UTF-8 character from byte tokens, valid so far
  uint8_t n_pending_ = 0;
  bool strip_space_ = true;      // the next piece's leading space is the dummy prefix
  bool rearm_after_bos_ = true;  // llama2.c: strip again after a BOS (decode() does not)
};

}  // namespace lutra
