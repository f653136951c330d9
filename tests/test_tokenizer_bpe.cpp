// Byte-level BPE: the LLaMA-3 and GPT-2 golden vectors, specials, round trips, the model-file
// blob, and the importers (tiktoken, GGUF lists, tokenizer.json).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include "convert/bpe_import.h"
#include "convert/convert.h"
#include "convert/gguf.h"
#include "runtime/bpe.h"
#include "runtime/chat.h"
#include "runtime/model.h"
#include "runtime/tokenizer.h"
#include "tests/gguf_builder.h"
#include "tests/golden.h"
#include "tests/synthetic_model.h"
#include "tests/llama3_lists.h"
#include "tests/test_data.h"

using namespace lutra;

namespace {

// A vocabulary small enough to reason about: the 256 bytes (id = byte), then
// 256 "ab", 257 "bc", 258 "abc", 259 "aa", 260 " a", 261 "é" (C3 A9), and specials
// 262 "<|end|>" (control), 263 "<|end|>!" (control), 264 "@@" (user-defined).
BpeVocab tiny_vocab() {
  BpeVocab v;
  for (int b = 0; b < 256; ++b) v.tokens.push_back({std::string(1, char(b))});
  for (const char* t : {"ab", "bc", "abc", "aa", " a", "\xC3\xA9"}) v.tokens.push_back({t});
  v.tokens.push_back({"<|end|>", BpeVocab::Kind::control});
  v.tokens.push_back({"<|end|>!", BpeVocab::Kind::control});
  v.tokens.push_back({"@@", BpeVocab::Kind::user_defined});
  // Best first: "bc" before "ab", so "abc" is a + bc.
  v.merges = {{'b', 'c'}, {'a', 'b'}, {'a', 257}, {'a', 'a'}, {' ', 'a'}, {0xC3, 0xA9}};
  v.bos_id = 262;
  v.eos_id = 262;
  return v;
}
constexpr int32_t kEnd = 262, kEndBang = 263, kAtAt = 264;

std::vector<int32_t> ids_of(const BpeModel& m, std::string_view text, bool allow_control = false) {
  std::vector<int32_t> ids;
  Status s = m.encode(text, allow_control, ids);
  REQUIRE_MESSAGE(s.ok(), s.message());
  return ids;
}

Tokenizer llama3_tokenizer(const std::filesystem::path& model) {
  auto vocab = read_tiktoken_bpe(model.string(), llama3_special_tokens(), BpePreTokenizer::llama3);
  REQUIRE_MESSAGE(vocab.ok(), vocab.message());
  vocab->bos_id = 128000;
  vocab->eos_id = 128001;
  auto tok = Tokenizer::from_bpe(std::move(vocab).value());
  REQUIRE_MESSAGE(tok.ok(), tok.message());
  return std::move(tok).value();
}

}  // namespace


TEST_CASE("byte-level spelling maps all 256 bytes to printable characters and back") {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(char(b));
  const std::string spelled = byte_level_encode(all);
  CHECK(spelled.find(' ') == std::string::npos);
  CHECK(byte_level_encode(" ") == "\xC4\xA0");   // "Ġ" (U+0120)
  CHECK(byte_level_encode("\n") == "\xC4\x8A");  // "Ċ" (U+010A)
  CHECK(byte_level_encode("hi!") == "hi!");
  auto back = byte_level_decode(spelled);
  REQUIRE(back.ok());
  CHECK(*back == all);
  CHECK_FALSE(byte_level_decode("a b").ok());         // a raw space is not a spelled byte
  CHECK_FALSE(byte_level_decode("\xE2\x96\x81").ok());  // nor is "▁"
}

