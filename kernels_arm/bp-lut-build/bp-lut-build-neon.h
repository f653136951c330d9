// The chunk entries both bp table builds (exact and fast) start from, NEON. Included only by
// their .cpp files; the anonymous namespace gives each file its own copy.
#pragma once

#include <arm_neon.h>

#include <cstdint>

namespace lutra {
namespace {

// The 16 int16 entries T[p] = sum_{e: bit e of p} x[e] of one chunk of 4 activations: val[0]
// holds p = 0..7 (x0..x2 broadcast, masked by the bit columns of p, summed), val[1] p = 8..15
// (the same plus x3).
inline int16x8x2_t chunk_entries(const int8_t* x) {
  // Bit e of p (p = 0..7) as an all-ones / all-zeros int16.
  static constexpr int16_t kBits[3][8] = {{0, -1, 0, -1, 0, -1, 0, -1},
                                          {0, 0, -1, -1, 0, 0, -1, -1},
                                          {0, 0, 0, 0, -1, -1, -1, -1}};
  const int16x8_t t01 = vaddq_s16(vandq_s16(vdupq_n_s16(x[0]), vld1q_s16(kBits[0])),
                                  vandq_s16(vdupq_n_s16(x[1]), vld1q_s16(kBits[1])));
  const int16x8_t t = vaddq_s16(t01, vandq_s16(vdupq_n_s16(x[2]), vld1q_s16(kBits[2])));
  return {{t, vaddq_s16(t, vdupq_n_s16(x[3]))}};
}

}  // namespace
}  // namespace lutra
