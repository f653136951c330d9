#include "convert/safetensors.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "runtime/half.h"

namespace lutra {

using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Bytes per element of every dtype the safetensors format defines.
bool dtype_size(const std::string& name, StDtype& dtype, uint64_t& size) {
  static const struct { const char* name; StDtype dtype; uint64_t size; } kDtypes[] = {
      {"F32", StDtype::f32, 4},     {"F16", StDtype::f16, 2},      {"BF16", StDtype::bf16, 2},
      {"U8", StDtype::u8, 1},       {"I8", StDtype::i8, 1},        {"BOOL", StDtype::other, 1},
      {"F8_E4M3", StDtype::other, 1}, {"F8_E5M2", StDtype::other, 1}, {"I16", StDtype::other, 2},
      {"U16", StDtype::other, 2},   {"I32", StDtype::other, 4},    {"U32", StDtype::other, 4},
      {"I64", StDtype::other, 8},   {"U64", StDtype::other, 8},    {"F64", StDtype::other, 8},
  };
  for (const auto& d : kDtypes)
    if (name == d.name) {
      dtype = d.dtype;
      size = d.size;
      return true;
    }
  return false;
}

// A header larger than this is not a checkpoint header (real ones are well under 1 MB per
// thousand tensors).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

}  // namespace

uint64_t StTensor::elements() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  return n;
}

uint64_t StTensor::rows() const { return shape.empty() ? 1 : shape[0]; }

uint64_t StTensor::cols() const {
  uint64_t n = 1;
  for (size_t i = 1; i < shape.size(); ++i) n *= shape[i];
  return n;
}

void StTensor::row_f32(uint64_t r, float* out) const {
  const uint64_t k = cols();
  switch (dtype) {
    case StDtype::f32:
      std::memcpy(out, data + r * k * 4, k * 4);
      break;
    case StDtype::f16:
    case StDtype::bf16: {
      const uint8_t* p = data + r * k * 2;
      for (uint64_t j = 0; j < k; ++j) {
        uint16_t h;
        std::memcpy(&h, p + 2 * j, 2);
        out[j] = dtype == StDtype::f16 ? f16_to_f32(h) : bf16_to_f32(h);
      }
      break;
    }
    case StDtype::u8:
      for (uint64_t j = 0; j < k; ++j) out[j] = float(data[r * k + j]);
      break;
    case StDtype::i8:
      for (uint64_t j = 0; j < k; ++j) out[j] = float(int8_t(data[r * k + j]));
      break;
    case StDtype::other:
      break;  // callers check readability first (SafetensorsSet::get)
  }
}

std::vector<float> StTensor::to_f32() const {
  std::vector<float> v(elements());
  for (uint64_t r = 0, k = cols(); r < rows() && k > 0; ++r) row_f32(r, v.data() + r * k);
  return v;
}

std::string StTensor::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(const std::string& path) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  LUTRA_TRY(f->map_.open(path));
  const std::string where = "safetensors file '" + path + "'";
  const uint64_t size = f->map_.size();
  if (size < 8) return Status::error(where + " is too small to hold a header");
  uint64_t n;
  std::memcpy(&n, f->map_.data(), 8);
  if (n > kMaxHeaderBytes || n < 2) return Status::error(where + " has an implausible header length " + std::to_string(n) + " (not a safetensors file?)");
  if (n > size - 8)
    return Status::error(where + " is truncated: its header needs " + std::to_string(n) + " bytes, the file holds " +
                         std::to_string(size - 8));
  json header;
  try {
    header = json::parse(f->map_.data() + 8, f->map_.data() + 8 + n);
  } catch (const std::exception& e) {
    return Status::error(where + " has a header that is not JSON: " + e.what());
  }
  if (!header.is_object()) return Status::error(where + " has a header that is not a JSON object");
  const uint8_t* base = f->map_.data() + 8 + n;
  const uint64_t data_bytes = size - 8 - n;
  for (auto& [name, v] : header.items()) {
    if (name == "__metadata__") {
      if (v.is_object())
        for (auto& [k, s] : v.items())
          if (s.is_string()) f->metadata_[k] = s.get<std::string>();
      continue;
    }
    const std::string what = where + ": tensor '" + name + "'";
    StTensor t;
    t.name = name;
    t.file = path;
    uint64_t esize = 0;
    if (!v.is_object() || !v.contains("dtype") || !v["dtype"].is_string() || !v.contains("shape") ||
        !v["shape"].is_array() || !v.contains("data_offsets") || !v["data_offsets"].is_array() ||
        v["data_offsets"].size() != 2)
      return Status::error(what + " lacks dtype, shape or data_offsets");
    t.dtype_name = v["dtype"].get<std::string>();
    if (!dtype_size(t.dtype_name, t.dtype, esize))
      return Status::error(what + " has unknown dtype '" + t.dtype_name + "'");
    uint64_t elements = 1;
    for (const json& d : v["shape"]) {
      if (!d.is_number_unsigned()) return Status::error(what + " has a shape that is not a list of sizes");
      t.shape.push_back(d.get<uint64_t>());
      // A product past the file's size is refused before it can overflow.
      if (t.shape.back() != 0 && elements > data_bytes / t.shape.back())
        return Status::error(what + " has shape " + t.shape_string() + ", larger than the file");
      elements *= t.shape.back();
    }
    const json& off = v["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      return Status::error(what + " has data_offsets that are not byte offsets");
    const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    if (begin > end || end > data_bytes)
      return Status::error(what + " lies outside the file (bytes " + std::to_string(begin) + ".." +
                           std::to_string(end) + " of " + std::to_string(data_bytes) + "): truncated or corrupt");
    if (end - begin != elements * esize)
      return Status::error(what + " holds " + std::to_string(end - begin) + " bytes, but " + t.dtype_name + " " +
                           t.shape_string() + " needs " + std::to_string(elements * esize));
    t.data = base + begin;
    t.bytes = end - begin;
    f->tensors_.emplace(name, std::move(t));
  }
  return f;
}

