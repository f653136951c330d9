#include "runtime/tokenizer.h"

#include <sentencepiece_processor.h>

#include <limits>

namespace lutra {
namespace {

constexpr std::string_view kMetaSpace = "\xE2\x96\x81";   // U+2581, sentencepiece's space
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF), the same rule
// sentencepiece applies to byte-fallback runs. Returns the length of the complete character
// at p, 0 if p[0..n) is a valid but incomplete start of one, -1 if it cannot be one.
int utf8_char(const uint8_t* p, size_t n) {
  const uint8_t b = p[0];
  int need;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) need = 2;
  else if (b >= 0xE0 && b <= 0xEF) {
    need = 3;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 4;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  } else {
    return -1;
  }
  for (size_t i = 1; i < size_t(need); ++i) {
    if (i >= n) return 0;
    const uint8_t c = p[i];
    if (i == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) return -1;
  }
  return need;
}

size_t first_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  for (size_t i = 0; i < s.size();) {
    int len = utf8_char(p + i, s.size() - i);
    if (len <= 0) return i;
    i += size_t(len);
  }
  return std::string_view::npos;
}

std::string replace_invalid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  for (size_t i = 0; i < s.size();) {
    int len = utf8_char(p + i, s.size() - i);
    if (len <= 0) {
      out.append(kReplacement);
      ++i;
    } else {
      out.append(s.substr(i, size_t(len)));
      i += size_t(len);
    }
  }
  return out;
}

// "<0xHH>" → HH, else -1.
int parse_byte_piece(std::string_view p) {
  if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return -1;
  int v = 0;
  for (char c : p.substr(3, 2)) {
    v <<= 4;
    if (c >= '0' && c <= '9') v |= c - '0';
    else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
    else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
    else return -1;
  }
  return v;
}

}  // namespace

struct Tokenizer::Impl {
  std::unique_ptr<BpeModel> bpe;  // set for BPE vocabularies; the sentencepiece fields stay empty
  std::string bpe_blob;
  sentencepiece::SentencePieceProcessor sp;
  sentencepiece::SentencePieceProcessor sp_continuation;  // without the dummy prefix
  std::string proto;
  int32_t bos = -1, eos = -1;
  // Per id: kind, whether the piece starts with "▁", and its bytes blob[off[id], off[id+1]).
  std::vector<TokenPiece::Kind> kind;
  std::vector<uint8_t> leading_space;
  std::vector<uint32_t> off;
  std::string blob;
  // sentencepiece removes the first piece's leading "▁" when either flag is set; with
  // remove_extra_whitespaces it keeps removing until some text has been produced.
  bool strip_enabled = true;
  bool strip_repeats = false;

  Status append_piece(TokenPiece::Kind k, std::string_view bytes) {
    kind.push_back(k);
    leading_space.push_back(0);
    off.push_back(uint32_t(blob.size()));
    blob.append(bytes);
    if (blob.size() > std::numeric_limits<uint32_t>::max()) return Status::error("tokenizer: vocabulary text too large");
    return ok_status();
  }
};

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Result<Tokenizer> Tokenizer::from_spm_proto(std::string serialized) {
  auto settings = read_spm_proto_settings(serialized);
  if (!settings) return settings.status();
  Tokenizer t;
  t.impl_ = std::make_unique<Impl>();
  Impl& im = *t.impl_;
  if (auto st = im.sp.LoadFromSerializedProto(serialized); !st.ok())
    return Status::error(std::string("sentencepiece model refused: ") + st.ToString());
  auto continuation = spm_proto_without_dummy_prefix(serialized);
  if (!continuation.ok()) return continuation.status();
  if (auto st = im.sp_continuation.LoadFromSerializedProto(*continuation); !st.ok())
    return Status::error(std::string("sentencepiece model refused: ") + st.ToString());
  im.proto = std::move(serialized);
  im.bos = im.sp.bos_id();
  im.eos = im.sp.eos_id();
  im.strip_enabled = settings->add_dummy_prefix || settings->remove_extra_whitespaces;
  im.strip_repeats = settings->remove_extra_whitespaces;

  const int n = im.sp.GetPieceSize();
  im.kind.resize(size_t(n));
  im.leading_space.resize(size_t(n));
  im.off.resize(size_t(n) + 1);
  for (int id = 0; id < n; ++id) {
    const std::string& piece = im.sp.IdToPiece(id);
    TokenPiece::Kind k = TokenPiece::Kind::normal;
    int byte = -1;
    if (im.sp.IsControl(id)) k = TokenPiece::Kind::control;
    else if (im.sp.IsUnknown(id)) k = TokenPiece::Kind::unknown;
    else if (im.sp.IsByte(id) && (byte = parse_byte_piece(piece)) >= 0) k = TokenPiece::Kind::byte;
    else if (im.sp.IsUnused(id)) k = TokenPiece::Kind::unused;
    im.kind[size_t(id)] = k;
    im.off[size_t(id)] = uint32_t(im.blob.size());
    switch (k) {
      case TokenPiece::Kind::control: break;
      case TokenPiece::Kind::unknown: im.blob += settings->unk_surface; break;
      case TokenPiece::Kind::byte: im.blob.push_back(char(byte)); break;
      default: {
        std::string_view p = piece;
        im.leading_space[size_t(id)] = p.starts_with(kMetaSpace);
        for (size_t pos; (pos = p.find(kMetaSpace)) != std::string_view::npos;) {
          im.blob.append(p.substr(0, pos));
          im.blob.push_back(' ');
          p.remove_prefix(pos + kMetaSpace.size());
        }
        im.blob.append(p);
      }
    }
    if (im.blob.size() > std::numeric_limits<uint32_t>::max())
      return Status::error("sentencepiece model: vocabulary text too large");
  }
  im.off[size_t(n)] = uint32_t(im.blob.size());
  return t;
}

