// Bit-serial table-lookup GEMM, 1 token x 32 rows per tile, NEON: the tile dot of both modes,
// chosen by the template argument kFast (exact int16 tables or fast int8 tables). Included only
// by the two NEON variants' .cpp files; the anonymous namespace gives each file its own copy.
// The row-tile loop is the ISA-neutral one of kernels_common/bp-qs8-gemm-tiles.h.
//
// Per half quad (chunks A, B) and plane pair P, one 64-byte block holds both chunks' nibbles of
// 32 rows x 2 planes (byte 2q + d: row q, plane 2P + d), as four 16-byte vectors of 8 rows each.
// vqtbl1q_u8 looks up each chunk's 16-entry table with the low (A) or high (B) nibbles; then per
// row the two planes' entries, in adjacent bytes, are weighed 1 and 2 and summed into int16:
// a pairwise add-long (e0 + e1, uadalp/sadalp) plus the odd byte once more by a shift-right-
// accumulate of the 16-bit lane by 8 (usra/ssra). Each pair P is a pass over the group of its
// own, into int16 accumulators (both pairs at once would spill registers), weighed by 4^P when
// they widen to int32:
// - exact: each chunk has a low-byte and a high-byte table (128 bytes a quad); the low bytes
//   sum unsigned, the high bytes signed, and the group's value is lo + 256 hi. Per group at most
//   64 chunks x 3 x 255 < 2^16 (group <= 256): no flush within a group.
// - fast: one int8 table per chunk (64 bytes a quad); 64 x 3 x 127 < 2^15.
// Per group the exact int32 acc_g meets the f16 scales (and zeros) in the reference's float
// steps (separate mul, sub, mul, add; the build has -ffp-contract=off), four rows per vector:
// bit-identical to the scalar reference of the mode.
#pragma once

#include <arm_neon.h>

#include "kernels_common/bp-qs8-gemm-tiles.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

