// The model file v1: what ModelWriter writes is what ModelFile reads back, every kind of
// damage is refused with a one-line message saying what is wrong, the writer is atomic, and
// Model::load refuses configs and shapes it cannot run.
#include <doctest/doctest.h>

#include "tests/test_data.h"
#include <unistd.h>
#include <xxhash.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "convert/convert.h"
#include "runtime/model.h"
#include "runtime/model_file.h"

using namespace lutra;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// A fresh directory under the system temp dir, removed with everything in it.
std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = uint8_t(rng());
  return v;
}

FileHeader header_of(const std::vector<uint8_t>& file) {
  FileHeader h;
  std::memcpy(&h, file.data(), sizeof h);
  return h;
}

// Replaces the directory of a well-formed file by `edit(directory)`, with a consistent header
// (directory checksum, sizes): for directories no writer would produce.
void rewrite_directory(const std::string& path, const std::function<void(json&)>& edit) {
  std::vector<uint8_t> file = read_bytes(path);
  REQUIRE(file.size() >= sizeof(FileHeader));
  FileHeader h = header_of(file);
  json dir = json::parse(file.begin() + long(h.dir_offset), file.begin() + long(h.dir_offset + h.dir_bytes));
  edit(dir);
  std::string text = dir.dump();
  file.resize(h.dir_offset);
  file.insert(file.end(), text.begin(), text.end());
  h.dir_bytes = text.size();
  h.dir_xxh64 = XXH64(text.data(), text.size(), 0);
  h.file_bytes = file.size();
  std::memcpy(file.data(), &h, sizeof h);
  write_bytes(path, file);
}

// The tensors of the sample file: every format, with their expected entries.
struct Sample {
  TensorInfo info;
  std::vector<uint8_t> data;
};

std::vector<Sample> sample_tensors() {
  std::vector<Sample> s;
  auto add = [&](TensorInfo t, uint32_t seed) {
    uint64_t n = expected_tensor_bytes(t);
    REQUIRE(n > 0);
    s.push_back({std::move(t), random_bytes(n, seed)});
  };
  TensorInfo t;
  t = {}; t.name = "m.f32"; t.format = "f32"; t.shape = {3, 5}; add(t, 1);
  t = {}; t.name = "v.f32"; t.format = "f32"; t.shape = {7}; add(t, 2);
  t = {}; t.name = "m.f16"; t.format = "f16"; t.shape = {2, 9}; add(t, 3);
  t = {}; t.name = "m2.f16"; t.format = "f16"; t.shape = {4, 32}; add(t, 4);
  t = {}; t.name = "m.t2"; t.format = "t2"; t.shape = {3, 7}; t.scale = 0.25f; add(t, 5);
  t = {}; t.name = "m2.t2"; t.format = "t2"; t.shape = {5, 130}; t.scale = 0.0123456f; add(t, 6);
  t = {}; t.name = "m.bq4"; t.format = "bq"; t.shape = {2, 64}; t.bits = 4; t.group = 32; add(t, 7);
  t = {}; t.name = "m.bq3a"; t.format = "bq"; t.shape = {3, 64}; t.bits = 3; t.group = 64;
  t.asymmetric = true; add(t, 8);
  t = {}; t.name = "tokenizer.blob"; t.format = "u8"; t.shape = {13}; add(t, 9);
  return s;
}

const char* kMetadata = R"({"config":{"arch":"llama","dim":8},"provenance":{"source":"test","n":3}})";

void write_sample(const std::string& path) {
  auto w = ModelWriter::create(path);
  REQUIRE_MESSAGE(w.ok(), w.message());
  for (const Sample& s : sample_tensors()) {
    Status st = (*w)->add_tensor(s.info, s.data);
    REQUIRE_MESSAGE(st.ok(), st.message());
  }
  Status st = (*w)->finish(kMetadata);
  REQUIRE_MESSAGE(st.ok(), st.message());
}

// Opening must fail, with a message containing `keyword`.
void check_refused(const std::string& path, const std::string& keyword) {
  auto m = ModelFile::open(path);
  REQUIRE_FALSE(m.ok());
  INFO("message: " << m.message());
  CHECK(m.message().find(keyword) != std::string::npos);
  CHECK(m.message().find('\n') == std::string::npos);
}

}  // namespace

