#include "runtime/bpe.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

namespace lutra {
namespace {

// GPT-2's encoder.py and LLaMA-3's tokenizer (tiktoken's cl100k pattern).
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr std::string_view kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

constexpr char kBlobMagic[4] = {'L', 'B', 'P', 'E'};
constexpr uint32_t kBlobVersion = 1;

uint64_t pair_key(int32_t left, int32_t right) { return (uint64_t(uint32_t(left)) << 32) | uint32_t(right); }

// (left id, right id) → (rank, merged id), open addressing: hundreds of thousands of pairs for
// a LLaMA-3 vocabulary, looked up once per adjacent pair while encoding.
class PairTable {
 public:
  struct Entry {
    uint64_t key = kEmpty;
    int32_t rank = 0, merged = 0;
  };
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots_.assign(cap, Entry{});
  }
  // Keeps the first entry for a pair (the best rank when inserted best first).
  void insert(int32_t left, int32_t right, int32_t rank, int32_t merged) {
    if ((count_ + 1) * 2 > slots_.size()) grow();
    Entry& e = slot(pair_key(left, right));
    if (e.key != kEmpty) return;
    e = {pair_key(left, right), rank, merged};
    ++count_;
  }
  const Entry* find(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    const uint64_t key = pair_key(left, right);
    for (size_t i = hash(key) & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
      if (slots_[i].key == key) return &slots_[i];
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t(0);  // ids are >= 0, so no real key has it
  static size_t hash(uint64_t k) { return size_t((k * 0x9E3779B97F4A7C15ull) >> 17); }
  Entry& slot(uint64_t key) {
    for (size_t i = hash(key) & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1))
      if (slots_[i].key == key || slots_[i].key == kEmpty) return slots_[i];
  }
  void grow() {
    std::vector<Entry> old = std::move(slots_);
    slots_.assign(std::max<size_t>(16, old.size() * 2), Entry{});
    for (const Entry& e : old)
      if (e.key != kEmpty) slot(e.key) = e;
  }
  std::vector<Entry> slots_;
  size_t count_ = 0;
};

// Token bytes → id, open addressing over ids with a hash tag per slot, so a miss rarely touches
// the token's bytes: built for 128k tokens and probed ~1M times while a vocabulary loads.
class TokenIndex {
 public:
  explicit TokenIndex(const std::vector<BpeVocab::Token>* tokens = nullptr) : tokens_(tokens) {}
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots_.assign(cap, Slot{});
  }
  // False if the bytes are there already (under `*existing`).
  bool insert(int32_t id, int32_t* existing) {
    if ((count_ + 1) * 2 > slots_.size()) grow();
    const std::string_view bytes = (*tokens_)[size_t(id)].bytes;
    const uint64_t h = hash(bytes);
    for (size_t i = h & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
      Slot& sl = slots_[i];
      if (sl.id < 0) {
        sl = {uint32_t(h >> 32), id};
        ++count_;
        return true;
      }
      if (sl.tag == uint32_t(h >> 32) && (*tokens_)[size_t(sl.id)].bytes == bytes) {
        *existing = sl.id;
        return false;
      }
    }
  }
  int32_t find(std::string_view bytes) const {
    if (slots_.empty()) return -1;
    const uint64_t h = hash(bytes);
    for (size_t i = h & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
      const Slot& sl = slots_[i];
      if (sl.id < 0) return -1;
      if (sl.tag == uint32_t(h >> 32) && (*tokens_)[size_t(sl.id)].bytes == bytes) return sl.id;
    }
  }

