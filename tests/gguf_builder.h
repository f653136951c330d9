// Test support: builds small GGUF v3 files byte by byte from the format's definition, so tests
// can make fixtures (metadata of every type, tensors of every encoding) without other tools.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

class GgufBuilder {
 public:
  explicit GgufBuilder(uint32_t version = 3, uint64_t alignment = 32) : version_(version), alignment_(alignment) {}

  // Metadata: `value` is the already-encoded value of type `type` (see the enc_* helpers).
  void kv(const std::string& key, uint32_t type, const std::vector<uint8_t>& value) {
    enc_string(kvs_, key);
    put(kvs_, type);
    kvs_.insert(kvs_.end(), value.begin(), value.end());
    ++n_kv_;
  }
  void kv_string(const std::string& key, const std::string& s) { kv(key, 8, enc_str(s)); }
  void kv_u32(const std::string& key, uint32_t v) { kv(key, 4, enc(v)); }
  void kv_i32(const std::string& key, int32_t v) { kv(key, 5, enc(v)); }
  void kv_f32(const std::string& key, float v) { kv(key, 6, enc(v)); }
  void kv_bool(const std::string& key, bool v) { kv(key, 7, std::vector<uint8_t>{uint8_t(v)}); }
  void kv_strings(const std::string& key, const std::vector<std::string>& items) {
    std::vector<uint8_t> v;
    put(v, uint32_t(8));
    put(v, uint64_t(items.size()));
    for (const auto& s : items) enc_string(v, s);
    kv(key, 9, v);
  }
  template <class T>
  void kv_array(const std::string& key, uint32_t elem_type, const std::vector<T>& items) {
    std::vector<uint8_t> v;
    put(v, elem_type);
    put(v, uint64_t(items.size()));
    for (const T& x : items) put(v, x);
    kv(key, 9, v);
  }

  // A tensor with dims in GGUF order (dims[0] innermost) and its already-encoded bytes.
  void tensor(const std::string& name, const std::vector<uint64_t>& dims, uint32_t type,
              const std::vector<uint8_t>& bytes) {
    while (data_.size() % alignment_ != 0) data_.push_back(0);
    enc_string(infos_, name);
    put(infos_, uint32_t(dims.size()));
    for (uint64_t d : dims) put(infos_, d);
    put(infos_, type);
    put(infos_, uint64_t(data_.size()));
    data_.insert(data_.end(), bytes.begin(), bytes.end());
    ++n_tensors_;
  }

  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> out;
    out.reserve(24 + kvs_.size() + infos_.size() + alignment_ + data_.size());
    put(out, uint32_t(0x46554747));  // "GGUF"
    put(out, version_);
    put(out, n_tensors_);
    put(out, n_kv_);
    out.insert(out.end(), kvs_.begin(), kvs_.end());
    out.insert(out.end(), infos_.begin(), infos_.end());
    if (n_tensors_ > 0) {
      while (out.size() % alignment_ != 0) out.push_back(0);
      out.insert(out.end(), data_.begin(), data_.end());
    }
    return out;
  }

  template <class T>
  static void put(std::vector<uint8_t>& out, const T& v) {
    uint8_t b[sizeof(T)];
    std::memcpy(b, &v, sizeof v);
    out.insert(out.end(), b, b + sizeof b);
  }
  static void enc_string(std::vector<uint8_t>& out, const std::string& s) {
    put(out, uint64_t(s.size()));
    out.insert(out.end(), s.begin(), s.end());
  }
  template <class T>
  static std::vector<uint8_t> enc(const T& v) {
    std::vector<uint8_t> out;
    put(out, v);
    return out;
  }
  static std::vector<uint8_t> enc_str(const std::string& s) {
    std::vector<uint8_t> out;
    enc_string(out, s);
    return out;
  }

 private:
  uint32_t version_;
  uint64_t alignment_;
  uint64_t n_kv_ = 0, n_tensors_ = 0;
  std::vector<uint8_t> kvs_, infos_, data_;
};
