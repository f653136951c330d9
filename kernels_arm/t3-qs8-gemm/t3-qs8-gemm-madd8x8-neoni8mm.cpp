// t3 x int8 GEMM by multiply-add (prefill), NEON with the int8 matrix multiply (decode and loops:
// t3-qs8-gemm-madd-neon-tiles.h). smmla (vmmlaq_s32) multiplies 2 tokens x 8 columns by 2 rows x
// 8 columns into a 2x2 block of int32 sums: 32 products per instruction where sdot does 16.
// - Each decoded tile is rearranged once so that 8 columns (an oct, quads 2o and 2o+1) of a row
//   pair are one 16-byte operand: zip1/zip2 of the two quads' 32-bit lanes (4 rows each) give
//   [row 2j: 8 columns | row 2j+1: 8 columns] for 2 row pairs.
// - The activations are prepared once per call in the same form: per token pair, per oct, 16
//   bytes [token 2p: 8 columns | token 2p+1: 8 columns]; an odd last token pairs with zeros.
// Register tile: 8 tokens x 8 rows = 4 token pairs x 4 row pairs, 16 accumulators.
#include "kernels_arm/t3-qs8-gemm/t3-qs8-gemm-madd-neon-tiles.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

#define LUTRA_UNROLL _Pragma("GCC unroll 16")

constexpr int kPairs = 4;  // token pairs per register tile

// out[2p + i][8g + r] for P token pairs (pair p at xp + p * pair_bytes) and the tile's 4 groups
// g of 8 rows.
template <int P>
inline void pair_tile(const int8_t* buf, size_t octs, const int8_t* xp, size_t pair_bytes,
                      int32_t (*out)[32]) {
  for (int g = 0; g < 4; g++) {
    int32x4_t acc[P][4];
    LUTRA_UNROLL for (int p = 0; p < P; p++)
      LUTRA_UNROLL for (int q = 0; q < 4; q++) acc[p][q] = vdupq_n_s32(0);
    for (size_t o = 0; o < octs; o++) {
      int8x16_t x[P];
      LUTRA_UNROLL for (int p = 0; p < P; p++) x[p] = vld1q_s8(xp + p * pair_bytes + 16 * o);
      const int8x16x4_t w = vld1q_s8_x4(buf + 256 * o + 64 * g);  // row pairs 4g..4g+3
      LUTRA_UNROLL for (int p = 0; p < P; p++)
        LUTRA_UNROLL for (int q = 0; q < 4; q++) acc[p][q] = vmmlaq_s32(acc[p][q], x[p], w.val[q]);
    }
    // acc[p][q] lanes: (token 2p, row 2q), (2p, 2q+1), (2p+1, 2q), (2p+1, 2q+1) of the group.
    LUTRA_UNROLL for (int p = 0; p < P; p++)
      LUTRA_UNROLL for (int q = 0; q < 4; q++) {
        vst1_s32(out[2 * p] + 8 * g + 2 * q, vget_low_s32(acc[p][q]));
        vst1_s32(out[2 * p + 1] + 8 * g + 2 * q, vget_high_s32(acc[p][q]));
      }
  }
}

// All pairs of a chunk, P at a time (the last ones fewer).
template <int P>
inline void all_pairs(const int8_t* buf, size_t octs, const int8_t* xp, size_t pair_bytes,
                      int32_t (*out)[32], size_t pairs) {
  size_t p = 0;
  for (; p + P <= pairs; p += P) pair_tile<P>(buf, octs, xp + p * pair_bytes, pair_bytes, out + 2 * p);
  if constexpr (P > 1) {
    if (p < pairs) all_pairs<P - 1>(buf, octs, xp + p * pair_bytes, pair_bytes, out + 2 * p, pairs - p);
  }
}

#undef LUTRA_UNROLL

struct MatMul {
  static constexpr size_t kTokens = 2 * kPairs;
  static size_t token_bytes(size_t quads) { return 4 * quads; }  // a pair takes twice this
  static void prepare(const int8_t* xq, size_t k, size_t m, size_t quads, int8_t* xp) {
    const size_t bytes = token_bytes(quads);  // >= k, a multiple of 16
    thread_local std::vector<int8_t> row;
    row.assign(2 * bytes, 0);
    for (size_t p = 0; p < (m + 1) / 2; p++) {
      for (size_t i = 0; i < 2; i++) {
        const size_t token = 2 * p + i;
        if (token < m) std::memcpy(row.data() + i * bytes, xq + token * k, k);
        std::memset(row.data() + i * bytes + (token < m ? k : 0), 0, bytes - (token < m ? k : 0));
      }
      int8_t* dst = xp + 2 * p * bytes;
      for (size_t o = 0; o < bytes / 8; o++)
        vst1q_s8(dst + 16 * o, vcombine_s8(vld1_s8(row.data() + 8 * o), vld1_s8(row.data() + bytes + 8 * o)));
    }
  }
  // Per oct o (256 bytes: quads 2o and 2o+1), row pair j at 16j.
  static void relayout(int8_t* buf, size_t quads) {
    for (size_t o = 0; o < quads / 2; o++) {
      int32x4_t a[8], b[8];
      for (int v = 0; v < 8; v++) {  // rows 4v..4v+3 of each quad
        a[v] = vld1q_s32(reinterpret_cast<const int32_t*>(buf + 256 * o + 16 * v));
        b[v] = vld1q_s32(reinterpret_cast<const int32_t*>(buf + 256 * o + 128 + 16 * v));
      }
      for (int v = 0; v < 8; v++) {
        vst1q_s32(reinterpret_cast<int32_t*>(buf + 256 * o + 32 * v), vzip1q_s32(a[v], b[v]));
        vst1q_s32(reinterpret_cast<int32_t*>(buf + 256 * o + 32 * v + 16), vzip2q_s32(a[v], b[v]));
      }
    }
  }
  static void tokens(const int8_t* buf, size_t quads, const int8_t* xp, size_t stride,
                     int32_t (*out)[32], size_t mc) {
    all_pairs<kPairs>(buf, quads / 2, xp, 2 * stride, out, (mc + 1) / 2);
  }
};

}  // namespace

void lutra_t3_qs8_gemm_madd8x8__neoni8mm(const WeightView& w, const int8_t* xq, int32_t* acc,
                                         size_t m, size_t n_begin, size_t n_end) {
  t3_gemm_madd<MatMul>(w, xq, acc, m, n_begin, n_end);
}

}  // namespace lutra