TEST_CASE("model file written with every tensor format reads back with the same entries and bytes") {
  TempDir tmp;
  const std::string path = tmp.file("sample.lutra");
  write_sample(path);

  auto m = ModelFile::open(path);
  REQUIRE_MESSAGE(m.ok(), m.message());
  const ModelFile& f = **m;
  CHECK(f.size() == fs::file_size(path));
  CHECK(json::parse(f.metadata_json()) == json::parse(kMetadata));

  const std::vector<Sample> expected = sample_tensors();
  REQUIRE(f.tensors().size() == expected.size());
  uint64_t prev_end = sizeof(FileHeader);
  for (size_t i = 0; i < expected.size(); ++i) {
    const TensorInfo& got = f.tensors()[i];
    const TensorInfo& want = expected[i].info;
    CAPTURE(want.name);
    CHECK(got.name == want.name);
    CHECK(got.format == want.format);
    CHECK(got.shape == want.shape);
    CHECK(got.bytes == expected[i].data.size());
    CHECK(got.offset % kTensorAlignment == 0);
    CHECK(got.offset >= prev_end);  // in order, no overlap
    prev_end = got.offset + got.bytes;
    CHECK(got.xxh64 == XXH64(expected[i].data.data(), expected[i].data.size(), 0));
    CHECK(got.scale == want.scale);
    CHECK(got.bits == want.bits);
    CHECK(got.group == want.group);
    CHECK(got.asymmetric == want.asymmetric);
    auto bytes = f.data(got);
    REQUIRE(bytes.size() == expected[i].data.size());
    CHECK(std::memcmp(bytes.data(), expected[i].data.data(), bytes.size()) == 0);
    CHECK(f.find(want.name) == &got);
  }
  CHECK(f.find("no.such.tensor") == nullptr);
  CHECK(prev_end <= header_of(read_bytes(path)).dir_offset);

  size_t calls = 0, last_done = 0, last_total = 0;
  Status v = f.verify([&](size_t done, size_t total) {
    ++calls;
    last_done = done;
    last_total = total;
  });
  CHECK_MESSAGE(v.ok(), v.message());
  CHECK(calls == expected.size());
  CHECK(last_done == expected.size());
  CHECK(last_total == expected.size());
}

TEST_CASE("model file streaming add_tensor writes the chunks the producer fills") {
  TempDir tmp;
  const std::string path = tmp.file("stream.lutra");
  TensorInfo t;
  t.name = "big";
  t.format = "f32";
  t.shape = {1000};
  const std::vector<uint8_t> want = random_bytes(4000, 42);
  {
    auto w = ModelWriter::create(path);
    REQUIRE(w.ok());
    Status s = (*w)->add_tensor(t, want.size(), [&](std::span<uint8_t> chunk, uint64_t at) {
      std::memcpy(chunk.data(), want.data() + at, chunk.size());
      return ok_status();
    });
    REQUIRE_MESSAGE(s.ok(), s.message());
    REQUIRE((*w)->finish("{}").ok());
  }
  auto m = ModelFile::open(path);
  REQUIRE_MESSAGE(m.ok(), m.message());
  auto d = (*m)->data(*(*m)->find("big"));
  CHECK(std::vector<uint8_t>(d.begin(), d.end()) == want);
  CHECK((*m)->verify().ok());
}

TEST_CASE("a missing or empty model file is refused with a message saying so") {
  TempDir tmp;
  check_refused(tmp.file("does-not-exist.lutra"), "cannot open");
  write_bytes(tmp.file("empty.lutra"), {});
  check_refused(tmp.file("empty.lutra"), "too small");
  check_refused(tmp.path().string(), "not a regular file");
}

TEST_CASE("a model file with the wrong magic or an unsupported version is refused") {
  TempDir tmp;
  const std::string path = tmp.file("m.lutra");
  write_sample(path);
  const std::vector<uint8_t> good = read_bytes(path);

  std::vector<uint8_t> bad = good;
  bad[0] = 'X';
  write_bytes(path, bad);
  check_refused(path, "magic");

  bad = good;
  uint32_t version = 2;
  std::memcpy(bad.data() + offsetof(FileHeader, version), &version, 4);
  write_bytes(path, bad);
  check_refused(path, "version 2");

  bad = good;
  uint32_t header_bytes = 128;
  std::memcpy(bad.data() + offsetof(FileHeader, header_bytes), &header_bytes, 4);
  write_bytes(path, bad);
  check_refused(path, "corrupt header");
}

