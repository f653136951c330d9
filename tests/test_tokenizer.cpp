// Tokenizer: the hand-written sentencepiece proto, llama2.c's tokenizer.bin, encode/decode and
// the streaming detokenizer.
#include <doctest/doctest.h>
#include <sentencepiece_processor.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "convert/llama2c_tokenizer.h"
#include "runtime/tokenizer.h"
#include "tests/golden.h"
#include "tests/test_data.h"

using namespace lutra;

namespace {

std::vector<int32_t> ids32(const std::vector<int>& v) { return std::vector<int32_t>(v.begin(), v.end()); }

// Every piece of a sentencepiece model, read back through its public API.
std::vector<TokenPiece> pieces_of(const sentencepiece::SentencePieceProcessor& sp) {
  std::vector<TokenPiece> out;
  for (int id = 0; id < sp.GetPieceSize(); ++id) {
    TokenPiece p;
    p.text = sp.IdToPiece(id);
    p.score = sp.GetScore(id);
    if (sp.IsControl(id)) p.kind = TokenPiece::Kind::control;
    else if (sp.IsUnknown(id)) p.kind = TokenPiece::Kind::unknown;
    else if (sp.IsByte(id)) p.kind = TokenPiece::Kind::byte;
    else if (sp.IsUnused(id)) p.kind = TokenPiece::Kind::unused;
    out.push_back(std::move(p));
  }
  return out;
}

// A vocabulary small enough to reason about: <unk> <s> </s>, the 256 byte pieces (ids
// 3..258), then ▁=259 h=260 i=261 ▁h=262 ▁hi=263 a=264.
std::vector<TokenPiece> tiny_pieces() {
  std::vector<TokenPiece> v = {{"<unk>", 0, TokenPiece::Kind::unknown},
                               {"<s>", 0, TokenPiece::Kind::control},
                               {"</s>", 0, TokenPiece::Kind::control}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    v.push_back({name, 0, TokenPiece::Kind::byte});
  }
  float score = 0;
  for (const char* s : {"\xE2\x96\x81", "h", "i", "\xE2\x96\x81h", "\xE2\x96\x81hi", "a"})
    v.push_back({s, score--, TokenPiece::Kind::normal});
  return v;
}
constexpr int32_t kByte0 = 3;

Tokenizer tiny_tokenizer(bool add_dummy_prefix = true) {
  auto pieces = tiny_pieces();
  SpmOptions opts;
  opts.add_dummy_prefix = add_dummy_prefix;
  auto tok = Tokenizer::from_spm_proto(make_spm_model_proto(pieces, opts));
  REQUIRE_MESSAGE(tok.ok(), tok.message());
  return std::move(tok).value();
}

}  // namespace

TEST_CASE("hand-built BPE proto merges by score and falls back to bytes") {
  Tokenizer tok = tiny_tokenizer();
  CHECK(tok.vocab_size() == 265);
  CHECK(tok.bos_id() == 1);
  CHECK(tok.eos_id() == 2);
  CHECK(tok.is_control(1));
  CHECK_FALSE(tok.is_control(259));
  CHECK(tok.encode("hi hi", false) == std::vector<int32_t>{263, 263});
  CHECK(tok.encode("hi", true) == std::vector<int32_t>{1, 263});
  // "é" is not in the vocabulary: its two UTF-8 bytes become byte pieces.
  CHECK(tok.encode("h\xC3\xA9", false) == std::vector<int32_t>{262, kByte0 + 0xC3, kByte0 + 0xA9});
  CHECK(tok.decode(std::vector<int32_t>{1, 262, kByte0 + 0xC3, kByte0 + 0xA9, 2}) == "h\xC3\xA9");
  CHECK(tok.token_bytes(263) == " hi");
  CHECK(tok.token_bytes(kByte0 + 0x0A) == "\n");
  CHECK(tok.token_bytes(1).empty());
  CHECK(tok.token_bytes(0) == " \xE2\x81\x87 ");  // <unk> decodes as sentencepiece's " ⁇ "
  CHECK(tok.token_bytes(-1).empty());
  CHECK(tok.token_bytes(265).empty());
  // The tokenizer keeps the exact proto it was built from (the model file stores it).
  CHECK(tok.spm_proto() == make_spm_model_proto(tiny_pieces(), SpmOptions{}));
}