 private:
  struct Slot {
    uint32_t tag = 0;
    int32_t id = -1;
  };
  static uint64_t hash(std::string_view s) {  // FNV-1a, then mixed so the low bits spread
    uint64_t h = 0xcbf29ce484222325ull;
    for (char c : s) h = (h ^ uint8_t(c)) * 0x100000001b3ull;
    return (h ^ (h >> 29)) * 0xbf58476d1ce4e5b9ull;
  }
  void grow() {
    std::vector<Slot> old = std::move(slots_);
    reserve(std::max<size_t>(8, old.size()));
    count_ = 0;
    int32_t unused;
    for (const Slot& sl : old)
      if (sl.id >= 0) insert(sl.id, &unused);
  }
  const std::vector<BpeVocab::Token>* tokens_;
  std::vector<Slot> slots_;
  size_t count_ = 0;
};

struct Pcre2CodeDeleter {
  void operator()(pcre2_code* c) const { pcre2_code_free(c); }
};

// Length of the UTF-8 character starting with byte b (1 for anything unexpected).
size_t utf8_len(uint8_t b) { return b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1; }

// Little-endian blob writer and bounds-checked reader.
void put_u32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(char((v >> (8 * i)) & 0xFF));
}
struct BlobReader {
  std::string_view data;
  size_t pos = 0;
  bool failed = false;
  std::string_view take(size_t n) {
    if (failed || n > data.size() - pos) {
      failed = true;
      return {};
    }
    std::string_view r = data.substr(pos, n);
    pos += n;
    return r;
  }
  uint8_t u8() {
    auto b = take(1);
    return b.empty() ? 0 : uint8_t(b[0]);
  }
  uint32_t u32() {
    auto b = take(4);
    uint32_t v = 0;
    for (size_t i = 0; i < b.size(); ++i) v |= uint32_t(uint8_t(b[i])) << (8 * i);
    return v;
  }
};

}  // namespace

std::string_view bpe_pattern(BpePreTokenizer pre) {
  switch (pre) {
    case BpePreTokenizer::gpt2: return kGpt2Pattern;
    case BpePreTokenizer::llama3: return kLlama3Pattern;
    default: return {};
  }
}

struct BpeModel::Impl {
  BpeVocab vocab;
  TokenIndex normal_ids{&vocab.tokens};
  TokenIndex special_ids{&vocab.tokens};  // control and user-defined
  std::array<int32_t, 256> byte_ids{};
  PairTable pairs;
  std::unique_ptr<pcre2_code, Pcre2CodeDeleter> regex;
  // Special tokens by first byte, longest first, for leftmost-longest matching.
  std::array<std::vector<int32_t>, 256> specials_by_first_byte;
  bool has_user_defined = false;
};

BpeModel::BpeModel() = default;
BpeModel::~BpeModel() = default;
BpeModel::BpeModel(BpeModel&&) noexcept = default;
BpeModel& BpeModel::operator=(BpeModel&&) noexcept = default;
const BpeVocab& BpeModel::vocab() const { return impl_->vocab; }

int32_t BpeModel::find(std::string_view bytes) const {
  const int32_t id = impl_->normal_ids.find(bytes);
  return id >= 0 ? id : impl_->special_ids.find(bytes);
}

namespace {
constexpr size_t kMaxTokenBytes = 1024;
}  // namespace

