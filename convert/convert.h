// The converter's entry points: checkpoints in, one lutra model file out (written atomically).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "runtime/status.h"

namespace lutra {

struct ConvertOptions {
  std::string tokenizer;      // separate tokenizer file (llama2.c tokenizer.bin; HF: a sentencepiece model)
  std::string weights;        // format of the linear layers; "" = the importer's default
  std::string embedding;      // format of the token embedding; "" = the source's precision
  // Format of the LM head's screen (convert/head_plan.h); "" = kDefaultHeadScreen, unless only
  // `embedding` is given (then the head multiplies the embedding, or untied, its format);
  // "tied": multiply token_embd itself.
  std::string head;
  std::string chat_template;  // "" = from the checkpoint, else plain
  uint64_t seed = 1;          // synthetic models
  // Called after each tensor is written (its name, bytes so far).
  std::function<void(const std::string& tensor, uint64_t bytes)> progress;
  // Importers that know their tensor count also call this, just before `progress`.
  std::function<void(size_t tensors_done, size_t tensors_total)> progress_count;
  const std::atomic<bool>* interrupt = nullptr;  // Ctrl-C: stop between tensors
};

// Detects the input's format (llama2.c .bin, GGUF file, Hugging Face folder) and converts it.
Status convert_model(const std::string& input, const std::string& output, const ConvertOptions& opts);

// Synthetic models with random weights, for tests ("tiny", "llama-tiny") and benchmarks
// ("bitnet-2b4t": the real BitNet b1.58 2B4T shape).
Status make_synthetic(const std::string& preset, const std::string& output, const ConvertOptions& opts);
const char* synthetic_presets();  // "tiny, llama-tiny, bitnet-2b4t"

// llama2.c checkpoints: the legacy .bin (7-int header) and the versioned export (v1 fp32,
// v2 int8 groups).
Status convert_llama2c(const std::string& input, const std::string& output, const ConvertOptions& opts);

// GGUF v2/v3 files of the llama, bitnet (llama.cpp) and bitnet-b1.58 (bitnet.cpp) architectures
// (convert/gguf_import.cpp).
Status convert_gguf(const std::string& input, const std::string& output, const ConvertOptions& opts);

// Hugging Face folders: config.json + model.safetensors (or shards with
// model.safetensors.index.json) + tokenizer. BitNetForCausalLM (BitNet b1.58 2B4T: bf16
// master weights, or the packed uint8 release), BitnetForCausalLM (1bitLLM) and
// LlamaForCausalLM.
Status convert_hf(const std::string& folder, const std::string& output, const ConvertOptions& opts);

}  // namespace lutra
