// Ternary x int8 GEMM by table lookup (WeightFormat::t5), 1 token x up to four 64-row tiles per
// step, NEON. Per group of 5 weights and 16 rows (one 16-byte quarter L of the tile's codes):
// - the 128-entry low and high byte tables are two 64-byte halves each (4 registers per half);
//   tbl (vqtbl4q_u8) on the first half with the index (code & 127) gives entries 0..63 and 0
//   for indices >= 64, then tbx (vqtbx4q_u8) on the second half with index ^ 64 fills in
//   entries 64..127 and leaves the others (their index ^ 64 is >= 64: out of range);
// - bit 7 of the code (the sign) is a byte mask by one compare; eor with it turns both bytes of
//   T into those of ~T = -T - 1 for negative groups; the +1 per negative group is the tile's
//   stored count neg[s], the starting value of the sums;
// - zip1/zip2 of the low and high bytes are the int16 values of rows 8L..8L+7 and
//   32+8L..32+8L+7 (the packer's row order), summed in int16 over 48 groups (|~T| <= 641) and
//   then widened into the int32 sums.
// A tile's 8 int16 sums and the 16 table registers fill the register file, so a step's tiles
// run one after the other over each range of 48 groups, whose 12 KiB of tables stay in L1.
// The loops over row tiles and tokens are kernels_common/t5-qs8-gemm-tiles.h's.
#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "kernels_common/t5-qs8-gemm-tiles.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

constexpr size_t kFlushGroups = 48;     // int16 sums of at most 48 groups per row
constexpr size_t kPrefetchGroups = 32;  // 2 KiB ahead in each tile's stream

struct Neon {
  template <int R, bool kStreaming>
  static void dot(const uint8_t* tile, size_t tile_bytes, size_t groups, size_t g_begin,
                  size_t g_end, const uint8_t* tab, int32_t* out);
};

template <int R, bool kStreaming>
inline void Neon::dot(const uint8_t* tile, size_t tile_bytes, size_t groups, size_t g_begin,
                      size_t g_end, const uint8_t* tab, int32_t* out) {
  const uint8x16_t low7 = vdupq_n_u8(0x7f), bit6 = vdupq_n_u8(0x40);
  if (g_begin == 0)
    for (int r = 0; r < R; r++) std::memcpy(out + 64 * r, tile + size_t(r) * tile_bytes, 256);  // neg[s]
  for (size_t g0 = g_begin; g0 < g_end; g0 += kFlushGroups) {
    const size_t g1 = std::min(g_end, g0 + kFlushGroups);
    for (int r = 0; r < R; r++) {
      const uint8_t* codes = tile + size_t(r) * tile_bytes + 256;
      int16x8_t a[4][2];
      for (int L = 0; L < 4; L++) a[L][0] = a[L][1] = vdupq_n_s16(0);
      for (size_t g = g0; g < g1; g++) {
        const uint8_t* t = tab + 256 * g;
        const uint8x16x4_t lo0 = vld1q_u8_x4(t), lo1 = vld1q_u8_x4(t + 64);
        const uint8x16x4_t hi0 = vld1q_u8_x4(t + 128), hi1 = vld1q_u8_x4(t + 192);
        const uint8_t* b = codes + 64 * g;
        if constexpr (kStreaming) {
          // Ahead in this tile, or past its end into the same stream of the next step's tiles.
          const size_t ahead = 64 * kPrefetchGroups + (g + kPrefetchGroups >= groups ? (R - 1) * tile_bytes + 256 : 0);
          __builtin_prefetch(b + ahead);
        }
        for (int L = 0; L < 4; L++) {
          const uint8x16_t c = vld1q_u8(b + 16 * L);  // one at a time: the tables fill the registers
          const uint8x16_t i0 = vandq_u8(c, low7), i1 = veorq_u8(i0, bit6);
          const uint8x16_t neg = vreinterpretq_u8_s8(vshrq_n_s8(vreinterpretq_s8_u8(c), 7));
          const uint8x16_t lo = veorq_u8(vqtbx4q_u8(vqtbl4q_u8(lo0, i0), lo1, i1), neg);
          const uint8x16_t hi = veorq_u8(vqtbx4q_u8(vqtbl4q_u8(hi0, i0), hi1, i1), neg);
          a[L][0] = vaddq_s16(a[L][0], vreinterpretq_s16_u8(vzip1q_u8(lo, hi)));
          a[L][1] = vaddq_s16(a[L][1], vreinterpretq_s16_u8(vzip2q_u8(lo, hi)));
        }
      }
      for (int L = 0; L < 4; L++)
        for (int half = 0; half < 2; half++) {  // rows 8L.. (half 0), 32 + 8L.. (half 1)
          int32_t* o = out + 64 * r + 32 * half + 8 * L;
          vst1q_s32(o, vaddw_s16(vld1q_s32(o), vget_low_s16(a[L][half])));
          vst1q_s32(o + 4, vaddw_high_s16(vld1q_s32(o + 4), a[L][half]));
        }
    }
  }
}

}  // namespace

void lutra_t5_qs8_gemm_1x256__neon(const WeightView& w, const uint8_t* tables,
                                   size_t table_stride, int32_t* acc, size_t m, size_t n_begin,
                                   size_t n_end) {
  t5_gemm_tiles<Neon>(w, tables, table_stride, acc, m, n_begin, n_end);
}

}  // namespace lutra
