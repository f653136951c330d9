// `lutra tokenize`: the token ids a model's tokenizer gives a text, so they can be compared
// with another implementation's (as a JSON array with --json).
#include <cstdio>
#include <string>

#include "apps/lutra/common.h"
#include "runtime/tokenizer.h"

using namespace lutra;
using namespace lutra::cli;

namespace {
// A token's bytes as a C-style literal body: printable ASCII as is, the rest as \xNN.
std::string escaped(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out += char(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}
}  // namespace

int cmd_tokenize(int argc, char** argv) {
  cxxopts::Options o("lutra tokenize", "Print the token ids of a text");
  o.add_options("model")
      ("m,model", "model file (default: $LUTRA_MODEL, else the default model)", cxxopts::value<std::string>())
      ("h,help", "show this help");
  add_text_options(o, "text");
  o.add_options("output")
      ("bos", "start with the beginning-of-sequence token")
      ("special", "read special-token text such as <|eot_id|> as the token (BPE vocabularies)")
      ("json", "print the ids as one JSON array (default: one line per token: id and its bytes)");
  cxxopts::ParseResult r;
  int code;
  if (!parse(o, argc, argv, r, code)) return code;
  auto text = read_text_option(r);
  if (!text.ok()) return fail(text.message());
  auto model = load_model(r);
  if (!model.ok()) return fail(model.message());
  const Tokenizer& tok = (*model)->tokenizer();
  auto ids = tok.encode_checked(*text, r.count("bos") > 0,
                                r.count("special") ? Tokenizer::Specials::as_tokens : Tokenizer::Specials::as_text);
  if (!ids.ok()) return fail("text: " + ids.message());

  if (r.count("json")) {
    std::string line = "[";
    for (size_t i = 0; i < ids->size(); ++i) line += (i ? ", " : "") + std::to_string((*ids)[i]);
    line += "]\n";
    print_text(line);
  } else {
    for (int32_t id : *ids)
      print_text(std::to_string(id) + "\t'" + escaped(tok.token_bytes(id)) + "'\n");
  }
  return 0;
}