TEST_CASE("listed merges apply the best-ranked pair first, leftmost among equals") {
  auto m = BpeModel::create(tiny_vocab());
  REQUIRE_MESSAGE(m.ok(), m.message());
  CHECK(ids_of(*m, "abc") == std::vector<int32_t>{258});            // b+c first, then a+bc
  CHECK(ids_of(*m, "abab") == std::vector<int32_t>{256, 256});
  CHECK(ids_of(*m, "aaa") == std::vector<int32_t>{259, 'a'});       // leftmost pair merges first
  CHECK(ids_of(*m, "aaaa") == std::vector<int32_t>{259, 259});
  CHECK(ids_of(*m, "cab") == std::vector<int32_t>{'c', 256});
  // GPT-2's pre-tokenizer splits before each space; in " abc", b+c and then a+bc beat " "+a.
  CHECK(ids_of(*m, "ab a abc") == std::vector<int32_t>{256, 260, ' ', 258});
  CHECK(ids_of(*m, "\xC3\xA9") == std::vector<int32_t>{261});
  CHECK(ids_of(*m, "").empty());
}

TEST_CASE("by-id merges follow tiktoken: the lowest-id token first, whole pieces looked up") {
  BpeVocab v = tiny_vocab();
  v.merges.clear();
  v.merge_rule = BpeMerges::by_id;
  v.tokens.push_back({"xyz"});  // 265: no two tokens make it
  auto m = BpeModel::create(v);
  REQUIRE_MESSAGE(m.ok(), m.message());
  // Any split of a token joins: a+b (256, the lowest id) first, then ab+c.
  CHECK(ids_of(*m, "abc") == std::vector<int32_t>{258});
  CHECK(ids_of(*m, "aaa") == std::vector<int32_t>{259, 'a'});
  CHECK(ids_of(*m, "xyz") == std::vector<int32_t>{'x', 'y', 'z'});
  // A piece that is a token is taken whole, as tiktoken does.
  v.ignore_merges = true;
  auto whole = BpeModel::create(v);
  REQUIRE(whole.ok());
  CHECK(ids_of(*whole, "xyz") == std::vector<int32_t>{265});
  CHECK(ids_of(*whole, "aaa") == std::vector<int32_t>{259, 'a'});
}

TEST_CASE("special tokens are text unless the caller allows them; user-defined ones always match") {
  auto m = BpeModel::create(tiny_vocab());
  REQUIRE(m.ok());
  const auto as_text = ids_of(*m, "ab<|end|>");
  CHECK(std::find(as_text.begin(), as_text.end(), kEnd) == as_text.end());
  CHECK(ids_of(*m, "ab<|end|>ab", true) == std::vector<int32_t>{256, kEnd, 256});
  CHECK(ids_of(*m, "<|end|>!<|end|>", true) == std::vector<int32_t>{kEndBang, kEnd});  // longest first
  CHECK(ids_of(*m, "ab@@ab") == std::vector<int32_t>{256, kAtAt, 256});
  CHECK(ids_of(*m, "@@@") == std::vector<int32_t>{kAtAt, '@'});
  CHECK(m->find("<|end|>") == kEnd);
  CHECK(m->find("abc") == 258);
  CHECK(m->find("zz") == -1);
}

TEST_CASE("BPE vocabularies it cannot encode with are refused with a message") {
  SUBCASE("a byte without a token") {
    BpeVocab v = tiny_vocab();
    v.tokens[7].bytes = "xyz";
    v.merges.clear();
    auto m = BpeModel::create(v);
    REQUIRE_FALSE(m.ok());
    CHECK(m.message().find("byte 7") != std::string::npos);
  }
  SUBCASE("a merge that makes no token") {
    BpeVocab v = tiny_vocab();
    v.merges.push_back({'x', 'y'});
    CHECK(BpeModel::create(v).message().find("makes no token") != std::string::npos);
  }
  SUBCASE("a merge id out of range") {
    BpeVocab v = tiny_vocab();
    v.merges.push_back({'x', 9999});
    CHECK_FALSE(BpeModel::create(v).ok());
  }
  SUBCASE("a repeated token") {
    BpeVocab v = tiny_vocab();
    v.tokens[259].bytes = "ab";
    CHECK(BpeModel::create(v).message().find("repeats") != std::string::npos);
  }
  SUBCASE("a custom pattern PCRE2 refuses") {
    BpeVocab v = tiny_vocab();
    v.pre = BpePreTokenizer::custom;
    v.pattern = "(unclosed";
    CHECK(BpeModel::create(v).message().find("pattern") != std::string::npos);
  }
}

