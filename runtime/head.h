// The two-stage LM head. The head is the largest matrix a decode step reads (2B4T: 128256 x
// 2560), so it is stored as a low-bit screen (`output`, convert/head_plan.h) and multiplied with
// int8 activations for every vocabulary row; then the `candidates` rows with the best screen
// logits (ties: the lower id) are rescored in float from the exact rows (`output_exact`, or the
// tied embedding at the source's precision), costing a few hundred rows per token.
//
// What the sampler sees: every candidate's logit is exactly what a float head of the exact
// rows gives (the same kernel and order: bit-identical to converting with --head f32 / f16
// where the exact rows are stored so); every other token keeps its screen logit, and softmax
// (sampling, perplexity) normalizes over the whole vocabulary as given. The non-candidates are
// below the candidates' screen logits, so their share of the distribution is small and greedy
// or top-k/top-p sampling choose among exact logits unless the screen missed a token (its miss
// rate is measured in perf/RESULTS.md, "the two-stage head"). The selection is a total order
// on (logit, id), so the rescored set, and the logits, are the same for every thread count.
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/weights.h"

namespace lutra {

// Candidates rescored per token by default (the head study chose it: perf/RESULTS.md).
inline constexpr int kDefaultHeadCandidates = 256;

inline bool is_float_format(WeightFormat f) { return f == WeightFormat::f32 || f == WeightFormat::f16; }
// Whether a head in format `head` can have its candidates rescored from rows in format `exact`:
// the exact rows need a float GEMV (f32, f16, bq), and a float head needs no rescoring.
inline bool can_rescore_from(WeightFormat exact, WeightFormat head) {
  return (is_float_format(exact) || exact == WeightFormat::bq) && !is_float_format(head);
}

struct HeadCandidate {
  float logit;
  int32_t id;
};
// The selection's total order: a higher logit first, then a lower id.
inline bool ranks_before(const HeadCandidate& a, const HeadCandidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

// The min(k, end - begin) best of logits[begin, end) (ids are the indices), unordered, into
// out; returns how many. One pass with a heap of k: allocates nothing.
size_t select_top(const float* logits, size_t begin, size_t end, size_t k, HeadCandidate* out);
// The k-th best (1-based) of the n candidates c (1 <= k <= n); reorders c.
HeadCandidate kth_best(HeadCandidate* c, size_t n, size_t k);

}  // namespace lutra