TEST_CASE("add_dummy_prefix off: no leading space added on encode or removed on decode") {
  Tokenizer tok = tiny_tokenizer(false);
  CHECK(tok.encode("hi", false) == std::vector<int32_t>{260, 261});
  CHECK(tok.encode(" hi", false) == std::vector<int32_t>{263});
  CHECK(tok.decode(std::vector<int32_t>{263}) == " hi");
  auto s = read_spm_proto_settings(tok.spm_proto());
  REQUIRE(s.ok());
  CHECK_FALSE(s->add_dummy_prefix);
  CHECK_FALSE(s->remove_extra_whitespaces);
}

TEST_CASE("malformed or unloadable sentencepiece protos are refused with an error") {
  CHECK_FALSE(Tokenizer::from_spm_proto("\x0a\xff\xff\xff").ok());  // length past the end
  CHECK_FALSE(Tokenizer::from_spm_proto("not a proto").ok());
  // Byte fallback without the byte pieces, and duplicate pieces.
  std::vector<TokenPiece> no_bytes = {{"<unk>", 0, TokenPiece::Kind::unknown}, {"<s>", 0, TokenPiece::Kind::control},
                                      {"</s>", 0, TokenPiece::Kind::control}, {"a", 0}};
  CHECK_FALSE(Tokenizer::from_spm_proto(make_spm_model_proto(no_bytes, {})).ok());
  auto dup = tiny_pieces();
  dup.push_back({"a", -9});
  CHECK_FALSE(Tokenizer::from_spm_proto(make_spm_model_proto(dup, {})).ok());
}

