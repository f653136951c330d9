#include "convert/bpe_import.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <fstream>
#include <iterator>
#include <unordered_map>

namespace lutra {
namespace {

using json = nlohmann::json;

// GPT-2's byte-to-unicode table: bytes that print as themselves ('!'..'~', '¡'..'¬', '®'..'ÿ')
// keep their code point; the other 68 get 256, 257, ... in byte order.
struct ByteLevelTable {
  std::array<uint32_t, 256> code_point{};
  std::array<int16_t, 324> byte_of{};  // code point → byte, -1 if none
  ByteLevelTable() {
    byte_of.fill(-1);
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      code_point[b] = printable ? b : next++;
      byte_of[code_point[b]] = int16_t(b);
    }
  }
};
const ByteLevelTable& byte_level_table() {
  static const ByteLevelTable t;
  return t;
}

void append_utf8(std::string& s, uint32_t cp) {
  if (cp < 0x80) {
    s.push_back(char(cp));
  } else if (cp < 0x800) {
    s.push_back(char(0xC0 | (cp >> 6)));
    s.push_back(char(0x80 | (cp & 0x3F)));
  } else {
    s.push_back(char(0xE0 | (cp >> 12)));
    s.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    s.push_back(char(0x80 | (cp & 0x3F)));
  }
}

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Standard base64 with '=' padding; false on anything else.
bool base64_decode(std::string_view in, std::string& out) {
  out.clear();
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = base64_value(c);
    if (v < 0) return false;
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(char((acc >> bits) & 0xFF));
    }
  }
  return bits < 6;  // leftover bits are padding only
}

}  // namespace

Status add_special_tokens(BpeVocab& v, std::span<const SpecialToken> specials, const std::string& name) {
  const size_t ranked = v.tokens.size();
  for (const SpecialToken& s : specials) {
    if (s.id < 0 || size_t(s.id) < ranked || s.text.empty())
      return Status::error(name + ": special token '" + s.text + "' has id " + std::to_string(s.id) +
                           ", which a ranked token holds");
    // Specials follow the ranked tokens (LLaMA-3: 256 of them); an id far beyond would size the
    // vocabulary to gigabytes.
    if (size_t(s.id) >= ranked + (size_t(1) << 20))
      return Status::error(name + ": special token '" + s.text + "' has id " + std::to_string(s.id) +
                           ", far beyond the " + std::to_string(ranked) + " ranked tokens");
    if (size_t(s.id) >= v.tokens.size()) v.tokens.resize(size_t(s.id) + 1, {"", BpeVocab::Kind::control});
    if (!v.tokens[size_t(s.id)].bytes.empty())
      return Status::error(name + ": two special tokens have id " + std::to_string(s.id));
    v.tokens[size_t(s.id)] = {s.text, BpeVocab::Kind::control};
  }
  return ok_status();
}

std::vector<SpecialToken> llama3_special_tokens(int32_t first_id) {
  std::vector<SpecialToken> out;
  const char* named[] = {"<|begin_of_text|>", "<|end_of_text|>", nullptr, nullptr, nullptr, nullptr,
                         "<|start_header_id|>", "<|end_header_id|>", nullptr, "<|eot_id|>"};
  int reserved = 0;
  for (int i = 0; i < 256; ++i) {
    const char* n = i < 10 ? named[i] : nullptr;
    out.push_back({n ? std::string(n) : "<|reserved_special_token_" + std::to_string(reserved++) + "|>", first_id + i});
  }
  return out;
}

