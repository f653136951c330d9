#include "convert/gguf.h"

#include <algorithm>
#include <cstring>
#include <unordered_set>

namespace lutra {

namespace {

constexpr int kMaxArrayDepth = 8;  // nested arrays deeper than this are refused (stack safety)
constexpr uint32_t kMaxDims = 4;   // GGML_MAX_DIMS

// Byte size of a fixed-size metadata type; 0 for string and array.
uint64_t scalar_bytes(GgufType t) {
  switch (t) {
    case GgufType::u8: case GgufType::i8: case GgufType::boolean: return 1;
    case GgufType::u16: case GgufType::i16: return 2;
    case GgufType::u32: case GgufType::i32: case GgufType::f32: return 4;
    case GgufType::u64: case GgufType::i64: case GgufType::f64: return 8;
    default: return 0;
  }
}

bool known_type(uint32_t t) { return t <= uint32_t(GgufType::f64); }

bool is_integer(GgufType t) {
  switch (t) {
    case GgufType::u8: case GgufType::i8: case GgufType::u16: case GgufType::i16:
    case GgufType::u32: case GgufType::i32: case GgufType::u64: case GgufType::i64: return true;
    default: return false;
  }
}
bool is_signed(GgufType t) {
  return t == GgufType::i8 || t == GgufType::i16 || t == GgufType::i32 || t == GgufType::i64;
}

template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Reads scalar `t` at p into the value's i/u/f fields.
void read_scalar(GgufType t, const uint8_t* p, GgufValue& v) {
  switch (t) {
    case GgufType::u8: v.u = p[0]; break;
    case GgufType::i8: v.i = int8_t(p[0]); break;
    case GgufType::boolean: v.i = p[0]; break;
    case GgufType::u16: v.u = load<uint16_t>(p); break;
    case GgufType::i16: v.i = load<int16_t>(p); break;
    case GgufType::u32: v.u = load<uint32_t>(p); break;
    case GgufType::i32: v.i = load<int32_t>(p); break;
    case GgufType::f32: v.f = load<float>(p); break;
    case GgufType::u64: v.u = load<uint64_t>(p); break;
    case GgufType::i64: v.i = load<int64_t>(p); break;
    case GgufType::f64: v.f = load<double>(p); break;
    default: break;
  }
  if (is_integer(t) && !is_signed(t)) v.i = int64_t(v.u);  // keep both views of unsigned values
  if (is_signed(t) || t == GgufType::boolean) v.u = uint64_t(v.i);
}

// A bounds-checked walk over the header; every failure names what it was reading.
struct Cursor {
  std::span<const uint8_t> bytes;
  uint64_t at = 0;
  const std::string& where;
  uint64_t left() const { return bytes.size() - at; }
  Status truncated(const std::string& what) const {
    return Status::error(where + " is truncated: ends inside " + what + " (at byte " + std::to_string(at) + " of " +
                         std::to_string(bytes.size()) + ")");
  }
  Status take(uint64_t n, const std::string& what, const uint8_t*& p) {
    if (n > left()) return truncated(what);
    p = bytes.data() + at;
    at += n;
    return ok_status();
  }
  template <class T>
  Status read(const std::string& what, T& out) {
    const uint8_t* p = nullptr;
    LUTRA_TRY(take(sizeof(T), what, p));
    out = load<T>(p);
    return ok_status();
  }
  // `index` names an element of an array in messages (the name is built only on error: arrays
  // hold hundreds of thousands of strings).
  Status string(const std::string& what, std::string_view& out, uint64_t index = UINT64_MAX) {
    auto name = [&] { return index == UINT64_MAX ? what : what + "[" + std::to_string(index) + "]"; };
    uint64_t n = 0;
    if (left() < 8) return truncated(name() + " (string length)");
    n = load<uint64_t>(bytes.data() + at);
    at += 8;
    if (n > left())
      return Status::error(where + " is corrupt or truncated: " + name() + " claims a " + std::to_string(n) +
                           "-byte string but " + std::to_string(left()) + " bytes remain");
    out = std::string_view(reinterpret_cast<const char*>(bytes.data() + at), n);
    at += n;
    return ok_status();
  }
  Status value(GgufType t, const std::string& what, GgufValue& v, int depth) {
    v.type = t;
    if (t == GgufType::string) return string(what, v.str);
    if (t != GgufType::array) {
      const uint8_t* p = nullptr;
      LUTRA_TRY(take(scalar_bytes(t), what, p));
      read_scalar(t, p, v);
      return ok_status();
    }
    if (depth >= kMaxArrayDepth)
      return Status::error(where + ": " + what + " nests arrays deeper than " + std::to_string(kMaxArrayDepth));
    uint32_t et = 0;
    LUTRA_TRY(read(what + " (array type)", et));
    if (!known_type(et))
      return Status::error(where + ": " + what + " is an array of unknown type " + std::to_string(et));
    v.elem_type = GgufType(et);
    LUTRA_TRY(read(what + " (array length)", v.count));
    // The smallest possible element bounds the count before anything is allocated.
    uint64_t min_elem = v.elem_type == GgufType::string ? 8 : v.elem_type == GgufType::array ? 12
                                                                                          : scalar_bytes(v.elem_type);
    if (v.count > left() / min_elem)
      return Status::error(where + " is corrupt or truncated: " + what + " claims " + std::to_string(v.count) +
                           " elements but " + std::to_string(left()) + " bytes remain");
    if (v.elem_type == GgufType::string) {
      // Grown as elements are read, so a corrupt count cannot allocate past the file's contents.
      for (uint64_t i = 0; i < v.count; ++i) {
        std::string_view e;
        LUTRA_TRY(string(what, e, i));
        v.strings.push_back(e);
      }
    } else if (v.elem_type == GgufType::array) {
      for (uint64_t i = 0; i < v.count; ++i) {
        GgufValue e;
        LUTRA_TRY(value(GgufType::array, what + "[" + std::to_string(i) + "]", e, depth + 1));
        v.items.push_back(std::move(e));
      }
    } else {
      const uint8_t* p = nullptr;
      LUTRA_TRY(take(v.count * min_elem, what, p));
      v.raw = {p, v.count * min_elem};
    }
    return ok_status();
  }
};

struct TypeSize {
  uint32_t block;  // elements per block
  uint32_t bytes;  // bytes per block
};

std::optional<TypeSize> type_size(uint32_t type) {
  switch (GgmlType(type)) {
    case GgmlType::f32: return TypeSize{1, 4};
    case GgmlType::f16: return TypeSize{1, 2};
    case GgmlType::q4_0: return TypeSize{32, 18};
    case GgmlType::q4_1: return TypeSize{32, 20};
    case GgmlType::q5_0: return TypeSize{32, 22};
    case GgmlType::q5_1: return TypeSize{32, 24};
    case GgmlType::q8_0: return TypeSize{32, 34};
    case GgmlType::q8_1: return TypeSize{32, 36};
    case GgmlType::q2_k: return TypeSize{256, 84};
    case GgmlType::q3_k: return TypeSize{256, 110};
    case GgmlType::q4_k: return TypeSize{256, 144};
    case GgmlType::q5_k: return TypeSize{256, 176};
    case GgmlType::q6_k: return TypeSize{256, 210};
    case GgmlType::q8_k: return TypeSize{256, 292};
    case GgmlType::iq2_xxs: return TypeSize{256, 66};
    case GgmlType::iq2_xs: return TypeSize{256, 74};
    case GgmlType::iq3_xxs: return TypeSize{256, 98};
    case GgmlType::iq1_s: return TypeSize{256, 50};
    case GgmlType::iq4_nl: return TypeSize{32, 18};
    case GgmlType::iq3_s: return TypeSize{256, 110};
    case GgmlType::iq2_s: return TypeSize{256, 82};
    case GgmlType::iq4_xs: return TypeSize{256, 136};
    case GgmlType::i8: return TypeSize{1, 1};
    case GgmlType::i16: return TypeSize{1, 2};
    case GgmlType::i32: return TypeSize{1, 4};
    case GgmlType::i64: return TypeSize{1, 8};
    case GgmlType::f64: return TypeSize{1, 8};
    case GgmlType::iq1_m: return TypeSize{256, 56};
    case GgmlType::bf16: return TypeSize{1, 2};
    case GgmlType::tq1_0: return TypeSize{256, 54};
    case GgmlType::tq2_0: return TypeSize{256, 66};
    default: return std::nullopt;
  }
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  static const char* names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                "bool", "string", "array", "u64", "i64", "f64"};
  return known_type(uint32_t(t)) ? names[uint32_t(t)] : "unknown";
}

std::string ggml_type_name(uint32_t type) {
  switch (GgmlType(type)) {
    case GgmlType::f32: return "F32";
    case GgmlType::f16: return "F16";
    case GgmlType::q4_0: return "Q4_0";
    case GgmlType::q4_1: return "Q4_1";
    case GgmlType::q5_0: return "Q5_0";
    case GgmlType::q5_1: return "Q5_1";
    case GgmlType::q8_0: return "Q8_0";
    case GgmlType::q8_1: return "Q8_1";
    case GgmlType::q2_k: return "Q2_K";
    case GgmlType::q3_k: return "Q3_K";
    case GgmlType::q4_k: return "Q4_K";
    case GgmlType::q5_k: return "Q5_K";
    case GgmlType::q6_k: return "Q6_K";
    case GgmlType::q8_k: return "Q8_K";
    case GgmlType::iq2_xxs: return "IQ2_XXS";
    case GgmlType::iq2_xs: return "IQ2_XS";
    case GgmlType::iq3_xxs: return "IQ3_XXS";
    case GgmlType::iq1_s: return "IQ1_S";
    case GgmlType::iq4_nl: return "IQ4_NL";
    case GgmlType::iq3_s: return "IQ3_S";
    case GgmlType::iq2_s: return "IQ2_S";
    case GgmlType::iq4_xs: return "IQ4_XS";
    case GgmlType::i8: return "I8";
    case GgmlType::i16: return "I16";
    case GgmlType::i32: return "I32";
    case GgmlType::i64: return "I64";
    case GgmlType::f64: return "F64";
    case GgmlType::iq1_m: return "IQ1_M";
    case GgmlType::bf16: return "BF16";
    case GgmlType::tq1_0: return "TQ1_0";
    case GgmlType::tq2_0: return "TQ2_0";
    case GgmlType::i2_s: return "I2_S";
  }
  return "type " + std::to_string(type);
}

std::optional<uint64_t> ggml_tensor_bytes(uint32_t type, uint64_t n_elements, uint64_t row_length) {
  if (GgmlType(type) == GgmlType::i2_s) {
    // bitnet.cpp: 128 weights per 32-byte block over the whole tensor, then the float scale
    // padded to 32 bytes.
    if (n_elements % 4 != 0) return std::nullopt;
    return n_elements / 4 + 32;
  }
  auto s = type_size(type);
  if (!s || row_length == 0 || row_length % s->block != 0) return std::nullopt;
  return n_elements / s->block * s->bytes;
}

uint64_t GgufTensorInfo::n_elements() const {
  uint64_t n = 1;
  for (uint64_t d : dims) n *= d;  // overflow is ruled out when the file is parsed
  return n;
}

uint64_t GgufTensorInfo::rows() const {
  uint64_t k = row_length();
  return k == 0 ? 0 : n_elements() / k;
}

GgufFile::~GgufFile() = default;

Result<std::unique_ptr<GgufFile>> GgufFile::open(const std::string& path) {
  std::unique_ptr<GgufFile> g(new GgufFile());
  g->name_ = "GGUF '" + path + "'";
  if (Status s = g->map_.open(path); !s.ok()) return Status::error(s.message() + " (GGUF)");
  g->bytes_ = {g->map_.data(), g->map_.size()};
  LUTRA_TRY(g->parse_all());
  return g;
}

Result<std::unique_ptr<GgufFile>> GgufFile::parse(std::span<const uint8_t> bytes, const std::string& name) {
  std::unique_ptr<GgufFile> g(new GgufFile());
  g->name_ = "GGUF '" + name + "'";
  g->bytes_ = bytes;
  LUTRA_TRY(g->parse_all());
  return g;
}

Status GgufFile::parse_all() {
  const std::string& where = name_;
  Cursor c{bytes_, 0, where};
  if (bytes_.size() < 4 || std::memcmp(bytes_.data(), "GGUF", 4) != 0)
    return Status::error(where + " is not a GGUF file (no GGUF magic)");
  c.at = 4;
  LUTRA_TRY(c.read("the header", version_));
  if (version_ == 0x02000000u || version_ == 0x03000000u)
    return Status::error(where + " is a big-endian GGUF: only little-endian files are supported");
  if (version_ != 2 && version_ != 3)
    return Status::error(where + " has GGUF version " + std::to_string(version_) + " (supported: 2, 3)");
  uint64_t n_tensors = 0, n_kv = 0;
  LUTRA_TRY(c.read("the header", n_tensors));
  LUTRA_TRY(c.read("the header", n_kv));
  // Each key-value takes at least 13 bytes, each tensor info at least 24: bound the counts.
  if (n_kv > c.left() / 13)
    return Status::error(where + " is corrupt or truncated: header claims " + std::to_string(n_kv) +
                         " metadata entries but " + std::to_string(c.left()) + " bytes remain");

  std::unordered_set<std::string_view> keys;
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string_view key;
    LUTRA_TRY(c.string("metadata key #" + std::to_string(i), key));
    kvs_.push_back({std::string(key), {}});
    const std::string what = "metadata '" + kvs_[i].key + "'";
    if (!keys.insert(key).second) return Status::error(where + " has a duplicate " + what);
    uint32_t t = 0;
    LUTRA_TRY(c.read(what + " (type)", t));
    if (!known_type(t)) return Status::error(where + ": " + what + " has unknown value type " + std::to_string(t));
    LUTRA_TRY(c.value(GgufType(t), what, kvs_[i].value, 0));
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (!is_integer(a->type) || a->u == 0 || a->u > (1u << 30) || (a->u & (a->u - 1)) != 0)
      return Status::error(where + ": metadata 'general.alignment' must be a power of two");
    alignment_ = a->u;
  }

