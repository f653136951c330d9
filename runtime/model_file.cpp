#include "runtime/model_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <unordered_set>

namespace lutra {

using json = nlohmann::json;

namespace {

std::string errno_text() { return std::strerror(errno); }

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

bool parse_hex64(const std::string& s, uint64_t& out) {
  if (s.empty() || s.size() > 16) return false;
  char* end = nullptr;
  out = std::strtoull(s.c_str(), &end, 16);
  return end == s.c_str() + s.size();
}

json tensor_to_json(const TensorInfo& t) {
  json j = {{"name", t.name}, {"format", t.format}, {"shape", t.shape},
            {"offset", t.offset}, {"bytes", t.bytes}, {"xxh64", hex64(t.xxh64)}};
  if (t.format == "t2" || t.format == "t3" || t.format == "t5") j["scale"] = t.scale;  // ternary: mean|W|
  if (t.format == "bq" || t.format == "bp") {
    j["bits"] = t.bits;
    j["group"] = t.group;
    j["asymmetric"] = t.asymmetric;
  }
  return j;
}

Status tensor_from_json(const json& j, TensorInfo& t) {
  if (!j.is_object()) return Status::error("tensor entry is not an object");
  t.name = j.at("name").get<std::string>();
  t.format = j.at("format").get<std::string>();
  t.shape = j.at("shape").get<std::vector<uint64_t>>();
  t.offset = j.at("offset").get<uint64_t>();
  t.bytes = j.at("bytes").get<uint64_t>();
  if (!parse_hex64(j.at("xxh64").get<std::string>(), t.xxh64))
    return Status::error("tensor '" + t.name + "' has a malformed checksum");
  t.scale = j.value("scale", 1.0f);
  t.bits = j.value("bits", 0);
  t.group = j.value("group", 0);
  t.asymmetric = j.value("asymmetric", false);
  return ok_status();
}

}  // namespace

uint64_t expected_tensor_bytes(const TensorInfo& t) {
  if (t.shape.empty() || t.shape.size() > 2) return 0;
  for (uint64_t d : t.shape)
    if (d == 0 || d > (uint64_t(1) << 40)) return 0;
  if (t.shape.size() == 2 && t.shape[0] > (uint64_t(1) << 48) / t.shape[1]) return 0;  // no overflow below
  if (t.format == "u8") return t.shape.size() == 1 ? t.shape[0] : 0;
  if (t.shape.size() == 1) return t.format == "f32" ? t.shape[0] * 4 : 0;
  WeightFormat f;
  if (!parse_weight_format(t.format, f)) return 0;
  return weight_bytes(f, t.shape[0], t.shape[1], t.bits, t.group, t.asymmetric);
}

// ---- writer ---------------------------------------------------------------------------------

Result<std::unique_ptr<ModelWriter>> ModelWriter::create(const std::string& path) {
  std::unique_ptr<ModelWriter> w(new ModelWriter());
  w->path_ = path;
  w->tmp_path_ = path + ".tmp";
  w->fd_ = ::open(w->tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w->fd_ < 0) return Status::error("cannot write '" + w->tmp_path_ + "': " + errno_text());
  FileHeader placeholder{};
  LUTRA_TRY(w->write_all(&placeholder, sizeof placeholder));
  return w;
}

ModelWriter::~ModelWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!finished_ && !tmp_path_.empty()) ::unlink(tmp_path_.c_str());
}

Status ModelWriter::write_all(const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t r = ::write(fd_, c, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::error("writing '" + tmp_path_ + "' failed: " + errno_text());
    }
    c += r;
    n -= size_t(r);
    pos_ += uint64_t(r);
  }
  return ok_status();
}

Status ModelWriter::pad_to_alignment() {
  static const uint8_t zeros[kTensorAlignment] = {};
  uint64_t pad = (kTensorAlignment - pos_ % kTensorAlignment) % kTensorAlignment;
  return write_all(zeros, pad);
}

Status ModelWriter::add_tensor(TensorInfo info, std::span<const uint8_t> data) {
  return add_tensor(std::move(info), data.size(), [&](std::span<uint8_t> chunk, uint64_t at) {
    std::memcpy(chunk.data(), data.data() + at, chunk.size());
    return ok_status();
  });
}