Result<BpeModel> BpeModel::create(BpeVocab vocab) {
  const size_t n = vocab.tokens.size();
  if (n == 0 || n > size_t(std::numeric_limits<int32_t>::max()))
    return Status::error("BPE vocabulary: bad token count " + std::to_string(n));
  if (vocab.bos_id >= int64_t(n) || vocab.eos_id >= int64_t(n) || vocab.bos_id < -1 || vocab.eos_id < -1)
    return Status::error("BPE vocabulary: BOS/EOS id out of range");
  BpeModel m;
  m.impl_ = std::make_unique<Impl>();
  Impl& im = *m.impl_;
  im.vocab = std::move(vocab);
  const BpeVocab& v = im.vocab;

  im.normal_ids.reserve(n);
  std::vector<int32_t> specials;
  for (size_t id = 0; id < n; ++id) {
    const BpeVocab::Token& t = v.tokens[id];
    if (uint8_t(t.kind) > uint8_t(BpeVocab::Kind::user_defined))
      return Status::error("BPE vocabulary: token " + std::to_string(id) + " has an unknown kind");
    if (t.bytes.empty()) continue;  // placeholder: never produced by encoding
    // Loading looks up every split of every token (quadratic in its length): real vocabularies'
    // tokens are a few hundred bytes at most, so a longer one is damage, not a token.
    if (t.bytes.size() > kMaxTokenBytes)
      return Status::error("BPE vocabulary: token " + std::to_string(id) + " is " + std::to_string(t.bytes.size()) +
                           " bytes long (at most " + std::to_string(kMaxTokenBytes) + ")");
    int32_t first = -1;
    if (t.kind == BpeVocab::Kind::normal) {
      if (!im.normal_ids.insert(int32_t(id), &first))
        return Status::error("BPE vocabulary: token " + std::to_string(id) + " repeats token " + std::to_string(first));
    } else {
      im.special_ids.insert(int32_t(id), &first);  // a repeated special keeps its first id
      specials.push_back(int32_t(id));
      im.has_user_defined |= t.kind == BpeVocab::Kind::user_defined;
    }
  }
  for (int b = 0; b < 256; ++b) {
    const char byte = char(b);
    const int32_t id = im.normal_ids.find(std::string_view(&byte, 1));
    if (id < 0)
      return Status::error("BPE vocabulary has no token for byte " + std::to_string(b) +
                           " (byte-level BPE needs all 256)");
    im.byte_ids[size_t(b)] = id;
  }

  // Merge ranks as a table of id pairs, whichever way the vocabulary ranks them.
  if (v.merge_rule == BpeMerges::listed) {
    im.pairs.reserve(v.merges.size());
    std::string joined;
    for (size_t r = 0; r < v.merges.size(); ++r) {
      auto [l, rt] = v.merges[r];
      if (l < 0 || rt < 0 || size_t(l) >= n || size_t(rt) >= n)
        return Status::error("BPE vocabulary: merge " + std::to_string(r) + " names an id out of range");
      joined = v.tokens[size_t(l)].bytes + v.tokens[size_t(rt)].bytes;
      const int32_t merged = im.normal_ids.find(joined);
      if (merged < 0) return Status::error("BPE vocabulary: merge " + std::to_string(r) + " makes no token");
      im.pairs.insert(l, rt, int32_t(r), merged);
    }
  } else if (v.merge_rule == BpeMerges::by_id) {
    if (!v.merges.empty()) return Status::error("BPE vocabulary: merges listed for a by-id vocabulary");
    // Every split of a token into two tokens is a pair that makes it, ranked by its id.
    im.pairs.reserve(n * 4);
    for (size_t id = 0; id < n; ++id) {
      const BpeVocab::Token& t = v.tokens[id];
      if (t.kind != BpeVocab::Kind::normal) continue;
      std::string_view s = t.bytes;
      for (size_t k = 1; k < s.size(); ++k) {
        const int32_t l = im.normal_ids.find(s.substr(0, k));
        const int32_t r = l < 0 ? -1 : im.normal_ids.find(s.substr(k));
        if (r >= 0) im.pairs.insert(l, r, int32_t(id), int32_t(id));
      }
    }
  } else {
    return Status::error("BPE vocabulary: unknown merge rule");
  }

  std::string_view pattern = v.pre == BpePreTokenizer::custom ? std::string_view(v.pattern) : bpe_pattern(v.pre);
  if (pattern.empty()) return Status::error("BPE vocabulary: no pre-tokenizer pattern");
  int err = 0;
  PCRE2_SIZE err_at = 0;
  im.regex.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                               PCRE2_UTF | PCRE2_UCP, &err, &err_at, nullptr));
  if (!im.regex) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    return Status::error("BPE pre-tokenizer pattern refused at offset " + std::to_string(err_at) + ": " +
                         reinterpret_cast<const char*>(msg));
  }
  pcre2_jit_compile(im.regex.get(), PCRE2_JIT_COMPLETE);  // the interpreter runs it where JIT cannot

  for (int32_t id : specials) im.specials_by_first_byte[uint8_t(v.tokens[size_t(id)].bytes[0])].push_back(id);
  for (auto& ids : im.specials_by_first_byte)
    std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
      const size_t la = v.tokens[size_t(a)].bytes.size(), lb = v.tokens[size_t(b)].bytes.size();
      return la != lb ? la > lb : a < b;
    });
  return m;
}