  if (n_tensors > c.left() / 24)
    return Status::error(where + " is corrupt or truncated: header claims " + std::to_string(n_tensors) +
                         " tensors but " + std::to_string(c.left()) + " bytes remain");
  std::unordered_set<std::string_view> names;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo& t = tensors_.emplace_back();
    std::string_view name;
    LUTRA_TRY(c.string("tensor name #" + std::to_string(i), name));
    t.name = std::string(name);
    const std::string what = "tensor '" + t.name + "'";
    if (!names.insert(name).second) return Status::error(where + " has a duplicate " + what);
    uint32_t n_dims = 0;
    LUTRA_TRY(c.read(what + " (dimension count)", n_dims));
    if (n_dims == 0 || n_dims > kMaxDims)
      return Status::error(where + ": " + what + " has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
    t.dims.resize(n_dims);
    uint64_t n = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      LUTRA_TRY(c.read(what + " (dimensions)", t.dims[d]));
      if (t.dims[d] == 0 || t.dims[d] > (uint64_t(1) << 40) / n)
        return Status::error(where + ": " + what + " has an invalid shape (dimension " + std::to_string(t.dims[d]) +
                             ")");
      n *= t.dims[d];
    }
    LUTRA_TRY(c.read(what + " (type)", t.type));
    LUTRA_TRY(c.read(what + " (offset)", t.offset));
    if (t.offset % alignment_ != 0)
      return Status::error(where + ": " + what + " has offset " + std::to_string(t.offset) +
                           ", not a multiple of the alignment " + std::to_string(alignment_));
    if (type_size(t.type) || GgmlType(t.type) == GgmlType::i2_s) {
      auto bytes = ggml_tensor_bytes(t.type, n, t.row_length());
      if (!bytes)
        return Status::error(where + ": " + what + " (" + ggml_type_name(t.type) + ") has row length " +
                             std::to_string(t.row_length()) + ", not a multiple of the type's block");
      t.bytes = *bytes;
    }
  }

  data_offset_ = (c.at + alignment_ - 1) / alignment_ * alignment_;
  // Every tensor lies inside the file, and no two overlap.
  std::vector<const GgufTensorInfo*> by_offset;
  for (const GgufTensorInfo& t : tensors_) {
    const uint64_t size = bytes_.size();
    if (data_offset_ > size || t.offset > size - data_offset_ || t.bytes > size - data_offset_ - t.offset)
      return Status::error(where + " is truncated: tensor '" + t.name + "' (" + std::to_string(t.bytes) +
                           " bytes at data offset " + std::to_string(t.offset) + ") ends past the end of the file");
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i - 1]->offset + by_offset[i - 1]->bytes > by_offset[i]->offset)
      return Status::error(where + " is corrupt: tensors '" + by_offset[i - 1]->name + "' and '" +
                           by_offset[i]->name + "' overlap");
  return ok_status();
}

