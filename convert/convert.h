// The converter's entry points: checkpoints in, one lutra model file out (written atomically).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "runtime/status.h"

namespace lutra {

struct ConvertOptions {
  std::string tokenizer;      // separate tokenizer file (llama2.c tokenizer.bin / tok*.bin)
  std::string weights;        // format of the linear layers; "" = the importer's default
  std::string embedding;      // format of the token embedding (and tied head); "" = default
  std::string chat_template;  // "" = from the checkpoint, else plain
  uint64_t seed = 1;          // synthetic models
  // Called after each tensor is written (its name, bytes so far).
  std::function<void(const std::string& tensor, uint64_t bytes)> progress;
  const std::atomic<bool>* interrupt = nullptr;  // Ctrl-C: stop between tensors
};

// Detects the input's format (llama2.c .bin, GGUF; Hugging Face folders are refused with a
// message saying so, until their importer lands) and converts it.
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

}  // namespace lutra
