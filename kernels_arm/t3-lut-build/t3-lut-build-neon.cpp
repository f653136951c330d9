// Table build for t3 (WeightFormat::t3), NEON: one group of 3 activations per iteration. Its 16
// int16 entries T[i] = w0(i) x0 + w1(i) x1 + w2(i) x2 are two vectors of 8, each one multiply
// and two multiply-adds by a scalar against the constant ternary weight columns (columns are 0
// past entry 13, so T[14] = T[15] = 0; |T| <= 384, exact in int16); uzp1/uzp2 of the two
// vectors' bytes are the low and high byte planes. Same bytes as lutra_t3_lut_build__scalar.
#include <arm_neon.h>

#include "runtime/kernel_variants.h"

namespace lutra {

void lutra_t3_lut_build__neon(const int8_t* xq, size_t k, size_t group_begin, size_t group_end,
                              uint8_t* table) {
  // Weight j of magnitude pattern i (i < 14): digit j of i in base 3, minus 1.
  static constexpr int16_t kW[3][16] = {
      {-1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0},
      {-1, -1, -1, 0, 0, 0, 1, 1, 1, -1, -1, -1, 0, 0, 0, 0},
      {-1, 0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 0, 0}};
  int16x8_t w[3][2];
  for (int j = 0; j < 3; j++) w[j][0] = vld1q_s16(kW[j]), w[j][1] = vld1q_s16(kW[j] + 8);
  for (size_t g = group_begin; g < group_end; g++) {
    int16_t x[3];
    for (size_t j = 0; j < 3; j++) x[j] = 3 * g + j < k ? xq[3 * g + j] : 0;  // zero padding
    int16x8_t t[2];
    for (int h = 0; h < 2; h++) {
      t[h] = vmulq_n_s16(w[0][h], x[0]);
      t[h] = vmlaq_n_s16(t[h], w[1][h], x[1]);
      t[h] = vmlaq_n_s16(t[h], w[2][h], x[2]);
    }
    const uint8x16_t b0 = vreinterpretq_u8_s16(t[0]), b1 = vreinterpretq_u8_s16(t[1]);
    uint8_t* lo = table + (g / 2) * 64 + (g % 2) * 16;
    vst1q_u8(lo, vuzp1q_u8(b0, b1));       // little-endian: even bytes are the low bytes
    vst1q_u8(lo + 32, vuzp2q_u8(b0, b1));
  }
}

}  // namespace lutra
