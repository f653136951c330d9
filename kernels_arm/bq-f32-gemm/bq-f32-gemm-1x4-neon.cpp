// bq weights (b-bit codes in groups along k, an f16 scale and zero per group) x f32
// activations, 1 token x 4 output rows per tile, AArch64 Advanced SIMD, in the canonical float
// order (runtime/float_order.h): the weights are the scalar reference's fma(q, s, -(s z)) and four q
// registers per row hold the 16 lanes, so results are bit-identical to the reference.
//
// Paths, chosen per call from bits and group (the design of the x86 bq-f32-gemm-1x4 variants):
// - 8-bit (groups a multiple of 32): 16 codes widened u8 -> u16 -> u32 -> float.
// - 4-bit (groups a multiple of 32): 16 bytes = 32 codes; the low nibbles (even j) and the high
//   ones (odd j) go to the pair lanes of float_order.h, against a copy of x permuted once per
//   call (pair_lane_order), so no shuffle sorts the codes.
// - anything else: each group's codes are unpacked to bytes with scalar code first.
// m == 1 on the u8 and u4 paths decodes the codes straight into the FMAs, 2 rows at a time.
// Otherwise each 4-row tile is decoded once per chunk of columns into float weights and
// every token's lanes are accumulated against that buffer, tokens innermost.
#include <arm_neon.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include "kernels_arm/float-order-neon.h"
#include "kernels_common/bq-f32-gemm-tiles.h"
#include "runtime/half.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

constexpr size_t kChunkCols = 1024;  // columns decoded at a time (4 rows: 16 KiB)

// The f16 sections need not be 2-byte aligned (they follow the code bytes). One fcvt (baseline
// AArch64): exact, the same float as runtime/half.h's f16_to_f32 (a NaN comes out quiet, which
// changes no result: every use is arithmetic), where the software one is a few dozen
// instructions with branches, per scale and zero of each group and row.
inline float load_f16(const uint16_t* p) {
  __fp16 h;
  std::memcpy(&h, p, 2);
  return float(h);
}

using Path = BqPath;
using Layout = BqLayout<load_f16>;

// tbl indices that put bytes 4c .. 4c + 3 of a register in the low bytes of four u32 lanes (0xff,
// out of range, gives zero bytes): one tbl and one convert per 4 codes, fewer instructions
// than widening u8 -> u16 -> u32.
struct Widen {
  uint8x16_t idx[4];
  Widen() {
    for (int c = 0; c < 4; c++) {
      alignas(16) uint8_t t[16];
      for (int i = 0; i < 16; i++) t[i] = i % 4 ? 0xff : uint8_t(4 * c + i / 4);
      idx[c] = vld1q_u8(t);
      __asm__("" : "+w"(idx[c]));  // keeps them in registers: GCC would reload each one per use
    }
  }
  // The weights of codes 4c .. 4c + 3 of v as the scalar reference computes them:
  // fma(q, s, nsz) with nsz = -(s z).
  template <int c>
  float32x4_t weights4(uint8x16_t v, float s, float32x4_t nsz) const {
    return vfmaq_n_f32(nsz, vcvtq_f32_u32(vreinterpretq_u32_u8(vqtbl1q_u8(v, idx[c]))), s);
  }
};

// The 16 codes at positions j + 16 h .. j + 16 h + 15 (j a multiple of 32, h = 0 or 1) of a
// group, lanes in the order of float_order.h. u8 and bytes: one byte per column at q + j. u4 (16
// bytes per 32 columns, byte b holding column 2b in its low nibble and 2b+1 in its high one, the
// pair lanes): positions 0-15 of a 32-column block are the low nibbles of its 16 bytes,
// positions 16-31 the high ones, to be matched with x in pair_lane_order.
template <Path P, int h>
inline uint8x16_t codes16(const uint8_t* q, size_t j) {
  if constexpr (P == Path::u4) {
    const uint8x16_t b = vld1q_u8(q + j / 2);
    return h == 0 ? vandq_u8(b, vdupq_n_u8(0xf)) : vshrq_n_u8(b, 4);
  } else {
    return vld1q_u8(q + j + 16 * h);
  }
}