TEST_CASE("invalid UTF-8 is refused by encode_checked and replaced by encode") {
  Tokenizer tok = tiny_tokenizer();
  for (const char* bad : {"a\xFF", "\xC3", "\xE2\x82", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80"}) {
    INFO("input: " << bad);
    auto r = tok.encode_checked(bad, false);
    REQUIRE_FALSE(r.ok());
    CHECK(r.message().find("UTF-8") != std::string::npos);
    CHECK_FALSE(tok.encode(bad, false).empty());  // U+FFFD, itself byte-encoded
  }
  CHECK(tok.encode_checked("h\xC3\xA9 \xF0\x9F\x98\x80", false).ok());
  CHECK(tok.encode_checked("", true).value() == std::vector<int32_t>{1});
}

TEST_CASE("sentencepiece vocabularies refuse to read special tokens out of text") {
  Tokenizer tok = tiny_tokenizer();
  CHECK(tok.type() == Tokenizer::Type::spm);
  CHECK(tok.bpe_blob().empty());
  auto r = tok.encode_checked("<s>hi", false, Tokenizer::Specials::as_tokens);
  REQUIRE_FALSE(r.ok());
  CHECK(r.message().find("BPE") != std::string::npos);
}

TEST_CASE("TextStream removes the leading space once and holds split UTF-8 characters") {
  Tokenizer tok = tiny_tokenizer();
  TextStream ts(tok);
  CHECK(ts.push(1) == "");
  CHECK(ts.push(263) == "hi");  // dummy prefix removed
  CHECK(ts.push(263) == " hi");
  // U+1F600 as four byte tokens: nothing until the last one.
  CHECK(ts.push(kByte0 + 0xF0) == "");
  CHECK(ts.push(kByte0 + 0x9F) == "");
  CHECK(ts.push(kByte0 + 0x98) == "");
  CHECK(ts.push(kByte0 + 0x80) == "\xF0\x9F\x98\x80");
  // An incomplete character is U+FFFD per held byte when the byte run ends...
  CHECK(ts.push(kByte0 + 0xE2) == "");
  CHECK(ts.push(kByte0 + 0x82) == "");
  CHECK(ts.flush() == "\xEF\xBF\xBD\xEF\xBF\xBD");
  // ... and a byte that cannot continue one is U+FFFD at once, then the next starts afresh.
  CHECK(ts.push(kByte0 + 0xC3) == "");
  CHECK(ts.push(kByte0 + 'A') == "\xEF\xBF\xBD" "A");
  // After BOS the next text loses its leading space again (llama2.c); reset() likewise.
  CHECK(ts.push(1) == "");
  CHECK(ts.push(263) == "hi");
  ts.reset();
  CHECK(ts.push(259) == "");  // a lone "▁" is the dummy prefix itself
  CHECK(ts.push(263) == " hi");

  // Steady state reuses one buffer.
  ts.reset();
  const char* buf = ts.push(263).data();
  for (int i = 0; i < 100; ++i) CHECK(ts.push(263).data() == buf);
}

TEST_CASE("decode equals the concatenated TextStream output, as sentencepiece decodes") {
  Tokenizer tok = tiny_tokenizer();
  const std::vector<std::vector<int32_t>> cases = {
      {1, 263, 263, 2},
      {259, 259, 263},                       // "▁" "▁" "▁hi": only the first "▁" is removed
      {kByte0 + ' ', 263},                   // a byte token is never the dummy prefix
      {1, kByte0 + 0xE2, 2, kByte0 + 0x82},  // a control token ends a byte run
      {0, 263},                              // <unk> is " ⁇ " and is text
      {264, kByte0 + 0xF0, kByte0 + 0x9F},
  };
  for (const auto& ids : cases) {
    TextStream ts(tok);
    CHECK(stream_all(ts, ids) == tok.decode(ids));
  }
  CHECK(tok.decode(std::vector<int32_t>{259, 259, 263}) == "  hi");
  CHECK(tok.decode(std::vector<int32_t>{kByte0 + ' ', 263}) == "  hi");
  CHECK(tok.decode(std::vector<int32_t>{1, kByte0 + 0xE2, 2, kByte0 + 0x82}) == "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_CASE("LLaMA-2 golden vectors pass with a proto rebuilt from the model's pieces") {
  auto model = test_data_file("llama2_tokenizer.model");
  auto cases = golden_cases("ggml-vocab-llama-spm.gguf");
  if (!model || !cases) return;
  sentencepiece::SentencePieceProcessor ref;
  REQUIRE(ref.Load(model->string()).ok());
  auto rebuilt = Tokenizer::from_spm_proto(make_spm_model_proto(pieces_of(ref), SpmOptions{}));
  REQUIRE_MESSAGE(rebuilt.ok(), rebuilt.message());
  const Tokenizer& tok = rebuilt.value();
  CHECK(tok.vocab_size() == 32000);

  CHECK(cases->size() == 46);
  check_golden(tok, *cases);
}

TEST_CASE("rebuilt LLaMA-2 proto encodes and decodes WikiText exactly like the original model") {
  auto model = test_data_file("llama2_tokenizer.model");
  auto wiki = test_data_file("wikitext2-test-crlf.txt");
  if (!model || !wiki) return;
  sentencepiece::SentencePieceProcessor ref;
  REQUIRE(ref.Load(model->string()).ok());
  auto rebuilt = Tokenizer::from_spm_proto(make_spm_model_proto(pieces_of(ref), SpmOptions{}));
  REQUIRE(rebuilt.ok());
  std::ifstream f(*wiki, std::ios::binary);
  size_t lines = 0, enc_diff = 0, dec_diff = 0, stream_diff = 0;
  TextStream ts(*rebuilt);
  for (std::string line; std::getline(f, line) && lines < 3000; ++lines) {
    std::vector<int> want;
    REQUIRE(ref.Encode(line, &want).ok());
    want.insert(want.begin(), ref.bos_id());
    auto got = rebuilt->encode(line, true);
    enc_diff += got != ids32(want);
    std::string ref_text;
    REQUIRE(ref.Decode(want, &ref_text).ok());
    const std::string text = rebuilt->decode(got);
    dec_diff += text != ref_text;
    ts.reset();
    stream_diff += stream_all(ts, got) != text;
  }
  CHECK(lines == 3000);
  CHECK(enc_diff == 0);
  CHECK(dec_diff == 0);
  CHECK(stream_diff == 0);
}

TEST_CASE("tok512.bin reads into 512 pieces that make a working tokenizer") {
  auto path = test_data_file("tok512.bin");
  if (!path) return;
  auto pieces = read_llama2c_tokenizer(path->string(), 512);
  REQUIRE_MESSAGE(pieces.ok(), pieces.message());
  REQUIRE(pieces->size() == 512);
  CHECK((*pieces)[0].text == "<unk>");
  CHECK((*pieces)[0].kind == TokenPiece::Kind::unknown);
  CHECK((*pieces)[1].text == "<s>");
  CHECK((*pieces)[1].kind == TokenPiece::Kind::control);
  CHECK((*pieces)[2].text == "</s>");
  CHECK((*pieces)[2].kind == TokenPiece::Kind::control);
  CHECK((*pieces)[3 + 0x0A].text == "<0x0A>");
  CHECK((*pieces)[3 + 0x0A].kind == TokenPiece::Kind::byte);
  CHECK((*pieces)[259].text == "\xE2\x96\x81t");  // exported as " t"
  CHECK((*pieces)[260].score == -1.0f);

  auto tok = Tokenizer::from_spm_proto(make_spm_model_proto(*pieces, SpmOptions{}));
  REQUIRE_MESSAGE(tok.ok(), tok.message());
  CHECK(tok->vocab_size() == 512);
  CHECK(tok->bos_id() == 1);
  CHECK(tok->eos_id() == 2);

  const std::string story = "Once upon a time, there was a little girl named Lily.\nShe liked to play outside.";
  auto ids = tok->encode(story, true);
  CHECK(ids.front() == 1);
  CHECK(ids.size() < story.size() / 2);  // merges happen, not just characters
  CHECK(tok->decode(ids) == story);
  TextStream ts(*tok);
  CHECK(stream_all(ts, ids) == story);

  // Not in a 512-piece vocabulary: byte fallback, and the stream reassembles the characters.
  // ("é" is one of its pieces; "ø" and the emoji are not.)
  for (std::string text : {"smørrebrød", "hi \xF0\x9F\x90\xB1!"}) {
    INFO("text: " << text);
    auto t = tok->encode(text, true);
    size_t bytes = 0;
    for (int32_t id : t) bytes += tok->is_byte(id);
    CHECK(bytes >= 2);
    CHECK(tok->decode(t) == text);
    ts.reset();
    std::string streamed;
    for (int32_t id : t) {
      std::string_view piece = ts.push(id);
      CHECK(tok->encode_checked(piece, false).ok());  // only whole UTF-8 characters come out
      streamed += piece;
    }
    streamed += ts.flush();
    CHECK(streamed == text);
  }
}

TEST_CASE("a truncated or oversized tok512.bin is an error naming the file, not a crash") {
  auto path = test_data_file("tok512.bin");
  if (!path) return;
  const std::string data = read_all(*path);
  REQUIRE(data.size() > 100);
  const auto dir = std::filesystem::temp_directory_path() / ("lutra_tok_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto cut = dir / "tok512_cut.bin";
  for (size_t n : {size_t(0), size_t(2), size_t(4), size_t(9), size_t(100), data.size() / 2, data.size() - 1}) {
    INFO("truncated to " << n << " bytes");
    std::ofstream(cut, std::ios::binary | std::ios::trunc).write(data.data(), std::streamsize(n));
    auto r = read_llama2c_tokenizer(cut.string(), 512);
    REQUIRE_FALSE(r.ok());
    CHECK(r.message().find(cut.string()) != std::string::npos);
    CHECK(r.message().find('\n') == std::string::npos);
  }
  // A negative piece length.
  std::string bad = data;
  bad[4 + 4] = '\xFF', bad[4 + 5] = '\xFF', bad[4 + 6] = '\xFF', bad[4 + 7] = '\xFF';
  std::ofstream(cut, std::ios::binary | std::ios::trunc) << bad;
  CHECK_FALSE(read_llama2c_tokenizer(cut.string(), 512).ok());
  // More pieces in the file than the model's vocabulary: the wrong tokenizer.
  CHECK_FALSE(read_llama2c_tokenizer(path->string(), 511).ok());
  CHECK_FALSE(read_llama2c_tokenizer((dir / "absent.bin").string(), 512).ok());
  std::filesystem::remove_all(dir);
}
