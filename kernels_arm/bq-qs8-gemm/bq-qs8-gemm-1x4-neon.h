// bq weights (b-bit codes in groups along k, f16 scale and zero per group) x int8 activations
// with per-token scales (GemmBqI8Fn), NEON, tiles of 4 output rows: the tile loop of the ARM
// variants. Each .cpp file supplies `Ops`, its integer dot products (neon: smull/smlal and
// sadalp; neondot: sdot; neoni8mm: usdot on 8-bit codes), and includes this header; the
// anonymous namespace gives each file its own copy.
//
// Bit-identical to lutra_bq_qs8_gemm__scalar: the integer sums acc_g and xsum_g are exact (so
// their order is free), and the float combine runs the reference's operations per row and group
// in its order, the 4 rows of a tile in the 4 lanes of a vector:
//   sum += s * (float(acc_g) - z * float(xsum_g))  (separate mul, sub, mul, add; the build has
//   -ffp-contract=off, so no FMA), then y = sum / xs.
// Integer paths per group (acc_g of the 4 rows, int32x4 lanes reduced pairwise):
// - u4 (4-bit, group % 32 == 0): 16 code bytes are 32 codes, low nibbles the even codes and
//   high nibbles the odd ones; vld2q_s8 splits the 32 activations the same way as it loads them,
//   so there is no permuted copy of the activations.
// - u8 (8-bit, group % 16 == 0): codes c ^ 0x80 = c - 128 are signed bytes, so
//   acc_g = sum (c - 128) x + 128 xsum_g; with Ops::kMixedDot (usdot: unsigned x signed
//   bytes) the codes go in as they are.
// - other widths: the tile's 4 rows are unpacked to bytes once (for all tokens), then the u8
//   path on them (group % 16 == 0) or a plain integer loop per group.
// Tokens run innermost, so a tile read for the first token is in cache for the others.
#pragma once

#include <arm_neon.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

constexpr size_t kRows = 4;  // output rows per tile (the lanes of one float vector)

enum class Path { u4, u8, bytes_u8, bytes_loop };

// Code j of a little-endian bitstream (bits <= 8).
inline uint32_t code_at(const uint8_t* row, size_t j, int bits) {
  const size_t bit = j * size_t(bits);
  uint32_t v = row[bit / 8];
  if (bit % 8 + size_t(bits) > 8) v |= uint32_t(row[bit / 8 + 1]) << 8;
  return (v >> (bit % 8)) & ((1u << bits) - 1);
}

// A row of k codes (row_bytes bytes) as bytes. Every 8 codes fill `bits` whole bytes, so they
// come from one little-endian 64-bit load wherever 8 bytes remain in the row (AArch64 Linux is
// little-endian); the rest one code at a time.
inline void unpack_row(const uint8_t* row, size_t k, size_t row_bytes, int bits, uint8_t* out) {
  const uint64_t mask = (uint64_t(1) << bits) - 1;
  size_t j = 0;
  for (; j + 8 <= k && j / 8 * size_t(bits) + 8 <= row_bytes; j += 8) {
    uint64_t v;
    std::memcpy(&v, row + j / 8 * size_t(bits), 8);
    for (int e = 0; e < 8; e++) out[j + size_t(e)] = uint8_t(v >> (bits * e) & mask);
  }
  for (; j < k; j++) out[j] = uint8_t(code_at(row, j, bits));
}

// The four rows' sums: lane t = the sum of the lanes of a[t].
inline int32x4_t lane_sums4(const int32x4_t a[4]) {
  return vpaddq_s32(vpaddq_s32(a[0], a[1]), vpaddq_s32(a[2], a[3]));
}

struct Plan {
  Path path;
  size_t k, n, gpr, group, row_bytes;
  const uint8_t* codes;
  const uint16_t* scales;
  const uint16_t* zeros;  // null: symmetric
  float zsym;
  int bits;
};

// Per-thread scratch, grown once.
struct Scratch {
  std::vector<int32_t> xsum128;  // per token gpr exact group sums times 128 (the u8 offset)
  std::vector<float> xsumf;   // the same as floats
  std::vector<uint8_t> unpacked;  // the tile's rows as byte codes
};