// acc (16 lanes) += the weights of the 16 codes v times x (16 floats).
[[gnu::always_inline]] inline void fma16(const Widen& wd, float32x4_t* acc, uint8x16_t v, float s,
                                         float32x4_t nsz, const float32x4x4_t& x) {
  acc[0] = vfmaq_f32(acc[0], wd.weights4<0>(v, s, nsz), x.val[0]);
  acc[1] = vfmaq_f32(acc[1], wd.weights4<1>(v, s, nsz), x.val[1]);
  acc[2] = vfmaq_f32(acc[2], wd.weights4<2>(v, s, nsz), x.val[2]);
  acc[3] = vfmaq_f32(acc[3], wd.weights4<3>(v, s, nsz), x.val[3]);
}

// m == 1, u8 and u4 (groups a multiple of 32): out[r] = row r0 + r of W times x, the codes
// decoded straight into the FMAs. R <= 2 rows: their 8 accumulators, x, the tbl indices and the
// decode temporaries fit the 32 registers (4 rows spilled about 17 registers per iteration), if
// GCC's scheduler before register allocation keeps the source order (it hoisted all the code
// loads and decodes of both halves and spilled accumulators).
template <int R, Path P>
[[gnu::optimize("no-schedule-insns")]] void tile_m1(const Layout& L, size_t r0, const float* x, float* out) {
  float32x4_t acc[R][4];  // the unroll pragmas let GCC 12 keep the arrays in registers
#pragma GCC unroll 2
  for (int r = 0; r < R; r++)
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) acc[r][c] = vdupq_n_f32(0.0f);
  const Widen wd;
  const size_t G = L.group;
  for (size_t g = 0; g < L.gpr; g++) {
    float32x4_t nsz[R];
    float s[R];
    const uint8_t* q[R];
#pragma GCC unroll 2
    for (int r = 0; r < R; r++) {
      s[r] = L.scale(r0 + r, g);
      nsz[r] = vdupq_n_f32(-(s[r] * L.zero(r0 + r, g)));  // Layout::neg_scaled_zero
      q[r] = L.row(r0 + r) + (P == Path::u4 ? g * G / 2 : g * G);
    }
    const float* xg = x + g * G;
    for (size_t j = 0; j < G; j += 2 * kFloatLanes) {  // x by halves, each row's codes decoded at use
      const float32x4x4_t x0 = vld1q_f32_x4(xg + j);
#pragma GCC unroll 2
      for (int r = 0; r < R; r++) fma16(wd, acc[r], codes16<P, 0>(q[r], j), s[r], nsz[r], x0);
      const float32x4x4_t x1 = vld1q_f32_x4(xg + j + kFloatLanes);
#pragma GCC unroll 2
      for (int r = 0; r < R; r++) fma16(wd, acc[r], codes16<P, 1>(q[r], j), s[r], nsz[r], x1);
    }
  }
#pragma GCC unroll 2
  for (int r = 0; r < R; r++) out[r] = reduce16(acc[r][0], acc[r][1], acc[r][2], acc[r][3]);
}

// Weights at positions j + 16 h .. j + 16 h + 15 of a group into w[4] (bytes: 16 codes at
// q + j + 16 h, any j).
template <Path P, int h>
inline void weights16(const Widen& wd, const uint8_t* q, size_t j, float32x4_t nsz, float s, float32x4_t* w) {
  const uint8x16_t c = codes16<P, h>(q, j);
  w[0] = wd.weights4<0>(c, s, nsz);
  w[1] = wd.weights4<1>(c, s, nsz);
  w[2] = wd.weights4<2>(c, s, nsz);
  w[3] = wd.weights4<3>(c, s, nsz);
}

