#include "runtime/spm_model.h"

#include <cstring>
#include <optional>

namespace lutra {
namespace {

// Field numbers from sentencepiece's src/sentencepiece_model.proto.
namespace model_proto {
constexpr uint32_t pieces = 1, trainer_spec = 2, normalizer_spec = 3;
}
namespace piece_field {
constexpr uint32_t piece = 1, score = 2, type = 3;
}
namespace trainer {
constexpr uint32_t model_type = 3, vocab_size = 4, byte_fallback = 35, unk_id = 40, bos_id = 41, eos_id = 42, pad_id = 43,
                   unk_surface = 44, unk_piece = 45, bos_piece = 46, eos_piece = 47;
constexpr uint64_t model_type_bpe = 2;
}
namespace normalizer {
constexpr uint32_t name = 1, add_dummy_prefix = 3, remove_extra_whitespaces = 4,
                   escape_whitespaces = 5;
}

// SentencePiece.Type values (BYTE is 6, after UNUSED).
uint64_t piece_type(TokenPiece::Kind k) {
  switch (k) {
    case TokenPiece::Kind::normal: return 1;
    case TokenPiece::Kind::unknown: return 2;
    case TokenPiece::Kind::control: return 3;
    case TokenPiece::Kind::user_defined: return 4;
    case TokenPiece::Kind::unused: return 5;
    case TokenPiece::Kind::byte: return 6;
  }
  return 1;
}

enum Wire : uint32_t { varint = 0, fixed64 = 1, len = 2, fixed32 = 5 };

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(char(uint8_t(v) | 0x80));
    v >>= 7;
  }
  out.push_back(char(uint8_t(v)));
}
void put_key(std::string& out, uint32_t field, Wire w) { put_varint(out, (uint64_t(field) << 3) | w); }
void put_uint(std::string& out, uint32_t field, uint64_t v) {
  put_key(out, field, varint);
  put_varint(out, v);
}
// proto int32 encodes negatives sign-extended to 64 bits (10 bytes).
void put_int32(std::string& out, uint32_t field, int32_t v) { put_uint(out, field, uint64_t(int64_t(v))); }
void put_bytes(std::string& out, uint32_t field, std::string_view s) {
  put_key(out, field, len);
  put_varint(out, s.size());
  out.append(s);
}
void put_float(std::string& out, uint32_t field, float f) {
  put_key(out, field, fixed32);
  uint32_t u;
  std::memcpy(&u, &f, 4);
  for (int i = 0; i < 4; ++i) out.push_back(char(uint8_t(u >> (8 * i))));  // little-endian
}

// Bounds-checked walk over one message's fields.
struct Reader {
  std::string_view buf;
  size_t pos = 0;
  bool failed = false;

  std::optional<uint64_t> varint_() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= buf.size()) return std::nullopt;
      uint8_t b = uint8_t(buf[pos++]);
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    return std::nullopt;
  }
  // Next field: number, wire type, and its varint value or its bytes. false at the end or on
  // malformed input (then `failed` is set).
  bool next(uint32_t& field, uint64_t& value, std::string_view& bytes) {
    if (pos >= buf.size()) return false;
    auto key = varint_();
    if (!key) return fail();
    field = uint32_t(*key >> 3);
    switch (*key & 7) {
      case varint: {
        auto v = varint_();
        if (!v) return fail();
        value = *v;
        return true;
      }
      case fixed64:
      case fixed32: {
        size_t n = (*key & 7) == fixed64 ? 8 : 4;
        if (buf.size() - pos < n) return fail();
        bytes = buf.substr(pos, n);
        pos += n;
        return true;
      }
      case len: {
        auto n = varint_();
        if (!n || *n > buf.size() - pos) return fail();
        bytes = buf.substr(pos, size_t(*n));
        pos += size_t(*n);
        return true;
      }
      default: return fail();
    }
  }
  bool fail() {
    failed = true;
    return false;
  }
};

}  // namespace