template <bool kFast>
inline void tile_dot(const WeightView& w, const uint8_t* tile, const uint8_t* tab, float xs,
                     float out[32]) {
  constexpr size_t kQuadBytes = kFast ? 64 : 128;  // table bytes of 4 chunks
  const uint8x16_t nibble = vdupq_n_u8(0x0f);
  const size_t group = size_t(w.group), gpr = w.groups_per_row(), quads = group / 16;
  const size_t pairs = bp_plane_pairs(w.bits), gbytes = bp_group_bytes(w.bits, w.group, w.asymmetric);
  const int32_t* xsums = reinterpret_cast<const int32_t*>(tab + w.k / 16 * kQuadBytes);
  const float* tscales = reinterpret_cast<const float*>(xsums + gpr);  // fast mode only
  const float32x4_t zsym = vdupq_n_f32(float(1u << (w.bits - 1)));
  float32x4_t sum[8];  // rows 4v .. 4v+3
  for (float32x4_t& s : sum) s = vdupq_n_f32(0.0f);
  const uint8_t* gp = tile;
  for (size_t g = 0; g < gpr; g++, gp += gbytes) {
    const uint8_t* gtab = tab + g * quads * kQuadBytes;
    int32x4_t acc[8];  // rows 4v .. 4v+3
    for (int32x4_t& a : acc) a = vdupq_n_s32(0);
    // One pass over the group per plane pair: 4 (fast) or 8 (exact) int16 accumulators stay in
    // registers, where both pairs at once would spill.
    for (size_t P = 0; P < pairs; P++) {
      // [s]: rows 8s .. 8s+7. lo: the exact low bytes (unsigned); hi: the exact high bytes or
      // the fast entries (signed).
      [[maybe_unused]] uint16x8_t lo[4] = {vdupq_n_u16(0), vdupq_n_u16(0), vdupq_n_u16(0), vdupq_n_u16(0)};
      int16x8_t hi[4] = {vdupq_n_s16(0), vdupq_n_s16(0), vdupq_n_s16(0), vdupq_n_s16(0)};
      const uint8_t* blk = gp + (w.asymmetric ? 128 : 64) + 64 * P;
      for (const uint8_t* qu = gtab; qu != gtab + quads * kQuadBytes; qu += kQuadBytes) {
        for (size_t h = 0; h < 2; h++, blk += 64 * pairs) {  // half quads
          const uint8_t* qt = qu + 32 * h;
          const uint8x16_t loA = vld1q_u8(qt), loB = vld1q_u8(qt + 16);
          [[maybe_unused]] uint8x16_t hiA, hiB;
          if constexpr (!kFast) hiA = vld1q_u8(qt + 64), hiB = vld1q_u8(qt + 80);
          const uint8x16x4_t idx = vld1q_u8_x4(blk);
          for (int s = 0; s < 4; s++) {
            const uint8x16_t ia = vandq_u8(idx.val[s], nibble), ib = vshrq_n_u8(idx.val[s], 4);
            const uint8x16_t ta = vqtbl1q_u8(loA, ia), tb = vqtbl1q_u8(loB, ib);
            if constexpr (kFast) {  // signed int8 entries
              const int8x16_t fa = vreinterpretq_s8_u8(ta), fb = vreinterpretq_s8_u8(tb);
              hi[s] = vpadalq_s8(hi[s], fa);
              hi[s] = vsraq_n_s16(hi[s], vreinterpretq_s16_s8(fa), 8);
              hi[s] = vpadalq_s8(hi[s], fb);
              hi[s] = vsraq_n_s16(hi[s], vreinterpretq_s16_s8(fb), 8);
            } else {  // unsigned low bytes, signed high bytes
              lo[s] = vpadalq_u8(lo[s], ta);
              lo[s] = vsraq_n_u16(lo[s], vreinterpretq_u16_u8(ta), 8);
              lo[s] = vpadalq_u8(lo[s], tb);
              lo[s] = vsraq_n_u16(lo[s], vreinterpretq_u16_u8(tb), 8);
              const int8x16_t ha = vreinterpretq_s8_u8(vqtbl1q_u8(hiA, ia));
              const int8x16_t hb = vreinterpretq_s8_u8(vqtbl1q_u8(hiB, ib));
              hi[s] = vpadalq_s8(hi[s], ha);
              hi[s] = vsraq_n_s16(hi[s], vreinterpretq_s16_s8(ha), 8);
              hi[s] = vpadalq_s8(hi[s], hb);
              hi[s] = vsraq_n_s16(hi[s], vreinterpretq_s16_s8(hb), 8);
            }
          }
        }
      }
      // acc += 4^P * (the pair's sums): fast entries, or exact lo + 256 hi, widened to int32.
      const int32x4_t shift = vdupq_n_s32(int32_t(2 * P));
      for (int v = 0; v < 8; v++) {
        const int s = v / 2;
        int32x4_t t;
        if constexpr (kFast) {
          t = v % 2 ? vmovl_high_s16(hi[s]) : vmovl_s16(vget_low_s16(hi[s]));
        } else {
          const uint32x4_t l = v % 2 ? vmovl_high_u16(lo[s]) : vmovl_u16(vget_low_u16(lo[s]));
          t = vaddq_s32(vreinterpretq_s32_u32(l), v % 2 ? vshll_high_n_s16(hi[s], 8) : vshll_n_s16(vget_low_s16(hi[s]), 8));
        }
        acc[v] = vaddq_s32(acc[v], vshlq_s32(t, shift));
      }
    }
    // sum += s * (ts * float(acc) - z * float(xsum)), the reference's operations; the exact
    // mode has no ts.
    const float xsumf = float(xsums[g]);
    for (int v = 0; v < 8; v++) {
      const float32x4_t sc = vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(gp + 8 * v)));
      const float32x4_t z = w.asymmetric ? vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(gp + 64 + 8 * v))) : zsym;
      float32x4_t a = vcvtq_f32_s32(acc[v]);
      if constexpr (kFast) a = vmulq_n_f32(a, tscales[g]);
      sum[v] = vaddq_f32(sum[v], vmulq_f32(sc, vsubq_f32(a, vmulq_n_f32(z, xsumf))));
    }
  }
  const float32x4_t d = vdupq_n_f32(xs);
  for (int v = 0; v < 8; v++) vst1q_f32(out + 4 * v, vdivq_f32(sum[v], d));
}

// The whole GEMM (GemmBpFn) of the mode.
template <bool kFast>
inline void bp_gemm_1x32_neon(const WeightView& w, const uint8_t* tables, size_t table_stride,
                              const float* xs, float* y, size_t m, size_t n_begin, size_t n_end) {
  bp_gemm_tiles(w, tables, table_stride, xs, y, m, n_begin, n_end,
                [&w](const uint8_t* tile, const uint8_t* tab, float x, float* out) { tile_dot<kFast>(w, tile, tab, x, out); });
}

}  // namespace
}  // namespace lutra
