#include "runtime/head.h"

#include <algorithm>
#include <limits>

namespace lutra {

size_t select_top(const float* logits, size_t begin, size_t end, size_t k, HeadCandidate* out) {
  // A heap whose front is the worst candidate kept (std's heap puts the "largest" under the
  // comparator first, and ranks_before calls the better one smaller). A NaN ranks last.
  if (k == 0) return 0;
  auto key = [](float v) { return v == v ? v : -std::numeric_limits<float>::infinity(); };
  size_t n = 0;
  size_t r = begin;
  for (; r < end && n < k; ++r) out[n++] = {key(logits[r]), int32_t(r)};
  std::make_heap(out, out + n, ranks_before);
  // Ids only grow from here, so a tie with the worst kept never displaces it: a strict > test.
  for (; r < end; ++r) {
    const float v = key(logits[r]);
    if (v > out[0].logit) {
      std::pop_heap(out, out + n, ranks_before);
      out[n - 1] = {v, int32_t(r)};
      std::push_heap(out, out + n, ranks_before);
    }
  }
  return n;
}

HeadCandidate kth_best(HeadCandidate* c, size_t n, size_t k) {
  std::nth_element(c, c + (k - 1), c + n, ranks_before);
  return c[k - 1];
}

}  // namespace lutra