Result<Tokenizer> Tokenizer::from_bpe(BpeVocab vocab) {
  auto bpe = BpeModel::create(std::move(vocab));
  if (!bpe.ok()) return bpe.status();
  return from_bpe_model(std::move(bpe).value());
}

Result<Tokenizer> Tokenizer::from_bpe_blob(std::string_view blob) {
  auto bpe = BpeModel::deserialize(blob);
  if (!bpe.ok()) return bpe.status();
  return from_bpe_model(std::move(bpe).value());
}

Result<Tokenizer> Tokenizer::from_bpe_model(BpeModel bpe) {
  Tokenizer t;
  t.impl_ = std::make_unique<Impl>();
  Impl& im = *t.impl_;
  im.bpe = std::make_unique<BpeModel>(std::move(bpe));
  im.bpe_blob = im.bpe->serialize();
  const BpeVocab& v = im.bpe->vocab();
  im.bos = v.bos_id;
  im.eos = v.eos_id;
  im.strip_enabled = false;  // byte-level BPE adds no prefix space
  for (const BpeVocab::Token& tok : v.tokens) {
    switch (tok.kind) {
      case BpeVocab::Kind::control: LUTRA_TRY(im.append_piece(TokenPiece::Kind::control, "")); break;
      case BpeVocab::Kind::user_defined: LUTRA_TRY(im.append_piece(TokenPiece::Kind::user_defined, tok.bytes)); break;
      default: LUTRA_TRY(im.append_piece(TokenPiece::Kind::normal, tok.bytes));
    }
  }
  im.off.push_back(uint32_t(im.blob.size()));
  return t;
}

Tokenizer::Type Tokenizer::type() const { return impl_->bpe ? Type::bpe : Type::spm; }
const std::string& Tokenizer::bpe_blob() const { return impl_->bpe_blob; }
const std::string& Tokenizer::spm_proto() const { return impl_->proto; }
int32_t Tokenizer::bos_id() const { return impl_->bos; }
int32_t Tokenizer::eos_id() const { return impl_->eos; }
size_t Tokenizer::vocab_size() const { return impl_->kind.size(); }

bool Tokenizer::is_control(int32_t id) const {
  return id >= 0 && size_t(id) < vocab_size() && impl_->kind[size_t(id)] == TokenPiece::Kind::control;
}
bool Tokenizer::is_byte(int32_t id) const {
  return id >= 0 && size_t(id) < vocab_size() && impl_->kind[size_t(id)] == TokenPiece::Kind::byte;
}
int32_t Tokenizer::piece_id(std::string_view piece) const {
  if (impl_->bpe) return impl_->bpe->find(piece);
  // PieceToId answers unknown pieces with <unk>: confirm the match.
  int id = impl_->sp.PieceToId(piece);
  return id >= 0 && impl_->sp.IdToPiece(id) == piece ? int32_t(id) : -1;
}

bool Tokenizer::starts_with_space(int32_t id) const { return impl_->leading_space[size_t(id)] != 0; }

std::string_view Tokenizer::token_bytes(int32_t id) const {
  if (id < 0 || size_t(id) >= vocab_size()) return {};
  const Impl& im = *impl_;
  return std::string_view(im.blob).substr(im.off[size_t(id)], im.off[size_t(id) + 1] - im.off[size_t(id)]);
}