TEST_CASE("a custom pre-tokenizer pattern splits as given and loses no text between matches") {
  BpeVocab v = tiny_vocab();
  v.pre = BpePreTokenizer::custom;
  v.pattern = "b+";  // matches only runs of b: the rest is kept as the pieces between them
  auto m = BpeModel::create(v);
  REQUIRE_MESSAGE(m.ok(), m.message());
  CHECK(ids_of(*m, "abc") == std::vector<int32_t>{'a', 'b', 'c'});
  CHECK(ids_of(*m, "aacaa") == std::vector<int32_t>{259, 'c', 259});
}

TEST_CASE("the BPE blob round-trips and a damaged blob is an error, not a crash") {
  BpeVocab v = tiny_vocab();
  v.pre = BpePreTokenizer::custom;
  v.pattern = R"(\p{L}+|\s+|.)";
  auto m = BpeModel::create(v);
  REQUIRE(m.ok());
  const std::string blob = m->serialize();
  auto back = BpeModel::deserialize(blob);
  REQUIRE_MESSAGE(back.ok(), back.message());
  CHECK(back->serialize() == blob);
  CHECK(back->vocab().pattern == v.pattern);
  CHECK(back->vocab().bos_id == 262);
  CHECK(ids_of(*back, "abc aa") == ids_of(*m, "abc aa"));

  for (size_t n = 0; n < blob.size(); n += 1 + n / 16) {
    INFO("truncated to " << n << " bytes");
    auto r = BpeModel::deserialize(std::string_view(blob).substr(0, n));
    REQUIRE_FALSE(r.ok());
    CHECK(r.message().find('\n') == std::string::npos);
  }
  CHECK(BpeModel::deserialize(blob + "x").message().find("stray") != std::string::npos);
  std::string newer = blob;
  newer[4] = 2;
  CHECK(BpeModel::deserialize(newer).message().find("version 2") != std::string::npos);
  std::string huge = blob;  // a token count far past the blob's end
  const size_t count_at = 4 + 4 + 4 + 8 + 4 + v.pattern.size();
  huge[count_at + 3] = '\x7F';
  CHECK_FALSE(BpeModel::deserialize(huge).ok());
}

TEST_CASE("tokenizer.json vocabularies import with both merge spellings and their added tokens") {
  // "Ġ" is the byte-level spelling of a space.
  auto make = [](const std::string& merges, const std::string& pre) {
    std::string vocab;
    for (int b = 0; b < 256; ++b) {
      std::string spelled = byte_level_encode(std::string(1, char(b)));
      nlohmann::json key = spelled;
      vocab += key.dump() + ": " + std::to_string(b) + ", ";
    }
    // An added token may repeat in the vocab, as plain text (a raw space is no byte-level spelling).
    vocab += "\"ab\": 256, \"\xC4\xA0" "ab\": 257, \"@ @\": 259";
    return R"({"version": "1.0", "added_tokens": [
        {"id": 258, "content": "<|eot_id|>", "special": true},
        {"id": 259, "content": "@ @", "special": false}],
      "normalizer": null, "pre_tokenizer": )" + pre + R"(,
      "model": {"type": "BPE", "vocab": {)" + vocab + R"(}, "merges": )" + merges + "}}";
  };
  const std::string byte_level = R"({"type": "ByteLevel", "add_prefix_space": false, "use_regex": true})";
  for (const std::string merges : {std::string(R"(["a b", "Ġ ab"])"), std::string(R"([["a", "b"], ["Ġ", "ab"]])")}) {
    INFO("merges: " << merges);
    auto v = bpe_vocab_from_hf_json(make(merges, byte_level));
    REQUIRE_MESSAGE(v.ok(), v.message());
    CHECK(v->pre == BpePreTokenizer::gpt2);
    REQUIRE(v->tokens.size() == 260);
    CHECK(v->tokens[' '].bytes == " ");
    CHECK(v->tokens[257].bytes == " ab");
    CHECK(v->tokens[258].kind == BpeVocab::Kind::control);
    CHECK(v->tokens[259].kind == BpeVocab::Kind::user_defined);
    auto m = BpeModel::create(std::move(v).value());
    REQUIRE_MESSAGE(m.ok(), m.message());
    CHECK(ids_of(*m, "ab ab@ @<|eot_id|>", true) == std::vector<int32_t>{256, 257, 259, 258});
  }
  // LLaMA-3's Split regex is recognized; another regex is used as given.
  const std::string split = R"({"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": PATTERN}, "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]})";
  auto with_pattern = [&](std::string_view p) {
    std::string s = split;
    s.replace(s.find("PATTERN"), 7, nlohmann::json(std::string(p)).dump());
    return s;
  };
  auto l3 = bpe_vocab_from_hf_json(make(R"(["a b"])", with_pattern(bpe_pattern(BpePreTokenizer::llama3))));
  REQUIRE_MESSAGE(l3.ok(), l3.message());
  CHECK(l3->pre == BpePreTokenizer::llama3);
  auto custom = bpe_vocab_from_hf_json(make(R"(["a b"])", with_pattern("\\p{L}+")));
  REQUIRE(custom.ok());
  CHECK(custom->pre == BpePreTokenizer::custom);
  CHECK(custom->pattern == "\\p{L}+");
  // What it cannot read is an error saying what.
  CHECK(bpe_vocab_from_hf_json("{").message().find("tokenizer.json") != std::string::npos);
  CHECK_FALSE(bpe_vocab_from_hf_json(make(R"(["a zz"])", byte_level)).ok());
  CHECK(bpe_vocab_from_hf_json(make(R"([])", R"({"type": "Whitespace"})")).message().find("Whitespace") !=
        std::string::npos);
  std::string nfc = make(R"([])", byte_level);
  nfc.replace(nfc.find("\"normalizer\": null"), 18, R"("normalizer": {"type": "NFC"})");
  CHECK(bpe_vocab_from_hf_json(nfc).message().find("NFC") != std::string::npos);
}