// Rows r0..r0+R-1, columns [c0, c0 + cols) (whole groups) as float weights into dst (row
// stride `stride`, a multiple of 16; the padding past cols is zeroed). buf: 16-byte padded.
template <int R, Path P>
void decode_tile(const Layout& L, size_t r0, size_t c0, size_t cols, uint8_t* buf, float* dst, size_t stride) {
  const Widen wd;
  const size_t G = L.group;
  for (int r = 0; r < R; r++) {
    float* d = dst + r * stride;
    for (size_t g = c0 / G; g < (c0 + cols) / G; g++, d += G) {
      const float32x4_t nsz = vdupq_n_f32(L.neg_scaled_zero(r0 + r, g));
      const float s = L.scale(r0 + r, g);
      const uint8_t* q = L.row(r0 + r) + (P == Path::u4 ? g * G / 2 : g * G);
      if constexpr (P == Path::bytes) {
        L.unpack(r0 + r, g, buf);
        q = buf;
      }
      float32x4_t w[4];
      if constexpr (P == Path::bytes) {
        size_t j = 0;
        for (; j + kFloatLanes <= G; j += kFloatLanes) {
          weights16<P, 0>(wd, q, j, nsz, s, w);
          for (int c = 0; c < 4; c++) vst1q_f32(d + j + 4 * c, w[c]);
        }
        if (j < G) {  // the padded buffer is readable
          float t[16];
          weights16<P, 0>(wd, q, j, nsz, s, w);
          for (int c = 0; c < 4; c++) vst1q_f32(t + 4 * c, w[c]);
          std::memcpy(d + j, t, (G - j) * 4);
        }
      } else {
        for (size_t j = 0; j < G; j += 2 * kFloatLanes) {
          weights16<P, 0>(wd, q, j, nsz, s, w);
          for (int c = 0; c < 4; c++) vst1q_f32(d + j + 4 * c, w[c]);
          weights16<P, 1>(wd, q, j, nsz, s, w);
          for (int c = 0; c < 4; c++) vst1q_f32(d + j + kFloatLanes + 4 * c, w[c]);
        }
      }
    }
    std::fill(dst + r * stride + cols, dst + (r + 1) * stride, 0.0f);
  }
}

// acc[r] += the canonical lanes of w[r][0..cols) * x over a decoded tile (padding zero; cols
// starts at a multiple of 16 columns of the row, so lane j % 16 is the canonical one).
template <int R>
inline void dot_tile(const float* w, size_t stride, const float* x, size_t cols, float32x4_t (*acc)[4]) {
  size_t j = 0;
  auto step = [&](const float* xj) {
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
      const float32x4_t xv = vld1q_f32(xj + 4 * c);
#pragma GCC unroll 4
      for (int r = 0; r < R; r++) acc[r][c] = vfmaq_f32(acc[r][c], vld1q_f32(w + r * stride + j + 4 * c), xv);
    }
  };
  for (; j + kFloatLanes <= cols; j += kFloatLanes) step(x + j);
  if (j < cols) {
    float t[16] = {};
    std::memcpy(t, x + j, (cols - j) * 4);
    step(t);
  }
}

template <Path P>
void gemm(const WeightView& w, const float* x, float* y, size_t m, size_t n_begin, size_t n_end) {
  const Layout L(w);
  const size_t k = w.k;
  if constexpr (P == Path::u4) {  // k is a multiple of 32
    thread_local std::vector<float> xp;  // grows once: the token loop allocates nothing
    if (xp.size() < m * k) xp.resize(m * k);
    pair_lane_order(x, m * k, xp.data());
    x = xp.data();
  }
  if (m == 1 && P != Path::bytes) {
    size_t r = n_begin;
    for (; r + 2 <= n_end; r += 2) tile_m1<2, P>(L, r, x, y + r);
    if (r < n_end) tile_m1<1, P>(L, r, x, y + r);
    return;
  }
  bq_gemm_chunks<kChunkCols>(
      w, x, y, m, n_begin, n_end,
      [&L](auto R, size_t r, size_t c0, size_t cols, uint8_t* buf, float* tile, size_t stride) {
        decode_tile<decltype(R)::value, P>(L, r, c0, cols, buf, tile, stride);
      },
      [](auto R, const float* tile, size_t stride, const float* xi, size_t cols, float* li) {
        constexpr int kR = decltype(R)::value;
        float32x4_t acc[kR][4];
        for (int t = 0; t < kR; t++)
          for (int c = 0; c < 4; c++) acc[t][c] = vld1q_f32(li + kFloatLanes * t + 4 * c);
        dot_tile<kR>(tile, stride, xi, cols, acc);
        for (int t = 0; t < kR; t++)
          for (int c = 0; c < 4; c++) vst1q_f32(li + kFloatLanes * t + 4 * c, acc[t][c]);
      },
      [](float* l) { return reduce_lanes(l); });  // the same tree as reduce16, in memory
}

}  // namespace

void lutra_bq_f32_gemm_1x4__neon(const WeightView& w, const float* x, float* y, size_t m,
                                 size_t n_begin, size_t n_end) {
  bq_gemm_entry(w, y, m, n_begin, n_end, [&](auto path) { gemm<decltype(path)::value>(w, x, y, m, n_begin, n_end); });
}

}  // namespace lutra
