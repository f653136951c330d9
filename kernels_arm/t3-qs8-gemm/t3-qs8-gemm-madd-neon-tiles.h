// t3 weights by multiply-add instead of table lookup, for prefill (many tokens), NEON: what the
// dot-product (sdot) and matrix-multiply (smmla) kernels share. See
// kernels_x86/t3-qs8-gemm/t3-qs8-gemm-madd-avx512-tiles.h for why prefill wants it.
//
// Each 32-row tile is decoded once per token chunk into the weights w (-1/0/+1, signed bytes:
// sdot and smmla multiply signed by signed, so no code offset and no activation sums are
// needed), 4 columns per 32-bit lane, lanes = rows: per 4 columns d (a quad), 128 bytes, rows
// 0..31 in order. Exact (int32), so bit-identical to the scalar reference (padded columns are
// zero weights against zero activations).
//
// Decode of one (block p, group L, 16-row half h): the index nibbles, and the sign bits tested
// into byte masks as in the lookup kernel (t3-qs8-gemm-1x32-neon.cpp) add 16 to the index of
// negative rows; three 2-register tbl over the 32-entry weight columns [w_j(i) | -w_j(i)] give
// the group's 3 weights of 16 rows, one vector per column. vst4q of 4 column vectors stores 16
// rows x 4 columns as row-major dwords: groups a, b, c, d (12 columns) are 3 such stores,
// [a0 a1 a2 b0], [b1 b2 c0 c1], [c2 d0 d1 d2]; a last pair of groups gives 2.
//
// A variant supplies a Kernel with
//   static constexpr size_t kTokens;                 token tile (and chunk multiple)
//   static size_t token_bytes(size_t quads);         its activation bytes per token
//   static void prepare(xq, k, m, quads, xp);        writes them (zero padded)
//   static void relayout(int8_t* buf, size_t quads); rearranges a decoded tile (or nothing)
//   static void tokens(buf, quads, xp, stride, out, mc);  out[i][0..31] for mc tokens
// Included only by kernels_arm files; the anonymous namespace gives each its own copy.
#pragma once

#include <arm_neon.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "runtime/weights.h"