TEST_CASE("GGUF token lists import: normal tokens byte-level decoded, control tokens kept as text") {
  GgufBuilder g;
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (int b = 0; b < 256; ++b) tokens.push_back(byte_level_encode(std::string(1, char(b)))), types.push_back(1);
  tokens.push_back("\xC4\xA0" "a");  // " a"
  types.push_back(1);
  tokens.push_back("<|endoftext|>");
  types.push_back(3);
  g.kv_string("tokenizer.ggml.model", "gpt2");
  g.kv_string("tokenizer.ggml.pre", "gpt-2");
  g.kv_strings("tokenizer.ggml.tokens", tokens);
  g.kv_strings("tokenizer.ggml.merges", {"\xC4\xA0 a"});
  g.kv_array("tokenizer.ggml.token_type", 5, types);
  g.kv_u32("tokenizer.ggml.bos_token_id", 257);
  g.kv_u32("tokenizer.ggml.eos_token_id", 257);
  const std::vector<uint8_t> bytes = g.bytes();
  auto file = GgufFile::parse(bytes, "test.gguf");
  REQUIRE_MESSAGE(file.ok(), file.message());
  auto v = bpe_vocab_from_gguf(**file);
  REQUIRE_MESSAGE(v.ok(), v.message());
  CHECK(v->tokens[256].bytes == " a");
  CHECK(v->tokens[257].bytes == "<|endoftext|>");
  CHECK(v->tokens[257].kind == BpeVocab::Kind::control);
  CHECK(v->bos_id == 257);
  auto tok = Tokenizer::from_bpe(std::move(v).value());
  REQUIRE_MESSAGE(tok.ok(), tok.message());
  CHECK(tok->encode_checked("a a<|endoftext|>", true, Tokenizer::Specials::as_tokens).value() ==
        std::vector<int32_t>{257, 'a', 256, 257});

  CHECK(bpe_vocab_from_gguf(tokens, {}, types, "falcon", -1, -1).message().find("falcon") != std::string::npos);
  const std::vector<std::string> bad_merge = {"\xC4\xA0 zz"};
  CHECK_FALSE(bpe_vocab_from_gguf(tokens, bad_merge, types, "gpt-2", -1, -1).ok());
  CHECK_FALSE(bpe_vocab_from_gguf(tokens, {}, std::vector<int32_t>{1}, "gpt-2", -1, -1).ok());
}

