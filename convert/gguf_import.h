// GGUF checkpoints into lutra model files: the pieces an importer or a test needs besides
// convert_gguf() (convert/convert.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "convert/gguf.h"
#include "runtime/spm_model.h"
#include "runtime/status.h"

namespace lutra {

// tokenizer.ggml.model == "llama": the pieces (tokens, scores, token types) for
// make_spm_model_proto, and the options the file's metadata gives (bos/eos/unk ids, whether a
// space is prepended).
struct GgufSpmVocab {
  std::vector<TokenPiece> pieces;
  SpmOptions options;
};
Result<GgufSpmVocab> read_gguf_spm_vocab(const GgufFile& file);

// tokenizer.ggml.model == "gpt2" (byte-level BPE): bpe_vocab_from_gguf (convert/bpe_import.h).

// lutra's chat template name ("llama2", "llama3", "bitnet", "plain") for a Jinja template,
// recognized by its markers.
std::string chat_template_from_jinja(const std::string& jinja);

}  // namespace lutra
