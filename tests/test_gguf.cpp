// GGUF: the reader (every metadata type, strict validation of truncated and corrupt files) and
// real GGUF files written by other projects' tools.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "convert/gguf.h"
#include "tests/gguf_builder.h"
#include "tests/test_data.h"

using namespace lutra;

namespace {

// A file with one metadata entry of every type, nested arrays, and two tensors.
std::vector<uint8_t> every_type_file() {
  GgufBuilder b;
  b.kv("u8", 0, GgufBuilder::enc(uint8_t(200)));
  b.kv("i8", 1, GgufBuilder::enc(int8_t(-100)));
  b.kv("u16", 2, GgufBuilder::enc(uint16_t(60000)));
  b.kv("i16", 3, GgufBuilder::enc(int16_t(-30000)));
  b.kv_u32("u32", 4000000000u);
  b.kv_i32("i32", -2000000000);
  b.kv_f32("f32", 1.5f);
  b.kv_bool("bool", true);
  b.kv_string("string", "héllo");
  b.kv("u64", 10, GgufBuilder::enc(uint64_t(1) << 40));
  b.kv("i64", 11, GgufBuilder::enc(int64_t(-5)));
  b.kv("f64", 12, GgufBuilder::enc(0.25));
  b.kv_strings("strings", {"a", "", "ccc"});
  b.kv_array<float>("floats", 6, {1.0f, -2.5f});
  b.kv_array<int32_t>("ints", 5, {1, -2, 3});
  b.kv_array<uint8_t>("bytes", 0, {7, 8});
  // An array of two arrays of u16.
  std::vector<uint8_t> nested;
  GgufBuilder::put(nested, uint32_t(9));
  GgufBuilder::put(nested, uint64_t(2));
  for (int i = 0; i < 2; ++i) {
    GgufBuilder::put(nested, uint32_t(2));
    GgufBuilder::put(nested, uint64_t(1));
    GgufBuilder::put(nested, uint16_t(10 + i));
  }
  b.kv("nested", 9, nested);
  std::vector<uint8_t> f32(4 * 6);
  for (int i = 0; i < 6; ++i) {
    float v = float(i);
    std::memcpy(f32.data() + 4 * i, &v, 4);
  }
  b.tensor("m", {3, 2}, 0, f32);                       // 2 rows of 3 floats
  b.tensor("v", {4}, 1, std::vector<uint8_t>(8, 0));   // 4 halves
  return b.bytes();
}

}  // namespace

TEST_CASE("gguf reader reads every metadata type, nested arrays and tensor infos") {
  auto bytes = every_type_file();
  auto g = GgufFile::parse(bytes, "mem");
  REQUIRE_MESSAGE(g.ok(), g.message());
  const GgufFile& f = **g;
  CHECK(f.version() == 3);
  CHECK(f.alignment() == 32);
  CHECK(f.metadata().size() == 17);
  CHECK(*f.get_u32("u8") == 200);
  CHECK(*f.get_i32("i8") == -100);
  CHECK(*f.get_u32("u16") == 60000);
  CHECK(*f.get_i32("i16") == -30000);
  CHECK(*f.get_u32("u32") == 4000000000u);
  CHECK(*f.get_i32("i32") == -2000000000);
  CHECK(*f.get_f32("f32") == 1.5f);
  CHECK(*f.get_bool("bool") == true);
  CHECK(*f.get_string("string") == "héllo");
  CHECK(*f.get_u64("u64") == (uint64_t(1) << 40));
  CHECK(*f.get_i32("i64") == -5);
  CHECK(*f.get_f32("f64") == 0.25f);
  CHECK(*f.get_string_array("strings") == std::vector<std::string>{"a", "", "ccc"});
  CHECK(*f.get_float_array("floats") == std::vector<float>{1.0f, -2.5f});
  CHECK(*f.get_int_array("ints") == std::vector<int64_t>{1, -2, 3});
  CHECK(*f.get_int_array("bytes") == std::vector<int64_t>{7, 8});
  const GgufValue* nested = f.find("nested");
  REQUIRE(nested);
  REQUIRE(nested->items.size() == 2);
  CHECK(nested->items[1].elem_type == GgufType::u16);
  CHECK(nested->items[1].count == 1);

  // Wrong types and missing keys are errors naming the key; find_* says "absent".
  CHECK(f.get_u32("i32").message().find("'i32'") != std::string::npos);
  CHECK(f.get_string("u8").message().find("expected string") != std::string::npos);
  CHECK(f.get_u32("nope").message().find("no metadata 'nope'") != std::string::npos);
  CHECK(f.get_int_array("floats").message().find("array of f32") != std::string::npos);
  CHECK(f.find_u32("nope")->has_value() == false);
  CHECK(!f.find_string("u8").ok());

  REQUIRE(f.tensors().size() == 2);
  const GgufTensorInfo* m = f.find_tensor("m");
  REQUIRE(m);
  CHECK(m->dims == std::vector<uint64_t>{3, 2});
  CHECK(m->rows() == 2);
  CHECK(m->row_length() == 3);
  CHECK(m->bytes == 24);
  auto data = f.tensor_data(*m);
  float last;
  std::memcpy(&last, data.data() + 20, 4);
  CHECK(last == 5.0f);
  CHECK(f.find_tensor("v")->offset == 32);
  CHECK(f.find_tensor("v")->bytes == 8);
}