TEST_CASE("Tokenizer over BPE: raw-byte tokens, no prefix space, streams hold split characters") {
  auto made = Tokenizer::from_bpe(tiny_vocab());
  REQUIRE_MESSAGE(made.ok(), made.message());
  const Tokenizer& tok = *made;
  CHECK(tok.type() == Tokenizer::Type::bpe);
  CHECK(tok.spm_proto().empty());
  CHECK(tok.vocab_size() == 265);
  CHECK(tok.bos_id() == kEnd);
  CHECK(tok.is_control(kEnd));
  CHECK_FALSE(tok.is_control('a'));
  CHECK_FALSE(tok.is_byte('a'));
  CHECK(tok.token_bytes(260) == " a");
  CHECK(tok.token_bytes(kEnd).empty());
  CHECK(tok.token_bytes(kAtAt) == "@@");
  CHECK(tok.piece_id("<|end|>") == kEnd);
  CHECK(tok.piece_id(" a") == 260);
  CHECK(tok.encode("ab", true) == std::vector<int32_t>{kEnd, 256});
  CHECK(tok.encode_continuation(" a").value() == std::vector<int32_t>{260});
  CHECK(tok.decode(std::vector<int32_t>{kEnd, 256, 260, kEnd}) == "ab a");

  // "é" as its two byte tokens: nothing until the second, which a special does not interrupt.
  TextStream ts(tok);
  CHECK(ts.push(260) == " a");  // no dummy prefix to strip
  CHECK(ts.push(0xC3) == "");
  CHECK(ts.push(kEnd) == "");
  CHECK(ts.push(0xA9) == "\xC3\xA9");
  CHECK(ts.push(0xC3) == "");
  CHECK(ts.flush() == "\xEF\xBF\xBD");  // an unfinished character is U+FFFD
  const std::vector<int32_t> ids = {260, 0xE2, 0x82, 'a', 261, 0xFF};
  ts.reset();
  CHECK(stream_all(ts, ids) == tok.decode(ids));
  CHECK(tok.decode(ids) == " a\xEF\xBF\xBD\xEF\xBF\xBD" "a\xC3\xA9\xEF\xBF\xBD");
}

