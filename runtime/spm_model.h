// A sentencepiece ModelProto written and read by hand as protobuf wire format: Debian's
// libsentencepiece ships no protobuf headers, but loads a serialized proto.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "runtime/status.h"

namespace lutra {

struct TokenPiece {
  std::string text;   // sentencepiece form: "▁" (U+2581) stands for a space; bytes as "<0x0A>"
  float score = 0;
  enum class Kind : uint8_t { normal, unknown, control, byte, user_defined, unused } kind = Kind::normal;
};

struct SpmOptions { int32_t bos_id = 1, eos_id = 2, unk_id = 0; bool add_dummy_prefix = true; };

// Serialized sentencepiece ModelProto (BPE with byte fallback) for these pieces: identity
// normalizer, whitespace escaped to "▁", extra whitespace kept. The unk id is the UNKNOWN
// piece's (opts.unk_id if there is none); bos/eos are opts' ids (-1: none). Validation is
// left to sentencepiece's loader (duplicate or empty pieces, missing byte pieces).
std::string make_spm_model_proto(std::span<const TokenPiece> pieces, const SpmOptions& opts);

// The settings of a serialized ModelProto that decoding needs and sentencepiece's API does
// not expose. Fields absent from the proto take their proto2 defaults.
struct SpmProtoSettings {
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  std::string unk_surface = " \xE2\x81\x87 ";  // what <unk> decodes to: " ⁇ "
};
Result<SpmProtoSettings> read_spm_proto_settings(std::string_view serialized);
// The same model with add_dummy_prefix off: for text that continues other text (a chat
// template's pieces), where a leading "▁" would be a space nobody wrote.
Result<std::string> spm_proto_without_dummy_prefix(std::string_view serialized);

}  // namespace lutra