namespace lutra {
namespace {

constexpr size_t kMaddChunkBytes = 256 << 10;  // activations of one token chunk (L2)

// Column j of the weights: entry i = w_j(i) (0 for i >= 14), entry 16 + i = -w_j(i).
struct T3Columns {
  int8_t w[3][32];
};
constexpr T3Columns make_t3_columns() {
  T3Columns c{};
  for (int j = 0; j < 3; j++)
    for (int i = 0; i < 14; i++) {
      const int v = (j == 0 ? i / 9 : j == 1 ? i / 3 % 3 : i % 3) - 1;
      c.w[j][i] = int8_t(v);
      c.w[j][16 + i] = int8_t(-v);
    }
  return c;
}
alignas(16) constexpr T3Columns kT3Columns = make_t3_columns();
alignas(16) constexpr uint8_t kT3SignBits[2][16] = {
    {1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 8, 8, 8, 8},
    {16, 16, 16, 16, 32, 32, 32, 32, 64, 64, 64, 64, 128, 128, 128, 128}};

// Column quads per row, rounded up to a multiple of 4 (one 16-byte load of a token's
// activations covers 4 quads; smmla takes 2 quads at a time).
inline size_t t3_quads(size_t groups) { return ((3 * groups + 3) / 4 + 3) / 4 * 4; }

// Decodes a tile into buf: 128 bytes per quad (t3_quads(groups) of them, the ones past the row
// zero), a dword of 4 weights per row, rows 0..31.
inline void t3_decode_tile(const uint8_t* tile, size_t groups, int8_t* buf) {
  const int8x16x2_t col[3] = {vld1q_s8_x2(kT3Columns.w[0]), vld1q_s8_x2(kT3Columns.w[1]),
                              vld1q_s8_x2(kT3Columns.w[2])};
  const uint8x16_t bit[2] = {vld1q_u8(kT3SignBits[0]), vld1q_u8(kT3SignBits[1])};
  const uint8x16_t nibble = vdupq_n_u8(15), sixteen = vdupq_n_u8(16);
  // The 3 weight columns of groups 2p (c[h][0..2]) and 2p+1 (c[h][3..5]), rows 16h..16h+15.
  auto block = [&](size_t p, int8x16_t c[2][6]) {
    const uint8_t* b = tile + 128 + 40 * p;
    const uint8x16x2_t idx = vld1q_u8_x2(b);
    const uint32_t* sw = reinterpret_cast<const uint32_t*>(b + 32);  // ld1r: no alignment needed
    for (int h = 0; h < 2; h++) {
      const uint8x16_t s = vreinterpretq_u8_u32(vld1q_dup_u32(sw + h));
      for (int L = 0; L < 2; L++) {
        const uint8x16_t i = h ? vshrq_n_u8(idx.val[L], 4) : vandq_u8(idx.val[L], nibble);
        const uint8x16_t e = vorrq_u8(i, vandq_u8(vtstq_u8(s, bit[L]), sixteen));
        for (int j = 0; j < 3; j++) c[h][3 * L + j] = vqtbl2q_s8(col[j], e);
      }
    }
  };
  auto store = [&](size_t quad, int h, int8x16_t a, int8x16_t b, int8x16_t c, int8x16_t d) {
    vst4q_s8(buf + 128 * quad + 64 * h, (int8x16x4_t{{a, b, c, d}}));
  };
  const int8x16_t zero = vdupq_n_s8(0);
  const size_t blocks = groups / 2;
  size_t p = 0, quad = 0;
  for (; p + 2 <= blocks; p += 2, quad += 3) {  // 4 groups (12 columns) -> 3 quads
    int8x16_t ab[2][6], cd[2][6];
    block(p, ab);
    block(p + 1, cd);
    for (int h = 0; h < 2; h++) {
      store(quad, h, ab[h][0], ab[h][1], ab[h][2], ab[h][3]);
      store(quad + 1, h, ab[h][4], ab[h][5], cd[h][0], cd[h][1]);
      store(quad + 2, h, cd[h][2], cd[h][3], cd[h][4], cd[h][5]);
    }
  }
  if (p < blocks) {  // a last pair of groups (6 columns) -> 2 quads
    int8x16_t ab[2][6];
    block(p, ab);
    for (int h = 0; h < 2; h++) {
      store(quad, h, ab[h][0], ab[h][1], ab[h][2], ab[h][3]);
      store(quad + 1, h, ab[h][4], ab[h][5], zero, zero);
    }
    quad += 2;
  }
  std::memset(buf + 128 * quad, 0, 128 * (t3_quads(groups) - quad));
}

// The whole GEMM (GemmTernaryFn on a t3 WeightView).
template <class Kernel>
void t3_gemm_madd(const WeightView& w, const int8_t* xq, int32_t* acc, size_t m, size_t n_begin,
                  size_t n_end) {
  if (n_begin >= n_end) return;
  const size_t k = w.k, groups = lut_groups(WeightFormat::t3, k), tile_bytes = t3_tile_bytes(k);
  const size_t quads = t3_quads(groups), stride = Kernel::token_bytes(quads);
  const size_t tokens = (m + 1) / 2 * 2;  // whole pairs of prepared activations and sums
  thread_local std::vector<int8_t> xp;    // prepared activations
  thread_local std::vector<int8_t> buf;   // one decoded tile
  thread_local std::vector<int32_t> out;  // a chunk's sums for one tile, [token][32]
  if (xp.size() < tokens * stride) xp.resize(tokens * stride);
  if (buf.size() < 128 * quads) buf.resize(128 * quads);
  constexpr size_t kTokens = Kernel::kTokens;
  const size_t chunk = std::max<size_t>(kTokens, kMaddChunkBytes / stride / kTokens * kTokens);
  if (out.size() < 32 * std::min(tokens, chunk)) out.resize(32 * std::min(tokens, chunk));
  Kernel::prepare(xq, k, m, quads, xp.data());
  auto* o = reinterpret_cast<int32_t(*)[32]>(out.data());

  // Chunks of tokens whose activations stay in L2 while every tile passes over them; each tile
  // is decoded once per chunk.
  for (size_t i0 = 0; i0 < m; i0 += chunk) {
    const size_t mc = std::min(chunk, m - i0);
    for (size_t t = n_begin / t3_tile_rows; t * t3_tile_rows < n_end; t++) {
      const size_t r0 = std::max(n_begin, t * t3_tile_rows);
      const size_t r1 = std::min(n_end, (t + 1) * t3_tile_rows);
      t3_decode_tile(w.data + t * tile_bytes, groups, buf.data());
      Kernel::relayout(buf.data(), quads);
      Kernel::tokens(buf.data(), quads, xp.data() + i0 * stride, stride, o, mc);
      for (size_t i = 0; i < mc; i++)
        std::memcpy(acc + (i0 + i) * w.n + r0, o[i] + (r0 - t * t3_tile_rows), (r1 - r0) * 4);
    }
  }
}

}  // namespace
}  // namespace lutra