Result<std::vector<int32_t>> Tokenizer::encode_checked(std::string_view text, bool add_bos,
                                                      Specials specials) const {
  return encode_impl(text, add_bos, false, specials);
}

Result<std::vector<int32_t>> Tokenizer::encode_continuation(std::string_view text) const {
  return encode_impl(text, false, true, Specials::as_text);
}

Result<std::vector<int32_t>> Tokenizer::encode_impl(std::string_view text, bool add_bos, bool continuation,
                                                    Specials specials) const {
  if (size_t bad = first_invalid_utf8(text); bad != std::string_view::npos)
    return Status::error("tokenizer: input is not valid UTF-8 (byte " + std::to_string(bad) + ")");
  if (impl_->bpe) {
    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 2);
    if (add_bos && impl_->bos >= 0) out.push_back(impl_->bos);
    LUTRA_TRY(impl_->bpe->encode(text, specials == Specials::as_tokens, out));
    return out;
  }
  if (specials == Specials::as_tokens)
    return Status::error("tokenizer: special tokens in text are read only for BPE vocabularies");
  std::vector<int> ids;
  const auto& sp = continuation ? impl_->sp_continuation : impl_->sp;
  if (auto st = sp.Encode(text, &ids); !st.ok())
    return Status::error(std::string("tokenizer: ") + st.ToString());
  std::vector<int32_t> out;
  out.reserve(ids.size() + 1);
  if (add_bos && impl_->bos >= 0) out.push_back(impl_->bos);
  out.insert(out.end(), ids.begin(), ids.end());
  return out;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos) const {
  auto r = first_invalid_utf8(text) == std::string_view::npos
               ? encode_checked(text, add_bos)
               : encode_checked(replace_invalid_utf8(text), add_bos);
  return r ? std::move(r).value() : std::vector<int32_t>();
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  // One code path with the stream, so the two always agree.
  TextStream ts(*this);
  ts.rearm_after_bos_ = false;  // sentencepiece strips the dummy prefix once per text
  std::string text;
  for (int32_t id : ids) text += ts.push(id);
  text += ts.flush();
  return text;
}

TextStream::TextStream(const Tokenizer& tok) : tok_(&tok) { out_.reserve(64); }

void TextStream::emit(std::string_view s) {
  if (s.empty()) return;
  out_.append(s);
  strip_space_ = false;
}

// A byte run ended inside a character: each held byte is invalid on its own (as sentencepiece).
void TextStream::flush_pending() {
  for (uint8_t i = 0; i < n_pending_; ++i) emit(kReplacement);
  n_pending_ = 0;
}

void TextStream::take_byte(uint8_t b) {
  pending_[n_pending_++] = b;
  while (n_pending_ > 0) {
    int len = utf8_char(pending_, n_pending_);
    if (len == 0) return;  // wait for the rest of the character
    if (len > 0) {         // pending_ held a valid prefix, so the character is all of it
      emit(std::string_view(reinterpret_cast<const char*>(pending_), size_t(len)));
      n_pending_ = 0;
    } else {  // the first byte cannot start a character here: U+FFFD, retry from the next
      emit(kReplacement);
      for (uint8_t i = 1; i < n_pending_; ++i) pending_[i - 1] = pending_[i];
      --n_pending_;
    }
  }
}

std::string_view TextStream::push(int32_t id) {
  out_.clear();
  if (id < 0 || size_t(id) >= tok_->vocab_size()) return out_;
  const Tokenizer::Impl& im = *tok_->impl_;
  const TokenPiece::Kind k = im.kind[size_t(id)];
  if (im.bpe) {  // any token may hold part of a character; specials hold nothing
    for (char c : tok_->token_bytes(id)) take_byte(uint8_t(c));
    return out_;
  }
  if (k == TokenPiece::Kind::byte) {
    take_byte(uint8_t(tok_->token_bytes(id)[0]));
    return out_;
  }
  flush_pending();
  if (k == TokenPiece::Kind::control) {
    if (rearm_after_bos_ && id == im.bos) strip_space_ = true;
    return out_;
  }
  std::string_view s = tok_->token_bytes(id);
  if (strip_space_ && im.strip_enabled && tok_->starts_with_space(id)) {
    s.remove_prefix(1);
    strip_space_ = im.strip_repeats;
  }
  emit(s);
  return out_;
}

std::string_view TextStream::flush() {
  out_.clear();
  flush_pending();
  return out_;
}

void TextStream::reset() {
  out_.clear();
  n_pending_ = 0;
  strip_space_ = true;
}

}  // namespace lutra
