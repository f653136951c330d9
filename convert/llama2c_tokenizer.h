// llama2.c's tokenizer.bin format (tokenizer.bin, tok512.bin): int32 max_token_length, then
// per piece float32 score, int32 byte length, the bytes. All little-endian.
#pragma once

#include <string>
#include <vector>

#include "runtime/spm_model.h"
#include "runtime/status.h"

namespace lutra {

// Reads exactly vocab_size pieces, in sentencepiece form: the exporter wrote "▁" as " " and
// BOS/EOS as "\n<s>\n"/"\n</s>\n"; both are undone. Kinds: "<unk>" unknown, "<s>"/"</s>"
// control, "<0xHH>" byte, else normal. A short, corrupt or longer-than-expected file is an
// error naming the file.
Result<std::vector<TokenPiece>> read_llama2c_tokenizer(const std::string& path, size_t vocab_size);

}  // namespace lutra