TEST_CASE("a truncated model file is refused before anything is read") {
  TempDir tmp;
  const std::string path = tmp.file("m.lutra");
  write_sample(path);
  const std::vector<uint8_t> good = read_bytes(path);
  const FileHeader h = header_of(good);
  const uint64_t first_tensor = ModelFile::open(path).value()->tensors()[0].offset;

  struct Cut {
    uint64_t size;
    const char* keyword;
  };
  const Cut cuts[] = {
      {10, "too small"},                     // inside the header
      {sizeof(FileHeader) - 1, "too small"}, // one byte short of a header
      {first_tensor + 7, "truncated"},       // inside the first tensor
      {h.dir_offset - 1, "truncated"},       // the last byte of the data region
      {h.dir_offset + h.dir_bytes / 2, "truncated"},  // inside the directory
      {good.size() - 1, "truncated"},
  };
  for (const Cut& c : cuts) {
    CAPTURE(c.size);
    write_bytes(path, std::vector<uint8_t>(good.begin(), good.begin() + long(c.size)));
    check_refused(path, c.keyword);
  }
}

TEST_CASE("a model file with bytes appended is refused") {
  TempDir tmp;
  const std::string path = tmp.file("m.lutra");
  write_sample(path);
  std::vector<uint8_t> b = read_bytes(path);
  b.push_back(0);
  write_bytes(path, b);
  check_refused(path, "longer than recorded");
}

TEST_CASE("a flipped byte in the directory is caught by its checksum") {
  TempDir tmp;
  const std::string path = tmp.file("m.lutra");
  write_sample(path);
  std::vector<uint8_t> b = read_bytes(path);
  const FileHeader h = header_of(b);
  b[h.dir_offset + h.dir_bytes / 2] ^= 0x01;
  write_bytes(path, b);
  check_refused(path, "checksum");
}

TEST_CASE("a flipped byte inside tensor data opens but verify names that tensor") {
  TempDir tmp;
  const std::string path = tmp.file("m.lutra");
  write_sample(path);
  TensorInfo target = *ModelFile::open(path).value()->find("m2.t2");
  std::vector<uint8_t> b = read_bytes(path);
  b[target.offset + target.bytes - 1] ^= 0x80;
  write_bytes(path, b);

  auto m = ModelFile::open(path);
  REQUIRE_MESSAGE(m.ok(), m.message());
  Status v = (*m)->verify();
  REQUIRE_FALSE(v.ok());
  INFO("message: " << v.message());
  CHECK(v.message().find("'m2.t2'") != std::string::npos);
  CHECK(v.message().find("checksum") != std::string::npos);
}

TEST_CASE("a directory whose tensor lies outside the data region or is misaligned is refused") {
  TempDir tmp;
  const std::string path = tmp.file("m.lutra");
  auto edit_tensor = [&](const std::string& name, const std::function<void(json&)>& edit) {
    write_sample(path);
    rewrite_directory(path, [&](json& dir) {
      for (json& t : dir["tensors"])
        if (t["name"] == name) edit(t);
    });
  };
  const FileHeader h = [&] {
    write_sample(path);
    return header_of(read_bytes(path));
  }();

  SUBCASE("offset past the directory") {
    edit_tensor("m.f16", [&](json& t) { t["offset"] = h.dir_offset + 64; });
    check_refused(path, "outside");
  }
  SUBCASE("tensor runs into the directory") {
    edit_tensor("m2.f16", [&](json& t) { t["offset"] = h.dir_offset - 64; });  // 256 bytes
    check_refused(path, "outside");
  }
  SUBCASE("offset inside the header") {
    edit_tensor("v.f32", [&](json& t) { t["offset"] = 0; });
    check_refused(path, "outside");
  }
  SUBCASE("offset near 2^64 does not wrap around the bounds check") {
    edit_tensor("v.f32", [&](json& t) { t["offset"] = uint64_t(0) - 64; });
    check_refused(path, "outside");
  }
  SUBCASE("misaligned") {
    edit_tensor("m.f32", [&](json& t) { t["offset"] = t["offset"].get<uint64_t>() + 4; });
    check_refused(path, "misaligned");
  }
  SUBCASE("byte count disagrees with the shape") {
    edit_tensor("m.f32", [&](json& t) { t["bytes"] = 64; });
    check_refused(path, "invalid format or shape");
  }
  SUBCASE("unknown format") {
    edit_tensor("m.f32", [&](json& t) { t["format"] = "q4_0"; });
    check_refused(path, "invalid format or shape");
  }
  SUBCASE("malformed checksum") {
    edit_tensor("m.f32", [&](json& t) { t["xxh64"] = "not-hex"; });
    check_refused(path, "checksum");
  }
  SUBCASE("a name twice") {
    edit_tensor("m.f16", [&](json& t) { t["name"] = "m.f32"; });
    check_refused(path, "appears twice");
  }
  SUBCASE("an entry lacking a field") {
    edit_tensor("m.f16", [&](json& t) { t.erase("shape"); });
    check_refused(path, "corrupt directory");
  }
  SUBCASE("no tensor array") {
    write_sample(path);
    rewrite_directory(path, [](json& dir) { dir.erase("tensors"); });
    check_refused(path, "no tensor directory");
  }
}