Status ModelWriter::add_tensor(
    TensorInfo info, uint64_t bytes,
    const std::function<Status(std::span<uint8_t> chunk, uint64_t at)>& produce) {
  if (finished_) return Status::error("model writer: tensor added after finish");
  for (const TensorInfo& t : tensors_)
    if (t.name == info.name) return Status::error("model writer: duplicate tensor '" + info.name + "'");
  info.bytes = bytes;
  if (expected_tensor_bytes(info) == 0)
    return Status::error("model writer: tensor '" + info.name + "' has an invalid format or shape");
  if (expected_tensor_bytes(info) != bytes)
    return Status::error("model writer: tensor '" + info.name + "' (" + info.format +
                         ") has " + std::to_string(bytes) + " bytes, its shape needs " +
                         std::to_string(expected_tensor_bytes(info)));
  LUTRA_TRY(pad_to_alignment());
  info.offset = pos_;
  XXH64_state_t* st = XXH64_createState();
  XXH64_reset(st, 0);
  std::vector<uint8_t> buf(std::min<uint64_t>(bytes, 8u << 20));
  Status s;
  for (uint64_t at = 0; at < bytes && s.ok();) {
    size_t n = size_t(std::min<uint64_t>(buf.size(), bytes - at));
    s = produce(std::span<uint8_t>(buf.data(), n), at);
    if (!s.ok()) break;
    XXH64_update(st, buf.data(), n);
    s = write_all(buf.data(), n);
    at += n;
  }
  info.xxh64 = XXH64_digest(st);
  XXH64_freeState(st);
  if (!s.ok()) return s;
  tensors_.push_back(std::move(info));
  return ok_status();
}

Status ModelWriter::finish(const std::string& metadata_json) {
  json dir;
  try {
    dir = json::parse(metadata_json);
  } catch (const std::exception& e) {
    return Status::error(std::string("model writer: metadata is not JSON: ") + e.what());
  }
  if (!dir.is_object()) return Status::error("model writer: metadata must be a JSON object");
  dir["tensors"] = json::array();
  for (const TensorInfo& t : tensors_) dir["tensors"].push_back(tensor_to_json(t));
  std::string text = dir.dump();
  LUTRA_TRY(pad_to_alignment());
  FileHeader h{};
  std::memcpy(h.magic, kModelMagic, sizeof h.magic);
  h.version = kModelVersion;
  h.header_bytes = sizeof(FileHeader);
  h.dir_offset = pos_;
  h.dir_bytes = text.size();
  h.dir_xxh64 = XXH64(text.data(), text.size(), 0);
  LUTRA_TRY(write_all(text.data(), text.size()));
  h.file_bytes = pos_;
  if (::pwrite(fd_, &h, sizeof h, 0) != ssize_t(sizeof h))
    return Status::error("writing '" + tmp_path_ + "' failed: " + errno_text());
  if (::fsync(fd_) != 0) return Status::error("writing '" + tmp_path_ + "' failed: " + errno_text());
  // Drop the file's pages from the page cache (they are on disk now). The writes left them in
  // small folios, and a reader that finds them there maps the weights in 4 KiB pages: on the
  // 2-core test VM that made every weight-streaming kernel 2-3x slower (a TLB walk per page,
  // and prefetchers that stop at page boundaries). Read back by the first run, they come in as
  // large folios that the kernel maps with 2 MiB pages (perf/RESULTS.md, "huge pages").
  ::posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED);  // a hint: failure costs only speed
  ::close(fd_);
  fd_ = -1;
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0)
    return Status::error("cannot rename '" + tmp_path_ + "' to '" + path_ + "': " + errno_text());
  finished_ = true;
  return ok_status();
}

// ---- reader ---------------------------------------------------------------------------------

