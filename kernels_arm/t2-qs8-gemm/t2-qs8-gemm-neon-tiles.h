// Ternary x int8 GEMM (WeightFormat::t2) by multiply-add, NEON: the loops shared by the plain
// NEON kernel (smlal into int16, widened by sadalp) and the dot-product one (sdot into int32),
// chosen by kDot. Codes 0/1/2 multiply the int8 activations as they stand (code 3 is invalid but
// reads as +2 like the reference): sum (code-1)*x = sum code*x - sum x, the last term once per
// token. 16 packed bytes hold codes 4q+t (q < 16, t < 4) at bits 2t of byte q, so each 64-wide
// block of activations is permuted once per call to the order t*16 + q (one ld4 deinterleaves
// it): the weights then unpack with one shift and/or one mask per t.
// Register tile: 4 output rows x up to M tokens, so each unpacked weight vector feeds M tokens
// in prefill. The first token tile of each row tile reads the weights from memory with a
// software prefetch ahead in each row's stream; the later token tiles find the rows in L1.
// Included only by kernels_arm files; the anonymous namespace gives each its own copy.
#pragma once

#include <arm_neon.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels_common/t2-qs8-gemm-tiles.h"
#include "runtime/weights.h"

namespace lutra {
namespace {

#define LUTRA_UNROLL _Pragma("GCC unroll 16")

constexpr size_t kBlock = 64;              // codes per 16 packed bytes
constexpr size_t kPrefetch = 2048;         // bytes ahead in each row's stream (decode)
constexpr int kRows = 4;                   // register tile: kRows x kTokens (m = 1: kRows x 1)

// Writes one token's k activations in block order t*16 + q (zero padded to whole blocks) and
// returns their sum.
inline int32_t permute_token(const int8_t* x, size_t k, int8_t* dst) {
  int32x4_t sum = vdupq_n_s32(0);
  const size_t full = k / kBlock;
  for (size_t b = 0; b < full; b++, x += kBlock, dst += kBlock) {
    const int8x16x4_t v = vld4q_s8(x);  // v.val[t] lane q = x[4q + t]
    vst1q_s8_x4(dst, v);
    const int16x8_t s = vaddq_s16(vaddq_s16(vpaddlq_s8(v.val[0]), vpaddlq_s8(v.val[1])),
                                  vaddq_s16(vpaddlq_s8(v.val[2]), vpaddlq_s8(v.val[3])));
    sum = vpadalq_s16(sum, s);
  }
  int32_t total = vaddvq_s32(sum);
  if (size_t rest = k - full * kBlock) {  // ragged k: the last block, zero padded
    std::memset(dst, 0, kBlock);
    for (size_t j = 0; j < rest; j++) {
      dst[(j % 4) * 16 + j / 4] = x[j];
      total += x[j];
    }
  }
  return total;
}

// One token with sdot (decode): codes t = 1 and 2 stay where they are in the byte, as 4c and 16c
// (one mask each, no shift), and sum into accumulators of their own, scaled back once per tile
// (exact: those sums are multiples of 4 and 16). 4 instructions unpack 64 codes instead of 6.
template <bool kDot, int M>
constexpr bool kScaled = kDot && M == 1;

// Code t of each of the 16 packed bytes, times 4^t for t = 1, 2 where kScaledCodes.
template <bool kScaledCodes = false>
inline int8x16_t unpack(uint8x16_t p, int t) {
  if constexpr (kScaledCodes) {
    if (t == 1) return vreinterpretq_s8_u8(vandq_u8(p, vdupq_n_u8(0x0c)));
    if (t == 2) return vreinterpretq_s8_u8(vandq_u8(p, vdupq_n_u8(0x30)));
  }
  const uint8x16_t mask = vdupq_n_u8(3);
  switch (t) {
    case 0: return vreinterpretq_s8_u8(vandq_u8(p, mask));
    case 1: return vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(p, 2), mask));
    case 2: return vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(p, 4), mask));
    default: return vreinterpretq_s8_u8(vshrq_n_u8(p, 6));
  }
}

