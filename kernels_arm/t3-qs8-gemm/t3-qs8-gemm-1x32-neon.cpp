// Ternary x int8 GEMM by table lookup (WeightFormat::t3), 1 token x 32 output rows per tile,
// NEON. Per block of 2 groups L = 0, 1 (40 packed bytes, 32 rows):
// - 16 index bytes per group: the low nibbles are rows 0..15, the high nibbles rows 16..31;
//   one tbl (vqtbl1q_u8) on the group's low-byte table and one on its high-byte table give
//   both bytes of T for 16 rows;
// - sign word S[h] (rows 16h..16h+15) duplicated into every 32-bit lane puts its byte q % 4 in
//   byte lane q, so one tst against 1 << (4L + q/4) gives the byte masks of a group's 16 rows;
//   eor with the mask turns both bytes of T into those of ~T = -T - 1 for negative groups; the
//   +1 per negative group is the tile's stored count neg[s], the starting value of the sums;
// - zip1/zip2 of the low and high bytes are the int16 values of rows 8j..8j+7, and both groups
//   of a block add into the same 4 int16 accumulators: 32 blocks (64 groups, |~T| <= 385,
//   sum < 2^15) before they widen into the int32 sums.
// The loops over row tiles and tokens are kernels_common/t3-qs8-gemm-tiles.h's.
#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "kernels_common/t3-qs8-gemm-tiles.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

// Bytes ahead in the weight stream (the next tiles too): far enough to cover DRAM latency.
constexpr size_t kPrefetch = 4096;
constexpr size_t kFlushBlocks = 32;  // int16 sums of at most 64 groups per lane

// Byte lane q: the bit of the sign word's byte q % 4 that holds row q of group L.
alignas(16) constexpr uint8_t kSignBits[2][16] = {
    {1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 8, 8, 8, 8},
    {16, 16, 16, 16, 32, 32, 32, 32, 64, 64, 64, 64, 128, 128, 128, 128}};

// out[s] = sum over groups of row s of the tile, one token.
inline void tile_dot(const uint8_t* tile, size_t blocks, const uint8_t* tab, int32_t out[32]) {
  const uint8x16_t nibble = vdupq_n_u8(0x0f);
  const uint8x16_t bit[2] = {vld1q_u8(kSignBits[0]), vld1q_u8(kSignBits[1])};
  int32x4_t acc[8];
  for (int j = 0; j < 8; j++) acc[j] = vld1q_s32(reinterpret_cast<const int32_t*>(tile) + 4 * j);  // neg[s]
  const uint8_t* blk = tile + 128;
  for (size_t p0 = 0; p0 < blocks; p0 += kFlushBlocks) {
    const size_t p1 = std::min(blocks, p0 + kFlushBlocks);
    int16x8_t a[4] = {vdupq_n_s16(0), vdupq_n_s16(0), vdupq_n_s16(0), vdupq_n_s16(0)};
    for (size_t p = p0; p < p1; p++) {
      const uint8_t* b = blk + 40 * p;
      __builtin_prefetch(b + kPrefetch);
      const uint8x16x2_t idx = vld1q_u8_x2(b);
      const uint8x16x4_t t = vld1q_u8_x4(tab + 64 * p);  // lo(2p) lo(2p+1) hi(2p) hi(2p+1)
      const uint32_t* sw = reinterpret_cast<const uint32_t*>(b + 32);  // ld1r: no alignment needed
      const uint8x16_t s[2] = {vreinterpretq_u8_u32(vld1q_dup_u32(sw)),
                               vreinterpretq_u8_u32(vld1q_dup_u32(sw + 1))};
      for (int L = 0; L < 2; L++) {
        const uint8x16_t i[2] = {vandq_u8(idx.val[L], nibble), vshrq_n_u8(idx.val[L], 4)};
        for (int h = 0; h < 2; h++) {
          const uint8x16_t neg = vtstq_u8(s[h], bit[L]);
          const uint8x16_t lo = veorq_u8(vqtbl1q_u8(t.val[L], i[h]), neg);
          const uint8x16_t hi = veorq_u8(vqtbl1q_u8(t.val[2 + L], i[h]), neg);
          a[2 * h] = vaddq_s16(a[2 * h], vreinterpretq_s16_u8(vzip1q_u8(lo, hi)));
          a[2 * h + 1] = vaddq_s16(a[2 * h + 1], vreinterpretq_s16_u8(vzip2q_u8(lo, hi)));
        }
      }
    }
    for (int j = 0; j < 4; j++) {
      acc[2 * j] = vaddw_s16(acc[2 * j], vget_low_s16(a[j]));
      acc[2 * j + 1] = vaddw_high_s16(acc[2 * j + 1], a[j]);
    }
  }
  for (int j = 0; j < 8; j++) vst1q_s32(out + 4 * j, acc[j]);
}

}  // namespace

void lutra_t3_qs8_gemm_1x32__neon(const WeightView& w, const uint8_t* tables,
                                  size_t table_stride, int32_t* acc, size_t m, size_t n_begin,
                                  size_t n_end) {
  t3_gemm_tiles(w, tables, table_stride, acc, m, n_begin, n_end,
                [](const uint8_t* tile, size_t blocks, const uint8_t* tab, int32_t* out) {
                  tile_dot(tile, blocks, tab, out);
                });
}

}  // namespace lutra
