// Exact table build for bp (WeightFormat::bp), NEON: per chunk of 4 activations, its 16 int16
// entries (bp-lut-build-neon.h); uzp1/uzp2 on the bytes split them into the low and high byte
// planes of the quad. The group sums follow in scalar code. Same bytes as
// lutra_bp_lut_build__scalar.
#include "kernels_arm/bp-lut-build/bp-lut-build-neon.h"

#include <cstring>

#include "runtime/kernel_variants.h"

namespace lutra {

void lutra_bp_lut_build__neon(const int8_t* xq, size_t k, size_t group, size_t group_begin,
                              size_t group_end, uint8_t* table) {
  const size_t gpr = k / group;
  uint8_t* xsums = table + k / 16 * 128;
  for (size_t g = group_begin; g < group_end; g++) {
    int32_t xsum = 0;
    for (size_t c = g * group / 4; c < (g + 1) * group / 4; c++) {
      const int8_t* x = xq + 4 * c;
      const int16x8x2_t t = chunk_entries(x);
      const uint8x16_t a = vreinterpretq_u8_s16(t.val[0]), b = vreinterpretq_u8_s16(t.val[1]);
      uint8_t* lo = table + c / 4 * 128 + c % 4 * 16;
      vst1q_u8(lo, vuzp1q_u8(a, b));       // low bytes of entries 0..15
      vst1q_u8(lo + 64, vuzp2q_u8(a, b));  // high bytes
      xsum += x[0] + x[1] + x[2] + x[3];
    }
    std::memcpy(xsums + 4 * g, &xsum, 4);
    std::memset(xsums + 4 * gpr + 4 * g, 0, 4);
  }
}

}  // namespace lutra