Result<BpeVocab> parse_tiktoken_bpe(std::string_view text, const std::string& name,
                                    std::span<const SpecialToken> specials, BpePreTokenizer pre) {
  BpeVocab v;
  v.merge_rule = BpeMerges::by_id;
  v.ignore_merges = true;
  v.pre = pre;
  std::vector<bool> seen;
  size_t line_no = 0;
  std::string bytes;
  // Ranks are 0..lines-1 (each line one rank): a larger one cannot be filled, and must not size
  // the vocabulary (a 14-byte file naming rank 99999999 would ask for gigabytes).
  const size_t lines = size_t(std::count(text.begin(), text.end(), '\n')) + 1;
  while (!text.empty()) {
    ++line_no;
    size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const auto bad = [&] { return Status::error(name + ": line " + std::to_string(line_no) + " is not 'base64 rank'"); };
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos || !base64_decode(line.substr(0, sp), bytes) || bytes.empty()) return bad();
    std::string_view rank_text = line.substr(sp + 1);
    if (rank_text.empty() || rank_text.size() > 9) return bad();
    uint32_t rank = 0;
    for (char c : rank_text) {
      if (c < '0' || c > '9') return bad();
      rank = rank * 10 + uint32_t(c - '0');
    }
    if (rank >= lines)
      return Status::error(name + ": line " + std::to_string(line_no) + " has rank " + std::to_string(rank) +
                           ", so ranks are missing (the file has " + std::to_string(lines) + " lines)");
    if (rank >= v.tokens.size()) {
      v.tokens.resize(rank + 1);
      seen.resize(rank + 1);
    }
    if (seen[rank]) return Status::error(name + ": rank " + std::to_string(rank) + " appears twice");
    seen[rank] = true;
    v.tokens[rank].bytes = bytes;
  }
  for (size_t r = 0; r < seen.size(); ++r)
    if (!seen[r]) return Status::error(name + ": rank " + std::to_string(r) + " is missing");
  if (v.tokens.empty()) return Status::error(name + ": no tokens");
  LUTRA_TRY(add_special_tokens(v, specials, name));
  return v;
}

Result<BpeVocab> read_tiktoken_bpe(const std::string& path, std::span<const SpecialToken> specials,
                                   BpePreTokenizer pre) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::error("cannot open tokenizer '" + path + "'");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return parse_tiktoken_bpe(text, "tokenizer '" + path + "'", specials, pre);
}

std::string byte_level_encode(std::string_view bytes) {
  std::string s;
  for (char c : bytes) append_utf8(s, byte_level_table().code_point[uint8_t(c)]);
  return s;
}

Result<std::string> byte_level_decode(std::string_view text) {
  const ByteLevelTable& t = byte_level_table();
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const uint8_t b = uint8_t(text[i]);
    uint32_t cp;
    size_t len;
    if (b < 0x80) cp = b, len = 1;
    else if ((b & 0xE0) == 0xC0 && i + 1 < text.size()) cp = ((b & 0x1Fu) << 6) | (uint8_t(text[i + 1]) & 0x3Fu), len = 2;
    else cp = ~0u, len = 1;
    if (cp >= t.byte_of.size() || t.byte_of[cp] < 0)
      return Status::error("'" + std::string(text) + "' is not in byte-level BPE form");
    out.push_back(char(t.byte_of[cp]));
    i += len;
  }
  return out;
}

Result<BpeVocab> bpe_vocab_from_gguf(std::span<const std::string> tokens, std::span<const std::string> merges,
                                     std::span<const int32_t> token_types, std::string_view pre,
                                     int32_t bos_id, int32_t eos_id) {
  BpeVocab v;
  if (pre == "gpt-2" || pre == "default") {  // llama.cpp's "default" is GPT-2's regex
    v.pre = BpePreTokenizer::gpt2;
  } else if (pre == "llama-bpe" || pre == "llama3") {
    v.pre = BpePreTokenizer::llama3;
    v.ignore_merges = true;
  } else {
    return Status::error("GGUF BPE pre-tokenizer '" + std::string(pre) +
                         "' (tokenizer.ggml.pre) is not supported (gpt-2, default, llama-bpe, llama3)");
  }
  if (!token_types.empty() && token_types.size() != tokens.size())
    return Status::error("GGUF vocabulary: " + std::to_string(tokens.size()) + " tokens but " +
                         std::to_string(token_types.size()) + " token types");
  v.tokens.resize(tokens.size());
  std::unordered_map<std::string_view, int32_t> id_of;  // in GGUF's spelling
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int32_t type = token_types.empty() ? 1 : token_types[i];
    BpeVocab::Token& t = v.tokens[i];
    if (type == 1 || type == 6) {
      auto bytes = byte_level_decode(tokens[i]);
      if (!bytes.ok()) return Status::error("GGUF vocabulary: token " + std::to_string(i) + ": " + bytes.message());
      t.bytes = std::move(bytes).value();
    } else {
      t.bytes = tokens[i];
      t.kind = type == 4 ? BpeVocab::Kind::user_defined : BpeVocab::Kind::control;
    }
    id_of.emplace(tokens[i], int32_t(i));
  }
  v.merges.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); ++r) {
    std::string_view m = merges[r];
    size_t sp = m.find(' ');
    auto l = sp == std::string_view::npos ? id_of.end() : id_of.find(m.substr(0, sp));
    auto rt = sp == std::string_view::npos ? id_of.end() : id_of.find(m.substr(sp + 1));
    if (l == id_of.end() || rt == id_of.end())
      return Status::error("GGUF vocabulary: merge " + std::to_string(r) + " '" + std::string(m) + "' is not two tokens");
    v.merges.emplace_back(l->second, rt->second);
  }
  v.bos_id = bos_id;
  v.eos_id = eos_id;
  return v;
}

