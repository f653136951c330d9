// Chat templates put exactly the tokens a model was trained on between turns: no stray
// dummy-prefix spaces inside the template, special tokens as their ids.
#include <doctest/doctest.h>

#include <string>

#include "convert/convert.h"
#include "runtime/chat.h"
#include "tests/test_data.h"

using namespace lutra;

namespace {
std::string text_of(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += tok.is_control(id) ? "<" + std::to_string(id) + ">" : std::string(tok.token_bytes(id));
  return s;
}
}  // namespace

TEST_CASE("the bitnet chat template gives two turns without stray spaces, separated by <|eot_id|>") {
  TempDir tmp;
  REQUIRE(make_synthetic("tiny", tmp.file("m.lutra"), ConvertOptions{}).ok());
  auto m = Model::load(tmp.file("m.lutra"));
  REQUIRE(m.ok());
  const Tokenizer& tok = (*m)->tokenizer();
  const int32_t eot = tok.piece_id("<|eot_id|>");
  REQUIRE(eot >= 0);
  auto first = chat_turn_tokens(**m, "Hello there", "Be kind.", true, -1);
  REQUIRE(first.ok());
  // The first text after BOS carries sentencepiece's dummy prefix, as a whole prompt would.
  CHECK(text_of(tok, *first) == "<1> System: Be kind.<3>User: Hello there<3>Assistant: ");
  auto second = chat_turn_tokens(**m, "And now?", "", false, eot);
  REQUIRE(second.ok());
  CHECK(text_of(tok, *second) == "<3>User: And now?<3>Assistant: ");
}

TEST_CASE("a chat template whose special tokens the vocabulary lacks is an error, not text") {
  TempDir tmp;
  ConvertOptions opts;
  opts.chat_template = "llama3";
  REQUIRE(make_synthetic("tiny", tmp.file("m.lutra"), opts).ok());
  auto m = Model::load(tmp.file("m.lutra"));
  REQUIRE(m.ok());
  auto turn = chat_turn_tokens(**m, "Hi", "", true, -1);
  REQUIRE_FALSE(turn.ok());
  CHECK(turn.message().find("<|start_header_id|>") != std::string::npos);
}

TEST_CASE("continuation text is encoded without the dummy-prefix space") {
  TempDir tmp;
  REQUIRE(make_synthetic("tiny", tmp.file("m.lutra"), ConvertOptions{}).ok());
  auto m = Model::load(tmp.file("m.lutra"));
  REQUIRE(m.ok());
  const Tokenizer& tok = (*m)->tokenizer();
  auto plain = tok.encode_checked("the dog", false);
  auto cont = tok.encode_continuation("the dog");
  REQUIRE(plain.ok());
  REQUIRE(cont.ok());
  CHECK(text_of(tok, *plain) == " the dog");
  CHECK(text_of(tok, *cont) == "the dog");
}