TEST_CASE("gguf reader refuses every truncation of a file with a one-line error") {
  auto bytes = every_type_file();
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    std::vector<uint8_t> part(bytes.begin(), bytes.begin() + long(cut));
    auto g = GgufFile::parse(part, "cut");
    REQUIRE_MESSAGE(!g.ok(), "cut at " << cut);
    CHECK(g.message().find('\n') == std::string::npos);
  }
}

TEST_CASE("gguf reader refuses corrupt headers, counts, shapes and offsets") {
  auto good = every_type_file();
  auto fails_with = [&](std::vector<uint8_t> bytes, const char* text) {
    auto g = GgufFile::parse(bytes, "bad");
    REQUIRE_MESSAGE(!g.ok(), "expected an error containing: " << std::string(text));
    CHECK_MESSAGE(g.message().find(text) != std::string::npos, g.message());
  };
  auto patched = [&](size_t at, uint64_t v, size_t width) {
    auto b = good;
    std::memcpy(b.data() + at, &v, width);
    return b;
  };
  fails_with(patched(0, 0x47475546, 4), "not a GGUF file");  // "FUGG"
  fails_with(patched(4, 1, 4), "GGUF version 1");
  fails_with(patched(4, 0x03000000, 4), "big-endian");
  fails_with(patched(8, uint64_t(1) << 60, 8), "tensors");            // tensor count
  fails_with(patched(16, uint64_t(1) << 60, 8), "metadata entries");  // kv count
  fails_with(patched(24, uint64_t(1) << 50, 8), "metadata key #0");   // first key's length
  // Array of strings claiming a huge count.
  {
    std::string key = "strings";
    auto it = std::search(good.begin(), good.end(), key.begin(), key.end());
    size_t count_at = size_t(it - good.begin()) + key.size() + 4 + 4;  // type, elem type
    fails_with(patched(count_at, uint64_t(1) << 40, 8), "'strings' claims");
  }
  // A tensor's info: its name, then n_dims, dims, type and offset.
  auto info_at = [&](char name, uint32_t n_dims) {
    for (size_t i = 0; i + 13 < good.size(); ++i) {
      uint64_t len;
      uint32_t nd;
      std::memcpy(&len, good.data() + i, 8);
      std::memcpy(&nd, good.data() + i + 9, 4);
      if (len == 1 && good[i + 8] == uint8_t(name) && nd == n_dims) return i + 9;
    }
    return size_t(0);
  };
  size_t name_at = info_at('m', 2), v_at = info_at('v', 1);
  REQUIRE(name_at != 0);
  REQUIRE(v_at != 0);
  fails_with(patched(name_at, 7, 4), "7 dimensions");
  fails_with(patched(name_at + 4, 0, 8), "invalid shape");
  fails_with(patched(name_at + 4 + 16 + 4, 7, 8), "not a multiple of the alignment");
  fails_with(patched(name_at + 4 + 16 + 4, 1 << 20, 8), "ends past the end");
  fails_with(patched(v_at + 4 + 8 + 4, 0, 8), "overlap");
  fails_with(patched(name_at + 4 + 16, 8, 4), "not a multiple of the type's block");  // Q8_0 with rows of 3
  // A tensor of a type nobody knows parses (its size is unknown); decoding it is refused later.
  auto unknown = GgufFile::parse(patched(name_at + 4 + 16, 77, 4), "unknown");
  REQUIRE_MESSAGE(unknown.ok(), unknown.message());
  CHECK(ggml_type_name((*unknown)->find_tensor("m")->type) == "type 77");
}