// acc_g of the 4 rows (code rows rows[0..3]: packed for u4/u8, byte codes otherwise) for
// token xi, group g. kGroup: the group size when fixed at compile time (0: pl.group), so that
// the loops of small groups unroll whole (b8g32 is the embedding and head recipe).
template <class Ops, Path P, size_t kGroup>
inline int32x4_t group_acc(const Plan& pl, const uint8_t* const rows[kRows], const int8_t* xi,
                           const int32_t* xsum128, size_t g) {
  const size_t group = kGroup ? kGroup : pl.group;
  const size_t j0 = g * group, j1 = j0 + group;
  if constexpr (P == Path::bytes_loop) {
    int32_t a[kRows];
    for (size_t rr = 0; rr < kRows; rr++) {
      int32_t s = 0;
      for (size_t j = j0; j < j1; j++) s += int32_t(rows[rr][j]) * int32_t(xi[j]);
      a[rr] = s;
    }
    return vld1q_s32(a);
  } else {
    int32x4_t acc[kRows] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
    if constexpr (P == Path::u4) {
      const uint8x16_t nib = vdupq_n_u8(0x0f);
      for (size_t j = j0; j < j1; j += 32) {
        const int8x16x2_t x = vld2q_s8(xi + j);  // even, odd activations
        for (size_t rr = 0; rr < kRows; rr++) {
          const uint8x16_t c = vld1q_u8(rows[rr] + j / 2);
          acc[rr] = Ops::dot_u4(acc[rr], vreinterpretq_s8_u8(vandq_u8(c, nib)), x.val[0],
                                vreinterpretq_s8_u8(vshrq_n_u8(c, 4)), x.val[1]);
        }
      }
    } else {
      const uint8x16_t bias = vdupq_n_u8(0x80);
      for (size_t j = j0; j < j1; j += 16) {
        const int8x16_t x = vld1q_s8(xi + j);
        for (size_t rr = 0; rr < kRows; rr++) {
          if constexpr (Ops::kMixedDot) acc[rr] = Ops::dot_mixed(acc[rr], vld1q_u8(rows[rr] + j), x);
          else acc[rr] = Ops::dot(acc[rr], vreinterpretq_s8_u8(veorq_u8(vld1q_u8(rows[rr] + j), bias)), x);
        }
      }
    }
    int32x4_t a = lane_sums4(acc);
    if constexpr (P != Path::u4 && !Ops::kMixedDot) a = vaddq_s32(a, vld1q_dup_s32(xsum128 + g));
    return a;
  }
}

// Rows r[0..3] (the last ones may repeat a row: a ragged tile), token i: out[rr] = y.
template <class Ops, Path P, size_t kGroup>
inline void tile_token(const Plan& pl, const uint8_t* const rows[kRows], const size_t r[kRows],
                       const int8_t* xi, const int32_t* xsum128, const float* xsumf, float xs,
                       float out[kRows]) {
  const uint16_t* s = pl.scales + r[0] * pl.gpr;
  const uint16_t* z = pl.zeros ? pl.zeros + r[0] * pl.gpr : nullptr;
  // Row rr's f16 scale (zero) of group g at p[off[rr] + g]; a ragged tile repeats its last row.
  // The sections need not be 2-byte aligned: ld1 loads take any address.
  size_t off[kRows];
  for (size_t rr = 0; rr < kRows; rr++) off[rr] = (r[rr] - r[0]) * pl.gpr;
  // Groups g .. g+3 of the 4 rows: one 8-byte load per row, then a 4x4 transpose, so that
  // q[t] holds group g+t of rows 0..3.
  auto load4x4 = [&off](const uint16_t* p, float32x4_t q[4]) {
    float32x4_t v[kRows];
    for (size_t rr = 0; rr < kRows; rr++) v[rr] = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p + off[rr])));
    const float64x2_t t0 = vreinterpretq_f64_f32(vtrn1q_f32(v[0], v[1]));
    const float64x2_t t1 = vreinterpretq_f64_f32(vtrn2q_f32(v[0], v[1]));
    const float64x2_t t2 = vreinterpretq_f64_f32(vtrn1q_f32(v[2], v[3]));
    const float64x2_t t3 = vreinterpretq_f64_f32(vtrn2q_f32(v[2], v[3]));
    q[0] = vreinterpretq_f32_f64(vtrn1q_f64(t0, t2));
    q[1] = vreinterpretq_f32_f64(vtrn1q_f64(t1, t3));
    q[2] = vreinterpretq_f32_f64(vtrn2q_f64(t0, t2));
    q[3] = vreinterpretq_f32_f64(vtrn2q_f64(t1, t3));
  };
  // One group of the 4 rows, lane by lane (the last gpr % 4 groups).
  auto gather = [&off](const uint16_t* p) {
    uint16x4_t h = vdup_n_u16(0);
    h = vld1_lane_u16(p + off[0], h, 0);
    h = vld1_lane_u16(p + off[1], h, 1);
    h = vld1_lane_u16(p + off[2], h, 2);
    h = vld1_lane_u16(p + off[3], h, 3);
    return vcvt_f32_f16(vreinterpret_f16_u16(h));
  };
  const float32x4_t zsym = vdupq_n_f32(pl.zsym);
  float32x4_t sum = vdupq_n_f32(0.0f);
  // sum += s * (float(acc) - z * float(xsum)), group by group in order.
  auto add_term = [&](int32x4_t acc, float32x4_t sg, float32x4_t zg, float xsf) {
    const float32x4_t zx = vmulq_n_f32(zg, xsf);
    sum = vaddq_f32(sum, vmulq_f32(sg, vsubq_f32(vcvtq_f32_s32(acc), zx)));
  };
  size_t g = 0;
  for (; g + 4 <= pl.gpr; g += 4) {
    int32x4_t acc[4];
#pragma GCC unroll 4
    for (size_t t = 0; t < 4; t++) acc[t] = group_acc<Ops, P, kGroup>(pl, rows, xi, xsum128, g + t);
    float32x4_t sg[4], zg[4] = {zsym, zsym, zsym, zsym};
    load4x4(s + g, sg);
    if (z) load4x4(z + g, zg);
    for (size_t t = 0; t < 4; t++) add_term(acc[t], sg[t], zg[t], xsumf[g + t]);
  }
  for (; g < pl.gpr; g++)
    add_term(group_acc<Ops, P, kGroup>(pl, rows, xi, xsum128, g), gather(s + g), z ? gather(z + g) : zsym, xsumf[g]);
  vst1q_f32(out, vdivq_f32(sum, vdupq_n_f32(xs)));
}