Result<BpeVocab> bpe_vocab_from_gguf(const GgufFile& gguf) {
  auto model = gguf.get_string("tokenizer.ggml.model");
  if (!model.ok()) return model.status();
  if (*model != "gpt2")
    return Status::error(gguf.name() + ": tokenizer model '" + *model + "' is not byte-level BPE (gpt2)");
  auto tokens = gguf.get_string_array("tokenizer.ggml.tokens");
  if (!tokens.ok()) return tokens.status();
  auto merges = gguf.get_string_array("tokenizer.ggml.merges");
  if (!merges.ok()) return merges.status();
  std::vector<int32_t> types;
  if (gguf.has("tokenizer.ggml.token_type")) {
    auto t = gguf.get_int_array("tokenizer.ggml.token_type");
    if (!t.ok()) return t.status();
    types.assign(t->begin(), t->end());
  }
  // bitnet.cpp's 2B4T file names no pre-tokenizer at all, though its vocabulary is LLaMA-3's:
  // GPT-2's regex would split its text wrongly (digits, contractions), so a vocabulary with
  // LLaMA-3's <|begin_of_text|> takes LLaMA-3's.
  auto pre = gguf.find_string("tokenizer.ggml.pre");
  if (!pre.ok()) return pre.status();
  std::string pre_name = pre->value_or("");
  if (pre_name.empty())
    pre_name = std::find(tokens->begin(), tokens->end(), "<|begin_of_text|>") != tokens->end() ? "llama-bpe" : "gpt-2";
  auto bos = gguf.find_u32("tokenizer.ggml.bos_token_id");
  if (!bos.ok()) return bos.status();
  auto eos = gguf.find_u32("tokenizer.ggml.eos_token_id");
  if (!eos.ok()) return eos.status();
  auto v = bpe_vocab_from_gguf(*tokens, *merges, types, pre_name, bos->has_value() ? int32_t(**bos) : -1,
                               eos->has_value() ? int32_t(**eos) : -1);
  if (!v.ok()) return Status::error(gguf.name() + ": " + v.message());
  if (v->bos_id < 0) v->bos_id = special_token_id(*v, "<|begin_of_text|>");
  if (v->eos_id < 0) v->eos_id = special_token_id(*v, "<|end_of_text|>");
  return v;
}

int32_t special_token_id(const BpeVocab& v, std::string_view text) {
  for (size_t i = 0; i < v.tokens.size(); ++i)
    if (v.tokens[i].kind == BpeVocab::Kind::control && v.tokens[i].bytes == text) return int32_t(i);
  return -1;
}