std::string make_spm_model_proto(std::span<const TokenPiece> pieces, const SpmOptions& opts) {
  std::string out, msg;
  int32_t unk_id = opts.unk_id;
  for (size_t i = 0; i < pieces.size(); ++i)
    if (pieces[i].kind == TokenPiece::Kind::unknown) {
      unk_id = int32_t(i);
      break;
    }
  out.reserve(pieces.size() * 16 + 256);
  for (const TokenPiece& p : pieces) {
    msg.clear();
    put_bytes(msg, piece_field::piece, p.text);
    put_float(msg, piece_field::score, p.score);
    if (p.kind != TokenPiece::Kind::normal) put_uint(msg, piece_field::type, piece_type(p.kind));
    put_bytes(out, model_proto::pieces, msg);
  }

  // sentencepiece finds unk/bos/eos by piece name (trainer_spec *_piece), not by id.
  auto name_of = [&](int32_t id) -> std::optional<std::string_view> {
    if (id < 0 || size_t(id) >= pieces.size()) return std::nullopt;
    return pieces[size_t(id)].text;
  };
  msg.clear();
  put_uint(msg, trainer::model_type, trainer::model_type_bpe);
  put_int32(msg, trainer::vocab_size, int32_t(pieces.size()));
  put_uint(msg, trainer::byte_fallback, 1);
  put_int32(msg, trainer::unk_id, unk_id);
  put_int32(msg, trainer::bos_id, name_of(opts.bos_id) ? opts.bos_id : -1);
  put_int32(msg, trainer::eos_id, name_of(opts.eos_id) ? opts.eos_id : -1);
  put_int32(msg, trainer::pad_id, -1);
  if (auto n = name_of(unk_id)) put_bytes(msg, trainer::unk_piece, *n);
  // With no bos/eos, name a piece that cannot exist so the default "<s>"/"</s>" never matches.
  put_bytes(msg, trainer::bos_piece, name_of(opts.bos_id).value_or(std::string_view()));
  put_bytes(msg, trainer::eos_piece, name_of(opts.eos_id).value_or(std::string_view()));
  put_bytes(out, model_proto::trainer_spec, msg);

  msg.clear();
  put_bytes(msg, normalizer::name, "identity");
  put_uint(msg, normalizer::add_dummy_prefix, opts.add_dummy_prefix ? 1 : 0);
  put_uint(msg, normalizer::remove_extra_whitespaces, 0);
  put_uint(msg, normalizer::escape_whitespaces, 1);
  put_bytes(out, model_proto::normalizer_spec, msg);
  return out;
}

Result<std::string> spm_proto_without_dummy_prefix(std::string_view serialized) {
  // Copy every field as it is, but rebuild normalizer_spec with add_dummy_prefix = false.
  std::string out, normalizer_fields;
  bool had_normalizer = false;
  Reader top{serialized};
  uint32_t field = 0;
  uint64_t value = 0;
  std::string_view bytes;
  for (size_t start = top.pos; top.next(field, value, bytes); start = top.pos) {
    if (field != model_proto::normalizer_spec) {
      out.append(serialized.substr(start, top.pos - start));
      continue;
    }
    had_normalizer = true;
    Reader r{bytes};
    uint32_t f = 0;
    uint64_t v = 0;
    std::string_view b;
    for (size_t s = r.pos; r.next(f, v, b); s = r.pos)
      if (f != normalizer::add_dummy_prefix) normalizer_fields.append(bytes.substr(s, r.pos - s));
    if (r.failed) return Status::error("sentencepiece model: malformed normalizer_spec");
  }
  if (top.failed) return Status::error("sentencepiece model: malformed protobuf");
  if (!had_normalizer) put_bytes(normalizer_fields, normalizer::name, "identity");
  put_uint(normalizer_fields, normalizer::add_dummy_prefix, 0);
  put_bytes(out, model_proto::normalizer_spec, normalizer_fields);
  return out;
}

Result<SpmProtoSettings> read_spm_proto_settings(std::string_view serialized) {
  SpmProtoSettings s;
  Reader top{serialized};
  uint32_t field = 0;
  uint64_t value = 0;
  std::string_view bytes;
  while (top.next(field, value, bytes)) {
    if (field == model_proto::trainer_spec) {
      Reader r{bytes};
      uint32_t f = 0;
      uint64_t v = 0;
      std::string_view b;
      while (r.next(f, v, b)) {
        if (f == trainer::unk_surface) s.unk_surface = std::string(b);
      }
      if (r.failed) return Status::error("sentencepiece model: malformed trainer_spec");
    } else if (field == model_proto::normalizer_spec) {
      Reader r{bytes};
      uint32_t f = 0;
      uint64_t v = 0;
      std::string_view b;
      while (r.next(f, v, b)) {
        if (f == normalizer::add_dummy_prefix) s.add_dummy_prefix = v != 0;
        if (f == normalizer::remove_extra_whitespaces) s.remove_extra_whitespaces = v != 0;
      }
      if (r.failed) return Status::error("sentencepiece model: malformed normalizer_spec");
    }
  }
  if (top.failed) return Status::error("sentencepiece model: malformed protobuf");
  return s;
}

}  // namespace lutra
