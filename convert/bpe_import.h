// Byte-level BPE vocabularies from the files that carry them: tiktoken rank files (LLaMA-3's
// tokenizer.model), GGUF's tokenizer.ggml.* lists, Hugging Face tokenizer.json.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "convert/gguf.h"
#include "runtime/bpe.h"
#include "runtime/status.h"

namespace lutra {

// A special token of a tiktoken vocabulary: its text and id (tiktoken files do not list them).
struct SpecialToken {
  std::string text;
  int32_t id = 0;
};

// LLaMA-3's 256 special tokens, ids first_id.. (128000.. in LLaMA-3, right after the ranks), as
// Meta's tokenizer names them: <|begin_of_text|>, <|end_of_text|>, <|start_header_id|>,
// <|end_header_id|>, <|eot_id|> (first_id + 0, 1, 6, 7, 9) and <|reserved_special_token_N|>.
std::vector<SpecialToken> llama3_special_tokens(int32_t first_id = 128000);

// Places `specials` as control tokens at their ids past the vocabulary's tokens; empty control
// placeholders fill the gaps. `name` is used in error messages.
Status add_special_tokens(BpeVocab& v, std::span<const SpecialToken> specials, const std::string& name);

// A tiktoken file: one "base64 rank" line per token, ranks 0..n-1 (each once) becoming ids;
// merges follow the ranks (BpeMerges::by_id) and a piece that is a token is that token, as
// tiktoken encodes. The specials become control tokens; ids between the ranks and a special
// that nobody names stay empty placeholders. BOS/EOS are left at -1 for the caller to set.
Result<BpeVocab> read_tiktoken_bpe(const std::string& path, std::span<const SpecialToken> specials,
                                   BpePreTokenizer pre);
// The same from the file's text (`name` is used in error messages).
Result<BpeVocab> parse_tiktoken_bpe(std::string_view text, const std::string& name,
                                    std::span<const SpecialToken> specials, BpePreTokenizer pre);

// GPT-2's printable spelling of bytes that tokenizer.json and GGUF use for BPE tokens ("Ġ" is
// the space). byte_level_decode fails on a character outside the 256 of the table.
std::string byte_level_encode(std::string_view bytes);
Result<std::string> byte_level_decode(std::string_view text);

// GGUF's lists (tokenizer.ggml.tokens / merges / token_type / pre). Tokens of type control (3),
// unknown (2) and unused (5) become control tokens, user-defined (4) user-defined ones; both keep
// their text as is, normal tokens are byte-level decoded. Merges are "left right" strings.
// `pre`: "gpt-2" or "llama-bpe" (which also looks whole pieces up first, like llama.cpp).
// token_types may be empty (all normal).
Result<BpeVocab> bpe_vocab_from_gguf(std::span<const std::string> tokens, std::span<const std::string> merges,
                                     std::span<const int32_t> token_types, std::string_view pre,
                                     int32_t bos_id, int32_t eos_id);

// The same from a GGUF file's tokenizer.ggml.* keys (model "gpt2"). pre "default" is "gpt-2";
// pre absent: "llama-bpe" for a vocabulary with <|begin_of_text|> (bitnet.cpp's 2B4T file),
// else "gpt-2". bos/eos_token_id absent: <|begin_of_text|> / <|end_of_text|> if present, else -1.
Result<BpeVocab> bpe_vocab_from_gguf(const GgufFile& gguf);

// The id of the special (control) token whose text is `text`; -1 if none.
int32_t special_token_id(const BpeVocab& v, std::string_view text);

// A Hugging Face tokenizer.json of a byte-level BPE model: model.vocab, model.merges (either
// "a b" strings or ["a", "b"] pairs), model.ignore_merges, added_tokens (special → control,
// else user-defined), and the pre-tokenizer (ByteLevel with its regex → gpt2; a Split regex →
// gpt2 or llama3 when it is theirs, else used as given). BOS/EOS are left at -1: they are in
// the model's config, not here.
Result<BpeVocab> bpe_vocab_from_hf_json(std::string_view json_text);

}  // namespace lutra