Result<std::unique_ptr<ModelFile>> ModelFile::open(const std::string& path) {
  std::unique_ptr<ModelFile> m(new ModelFile());
  m->path_ = path;
  const std::string where = "model '" + path + "'";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::error("cannot open " + where + ": " + errno_text());
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::error(where + " is not a regular file");
  }
  m->size_ = uint64_t(st.st_size);
  if (m->size_ < sizeof(FileHeader)) {
    ::close(fd);
    return Status::error(where + " is too small to be a lutra model (" + std::to_string(m->size_) + " bytes)");
  }
  void* p = ::mmap(nullptr, m->size_, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return Status::error("cannot map " + where + ": " + errno_text());
  m->base_ = static_cast<const uint8_t*>(p);
  // Ask for 2 MiB pages where the kernel can map the file with them (large page-cache folios;
  // transparent huge pages in "madvise" mode need this hint). A hint: failure costs only speed.
  ::madvise(p, m->size_, MADV_HUGEPAGE);

  FileHeader h;
  std::memcpy(&h, m->base_, sizeof h);
  if (std::memcmp(h.magic, kModelMagic, sizeof h.magic) != 0)
    return Status::error(where + " is not a lutra model file (wrong magic; convert it with `lutra convert`)");
  if (h.version != kModelVersion)
    return Status::error(where + " has format version " + std::to_string(h.version) +
                         ", this lutra reads version " + std::to_string(kModelVersion) + ": convert it again");
  if (h.header_bytes != sizeof(FileHeader)) return Status::error(where + " has a corrupt header");
  if (h.file_bytes != m->size_)
    return Status::error(where + " is " + (m->size_ < h.file_bytes ? "truncated" : "longer than recorded") +
                         ": " + std::to_string(m->size_) + " bytes, header says " + std::to_string(h.file_bytes));
  if (h.dir_offset < sizeof(FileHeader) || h.dir_offset > m->size_ || h.dir_bytes > m->size_ - h.dir_offset)
    return Status::error(where + " has a corrupt header (directory out of bounds)");
  const char* dir_text = reinterpret_cast<const char*>(m->base_ + h.dir_offset);
  if (XXH64(dir_text, h.dir_bytes, 0) != h.dir_xxh64)
    return Status::error(where + " is corrupt (directory checksum mismatch)");

  json dir;
  try {
    dir = json::parse(dir_text, dir_text + h.dir_bytes);
    if (!dir.is_object() || !dir.contains("tensors") || !dir["tensors"].is_array())
      return Status::error(where + " has no tensor directory");
    std::unordered_set<std::string> names;
    for (const json& jt : dir["tensors"]) {
      TensorInfo t;
      LUTRA_TRY(tensor_from_json(jt, t));
      const std::string tw = where + ": tensor '" + t.name + "'";
      uint64_t need = expected_tensor_bytes(t);
      if (need == 0 || need != t.bytes) return Status::error(tw + " has an invalid format or shape");
      if (t.offset % kTensorAlignment != 0) return Status::error(tw + " is misaligned");
      if (t.offset < sizeof(FileHeader) || t.offset > h.dir_offset || t.bytes > h.dir_offset - t.offset)
        return Status::error(tw + " lies outside the file's data");
      if (!names.insert(t.name).second) return Status::error(tw + " appears twice");
      m->tensors_.push_back(std::move(t));
    }
    dir.erase("tensors");
  } catch (const std::exception& e) {
    return Status::error(where + " has a corrupt directory: " + e.what());
  }
  m->metadata_json_ = dir.dump();
  return m;
}

ModelFile::~ModelFile() {
  if (base_) ::munmap(const_cast<uint8_t*>(base_), size_);
}

uint64_t ModelFile::huge_page_bytes() const {
  // /proc/self/smaps: a header line "start-end perms ..." per mapping, then "Key: value kB" lines.
  std::FILE* f = std::fopen("/proc/self/smaps", "re");
  if (!f) return 0;
  const uintptr_t start = reinterpret_cast<uintptr_t>(base_);
  bool ours = false;
  uint64_t kb = 0;
  char line[512];
  while (std::fgets(line, sizeof line, f)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {  // a mapping's header (key lines have no '-')
      ours = lo == start;
      continue;
    }
    unsigned long v = 0;
    if (ours && std::sscanf(line, "FilePmdMapped: %lu kB", &v) == 1) kb += v;
  }
  std::fclose(f);
  return kb * 1024;
}

const TensorInfo* ModelFile::find(const std::string& name) const {
  for (const TensorInfo& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

Status ModelFile::verify(const std::function<void(size_t, size_t)>& progress) const {
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const TensorInfo& t = tensors_[i];
    if (XXH64(base_ + t.offset, t.bytes, 0) != t.xxh64)
      return Status::error("model '" + path_ + "' is corrupt: checksum mismatch in tensor '" + t.name + "'");
    if (progress) progress(i + 1, tensors_.size());
  }
  return ok_status();
}

}  // namespace lutra
