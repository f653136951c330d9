// `lutra eval`: runs given token ids through a model and writes every position's logits as a
// float32 NumPy array [n_ids, vocab], so they can be compared with another implementation's.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "apps/lutra/common.h"

using namespace lutra;
using namespace lutra::cli;

namespace {

// The ids: a JSON array of integers, given inline ("[1, 2]") or as a file holding one.
Result<std::vector<int32_t>> read_ids(const std::string& arg) {
  std::string text = arg;
  const size_t first = arg.find_first_not_of(" \t\r\n");
  const bool inline_json = first != std::string::npos && (arg[first] == '[' || arg[first] == '{');
  if (!inline_json) {
    std::ifstream in(arg, std::ios::binary);
    if (!in) return Status::error("cannot read ids file '" + arg + "'");
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return Status::error("--ids: expected a JSON array of token ids");
  std::vector<int32_t> ids;
  for (const auto& v : j) {
    // Read wide and range-checked: get<int32_t> would wrap 4294967298 to 2.
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
      return Status::error("--ids: every element must be a token id (a non-negative integer)");
    ids.push_back(int32_t(v.get<int64_t>()));
  }
  if (ids.empty()) return Status::error("--ids: the array is empty");
  return ids;
}

// NumPy .npy version 1.0: magic, header length, a Python-dict header padded with spaces to a
// multiple of 64 bytes and ending in '\n', then the raw little-endian data.
std::string npy_header_f32(size_t rows, size_t cols) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", " +
                     std::to_string(cols) + "), }";
  const size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict += '\n';
  std::string h = "\x93NUMPY\x01";
  h += '\0';
  h += char(dict.size() & 0xff);
  h += char(dict.size() >> 8);
  return h + dict;
}

// Written to PATH.tmp and renamed: an interrupted run never leaves a half-written file.
Status write_npy(const std::string& path, const float* data, size_t rows, size_t cols) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Status::error("cannot write '" + tmp + "'");
    const std::string h = npy_header_f32(rows, cols);
    out.write(h.data(), std::streamsize(h.size()));
    out.write(reinterpret_cast<const char*>(data), std::streamsize(rows * cols * sizeof(float)));
    if (!out.flush()) {
      std::remove(tmp.c_str());
      return Status::error("cannot write '" + tmp + "' (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Status::error("cannot rename '" + tmp + "' to '" + path + "'");
  }
  return ok_status();
}

}  // namespace

int cmd_eval(int argc, char** argv) {
  cxxopts::Options o("lutra eval", "Run token ids through a model and write their logits (.npy)");
  add_model_options(o);
  o.add_options("eval")
      ("ids", "token ids: a JSON array, inline or in a file (no BOS is added)", cxxopts::value<std::string>())
      ("logits-out", "write float32 logits [n_ids, vocab] here as .npy", cxxopts::value<std::string>());
  cxxopts::ParseResult r;
  int code;
  if (!parse(o, argc, argv, r, code)) return code;
  if (!r.count("ids") || !r.count("logits-out")) return fail("eval needs --ids and --logits-out (see --help)");
  auto ids = read_ids(r["ids"].as<std::string>());
  if (!ids.ok()) return fail(ids.message());
  auto model = load_model(r);
  if (!model.ok()) return fail(model.message());
  auto ctx = make_context(**model, r, /*logits_all=*/true);
  if (!ctx.ok()) return fail(ctx.message());

  // Batch by batch (the context keeps one batch's logits), copied out as they come.
  const size_t vocab = size_t((*model)->config().vocab_size), batch = size_t((*ctx)->n_batch());
  std::vector<float> logits(ids->size() * vocab);
  install_interrupt_handler();
  for (size_t at = 0; at < ids->size(); at += batch) {
    if (g_interrupted.load()) return fail("interrupted");
    const size_t n = std::min(batch, ids->size() - at);
    if (auto s = (*ctx)->eval(std::span<const int32_t>(ids->data() + at, n)); !s.ok()) return fail(s.message());
    for (size_t i = 0; i < n; ++i)
      std::copy((*ctx)->logits(i), (*ctx)->logits(i) + vocab, logits.data() + (at + i) * vocab);
  }
  if (auto s = write_npy(r["logits-out"].as<std::string>(), logits.data(), ids->size(), vocab); !s.ok())
    return fail(s.message());
  std::fprintf(stderr, "lutra: wrote logits [%zu, %zu] to %s\n", ids->size(), vocab,
               r["logits-out"].as<std::string>().c_str());
  return 0;
}
