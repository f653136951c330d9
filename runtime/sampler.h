// Turns logits into the next token: repetition penalty, then greedy or
// top-k → top-p → min-p (on the untempered distribution) → temperature → a seeded draw,
// llama.cpp's default order. Buffers are sized once.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "runtime/status.h"

namespace lutra {

struct SamplerParams {
  float temperature = 0.8f;  // <= 0: greedy
  int top_k = 40;            // <= 0: whole vocabulary
  float top_p = 0.95f;       // 1: off
  float min_p = 0.05f;       // 0: off
  float repeat_penalty = 1.0f;  // 1: off (llama.cpp semantics: divide positive logits)
  int repeat_last_n = 64;
  uint64_t seed = 0;
};

// Refuses parameters outside their meaning (a penalty of 0 would divide by zero).
Status validate(const SamplerParams& p);

class Sampler {
 public:
  Sampler(size_t vocab_size, const SamplerParams& params);
  // `logits` may be modified (penalties). Records the token for the repetition penalty.
  int32_t sample(float* logits);
  void accept(int32_t token);  // a token chosen elsewhere (the prompt) for the penalty window
  void reset();

 private:
  float uniform();  // [0, 1), from xoshiro-style state seeded by splitmix64
  SamplerParams p_;
  size_t vocab_;
  uint64_t state_[2];
  std::vector<int32_t> recent_;  // ring of the last repeat_last_n tokens
  size_t recent_count_ = 0, recent_at_ = 0;
  struct Candidate {
    float logit;
    int32_t id;
  };
  std::vector<Candidate> cand_;
};

}  // namespace lutra