Result<BpeVocab> bpe_vocab_from_hf_json(std::string_view json_text) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const std::exception& e) {
    return Status::error(std::string("tokenizer.json: ") + e.what());
  }
  try {
    const json& model = j.at("model");
    if (model.value("type", std::string("BPE")) != "BPE")
      return Status::error("tokenizer.json: model type '" + model.value("type", std::string()) + "' is not BPE");
    BpeVocab v;
    v.ignore_merges = model.value("ignore_merges", false);
    if (j.contains("normalizer") && !j["normalizer"].is_null())
      return Status::error("tokenizer.json: normalizer '" + j["normalizer"].value("type", std::string("?")) +
                           "' is not supported");

    // The pre-tokenizer: a ByteLevel with its own regex, or a Split before a regex-less ByteLevel.
    const json pre = j.contains("pre_tokenizer") ? j["pre_tokenizer"] : json();
    std::vector<json> steps;
    if (pre.is_object() && pre.value("type", std::string()) == "Sequence") steps = pre.at("pretokenizers").get<std::vector<json>>();
    else if (pre.is_object()) steps.push_back(pre);
    std::string pattern;
    bool byte_level = false;
    for (const json& s : steps) {
      const std::string type = s.value("type", std::string());
      if (type == "ByteLevel") {
        byte_level = true;
        if (s.value("add_prefix_space", false))
          return Status::error("tokenizer.json: ByteLevel add_prefix_space is not supported");
        if (s.value("use_regex", true)) {
          if (!pattern.empty()) return Status::error("tokenizer.json: more than one pre-tokenizer regex");
          pattern = bpe_pattern(BpePreTokenizer::gpt2);
        }
      } else if (type == "Split") {
        if (!pattern.empty()) return Status::error("tokenizer.json: more than one pre-tokenizer regex");
        const json& p = s.at("pattern");
        if (p.contains("Regex")) pattern = p["Regex"].get<std::string>();
        else return Status::error("tokenizer.json: a Split on a plain string is not supported");
        if (s.value("behavior", std::string("Isolated")) != "Isolated" || s.value("invert", false))
          return Status::error("tokenizer.json: only Isolated, non-inverted Split is supported");
      } else {
        return Status::error("tokenizer.json: pre-tokenizer '" + type + "' is not supported");
      }
    }
    if (!byte_level) return Status::error("tokenizer.json: not a byte-level BPE (no ByteLevel pre-tokenizer)");
    if (pattern.empty()) return Status::error("tokenizer.json: no pre-tokenizer regex");
    if (pattern == bpe_pattern(BpePreTokenizer::gpt2)) v.pre = BpePreTokenizer::gpt2;
    else if (pattern == bpe_pattern(BpePreTokenizer::llama3)) v.pre = BpePreTokenizer::llama3;
    else v.pre = BpePreTokenizer::custom, v.pattern = pattern;

    // Tokens: the vocabulary (byte-level spelling), then added tokens (their text as is).
    std::unordered_map<std::string, int32_t> id_of;
    auto place = [&](int64_t id, std::string bytes, BpeVocab::Kind kind) -> Status {
      if (id < 0 || id > (int64_t(1) << 24)) return Status::error("tokenizer.json: token id " + std::to_string(id) + " out of range");
      if (size_t(id) >= v.tokens.size()) v.tokens.resize(size_t(id) + 1, {"", BpeVocab::Kind::control});
      v.tokens[size_t(id)] = {std::move(bytes), kind};
      return ok_status();
    };
    // Added tokens may repeat in the vocab, spelled as plain text: theirs is the entry that counts.
    std::unordered_map<int64_t, const json*> added;
    if (j.contains("added_tokens") && j["added_tokens"].is_array())
      for (const json& a : j["added_tokens"]) added[a.at("id").get<int64_t>()] = &a;
    for (const auto& [text, id] : model.at("vocab").items()) {
      id_of.emplace(text, id.get<int32_t>());
      if (added.count(id.get<int64_t>())) continue;
      auto bytes = byte_level_decode(text);
      if (!bytes.ok()) return Status::error("tokenizer.json: vocab: " + bytes.message());
      LUTRA_TRY(place(id.get<int64_t>(), std::move(bytes).value(), BpeVocab::Kind::normal));
    }
    for (const auto& [id, a] : added)
      LUTRA_TRY(place(id, a->at("content").get<std::string>(),
                      a->value("special", false) ? BpeVocab::Kind::control : BpeVocab::Kind::user_defined));

    for (const json& m : model.at("merges")) {
      std::string left, right;
      if (m.is_string()) {
        const std::string s = m.get<std::string>();
        size_t sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
          return Status::error("tokenizer.json: merge '" + s + "' is not 'left right'");
        left = s.substr(0, sp), right = s.substr(sp + 1);
      } else {
        left = m.at(0).get<std::string>(), right = m.at(1).get<std::string>();
      }
      auto l = id_of.find(left), r = id_of.find(right);
      if (l == id_of.end() || r == id_of.end())
        return Status::error("tokenizer.json: merge '" + left + " " + right + "' names a token not in the vocab");
      v.merges.emplace_back(l->second, r->second);
    }
    return v;
  } catch (const std::exception& e) {
    return Status::error(std::string("tokenizer.json: ") + e.what());
  }
}

}  // namespace lutra
