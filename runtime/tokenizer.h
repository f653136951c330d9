// Text <-> token ids for sentencepiece (SPM) and byte-level BPE vocabularies, and a streaming
// detokenizer. One interface for both; the differences are spelled out where they matter.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/bpe.h"        // BpeVocab
#include "runtime/spm_model.h"  // TokenPiece, SpmOptions, make_spm_model_proto
#include "runtime/status.h"

namespace lutra {

class Tokenizer {
 public:
  enum class Type : uint8_t { spm, bpe };
  // From a serialized sentencepiece ModelProto (what the model file stores).
  static Result<Tokenizer> from_spm_proto(std::string serialized);
  // Byte-level BPE (GPT-2, LLaMA-3) from its vocabulary, or from the model file's blob
  // (BpeModel::serialize()).
  static Result<Tokenizer> from_bpe(BpeVocab vocab);
  static Result<Tokenizer> from_bpe_blob(std::string_view blob);
  Type type() const;
  const std::string& spm_proto() const;  // the serialized proto it was built from; "" for BPE
  const std::string& bpe_blob() const;   // what the model file stores; "" for SPM

  // Special tokens written in the text ("<|eot_id|>"): text like any other (the default: safe
  // for what a user types), or the tokens they name. The latter is for BPE vocabularies;
  // sentencepiece ones refuse it. BPE user-defined tokens are matched either way.
  enum class Specials : uint8_t { as_text, as_tokens };
  // Text must be valid UTF-8: encode_checked refuses anything else; encode() encodes each
  // invalid byte as U+FFFD instead.
  std::vector<int32_t> encode(std::string_view text, bool add_bos) const;
  Result<std::vector<int32_t>> encode_checked(std::string_view text, bool add_bos,
                                              Specials specials = Specials::as_text) const;
  // Text that continues other text (a piece of a chat template): no dummy-prefix space (SPM);
  // the same as encode_checked without BOS for BPE, which adds no prefix.
  Result<std::vector<int32_t>> encode_continuation(std::string_view text) const;

  int32_t bos_id() const;  // -1: none
  int32_t eos_id() const;  // -1: none
  size_t vocab_size() const;
  bool is_control(int32_t id) const;  // BPE: the special tokens
  bool is_byte(int32_t id) const;     // SPM byte pieces ("<0x0A>"); never for BPE
  // The id of a piece given in sentencepiece form ("<|eot_id|>", "▁the"), or for BPE as its
  // raw bytes (" the") or special token text ("<|eot_id|>"); -1 if absent.
  int32_t piece_id(std::string_view piece) const;
  // The raw bytes this token contributes to text: "▁"→" ", "<0x0A>"→"\n", control → "",
  // <unk> → " ⁇ " (sentencepiece's surface); a BPE token's bytes, which may be part of a UTF-8
  // character. Precomputed at load; empty for ids out of range.
  std::string_view token_bytes(int32_t id) const;
  // Whole text as sentencepiece decodes it: the leading dummy-prefix space removed (SPM only),
  // byte runs that are not UTF-8 as U+FFFD per byte. Ids out of range contribute nothing.
  std::string decode(std::span<const int32_t> ids) const;

  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

 private:
  friend class TextStream;
  struct Impl;
  Tokenizer();
  static Result<Tokenizer> from_bpe_model(BpeModel bpe);
  bool starts_with_space(int32_t id) const;  // piece begins with "▁" (strippable)
  Result<std::vector<int32_t>> encode_impl(std::string_view text, bool add_bos, bool continuation,
                                           Specials specials) const;
  std::unique_ptr<Impl> impl_;
};

// Streaming detokenizer for generated text: feed ids one at a time and get back only complete
// UTF-8 characters (a multi-byte character split over byte tokens is held until complete).
// SPM: the first text at start and after each BOS loses its leading space (sentencepiece's dummy
// prefix), like llama2.c's decode does after BOS. BPE: every token is bytes that may split a
// character; nothing is stripped, and special tokens add nothing (nor end a character).
// Without BOS in mid-sequence, the concatenated output equals Tokenizer::decode of the same ids.
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