namespace {

// Buffers reused across the pieces of one encode call.
struct MergeWork {
  struct Part {
    int32_t id, prev, next;  // id -1: merged into its left neighbour
  };
  struct Candidate {
    int32_t rank, left, left_id, right_id, merged;
    // std heap is a max-heap: "less" means merged later (higher rank, then further right).
    bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::vector<Part> parts;
  std::vector<Candidate> heap;
};

}  // namespace

// Ranked merging of one piece: start from its bytes and repeatedly merge the adjacent pair
// of best rank (the leftmost among equals), as GPT-2's bpe() and tiktoken do.
static void encode_piece(const BpeModel::Impl& im, std::string_view piece, MergeWork& w,
                         std::vector<int32_t>& out) {
  if (piece.size() == 1) {
    out.push_back(im.byte_ids[uint8_t(piece[0])]);
    return;
  }
  if (im.vocab.ignore_merges) {
    if (const int32_t id = im.normal_ids.find(piece); id >= 0) {
      out.push_back(id);
      return;
    }
  }
  const int32_t n = int32_t(piece.size());
  w.parts.resize(size_t(n));
  w.heap.clear();
  for (int32_t i = 0; i < n; ++i) w.parts[size_t(i)] = {im.byte_ids[uint8_t(piece[size_t(i)])], i - 1, i + 1 < n ? i + 1 : -1};
  auto consider = [&](int32_t left) {
    const int32_t right = w.parts[size_t(left)].next;
    if (left < 0 || right < 0) return;
    const int32_t a = w.parts[size_t(left)].id, b = w.parts[size_t(right)].id;
    if (const auto* e = im.pairs.find(a, b)) {
      w.heap.push_back({e->rank, left, a, b, e->merged});
      std::push_heap(w.heap.begin(), w.heap.end());
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);
  while (!w.heap.empty()) {
    std::pop_heap(w.heap.begin(), w.heap.end());
    const MergeWork::Candidate c = w.heap.back();
    w.heap.pop_back();
    MergeWork::Part& l = w.parts[size_t(c.left)];
    // Stale: either side has changed since this pair was seen.
    if (l.id != c.left_id || l.next < 0 || w.parts[size_t(l.next)].id != c.right_id) continue;
    const int32_t right = l.next;
    l.id = c.merged;
    l.next = w.parts[size_t(right)].next;
    if (l.next >= 0) w.parts[size_t(l.next)].prev = c.left;
    w.parts[size_t(right)].id = -1;
    if (l.prev >= 0) consider(l.prev);
    consider(c.left);
  }
  for (int32_t i = 0; i >= 0; i = w.parts[size_t(i)].next) out.push_back(w.parts[size_t(i)].id);
}

Status BpeModel::encode(std::string_view text, bool allow_control, std::vector<int32_t>& out) const {
  const Impl& im = *impl_;
  MergeWork work;
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(im.regex.get(), nullptr);
  if (!md) return Status::error("tokenizer: out of memory");
  Status status;

  // The regex split of text between special tokens: every match is a piece, and so is any
  // text between matches (a pattern that skips text must not lose it).
  auto split = [&](std::string_view seg) {
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(seg.data());
    size_t pos = 0, emitted = 0;
    uint32_t utf_check = 0;  // PCRE2 checks the whole segment on the first match only
    while (pos < seg.size() && status.ok()) {
      int rc = pcre2_match(im.regex.get(), subject, seg.size(), pos, utf_check, md, nullptr);
      utf_check = PCRE2_NO_UTF_CHECK;
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof msg);
        status = Status::error(std::string("tokenizer: pre-tokenizer failed: ") + reinterpret_cast<const char*>(msg));
        break;
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      const size_t start = ov[0], end = ov[1];
      if (end == start) {  // an empty match: step over one character, which joins the gap
        pos = std::min(seg.size(), start + utf8_len(uint8_t(seg[start])));
        continue;
      }
      if (start > emitted) encode_piece(im, seg.substr(emitted, start - emitted), work, out);
      encode_piece(im, seg.substr(start, end - start), work, out);
      emitted = pos = end;
    }
    if (status.ok() && emitted < seg.size()) encode_piece(im, seg.substr(emitted), work, out);
  };

  // Special tokens first, leftmost-longest; the text between them goes to the regex.
  const bool match_specials = allow_control || im.has_user_defined;
  size_t seg_start = 0;
  for (size_t i = 0; match_specials && i < text.size(); ++i) {
    const auto& candidates = im.specials_by_first_byte[uint8_t(text[i])];
    for (int32_t id : candidates) {
      const BpeVocab::Token& t = im.vocab.tokens[size_t(id)];
      if (t.kind == BpeVocab::Kind::control && !allow_control) continue;
      if (text.compare(i, t.bytes.size(), t.bytes) != 0) continue;
      split(text.substr(seg_start, i - seg_start));
      out.push_back(id);
      i += t.bytes.size() - 1;
      seg_start = i + 1;
      break;
    }
  }
  split(text.substr(seg_start));
  pcre2_match_data_free(md);
  return status;
}

std::string BpeModel::serialize() const {
  const BpeVocab& v = impl_->vocab;
  std::string s(kBlobMagic, 4);
  put_u32(s, kBlobVersion);
  s.push_back(char(v.pre));
  s.push_back(char(v.merge_rule));
  s.push_back(char(v.ignore_merges ? 1 : 0));
  s.push_back(0);
  put_u32(s, uint32_t(v.bos_id));
  put_u32(s, uint32_t(v.eos_id));
  const std::string_view pattern = v.pre == BpePreTokenizer::custom ? std::string_view(v.pattern) : "";
  put_u32(s, uint32_t(pattern.size()));
  s.append(pattern);
  put_u32(s, uint32_t(v.tokens.size()));
  for (const BpeVocab::Token& t : v.tokens) {
    s.push_back(char(t.kind));
    put_u32(s, uint32_t(t.bytes.size()));
  }
  for (const BpeVocab::Token& t : v.tokens) s.append(t.bytes);
  put_u32(s, uint32_t(v.merges.size()));
  for (auto [l, r] : v.merges) {
    put_u32(s, uint32_t(l));
    put_u32(s, uint32_t(r));
  }
  return s;
}

Result<BpeModel> BpeModel::deserialize(std::string_view blob) {
  BlobReader r{blob};
  const auto bad = [](const std::string& what) { return Status::error("BPE tokenizer blob: " + what); };
  if (r.take(4) != std::string_view(kBlobMagic, 4)) return bad("bad magic");
  if (uint32_t ver = r.u32(); ver != kBlobVersion)
    return bad("version " + std::to_string(ver) + " (this build reads " + std::to_string(kBlobVersion) + ")");
  BpeVocab v;
  const uint8_t pre = r.u8(), rule = r.u8(), flags = r.u8();
  r.u8();
  if (pre > uint8_t(BpePreTokenizer::custom)) return bad("unknown pre-tokenizer " + std::to_string(pre));
  if (rule > uint8_t(BpeMerges::by_id)) return bad("unknown merge rule " + std::to_string(rule));
  v.pre = BpePreTokenizer(pre);
  v.merge_rule = BpeMerges(rule);
  v.ignore_merges = flags & 1;
  v.bos_id = int32_t(r.u32());
  v.eos_id = int32_t(r.u32());
  v.pattern = std::string(r.take(r.u32()));
  const uint32_t n = r.u32();
  // Each token needs at least its 5-byte header: a count past that is a corrupt blob.
  if (r.failed || n > (blob.size() - r.pos) / 5) return bad("truncated");
  v.tokens.resize(n);
  std::vector<uint32_t> lengths(n);
  for (uint32_t i = 0; i < n; ++i) {
    v.tokens[i].kind = BpeVocab::Kind(r.u8());
    lengths[i] = r.u32();
  }
  for (uint32_t i = 0; i < n && !r.failed; ++i) v.tokens[i].bytes = std::string(r.take(lengths[i]));
  const uint32_t m = r.u32();
  if (r.failed || m > (blob.size() - r.pos) / 8) return bad("truncated");
  v.merges.resize(m);
  for (auto& [a, b] : v.merges) {
    a = int32_t(r.u32());
    b = int32_t(r.u32());
  }
  if (r.failed) return bad("truncated");
  if (r.pos != blob.size()) return bad(std::to_string(blob.size() - r.pos) + " stray bytes at the end");
  auto model = create(std::move(v));
  if (!model.ok()) return bad(model.message());
  return model;
}

}  // namespace lutra