const GgufValue* GgufFile::find(std::string_view key) const {
  for (const GgufKeyValue& kv : kvs_)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  for (const GgufTensorInfo& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

std::span<const uint8_t> GgufFile::tensor_data(const GgufTensorInfo& t) const {
  if (t.bytes == 0) return {};
  return bytes_.subspan(data_offset_ + t.offset, t.bytes);
}

// ---- typed getters ----------------------------------------------------------------------------

namespace {

Status missing(const std::string& where, std::string_view key) {
  return Status::error(where + " has no metadata '" + std::string(key) + "'");
}
Status wrong_type(const std::string& where, std::string_view key, const GgufValue& v, const char* wanted) {
  std::string got = gguf_type_name(v.type);
  if (v.type == GgufType::array) got += std::string(" of ") + gguf_type_name(v.elem_type);
  return Status::error(where + ": metadata '" + std::string(key) + "' is " + got + ", expected " + wanted);
}

// An integer value as int64 when it fits (u64 values above INT64_MAX do not).
std::optional<int64_t> as_int(const GgufValue& v) {
  if (!is_integer(v.type)) return std::nullopt;
  if (!is_signed(v.type) && v.u > uint64_t(INT64_MAX)) return std::nullopt;
  return v.i;
}

}  // namespace

Result<std::string> GgufFile::get_string(std::string_view key) const {
  auto v = find_string(key);
  if (!v.ok()) return v.status();
  if (!*v) return missing(name_, key);
  return std::move(**v);
}

Result<std::optional<std::string>> GgufFile::find_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::optional<std::string>();
  if (v->type != GgufType::string) return wrong_type(name_, key, *v, "string");
  return std::optional<std::string>(std::string(v->str));
}

Result<std::optional<uint32_t>> GgufFile::find_u32(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::optional<uint32_t>();
  auto i = as_int(*v);
  if (!i || *i < 0 || *i > int64_t(UINT32_MAX)) return wrong_type(name_, key, *v, "an unsigned 32-bit integer");
  return std::optional<uint32_t>(uint32_t(*i));
}

Result<uint32_t> GgufFile::get_u32(std::string_view key) const {
  auto v = find_u32(key);
  if (!v.ok()) return v.status();
  if (!*v) return missing(name_, key);
  return **v;
}

Result<int32_t> GgufFile::get_i32(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(name_, key);
  auto i = as_int(*v);
  if (!i || *i < INT32_MIN || *i > INT32_MAX) return wrong_type(name_, key, *v, "a signed 32-bit integer");
  return int32_t(*i);
}

Result<uint64_t> GgufFile::get_u64(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(name_, key);
  if (!is_integer(v->type) || (is_signed(v->type) && v->i < 0))
    return wrong_type(name_, key, *v, "an unsigned integer");
  return v->u;
}

Result<std::optional<float>> GgufFile::find_f32(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::optional<float>();
  if (v->type != GgufType::f32 && v->type != GgufType::f64) return wrong_type(name_, key, *v, "a float");
  return std::optional<float>(float(v->f));
}

Result<float> GgufFile::get_f32(std::string_view key) const {
  auto v = find_f32(key);
  if (!v.ok()) return v.status();
  if (!*v) return missing(name_, key);
  return **v;
}

Result<std::optional<bool>> GgufFile::find_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::optional<bool>();
  if (v->type != GgufType::boolean) return wrong_type(name_, key, *v, "bool");
  return std::optional<bool>(v->i != 0);
}