TEST_CASE("invalid UTF-8 is refused by BPE encode_checked and replaced by encode") {
  auto tok = Tokenizer::from_bpe(tiny_vocab());
  REQUIRE(tok.ok());
  for (const char* bad : {"a\xFF", "\xC3", "\xE2\x82", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80"}) {
    INFO("input: " << bad);
    auto r = tok->encode_checked(bad, false);
    REQUIRE_FALSE(r.ok());
    CHECK(r.message().find("UTF-8") != std::string::npos);
    const auto ids = tok->encode(bad, false);
    CHECK(tok->decode(ids).find("\xEF\xBF\xBD") != std::string::npos);  // U+FFFD, byte-encoded
  }
  // The encoder itself refuses it too (PCRE2's check), rather than reading past a character.
  auto m = BpeModel::create(tiny_vocab());
  REQUIRE(m.ok());
  std::vector<int32_t> ids;
  CHECK_FALSE(m->encode("ab\xE2\x82", false, ids).ok());
  CHECK_FALSE(m->encode("<|end|>\xFF", true, ids).ok());
}

TEST_CASE("LLaMA-3 golden vectors pass with the vocabulary read from llama3_tokenizer.model") {
  auto model = test_data_file("llama3_tokenizer.model");
  auto cases = golden_cases("ggml-vocab-llama-bpe.gguf");
  if (!model || !cases) return;
  const Tokenizer tok = llama3_tokenizer(*model);
  CHECK(tok.vocab_size() == 128256);
  // The model file's blob makes the same tokenizer.
  auto reloaded = Tokenizer::from_bpe_blob(tok.bpe_blob());
  REQUIRE_MESSAGE(reloaded.ok(), reloaded.message());
  CHECK(reloaded->bpe_blob() == tok.bpe_blob());

  CHECK(cases->size() == 46);
  check_golden(tok, *cases);
  check_golden(*reloaded, *cases);
}

TEST_CASE("LLaMA-3 golden vectors pass through GGUF-style lists with listed merges too") {
  auto model = test_data_file("llama3_tokenizer.model");
  auto cases = golden_cases("ggml-vocab-llama-bpe.gguf");
  if (!model || !cases) return;
  // The lists a GGUF "llama-bpe" vocabulary holds, made from the tiktoken ranks.
  const Llama3Lists lists = llama3_lists(*model);
  auto vocab = bpe_vocab_from_gguf(lists.tokens, lists.merges, lists.types, "llama-bpe", 128000, 128001);
  REQUIRE_MESSAGE(vocab.ok(), vocab.message());
  CHECK(vocab->ignore_merges);
  auto listed = Tokenizer::from_bpe(std::move(vocab).value());
  REQUIRE_MESSAGE(listed.ok(), listed.message());
  CHECK(listed->piece_id("<|eot_id|>") == 128009);
  check_golden(*listed, *cases);
}

TEST_CASE("GPT-2 golden vectors pass with the vocabulary read from ggml-vocab-gpt-2.gguf") {
  auto gguf = test_data_file("ggml-vocab-gpt-2.gguf");
  auto cases = golden_cases("ggml-vocab-gpt-2.gguf");
  if (!gguf || !cases) return;
  auto file = GgufFile::open(gguf->string());
  REQUIRE_MESSAGE(file.ok(), file.message());
  auto vocab = bpe_vocab_from_gguf(**file);
  REQUIRE_MESSAGE(vocab.ok(), vocab.message());
  CHECK(vocab->pre == BpePreTokenizer::gpt2);
  auto made = Tokenizer::from_bpe(std::move(vocab).value());
  REQUIRE_MESSAGE(made.ok(), made.message());
  const Tokenizer& tok = *made;
  CHECK(tok.vocab_size() == 50257);
  CHECK(tok.piece_id("<|endoftext|>") == 50256);
  CHECK(tok.is_control(50256));

  CHECK(cases->size() == 46);
  check_golden(tok, *cases);
  if (auto wiki = test_data_file("wikitext2-test-crlf.txt")) {
    const std::string text = read_all(*wiki);
    CHECK(tok.decode(tok.encode(text, false)) == text);
  }
}

TEST_CASE("LLaMA-3 special tokens encode to their ids when allowed, and the chat pieces exist") {
  auto model = test_data_file("llama3_tokenizer.model");
  if (!model) return;
  const Tokenizer tok = llama3_tokenizer(*model);
  CHECK(tok.piece_id("<|begin_of_text|>") == 128000);
  CHECK(tok.piece_id("<|end_of_text|>") == 128001);
  CHECK(tok.piece_id("<|start_header_id|>") == 128006);
  CHECK(tok.piece_id("<|end_header_id|>") == 128007);
  CHECK(tok.piece_id("<|eot_id|>") == 128009);
  CHECK(tok.piece_id("<|reserved_special_token_250|>") == 128255);
  CHECK(tok.is_control(128009));
  CHECK(tok.bos_id() == 128000);

  const std::vector<int32_t> hello = tok.encode("Hello", false);
  std::vector<int32_t> want = {128000, 128006};
  for (int32_t id : tok.encode("user", false)) want.push_back(id);
  want.push_back(128007);
  for (int32_t id : hello) want.push_back(id);
  want.push_back(128009);
  auto got = tok.encode_checked("<|begin_of_text|><|start_header_id|>user<|end_header_id|>Hello<|eot_id|>", false,
                                Tokenizer::Specials::as_tokens);
  REQUIRE(got.ok());
  CHECK(*got == want);
  // As text (the default) no special id comes out, and decoding skips specials.
  for (int32_t id : tok.encode("<|eot_id|>Hello", false)) CHECK_FALSE(tok.is_control(id));
  CHECK(tok.decode(want) == "userHello");
}

TEST_CASE("LLaMA-3 BPE decodes WikiText back exactly, and the stream agrees with decode") {
  auto model = test_data_file("llama3_tokenizer.model");
  auto wiki = test_data_file("wikitext2-test-crlf.txt");
  if (!model || !wiki) return;
  const Tokenizer tok = llama3_tokenizer(*model);
  const std::string text = read_all(*wiki);
  const auto t0 = std::chrono::steady_clock::now();
  auto ids = tok.encode_checked(text, false);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE_MESSAGE(ids.ok(), ids.message());
  MESSAGE("WikiText-2 test: " << text.size() << " bytes, " << ids->size() << " tokens in " << seconds << " s");
  CHECK(tok.decode(*ids) == text);
  TextStream ts(tok);
  CHECK(stream_all(ts, *ids) == text);
}

namespace {

std::string base64(std::string_view bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = 0;
    for (size_t j = 0; j < 3; ++j) v = (v << 8) | (i + j < bytes.size() ? uint8_t(bytes[i + j]) : 0u);
    for (size_t j = 0; j < 4; ++j) out.push_back(j <= (bytes.size() - i) ? kAlphabet[(v >> (18 - 6 * j)) & 63] : '=');
  }
  return out;
}

}  // namespace

