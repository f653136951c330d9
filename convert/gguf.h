// A strict reader for GGUF files, versions 2 and 3 (little-endian), as ggml's gguf spec
// describes them:
//
//   uint32 magic "GGUF", uint32 version, uint64 tensor_count, uint64 metadata_kv_count
//   metadata_kv_count x { string key, uint32 value_type, value }
//   tensor_count      x { string name, uint32 n_dims, uint64 dims[n_dims], uint32 ggml_type,
//                         uint64 offset (relative to the data section, a multiple of alignment) }
//   padding to `general.alignment` (default 32), then the data section.
//   string = uint64 length + bytes (no terminator); array = uint32 element type, uint64 count,
//   elements (arrays may nest).
//
// Every count, length and offset is checked against the file size before it is used, so a
// truncated or corrupt file gives one line naming the key or tensor, never a crash.
// dims[0] is the innermost (contiguous) dimension: a matrix [rows, cols] has dims {cols, rows}.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "convert/mapped_file.h"
#include "runtime/status.h"

namespace lutra {

// Metadata value types (the numbers are the file's).
enum class GgufType : uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7,
  string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12,
};
const char* gguf_type_name(GgufType t);

// One metadata value. Scalars are widened into `i`/`u`/`f`; strings point into the file's bytes
// (valid while the GgufFile lives); arrays of scalars keep their raw little-endian elements in
// `raw`, arrays of strings their views in `strings`, arrays of arrays their values in `items`.
struct GgufValue {
  GgufType type = GgufType::u8;
  int64_t i = 0;        // signed integers and bool
  uint64_t u = 0;       // unsigned integers
  double f = 0;         // f32, f64
  std::string_view str;
  GgufType elem_type = GgufType::u8;  // arrays
  uint64_t count = 0;                 // arrays
  std::span<const uint8_t> raw;       // arrays of scalars
  std::vector<std::string_view> strings;
  std::vector<GgufValue> items;
};

struct GgufKeyValue {
  std::string key;
  GgufValue value;
};

// ggml tensor types this project knows the sizes of (the numbers are ggml's; I2_S is
// bitnet.cpp's addition). Numbers whose meaning differs between ggml and bitnet.cpp's fork
// (37-39: bitnet.cpp's I8_S, TL1, TL2; upstream's MXFP4 is 39) are left unknown: their
// tensors parse with an unknown size and are refused when decoded.
enum class GgmlType : uint32_t {
  f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9,
  q2_k = 10, q3_k = 11, q4_k = 12, q5_k = 13, q6_k = 14, q8_k = 15,
  iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20, iq3_s = 21, iq2_s = 22,
  iq4_xs = 23, i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_m = 29, bf16 = 30,
  tq1_0 = 34, tq2_0 = 35, i2_s = 36,
};
// "F32", "Q8_0", "I2_S", ...; "type 77" for numbers it does not know.
std::string ggml_type_name(uint32_t type);
// Bytes a tensor of `type` with `n_elements` (rows of `row_length`) takes in the file, or nullopt
// when the type is unknown or the row length is not a multiple of the type's block.
// I2_S is n/4 packed bytes plus a 32-byte trailer holding its float scale.
std::optional<uint64_t> ggml_tensor_bytes(uint32_t type, uint64_t n_elements, uint64_t row_length);

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> dims;  // dims[0] innermost
  uint32_t type = 0;           // GgmlType number (may be one this project does not know)
  uint64_t offset = 0;         // relative to the data section
  uint64_t bytes = 0;          // 0 when the type is unknown
  uint64_t n_elements() const;
  uint64_t row_length() const { return dims.empty() ? 1 : dims[0]; }
  uint64_t rows() const;       // n_elements / row_length
};

class GgufFile {
 public:
  // Maps and validates the file.
  static Result<std::unique_ptr<GgufFile>> open(const std::string& path);
  // Validates bytes the caller keeps alive (tests, embedded vocabularies); `name` is for messages.
  static Result<std::unique_ptr<GgufFile>> parse(std::span<const uint8_t> bytes, const std::string& name);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& name() const { return name_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  std::span<const uint8_t> bytes() const { return bytes_; }

  const std::vector<GgufKeyValue>& metadata() const { return kvs_; }
  const GgufValue* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Typed getters: an error names the key when it is missing or has another type. Integer
  // getters accept any integer type whose value fits; f32 accepts f32 and f64.
  Result<std::string> get_string(std::string_view key) const;
  Result<uint32_t> get_u32(std::string_view key) const;
  Result<int32_t> get_i32(std::string_view key) const;
  Result<uint64_t> get_u64(std::string_view key) const;
  Result<float> get_f32(std::string_view key) const;
  Result<bool> get_bool(std::string_view key) const;
  Result<std::vector<std::string>> get_string_array(std::string_view key) const;
  Result<std::vector<float>> get_float_array(std::string_view key) const;   // f32/f64 elements
  Result<std::vector<int64_t>> get_int_array(std::string_view key) const;   // any integer elements
  // The same, nullopt when the key is absent (an error only when present with another type).
  Result<std::optional<std::string>> find_string(std::string_view key) const;
  Result<std::optional<uint32_t>> find_u32(std::string_view key) const;
  Result<std::optional<float>> find_f32(std::string_view key) const;
  Result<std::optional<bool>> find_bool(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  // The tensor's bytes (empty for a type of unknown size).
  std::span<const uint8_t> tensor_data(const GgufTensorInfo& t) const;

 private:
  GgufFile() = default;
  Status parse_all();
  std::string name_;
  std::span<const uint8_t> bytes_;
  MappedFile map_;  // open() only; parse() reads the caller's bytes
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<GgufKeyValue> kvs_;
  std::vector<GgufTensorInfo> tensors_;
};

}  // namespace lutra
