#include "convert/llama2c_tokenizer.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string_view>

namespace lutra {
namespace {

bool is_byte_piece(std::string_view p) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
  return p.size() == 6 && p.substr(0, 3) == "<0x" && hex(p[3]) && hex(p[4]) && p[5] == '>';
}

uint32_t le32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | uint8_t(p[i]);
  return v;
}

}  // namespace

Result<std::vector<TokenPiece>> read_llama2c_tokenizer(const std::string& path, size_t vocab_size) {
  auto fail = [&](const std::string& what) { return Status::error("tokenizer '" + path + "': " + what); };
  std::ifstream f(path, std::ios::binary);
  if (!f) return fail("cannot open");
  const std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) return fail("read error");

  size_t pos = 0;
  auto have = [&](size_t n) { return data.size() - pos >= n; };
  if (!have(4)) return fail("too short for the header (" + std::to_string(data.size()) + " bytes)");
  const int32_t max_len = int32_t(le32(data.data()));
  pos = 4;
  if (max_len <= 0) return fail("bad max_token_length " + std::to_string(max_len));

  std::vector<TokenPiece> pieces;
  pieces.reserve(vocab_size);
  for (size_t i = 0; i < vocab_size; ++i) {
    const std::string at = "piece " + std::to_string(i) + " of " + std::to_string(vocab_size);
    if (!have(8)) return fail("truncated at " + at + " (offset " + std::to_string(pos) + ")");
    TokenPiece p;
    const uint32_t score_bits = le32(data.data() + pos);
    std::memcpy(&p.score, &score_bits, 4);
    const int32_t len = int32_t(le32(data.data() + pos + 4));
    pos += 8;
    if (len <= 0) return fail("bad length " + std::to_string(len) + " of " + at);
    if (!have(size_t(len)))
      return fail("truncated in " + at + " (needs " + std::to_string(len) + " bytes, " +
                  std::to_string(data.size() - pos) + " left)");
    std::string_view raw(data.data() + pos, size_t(len));
    pos += size_t(len);

    // The exporter framed BOS/EOS in newlines for display.
    if (raw == "\n<s>\n" || raw == "\n</s>\n") raw = raw.substr(1, raw.size() - 2);
    if (raw == "<unk>") p.kind = TokenPiece::Kind::unknown;
    else if (raw == "<s>" || raw == "</s>") p.kind = TokenPiece::Kind::control;
    else if (is_byte_piece(raw)) p.kind = TokenPiece::Kind::byte;
    p.text.reserve(raw.size());
    for (char c : raw) {
      if (c == ' ') p.text += "\xE2\x96\x81";  // back to sentencepiece's "▁"
      else p.text.push_back(c);
    }
    pieces.push_back(std::move(p));
  }
  if (pos != data.size())
    return fail(std::to_string(data.size() - pos) + " bytes left after " + std::to_string(vocab_size) +
                " pieces (wrong vocab size?)");
  return pieces;
}

}  // namespace lutra