TEST_CASE("tiktoken files are read rank by rank, and broken ones are refused naming the line") {
  std::string text;
  for (int b = 0; b < 256; ++b) text += base64(std::string(1, char(b))) + " " + std::to_string(b) + "\n";
  text += base64("ab") + " 256\n" + base64(" ab") + " 257\n";
  auto v = parse_tiktoken_bpe(text, "t", llama3_special_tokens(258), BpePreTokenizer::llama3);
  REQUIRE_MESSAGE(v.ok(), v.message());
  CHECK(v->tokens.size() == 258 + 256);
  CHECK(v->tokens[257].bytes == " ab");
  CHECK(v->tokens[258 + 9].bytes == "<|eot_id|>");
  CHECK(v->merge_rule == BpeMerges::by_id);
  CHECK(v->ignore_merges);
  CHECK(parse_tiktoken_bpe(text + "!!! 258\n", "t", {}, BpePreTokenizer::llama3).message().find("line 259") !=
        std::string::npos);
  CHECK(parse_tiktoken_bpe(text + base64("zz") + " 256\n", "t", {}, BpePreTokenizer::llama3).message().find("twice") !=
        std::string::npos);
  CHECK(parse_tiktoken_bpe(text + base64("zz") + " 300\n", "t", {}, BpePreTokenizer::llama3).message().find("missing") !=
        std::string::npos);
  CHECK_FALSE(parse_tiktoken_bpe(text, "t", llama3_special_tokens(100), BpePreTokenizer::llama3).ok());
  // Damage that must not cost gigabytes or minutes: a rank far past the file, a special id far
  // past the ranks, a token longer than any real one (loading is quadratic in its length).
  CHECK(parse_tiktoken_bpe(base64("!") + " 99999999\n", "t", {}, BpePreTokenizer::llama3).message().find("missing") !=
        std::string::npos);
  const SpecialToken far_special[] = {{"<x>", 150000000}};
  CHECK(parse_tiktoken_bpe(text, "t", far_special, BpePreTokenizer::llama3).message().find("far beyond") !=
        std::string::npos);
  auto long_token = parse_tiktoken_bpe(text + base64(std::string(2000, 'a')) + " 258\n", "t", {}, BpePreTokenizer::llama3);
  REQUIRE(long_token.ok());
  CHECK(BpeModel::create(std::move(long_token).value()).message().find("bytes long") != std::string::npos);
  CHECK(read_tiktoken_bpe("/nonexistent/tokenizer.model", {}, BpePreTokenizer::llama3).message().find("/nonexistent") !=
        std::string::npos);
}

