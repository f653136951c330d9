// Tokenizer benchmarks: encoding WikiText-2's test split (1.3 MB) with each tokenizer kind, and
// building the LLaMA-3 BPE vocabulary from its model-file blob (what loading a 2B4T model
// costs). The files are the shared test data (LUTRA_TEST_DATA, else ../shared/data); a
// benchmark whose file is absent is skipped with a message. Counter: bytes = text bytes/s.
#include <benchmark/benchmark.h>
#include <sentencepiece_processor.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>

#include "convert/bpe_import.h"
#include "convert/gguf.h"
#include "runtime/tokenizer.h"

using namespace lutra;

namespace {

std::filesystem::path data_file(const char* name) {
  const char* env = std::getenv("LUTRA_TEST_DATA");
  return std::filesystem::path(env && *env ? env : "../shared/data") / name;
}

std::optional<std::string> read_file(const char* name) {
  std::ifstream f(data_file(name), std::ios::binary);
  if (!f) return std::nullopt;
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::optional<Tokenizer> llama3() {
  auto v = read_tiktoken_bpe(data_file("llama3_tokenizer.model").string(), llama3_special_tokens(),
                             BpePreTokenizer::llama3);
  if (!v.ok()) return std::nullopt;
  auto t = Tokenizer::from_bpe(std::move(v).value());
  return t.ok() ? std::optional<Tokenizer>(std::move(t).value()) : std::nullopt;
}

std::optional<Tokenizer> gpt2() {
  auto g = GgufFile::open(data_file("ggml-vocab-gpt-2.gguf").string());
  if (!g.ok()) return std::nullopt;
  auto v = bpe_vocab_from_gguf(**g);
  if (!v.ok()) return std::nullopt;
  auto t = Tokenizer::from_bpe(std::move(v).value());
  return t.ok() ? std::optional<Tokenizer>(std::move(t).value()) : std::nullopt;
}

void encode_wikitext(benchmark::State& state, const std::optional<Tokenizer>& tok) {
  static const std::optional<std::string> text = read_file("wikitext2-test-crlf.txt");
  if (!tok || !text) {
    state.SkipWithError("test data missing (set LUTRA_TEST_DATA)");
    return;
  }
  size_t n = 0;
  for (auto _ : state) {
    auto ids = tok->encode_checked(*text, false);
    n = ids.ok() ? ids->size() : 0;
    benchmark::DoNotOptimize(ids);
  }
  state.counters["tokens"] = double(n);
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text->size()));
}

void BM_encode_wikitext_llama3_bpe(benchmark::State& state) {
  static const auto tok = llama3();
  encode_wikitext(state, tok);
}

void BM_encode_wikitext_gpt2_bpe(benchmark::State& state) {
  static const auto tok = gpt2();
  encode_wikitext(state, tok);
}

void BM_encode_wikitext_llama2_spm(benchmark::State& state) {
  static const std::optional<Tokenizer> tok = [] () -> std::optional<Tokenizer> {
    sentencepiece::SentencePieceProcessor sp;
    if (!sp.Load(data_file("llama2_tokenizer.model").string()).ok()) return std::nullopt;
    auto t = Tokenizer::from_spm_proto(sp.serialized_model_proto());
    return t.ok() ? std::optional<Tokenizer>(std::move(t).value()) : std::nullopt;
  }();
  encode_wikitext(state, tok);
}

void BM_load_llama3_bpe_from_blob(benchmark::State& state) {
  static const auto tok = llama3();
  if (!tok) {
    state.SkipWithError("test data missing (set LUTRA_TEST_DATA)");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(Tokenizer::from_bpe_blob(tok->bpe_blob()));
}

}  // namespace

BENCHMARK(BM_encode_wikitext_llama3_bpe)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_encode_wikitext_gpt2_bpe)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_encode_wikitext_llama2_spm)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_load_llama3_bpe_from_blob)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