TEST_CASE("model writer is atomic: the final path appears only at finish") {
  TempDir tmp;
  const std::string path = tmp.file("atomic.lutra");
  const std::vector<Sample> samples = sample_tensors();

  SUBCASE("finished") {
    auto w = ModelWriter::create(path);
    REQUIRE(w.ok());
    CHECK(fs::exists(path + ".tmp"));
    CHECK_FALSE(fs::exists(path));
    REQUIRE((*w)->add_tensor(samples[0].info, samples[0].data).ok());
    CHECK_FALSE(fs::exists(path));
    REQUIRE((*w)->finish("{}").ok());
    CHECK(fs::exists(path));
    CHECK_FALSE(fs::exists(path + ".tmp"));
    // Nothing may be added after the file is complete.
    Status late = (*w)->add_tensor(samples[1].info, samples[1].data);
    CHECK_FALSE(late.ok());
    w = Status::error("drop");  // destroying a finished writer keeps the file
    CHECK(fs::exists(path));
    CHECK(ModelFile::open(path).ok());
  }
  SUBCASE("destroyed without finish") {
    {
      auto w = ModelWriter::create(path);
      REQUIRE(w.ok());
      REQUIRE((*w)->add_tensor(samples[0].info, samples[0].data).ok());
    }
    CHECK_FALSE(fs::exists(path));
    CHECK_FALSE(fs::exists(path + ".tmp"));
  }
  SUBCASE("an existing file survives an unfinished rewrite") {
    write_sample(path);
    const std::vector<uint8_t> before = read_bytes(path);
    {
      auto w = ModelWriter::create(path);
      REQUIRE(w.ok());
      REQUIRE((*w)->add_tensor(samples[0].info, samples[0].data).ok());
    }
    CHECK(read_bytes(path) == before);
    CHECK_FALSE(fs::exists(path + ".tmp"));
  }
  SUBCASE("a failing producer leaves nothing") {
    {
      auto w = ModelWriter::create(path);
      REQUIRE(w.ok());
      TensorInfo t = samples[0].info;
      Status s = (*w)->add_tensor(t, samples[0].data.size(), [](std::span<uint8_t>, uint64_t) {
        return Status::error("source read failed");
      });
      CHECK(s.message() == "source read failed");
    }
    CHECK_FALSE(fs::exists(path));
    CHECK_FALSE(fs::exists(path + ".tmp"));
  }
  SUBCASE("metadata that is not a JSON object is refused") {
    auto w = ModelWriter::create(path);
    REQUIRE(w.ok());
    CHECK((*w)->finish("not json").message().find("JSON") != std::string::npos);
    CHECK_FALSE((*w)->finish("[1, 2]").ok());
    CHECK_FALSE(fs::exists(path));
  }
  SUBCASE("an unwritable path is an error, not a crash") {
    auto w = ModelWriter::create(tmp.file("no-such-dir/x.lutra"));
    REQUIRE_FALSE(w.ok());
    CHECK(w.message().find("cannot write") != std::string::npos);
  }
}