TEST_CASE("a synthetic model with a tiktoken tokenizer stores it as BPE and loads it back") {
  TempDir tmp;
  std::string text;
  for (int b = 0; b < 256; ++b) text += base64(std::string(1, char(b))) + " " + std::to_string(b) + "\n";
  text += base64("ab") + " 256\n" + base64(" a") + " 257\n";
  const std::string tok_path = tmp.file("tokenizer.model");
  std::ofstream(tok_path, std::ios::binary) << text;

  ConvertOptions opts;
  opts.tokenizer = tok_path;
  const std::unique_ptr<Model> model = tiny_model(tmp, "m.lutra", opts);
  const Tokenizer& tok = model->tokenizer();
  CHECK(tok.type() == Tokenizer::Type::bpe);
  CHECK(tok.vocab_size() == 258 + 256);
  CHECK(model->config().vocab_size == 258 + 256);
  CHECK(tok.bos_id() == 258);
  CHECK(model->config().bos_id == 258);
  CHECK(model->config().stop_ids == std::vector<int32_t>{258 + 9});
  CHECK(tok.encode("ab a", true) == std::vector<int32_t>{258, 256, 257});
  // The chat template finds its special tokens in the BPE vocabulary.
  auto turn = chat_turn_tokens(*model, "ab", "", true, -1);
  REQUIRE_MESSAGE(turn.ok(), turn.message());
  CHECK(std::count(turn->begin(), turn->end(), 258 + 9) == 1);

  // A file that is not a tiktoken vocabulary is refused, and no model is left behind.
  std::ofstream(tok_path, std::ios::binary | std::ios::trunc) << "not a tokenizer\n";
  const std::string bad = tmp.file("bad.lutra");
  Status refused = make_synthetic("tiny", bad, opts);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.message().find("tiktoken") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(bad));
}

TEST_CASE("a synthetic model with LLaMA-3's tokenizer has its vocabulary and special tokens") {
  auto tok_file = test_data_file("llama3_tokenizer.model");
  if (!tok_file) return;
  TempDir tmp;
  ConvertOptions opts;
  opts.tokenizer = tok_file->string();
  opts.chat_template = "llama3";
  const std::unique_ptr<Model> model = tiny_model(tmp, "m.lutra", opts);
  const Tokenizer& tok = model->tokenizer();
  CHECK(tok.vocab_size() == 128256);
  CHECK(tok.bos_id() == 128000);
  CHECK(tok.eos_id() == 128001);
  CHECK(tok.piece_id("<|eot_id|>") == 128009);
  CHECK(model->config().stop_ids == std::vector<int32_t>{128009});
  const Tokenizer direct = llama3_tokenizer(*tok_file);
  CHECK(tok.bpe_blob() == direct.bpe_blob());
  // The LLaMA-3 chat template, encoded piece by piece, gives the ids of its whole text read
  // with special tokens (what Meta's and Hugging Face's tokenizers produce for it).
  auto turn = chat_turn_tokens(*model, "Hello there", "Be brief.", true, -1);
  REQUIRE_MESSAGE(turn.ok(), turn.message());
  auto whole = tok.encode_checked(
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nHello there<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n",
      false, Tokenizer::Specials::as_tokens);
  REQUIRE(whole.ok());
  CHECK(*turn == *whole);
}

TEST_CASE("long runs of one character class encode and decode back without a regex error") {
  auto model = test_data_file("llama3_tokenizer.model");
  if (!model) return;
  const Tokenizer llama3 = llama3_tokenizer(*model);
  auto gpt2_like = Tokenizer::from_bpe([] {
    BpeVocab v = tiny_vocab();
    v.pre = BpePreTokenizer::gpt2;
    return v;
  }());
  REQUIRE(gpt2_like.ok());
  const size_t n = 200000;
  const std::vector<std::string> texts = {
      std::string(n, ' ') + "x",  std::string(n, 'a'),  std::string(n, '7'),   std::string(n, '!'),
      std::string(n, '\n') + "x", std::string(n / 2, ' ') + std::string(n / 2, '\n'),
      [&] {
        std::string s;
        while (s.size() < n) s += "\xC3\xA9\r\n \t";
        return s;
      }(),
  };
  for (const std::string& text : texts) {
    INFO("text starting with byte " << int(uint8_t(text[0])) << ", " << text.size() << " bytes");
    for (const Tokenizer* tok : {&llama3, static_cast<const Tokenizer*>(&*gpt2_like)}) {
      auto ids = tok->encode_checked(text, false);
      REQUIRE_MESSAGE(ids.ok(), ids.message());
      CHECK(tok->decode(*ids) == text);
    }
  }
}
