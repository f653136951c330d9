// The lutra model file, version 1 (design.md §5): one self-contained, memory-mapped file.
//
//   [0, 64)            FileHeader (little-endian)
//   [64, dir_offset)   tensor data, each tensor starting on a 64-byte boundary
//   [dir_offset, end)  the directory: JSON holding the config, tokenizer, provenance and,
//                      for every tensor, its name, format, shape, offset, size and xxh64
//
// The directory sits at the end so the writer can stream tensors of any size; the header
// records the file size (so truncation is caught before anything is read) and the
// directory's checksum. Tensor checksums are checked by verify() (`lutra info --verify`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "runtime/status.h"
#include "runtime/weights.h"

namespace lutra {

inline constexpr char kModelMagic[8] = {'L', 'U', 'T', 'R', 'A', 'M', 'D', 'L'};
inline constexpr uint32_t kModelVersion = 1;
inline constexpr uint64_t kTensorAlignment = 64;

struct FileHeader {
  char magic[8];
  uint32_t version;
  uint32_t header_bytes;   // sizeof(FileHeader)
  uint64_t file_bytes;     // the whole file
  uint64_t dir_offset;     // JSON directory
  uint64_t dir_bytes;
  uint64_t dir_xxh64;
  uint64_t reserved[2];
};
static_assert(sizeof(FileHeader) == 64);

// One tensor's entry in the directory. Matrices use `format` (f32/f16/t2/t3/bq) with
// shape {n, k}; vectors are f32 with shape {n}; opaque blobs (the tokenizer) are "u8".
struct TensorInfo {
  std::string name;
  std::string format;            // "f32", "f16", "t2", "bq", "u8"
  std::vector<uint64_t> shape;   // 1 or 2 dims
  uint64_t offset = 0, bytes = 0;
  uint64_t xxh64 = 0;
  float scale = 1.0f;            // t2, t3, t5: mean|W|
  int bits = 0, group = 0;       // bq
  bool asymmetric = false;       // bq
};

// Bytes the entry's format and shape require (0 when the combination is invalid).
uint64_t expected_tensor_bytes(const TensorInfo& t);

// Streams a model file to `path + ".tmp"` and renames it into place in finish(); if finish()
// is never reached (error, interruption) the destructor removes the temporary file.
class ModelWriter {
 public:
  static Result<std::unique_ptr<ModelWriter>> create(const std::string& path);
  ~ModelWriter();
  // `info.offset`, `bytes` and `xxh64` are filled in here.
  Status add_tensor(TensorInfo info, std::span<const uint8_t> data);
  // Streaming form for large tensors: `produce` is called with chunks to fill until `bytes`.
  Status add_tensor(TensorInfo info, uint64_t bytes,
                    const std::function<Status(std::span<uint8_t> chunk, uint64_t at)>& produce);
  // `metadata` is a JSON object (config, tokenizer, provenance); "tensors" is added here.
  Status finish(const std::string& metadata_json);
  uint64_t bytes_written() const { return pos_; }

 private:
  ModelWriter() = default;
  Status write_all(const void* p, size_t n);
  Status pad_to_alignment();
  std::string path_, tmp_path_;
  int fd_ = -1;
  uint64_t pos_ = 0;
  bool finished_ = false;
  std::vector<TensorInfo> tensors_;
};

// A validated, memory-mapped model file.
class ModelFile {
 public:
  static Result<std::unique_ptr<ModelFile>> open(const std::string& path);
  ~ModelFile();
  ModelFile(const ModelFile&) = delete;
  ModelFile& operator=(const ModelFile&) = delete;

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }
  // The directory JSON without its "tensors" array (config, tokenizer, provenance).
  const std::string& metadata_json() const { return metadata_json_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find(const std::string& name) const;
  std::span<const uint8_t> data(const TensorInfo& t) const { return {base_ + t.offset, t.bytes}; }
  // Bytes of the file the kernel maps with 2 MiB pages at this moment (pages not yet read count
  // as not; 0 where /proc/self/smaps is unavailable). Weights streamed from 4 KiB pages run
  // 2-3x slower on some machines: `lutra bench` and `lutra info` report it.
  uint64_t huge_page_bytes() const;
  // Recomputes every tensor's checksum; names the first that differs.
  Status verify(const std::function<void(size_t done, size_t total)>& progress = {}) const;

 private:
  ModelFile() = default;
  std::string path_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  std::string metadata_json_;
  std::vector<TensorInfo> tensors_;
};

}  // namespace lutra
