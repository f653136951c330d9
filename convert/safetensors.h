// Hugging Face safetensors checkpoints: one file, or shards listed by
// model.safetensors.index.json. A file is
//   u64 LE  n, the header's length
//   n bytes JSON: {"__metadata__": {str: str}, name: {"dtype": "BF16", "shape": [..],
//                  "data_offsets": [begin, end]}, ...}   (offsets relative to the data)
//   data    every tensor row-major, little-endian, packed without alignment
// The index is {"metadata": {...}, "weight_map": {name: shard file name}}.
// Everything is checked when a file is opened (offsets inside the file, sizes matching
// dtype x shape), so reading a tensor later cannot run past the mapping.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "convert/mapped_file.h"
#include "runtime/status.h"

namespace lutra {

// The dtypes lutra converts; `other` covers the valid safetensors dtypes it does not (I64,
// F64, F8_E4M3, ...): their tensors can be listed but not read.
enum class StDtype : uint8_t { f32, f16, bf16, u8, i8, other };

struct StTensor {
  std::string name;
  std::string dtype_name;        // as the file spells it: "BF16"
  StDtype dtype = StDtype::other;
  std::vector<uint64_t> shape;   // empty for a scalar
  const uint8_t* data = nullptr;  // not aligned
  uint64_t bytes = 0;
  std::string file;               // the file holding it (for messages)

  uint64_t elements() const;
  // Matrix view: rows = shape[0] (1 for a scalar), cols = the product of the other dims.
  uint64_t rows() const;
  uint64_t cols() const;
  bool is_float() const { return dtype == StDtype::f32 || dtype == StDtype::f16 || dtype == StDtype::bf16; }
  // Row r as floats (cols() values); integer dtypes convert exactly. Only for readable dtypes.
  void row_f32(uint64_t r, float* out) const;
  std::vector<float> to_f32() const;  // the whole tensor
  std::string shape_string() const;   // "[32, 128]"
};

// One safetensors file, validated and mapped.
class SafetensorsFile {
 public:
  static Result<std::unique_ptr<SafetensorsFile>> open(const std::string& path);
  const std::map<std::string, StTensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  MappedFile map_;
  std::map<std::string, StTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

// The checkpoint of a Hugging Face folder: model.safetensors, or the shards named by
// model.safetensors.index.json; tensors looked up by name across shards.
class SafetensorsSet {
 public:
  static Result<SafetensorsSet> open_folder(const std::string& folder);
  static Result<SafetensorsSet> open_file(const std::string& path);
  const StTensor* find(const std::string& name) const;
  std::vector<std::string> names() const;
  // The tensor, checked to have a readable dtype and the given shape; errors name all three.
  Result<const StTensor*> get(const std::string& name, const std::vector<uint64_t>& shape) const;
  size_t shard_count() const { return files_.size(); }

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const StTensor*> by_name_;
};

}  // namespace lutra