TEST_CASE("gguf reader validates general.alignment") {
  GgufBuilder b(3, 64);
  b.kv_u32("general.alignment", 64);
  b.tensor("a", {2}, 0, std::vector<uint8_t>(8, 0));
  b.tensor("b", {2}, 0, std::vector<uint8_t>(8, 0));
  auto bytes = b.bytes();
  auto g = GgufFile::parse(bytes, "aligned");
  REQUIRE_MESSAGE(g.ok(), g.message());
  CHECK((*g)->alignment() == 64);
  CHECK((*g)->data_offset() % 64 == 0);
  CHECK((*g)->find_tensor("b")->offset == 64);

  GgufBuilder bad;
  bad.kv_u32("general.alignment", 48);
  auto bad_bytes = bad.bytes();
  CHECK(GgufFile::parse(bad_bytes, "bad").message().find("power of two") != std::string::npos);
}

TEST_CASE("gguf reader opens real GGUF files written by llama.cpp and other tools") {
  for (const char* name : {"llama-2-tiny-random.gguf", "stories260K-f32.gguf", "ggml-vocab-llama-spm.gguf",
                           "ggml-vocab-gpt-2.gguf"}) {
    auto path = test_data_file(name);
    if (!path) continue;
    auto g = GgufFile::open(path->string());
    REQUIRE_MESSAGE(g.ok(), g.message());
    auto tokens = (*g)->get_string_array("tokenizer.ggml.tokens");
    REQUIRE_MESSAGE(tokens.ok(), tokens.message());
    CHECK(tokens->size() > 500);
    CHECK((*g)->get_string("general.architecture").ok());
  }
  if (auto path = test_data_file("llama-2-tiny-random.gguf")) {
    auto g = GgufFile::open(path->string());
    REQUIRE(g.ok());
    CHECK((*g)->version() == 3);
    CHECK(*(*g)->get_string("general.architecture") == "llama");
    const GgufTensorInfo* q = (*g)->find_tensor("blk.0.attn_q.weight");
    REQUIRE(q);
    CHECK(ggml_type_name(q->type) == "F16");
    CHECK(q->dims == std::vector<uint64_t>{8, 8});
  }
  if (auto path = test_data_file("ggml-vocab-gpt-2.gguf")) {
    auto g = GgufFile::open(path->string());
    REQUIRE(g.ok());
    CHECK((*g)->get_string_array("tokenizer.ggml.merges")->size() == 50000);
    CHECK(*(*g)->get_string("tokenizer.ggml.model") == "gpt2");
  }
}

TEST_CASE("gguf reader refuses a real GGUF file cut at several points, naming where it ends") {
  auto path = test_data_file("llama-2-tiny-random.gguf");
  if (!path) return;
  const auto bytes = read_bytes(path->string());
  REQUIRE(bytes.size() > 600000);
  // Inside the header, a key, the token list, the tensor infos and the last tensor's data.
  for (size_t cut : {size_t(3), size_t(20), size_t(60), size_t(5000), size_t(400000), size_t(512000),
                     bytes.size() - 1}) {
    std::vector<uint8_t> part(bytes.begin(), bytes.begin() + long(cut));
    auto g = GgufFile::parse(part, "cut");
    REQUIRE_MESSAGE(!g.ok(), "cut at " << cut);
    INFO(g.message());
    CHECK(g.message().find('\n') == std::string::npos);
    CHECK((cut < 4 ? g.message().find("not a GGUF") : g.message().find("truncated")) != std::string::npos);
  }
}