Result<SafetensorsSet> SafetensorsSet::open_file(const std::string& path) {
  SafetensorsSet set;
  auto f = SafetensorsFile::open(path);
  if (!f.ok()) return f.status();
  for (const auto& [name, t] : (*f)->tensors()) set.by_name_[name] = &t;
  set.files_.push_back(std::move(f.value()));
  return set;
}

Result<SafetensorsSet> SafetensorsSet::open_folder(const std::string& folder) {
  std::error_code ec;
  const fs::path index_path = fs::path(folder) / "model.safetensors.index.json";
  if (!fs::exists(index_path, ec)) {
    const fs::path single = fs::path(folder) / "model.safetensors";
    if (!fs::exists(single, ec))
      return Status::error("'" + folder + "' has neither model.safetensors nor model.safetensors.index.json");
    return open_file(single.string());
  }
  const std::string where = "index " + index_path.string();
  json index;
  try {
    std::ifstream in(index_path);
    index = json::parse(in);
  } catch (const std::exception& e) {
    return Status::error(where + " is not valid JSON: " + e.what());
  }
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    return Status::error(where + " has no weight_map");
  const json& map = index["weight_map"];
  std::set<std::string> shards;
  for (auto& [name, file] : map.items()) {
    if (!file.is_string()) return Status::error(where + " maps '" + name + "' to something that is not a file name");
    const std::string s = file.get<std::string>();
    // Shards live beside the index: a path elsewhere is refused.
    if (s.empty() || s.find('/') != std::string::npos || s == "." || s == "..")
      return Status::error(where + " names shard '" + s + "', which is not a file in the folder");
    shards.insert(s);
  }
  if (shards.empty()) return Status::error(where + " lists no tensors");

  SafetensorsSet set;
  std::map<std::string, const SafetensorsFile*> by_file;
  for (const std::string& s : shards) {
    auto f = SafetensorsFile::open((fs::path(folder) / s).string());
    if (!f.ok()) return f.status();
    by_file[s] = f->get();
    for (const auto& [name, t] : (*f)->tensors()) {
      if (set.by_name_.count(name))
        return Status::error("tensor '" + name + "' appears in two shards ('" + set.by_name_[name]->file + "' and '" +
                             t.file + "')");
      set.by_name_[name] = &t;
    }
    set.files_.push_back(std::move(f.value()));
  }
  for (auto& [name, file] : map.items())
    if (!by_file[file.get<std::string>()]->tensors().count(name))
      return Status::error(where + " places '" + name + "' in '" + file.get<std::string>() + "', which lacks it");
  return set;
}

const StTensor* SafetensorsSet::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::vector<std::string> SafetensorsSet::names() const {
  std::vector<std::string> v;
  for (const auto& [name, t] : by_name_) v.push_back(name);
  return v;
}

Result<const StTensor*> SafetensorsSet::get(const std::string& name, const std::vector<uint64_t>& shape) const {
  const StTensor* t = find(name);
  if (!t) return Status::error("the checkpoint lacks tensor '" + name + "'");
  if (t->dtype == StDtype::other)
    return Status::error("tensor '" + name + "' has dtype " + t->dtype_name +
                         ", which lutra does not convert (supported: F32, F16, BF16, U8, I8)");
  if (t->shape != shape) {
    StTensor want;
    want.shape = shape;
    return Status::error("tensor '" + name + "' has shape " + t->shape_string() + ", the config needs " +
                         want.shape_string());
  }
  return t;
}

}  // namespace lutra
