// t3 x int8 GEMM by multiply-add (prefill), NEON with dot products: the ARM twin of
// t3-qs8-gemm-madd32x12-avx512vnni (decode and loops: t3-qs8-gemm-madd-neon-tiles.h).
// The activations stay in their natural order (copied once per call into zero-padded rows); one
// 16-byte load holds a token's columns of 4 consecutive quads, and sdot by element
// (vdotq_laneq_s32) broadcasts each quad's 4 bytes against 4 rows x 4 columns of the decoded
// tile, so a register tile of 4 tokens x 16 rows keeps its sums in 16 int32 vectors with no
// horizontal sums.
#include "kernels_arm/t3-qs8-gemm/t3-qs8-gemm-madd-neon-tiles.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

#define LUTRA_UNROLL _Pragma("GCC unroll 16")

// out[i][16h + s] (s < 16) = rows 16h.. of the tile for M tokens from xp (stride bytes apart).
template <int M>
inline void tile_tokens(const int8_t* buf, size_t quads, int h, const int8_t* xp, size_t stride,
                        int32_t (*out)[32]) {
  int32x4_t acc[4][M];
  LUTRA_UNROLL for (int v = 0; v < 4; v++)
    LUTRA_UNROLL for (int i = 0; i < M; i++) acc[v][i] = vdupq_n_s32(0);
  const int8_t* wq = buf + 64 * h;
  for (size_t d = 0; d < quads; d += 4) {
    int8x16_t x[M];
    LUTRA_UNROLL for (int i = 0; i < M; i++) x[i] = vld1q_s8(xp + i * stride + 4 * d);
    LUTRA_UNROLL for (int e = 0; e < 4; e++) {
      const int8x16x4_t w = vld1q_s8_x4(wq + 128 * (d + size_t(e)));  // rows 4v..4v+3
      LUTRA_UNROLL for (int v = 0; v < 4; v++)
        LUTRA_UNROLL for (int i = 0; i < M; i++) {
          switch (e) {  // the lane index must be a constant
            case 0: acc[v][i] = vdotq_laneq_s32(acc[v][i], w.val[v], x[i], 0); break;
            case 1: acc[v][i] = vdotq_laneq_s32(acc[v][i], w.val[v], x[i], 1); break;
            case 2: acc[v][i] = vdotq_laneq_s32(acc[v][i], w.val[v], x[i], 2); break;
            default: acc[v][i] = vdotq_laneq_s32(acc[v][i], w.val[v], x[i], 3); break;
          }
        }
    }
  }
  LUTRA_UNROLL for (int i = 0; i < M; i++)
    LUTRA_UNROLL for (int v = 0; v < 4; v++) vst1q_s32(out[i] + 16 * h + 4 * v, acc[v][i]);
}

// All mc tokens of a chunk, M at a time (the last ones fewer), both halves of the tile.
template <int M>
inline void tile_all_tokens(const int8_t* buf, size_t quads, const int8_t* xp, size_t stride,
                            int32_t (*out)[32], size_t mc) {
  size_t i = 0;
  for (; i + M <= mc; i += M)
    for (int h = 0; h < 2; h++) tile_tokens<M>(buf, quads, h, xp + i * stride, stride, out + i);
  if constexpr (M > 1) {
    if (i < mc) tile_all_tokens<M - 1>(buf, quads, xp + i * stride, stride, out + i, mc - i);
  }
}

#undef LUTRA_UNROLL

struct Dot {
  static constexpr size_t kTokens = 4;  // register tile: 4 tokens x 16 rows = 16 sums
  static size_t token_bytes(size_t quads) { return (4 * quads + 63) / 64 * 64; }
  static void prepare(const int8_t* xq, size_t k, size_t m, size_t quads, int8_t* xp) {
    const size_t stride = token_bytes(quads);
    for (size_t i = 0; i < m; i++) {
      std::memcpy(xp + i * stride, xq + i * k, k);
      std::memset(xp + i * stride + k, 0, stride - k);
    }
  }
  static void relayout(int8_t*, size_t) {}
  static void tokens(const int8_t* buf, size_t quads, const int8_t* xp, size_t stride,
                     int32_t (*out)[32], size_t mc) {
    tile_all_tokens<int(kTokens)>(buf, quads, xp, stride, out, mc);
  }
};

}  // namespace

void lutra_t3_qs8_gemm_madd4x16__neondot(const WeightView& w, const int8_t* xq, int32_t* acc,
                                         size_t m, size_t n_begin, size_t n_end) {
  t3_gemm_madd<Dot>(w, xq, acc, m, n_begin, n_end);
}

}  // namespace lutra