template <class Ops, Path P, size_t kGroup = 0>
void gemm(const Plan& pl, const int8_t* xq, const float* xs, float* y, size_t m, size_t n_begin,
          size_t n_end, Scratch& sc) {
  for (size_t r0 = n_begin; r0 < n_end; r0 += kRows) {
    const size_t live = std::min(kRows, n_end - r0);
    size_t r[kRows];
    const uint8_t* rows[kRows];
    for (size_t rr = 0; rr < kRows; rr++) {
      r[rr] = r0 + std::min(rr, live - 1);
      if constexpr (P == Path::u4 || P == Path::u8) {
        rows[rr] = pl.codes + r[rr] * pl.row_bytes;
      } else {
        uint8_t* u = sc.unpacked.data() + rr * pl.k;
        if (rr < live) {
          unpack_row(pl.codes + r[rr] * pl.row_bytes, pl.k, pl.row_bytes, pl.bits, u);
        }
        rows[rr] = rr < live ? u : rows[rr - 1];
      }
    }
    for (size_t i = 0; i < m; i++) {
      float out[kRows];
      tile_token<Ops, P, kGroup>(pl, rows, r, xq + i * pl.k, sc.xsum128.data() + i * pl.gpr,
                         sc.xsumf.data() + i * pl.gpr, xs[i], out);
      std::memcpy(y + i * pl.n + r0, out, live * sizeof(float));
    }
  }
}

template <class Ops>
void bq_gemm_1x4(const WeightView& w, const int8_t* xq, const float* xs, float* y, size_t m,
                 size_t n_begin, size_t n_end) {
  if (n_begin >= n_end || m == 0) return;
  Plan pl;
  pl.k = w.k;
  pl.n = w.n;
  pl.gpr = w.groups_per_row();
  pl.group = size_t(w.group);
  pl.bits = w.bits;
  pl.row_bytes = bq_code_bytes_per_row(w.k, w.bits);
  pl.codes = w.bq_codes();
  pl.scales = w.bq_scales();
  pl.zeros = w.bq_zeros();
  pl.zsym = float(1u << (w.bits - 1));
  const bool g16 = pl.group % 16 == 0;
  pl.path = w.bits == 4 && pl.group % 32 == 0 ? Path::u4
            : w.bits == 8 && g16              ? Path::u8
            : g16                             ? Path::bytes_u8
                                              : Path::bytes_loop;
  thread_local Scratch sc;
  if (sc.xsum128.size() < m * pl.gpr) sc.xsum128.resize(m * pl.gpr), sc.xsumf.resize(m * pl.gpr);
  if (sc.unpacked.size() < kRows * pl.k) sc.unpacked.resize(kRows * pl.k);
  for (size_t i = 0; i < m; i++) {
    const int8_t* xi = xq + i * w.k;
    for (size_t g = 0; g < pl.gpr; g++) {
      int32_t s = 0;
      for (size_t j = g * pl.group; j < (g + 1) * pl.group; j++) s += xi[j];
      sc.xsum128[i * pl.gpr + g] = 128 * s;
      sc.xsumf[i * pl.gpr + g] = float(s);
    }
  }
  const bool g32 = pl.group == 32;
  switch (pl.path) {
    case Path::u4:
      if (g32) gemm<Ops, Path::u4, 32>(pl, xq, xs, y, m, n_begin, n_end, sc);
      else gemm<Ops, Path::u4>(pl, xq, xs, y, m, n_begin, n_end, sc);
      break;
    case Path::u8:
      if (g32) gemm<Ops, Path::u8, 32>(pl, xq, xs, y, m, n_begin, n_end, sc);
      else gemm<Ops, Path::u8>(pl, xq, xs, y, m, n_begin, n_end, sc);
      break;
    case Path::bytes_u8: gemm<Ops, Path::bytes_u8>(pl, xq, xs, y, m, n_begin, n_end, sc); break;
    case Path::bytes_loop: gemm<Ops, Path::bytes_loop>(pl, xq, xs, y, m, n_begin, n_end, sc); break;
  }
}

}  // namespace
}  // namespace lutra
