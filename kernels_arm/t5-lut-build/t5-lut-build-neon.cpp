// Table build for t5 (WeightFormat::t5), NEON: one group of 5 activations per iteration. Each of
// its 16 vectors of 8 int16 entries T[i] = sum_j w_j(i) x_j is one multiply and four
// multiply-adds by a scalar against the constant ternary weight columns (0 past entry 121, so
// T[122..127] = 0; |T| <= 640, exact in int16); uzp1/uzp2 of each pair of vectors' bytes are 16
// entries of the low and high byte planes. Same bytes as lutra_t5_lut_build__scalar.
#include <arm_neon.h>

#include <array>

#include "kernels_common/t5-lut-columns.h"
#include "runtime/kernel_variants.h"

namespace lutra {

void lutra_t5_lut_build__neon(const int8_t* xq, size_t k, size_t group_begin, size_t group_end,
                              uint8_t* table) {
  for (size_t g = group_begin; g < group_end; g++) {
    int16_t x[5];
    for (size_t j = 0; j < 5; j++) x[j] = 5 * g + j < k ? xq[5 * g + j] : 0;  // zero padding
    uint8_t* lo = table + 256 * g;
    for (size_t c = 0; c < 128; c += 16) {  // entries c .. c + 15
      int16x8_t t[2];
      for (size_t h = 0; h < 2; h++) {
        t[h] = vmulq_n_s16(vld1q_s16(kT5Columns[0].data() + c + 8 * h), x[0]);
        for (size_t j = 1; j < 5; j++)
          t[h] = vmlaq_n_s16(t[h], vld1q_s16(kT5Columns[j].data() + c + 8 * h), x[j]);
      }
      const uint8x16_t b0 = vreinterpretq_u8_s16(t[0]), b1 = vreinterpretq_u8_s16(t[1]);
      vst1q_u8(lo + c, vuzp1q_u8(b0, b1));  // little-endian: even bytes are the low bytes
      vst1q_u8(lo + 128 + c, vuzp2q_u8(b0, b1));
    }
  }
}

}  // namespace lutra
