#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>

#include "runtime/float_order.h"

namespace lutra {

namespace {
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
}  // namespace

Status validate(const SamplerParams& p) {
  if (!(p.temperature >= 0)) return Status::error("temperature must be >= 0");
  if (!(p.top_p > 0 && p.top_p <= 1)) return Status::error("top-p must be in (0, 1]");
  if (!(p.min_p >= 0 && p.min_p <= 1)) return Status::error("min-p must be in [0, 1]");
  if (!(p.repeat_penalty > 0)) return Status::error("repeat-penalty must be > 0");
  if (p.repeat_last_n < 0 || p.repeat_last_n > (1 << 20)) return Status::error("repeat-last-n must be in [0, 1048576]");
  return ok_status();
}

Sampler::Sampler(size_t vocab_size, const SamplerParams& params)
    : p_(params), vocab_(vocab_size), recent_(size_t(std::max(0, params.repeat_last_n))), cand_(vocab_size) {
  reset();
}

void Sampler::reset() {
  uint64_t s = p_.seed;
  state_[0] = splitmix64(s);
  state_[1] = splitmix64(s);
  recent_count_ = recent_at_ = 0;
}

float Sampler::uniform() {
  // xorshift128+
  uint64_t s1 = state_[0];
  const uint64_t s0 = state_[1];
  const uint64_t result = s0 + s1;
  state_[0] = s0;
  s1 ^= s1 << 23;
  state_[1] = s1 ^ s0 ^ (s1 >> 18) ^ (s0 >> 5);
  return float(result >> 40) * (1.0f / 16777216.0f);
}

void Sampler::accept(int32_t token) {
  if (recent_.empty() || token < 0 || size_t(token) >= vocab_) return;
  recent_[recent_at_] = token;
  recent_at_ = (recent_at_ + 1) % recent_.size();
  recent_count_ = std::min(recent_count_ + 1, recent_.size());
}

int32_t Sampler::sample(float* logits) {
  if (p_.repeat_penalty != 1.0f)
    for (size_t i = 0; i < recent_count_; ++i) {
      float& l = logits[recent_[i]];
      // Each distinct token once: penalizing twice would depend on the window's content.
      bool seen_before = false;
      for (size_t j = 0; j < i; ++j) seen_before |= recent_[j] == recent_[i];
      if (!seen_before) l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
    }

  int32_t chosen;
  if (p_.temperature <= 0.0f) {
    chosen = int32_t(std::max_element(logits, logits + vocab_) - logits);
  } else {
    for (size_t i = 0; i < vocab_; ++i) cand_[i] = {logits[i], int32_t(i)};
    size_t n = vocab_;
    auto by_logit = [](const Candidate& a, const Candidate& b) {
      return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
    };
    if (p_.top_k > 0 && size_t(p_.top_k) < n) {
      std::nth_element(cand_.begin(), cand_.begin() + p_.top_k, cand_.begin() + long(n), by_logit);
      n = size_t(p_.top_k);
    }
    std::sort(cand_.begin(), cand_.begin() + long(n), by_logit);
    // top-p and min-p judge the model's own distribution (temperature 1), as llama.cpp does;
    // the temperature then shapes the draw among the survivors.
    // exp_canonical, not libm's expf (which may differ by architecture or FMA ifunc): the same
    // draws everywhere.
    const float max_logit = cand_[0].logit;
    float sum = 0;
    for (size_t i = 0; i < n; ++i) sum += exp_canonical(cand_[i].logit - max_logit);
    if (p_.top_p < 1.0f) {
      float cum = 0;
      for (size_t i = 0; i < n; ++i) {
        cum += exp_canonical(cand_[i].logit - max_logit) / sum;
        if (cum >= p_.top_p) {
          n = i + 1;
          break;
        }
      }
    }
    if (p_.min_p > 0.0f) {
      // p_i >= min_p * p_max  <=>  logit_i >= logit_max + log(min_p)
      const float floor = max_logit + float(std::log(double(p_.min_p)));  // double log, rounded once: the same on every machine
      size_t keep = 1;
      while (keep < n && cand_[keep].logit >= floor) ++keep;
      n = keep;
    }
    // The logit field now holds unnormalized tempered probabilities.
    for (size_t i = 0; i < n; ++i) cand_[i].logit = exp_canonical((cand_[i].logit - max_logit) / p_.temperature);
    float total = 0;
    for (size_t i = 0; i < n; ++i) total += cand_[i].logit;
    float r = uniform() * total;
    chosen = cand_[n - 1].id;
    for (size_t i = 0; i < n; ++i) {
      r -= cand_[i].logit;
      if (r < 0) {
        chosen = cand_[i].id;
        break;
      }
    }
  }
  accept(chosen);
  return chosen;
}

}  // namespace lutra