TEST_CASE("model writer refuses duplicate tensor names and byte counts that disagree with the shape") {
  TempDir tmp;
  auto w = ModelWriter::create(tmp.file("m.lutra"));
  REQUIRE(w.ok());
  const std::vector<Sample> samples = sample_tensors();
  REQUIRE((*w)->add_tensor(samples[0].info, samples[0].data).ok());

  Status dup = (*w)->add_tensor(samples[0].info, samples[0].data);
  CHECK_FALSE(dup.ok());
  CHECK(dup.message().find("duplicate") != std::string::npos);

  TensorInfo t = samples[2].info;  // f16 {2, 9}: 36 bytes
  std::vector<uint8_t> wrong(35);
  Status short_data = (*w)->add_tensor(t, wrong);
  CHECK_FALSE(short_data.ok());
  CHECK(short_data.message().find("needs 36") != std::string::npos);

  TensorInfo bq;  // k not a multiple of the group
  bq.name = "bad.bq";
  bq.format = "bq";
  bq.shape = {2, 40};
  bq.bits = 4;
  bq.group = 32;
  CHECK_FALSE((*w)->add_tensor(bq, std::vector<uint8_t>(48)).ok());

  TensorInfo u8_2d;
  u8_2d.name = "bad.u8";
  u8_2d.format = "u8";
  u8_2d.shape = {2, 2};
  CHECK_FALSE((*w)->add_tensor(u8_2d, std::vector<uint8_t>(4)).ok());

  // A tensor with no valid shape has "expected 0 bytes": zero bytes of data must not pass.
  TensorInfo empty;
  empty.name = "empty";
  empty.format = "f32";
  empty.shape = {0, 5};
  Status zero = (*w)->add_tensor(empty, std::span<const uint8_t>());
  CHECK_FALSE(zero.ok());
}

// ---- Model::load ----------------------------------------------------------------------------

TEST_CASE("model load refuses an unknown architecture, naming it") {
  TempDir tmp;
  const std::string path = tmp.file("tiny.lutra");
  ConvertOptions opts;
  Status s = make_synthetic("llama-tiny", path, opts);
  REQUIRE_MESSAGE(s.ok(), s.message());
  auto good = Model::load(path);
  REQUIRE_MESSAGE(good.ok(), good.message());
  good = Status::error("released");

  rewrite_directory(path, [](json& dir) { dir["config"]["arch"] = "mamba-7"; });
  REQUIRE(ModelFile::open(path).ok());  // the file itself is sound
  auto m = Model::load(path);
  REQUIRE_FALSE(m.ok());
  INFO("message: " << m.message());
  CHECK(m.message().find("mamba-7") != std::string::npos);
  CHECK(m.message().find("architecture") != std::string::npos);
}

TEST_CASE("model load refuses a tensor whose shape disagrees with the config") {
  TempDir tmp;
  const std::string path = tmp.file("tiny.lutra");
  ConvertOptions opts;
  REQUIRE(make_synthetic("llama-tiny", path, opts).ok());
  auto ok = Model::load(path);
  REQUIRE_MESSAGE(ok.ok(), ok.message());
  const int hidden = (*ok)->config().hidden_dim;
  ok = Status::error("released");

  SUBCASE("the config's FFN width is not the tensors'") {
    rewrite_directory(path, [&](json& dir) { dir["config"]["hidden_dim"] = hidden + 8; });
    auto m = Model::load(path);
    REQUIRE_FALSE(m.ok());
    INFO("message: " << m.message());
    CHECK(m.message().find("blk.0.ffn_gate") != std::string::npos);
    CHECK(m.message().find("shape") != std::string::npos);
  }
  SUBCASE("a tensor is missing") {
    rewrite_directory(path, [&](json& dir) {
      json& ts = dir["tensors"];
      for (size_t i = 0; i < ts.size(); ++i)
        if (ts[i]["name"] == "blk.1.attn_v") {
          ts.erase(i);
          break;
        }
    });
    auto m = Model::load(path);
    REQUIRE_FALSE(m.ok());
    CHECK(m.message().find("lacks tensor 'blk.1.attn_v'") != std::string::npos);
  }
  SUBCASE("the config's vocabulary is not the tokenizer's") {
    // token_embd is (vocab, dim): its shape is checked first.
    rewrite_directory(path, [&](json& dir) { dir["config"]["vocab_size"] = 512; });
    auto m = Model::load(path);
    REQUIRE_FALSE(m.ok());
    CHECK(m.message().find("token_embd") != std::string::npos);
  }
  SUBCASE("no config") {
    rewrite_directory(path, [&](json& dir) { dir.erase("config"); });
    auto m = Model::load(path);
    REQUIRE_FALSE(m.ok());
    CHECK(m.message().find("no config") != std::string::npos);
  }
}