Result<bool> GgufFile::get_bool(std::string_view key) const {
  auto v = find_bool(key);
  if (!v.ok()) return v.status();
  if (!*v) return missing(name_, key);
  return **v;
}

Result<std::vector<std::string>> GgufFile::get_string_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(name_, key);
  if (v->type != GgufType::array || v->elem_type != GgufType::string)
    return wrong_type(name_, key, *v, "an array of strings");
  return std::vector<std::string>(v->strings.begin(), v->strings.end());
}

Result<std::vector<float>> GgufFile::get_float_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(name_, key);
  if (v->type != GgufType::array || (v->elem_type != GgufType::f32 && v->elem_type != GgufType::f64))
    return wrong_type(name_, key, *v, "an array of floats");
  std::vector<float> out(v->count);
  for (uint64_t i = 0; i < v->count; ++i)
    out[i] = v->elem_type == GgufType::f32 ? load<float>(v->raw.data() + 4 * i)
                                           : float(load<double>(v->raw.data() + 8 * i));
  return out;
}

Result<std::vector<int64_t>> GgufFile::get_int_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(name_, key);
  if (v->type != GgufType::array || !is_integer(v->elem_type))
    return wrong_type(name_, key, *v, "an array of integers");
  const uint64_t width = scalar_bytes(v->elem_type);
  std::vector<int64_t> out(v->count);
  for (uint64_t i = 0; i < v->count; ++i) {
    GgufValue e;
    read_scalar(v->elem_type, v->raw.data() + width * i, e);
    if (v->elem_type == GgufType::u64 && e.u > uint64_t(INT64_MAX))
      return Status::error(name_ + ": metadata '" + std::string(key) + "' holds a value beyond int64");
    out[i] = e.i;
  }
  return out;
}

}  // namespace lutra