// acc[r][i] += code * x over blocks [b, end) of R rows from w0 and M tokens from xp. Without
// dot products the products of up to 8 blocks sum in int16 (8 blocks x 8 products per lane x
// 3 x 128 = 24576 < 2^15) before one sadalp widens them. `load` reads a row's block b.
// With kScaled, acc_s[r][0] and acc_s[r][1] take codes t = 1 (4c) and t = 2 (16c).
template <bool kDot, int R, int M, bool kPrefetchW, class Load>
inline __attribute__((always_inline)) void accumulate(
    const uint8_t* w0, size_t row_bytes, const int8_t* xp, size_t stride, size_t b, size_t end,
    Load load, int32x4_t (&acc)[R][M], int32x4_t (&acc_s)[R][2]) {
  [[maybe_unused]] int16x8_t p16[R][M];
  if constexpr (!kDot) {
    LUTRA_UNROLL for (int r = 0; r < R; r++)
      LUTRA_UNROLL for (int i = 0; i < M; i++) p16[r][i] = vdupq_n_s16(0);
  }
  for (; b < end; b++) {
    uint8x16_t packed[R];
    LUTRA_UNROLL for (int r = 0; r < R; r++) {
      const uint8_t* src = w0 + r * row_bytes + 16 * b;
      if constexpr (kPrefetchW)
        if (b % 4 == 0) __builtin_prefetch(src + kPrefetch);
      packed[r] = load(src);
    }
    LUTRA_UNROLL for (int t = 0; t < 4; t++) {
      int8x16_t x[M];
      LUTRA_UNROLL for (int i = 0; i < M; i++) x[i] = vld1q_s8(xp + i * stride + b * kBlock + 16 * t);
      LUTRA_UNROLL for (int r = 0; r < R; r++) {
        const int8x16_t c = unpack<kScaled<kDot, M>>(packed[r], t);
        LUTRA_UNROLL for (int i = 0; i < M; i++) {
          if constexpr (kScaled<kDot, M>) {
            int32x4_t& a = t == 1 || t == 2 ? acc_s[r][t - 1] : acc[r][i];
            a = vdotq_s32(a, c, x[i]);
          } else if constexpr (kDot) {
            acc[r][i] = vdotq_s32(acc[r][i], c, x[i]);
          } else {
            p16[r][i] = vmlal_s8(p16[r][i], vget_low_s8(c), vget_low_s8(x[i]));
            p16[r][i] = vmlal_high_s8(p16[r][i], c, x[i]);
          }
        }
      }
    }
  }
  if constexpr (!kDot) {
    LUTRA_UNROLL for (int r = 0; r < R; r++)
      LUTRA_UNROLL for (int i = 0; i < M; i++) acc[r][i] = vpadalq_s16(acc[r][i], p16[r][i]);
  }
}

// out[i * n + r] for R rows from w0 and M tokens from xp (stride bytes apart).
template <bool kDot, int R, int M, bool kPrefetchW>
void tile(const uint8_t* w0, size_t row_bytes, const int8_t* xp, size_t stride,
          const int32_t* x_sum, int32_t* out, size_t n) {
  constexpr size_t kGroup = kDot ? 64 : 8;  // blocks per call of accumulate (int16 flush)
  const size_t full = row_bytes / 16;
  int32x4_t acc[R][M], acc_s[R][2];
  LUTRA_UNROLL for (int r = 0; r < R; r++) {
    LUTRA_UNROLL for (int i = 0; i < M; i++) acc[r][i] = vdupq_n_s32(0);
    acc_s[r][0] = acc_s[r][1] = vdupq_n_s32(0);
  }
  auto load = [](const uint8_t* src) { return vld1q_u8(src); };
  for (size_t b = 0; b < full; b += kGroup)
    accumulate<kDot, R, M, kPrefetchW>(w0, row_bytes, xp, stride, b, std::min(full, b + kGroup), load, acc, acc_s);
  // Ragged k: the row's last bytes, zero padded (their x are 0 too).
  if (const size_t rest = row_bytes - 16 * full) {
    auto load_tail = [rest](const uint8_t* src) {
      uint8_t tail[16] = {};
      std::memcpy(tail, src, rest);
      return vld1q_u8(tail);
    };
    accumulate<kDot, R, M, false>(w0, row_bytes, xp, stride, full, full + 1, load_tail, acc, acc_s);
  }
  if constexpr (kScaled<kDot, M>) {
    LUTRA_UNROLL for (int r = 0; r < R; r++)
      acc[r][0] = vaddq_s32(acc[r][0], vaddq_s32(vshrq_n_s32(acc_s[r][0], 2), vshrq_n_s32(acc_s[r][1], 4)));
  }
  LUTRA_UNROLL for (int i = 0; i < M; i++) {
    int32_t* o = out + i * n;
    if constexpr (R == 4) {
      const int32x4_t s = vpaddq_s32(vpaddq_s32(acc[0][i], acc[1][i]), vpaddq_s32(acc[2][i], acc[3][i]));
      vst1q_s32(o, vsubq_s32(s, vdupq_n_s32(x_sum[i])));
    } else {
      LUTRA_UNROLL for (int r = 0; r < R; r++) o[r] = vaddvq_s32(acc[r][i]) - x_sum[i];
    }
  }
}

// Rows [r, r + R) for all m tokens, M at a time; the weights come from memory in the first
// token tile (prefetched) and from L1 after it.
template <bool kDot, int R, int M>
void rows_all_tokens(const uint8_t* w0, size_t row_bytes, const int8_t* xp, size_t stride,
                     const int32_t* x_sum, int32_t* out, size_t n, size_t m) {
  size_t i = 0;
  for (; i + M <= m; i += M) {
    if (i == 0) tile<kDot, R, M, true>(w0, row_bytes, xp, stride, x_sum, out, n);
    else tile<kDot, R, M, false>(w0, row_bytes, xp + i * stride, stride, x_sum + i, out + i * n, n);
  }
  if constexpr (M > 1) {
    if (i < m)
      rows_all_tokens<kDot, R, M - 1>(w0, row_bytes, xp + i * stride, stride, x_sum + i, out + i * n, n, m - i);
  }
}

// The whole GEMM (GemmTernaryFn on a t2 WeightView), kTokens tokens per register tile.
template <bool kDot, int kTokens>
void t2_gemm(const WeightView& w, const int8_t* xq, int32_t* acc, size_t m, size_t n_begin,
             size_t n_end) {
  t2_gemm_tiles<kBlock, kRows, kTokens>(w, xq, acc, m, n_begin, n_end, permute_token, [](auto rows, auto... a) {
    rows_all_tokens<kDot, decltype(rows)::value, kTokens>(a...);
  });
}

#undef LUTRA_UNROLL

}  // namespace
}  // namespace lutra
