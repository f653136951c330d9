// What the x86 bq x int8 GEMM variants (AVX2 tiles of 8 rows, AVX-512 tiles of 16) share,
// ISA-neutral: the tensor's layout (BqI8Plan), the once-per-token preparation of the
// activations (group sums; a nibble-pair permutation for 4-bit codes, or a widening to int16),
// the per-row group sums of 32-code parts, and the prefetch of a row's scales and zeros.
// Each file including it is compiled with different ISA flags: the anonymous namespace gives
// each its own copy.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "runtime/weights.h"

namespace lutra {
namespace {

struct BqI8Plan {
  size_t k, n, gpr, group, row_bytes, steps;  // steps: whole reduction steps of `step` codes
  const uint8_t* codes;
  const uint16_t* scales;
  const uint16_t* zeros;  // null: symmetric, zero = zsym
  float zsym;
  int bits;

  BqI8Plan(const WeightView& w, size_t step)
      : k(w.k), n(w.n), gpr(w.groups_per_row()), group(size_t(w.group)),
        row_bytes(bq_code_bytes_per_row(w.k, w.bits)), steps((w.k + step - 1) / step), codes(w.bq_codes()),
        scales(w.bq_scales()), zeros(w.bq_zeros()), zsym(float(1u << (w.bits - 1))), bits(w.bits) {}
};

// Code j of a little-endian bitstream (bits <= 8).
inline uint32_t bq_code_at(const uint8_t* row, size_t j, int bits) {
  const size_t bit = j * size_t(bits);
  uint32_t v = row[bit / 8];
  if (bit % 8 + size_t(bits) > 8) v |= uint32_t(row[bit / 8 + 1]) << 8;
  return (v >> (bit % 8)) & ((1u << bits) - 1);
}

// One token's activations xi (k values): xsumf[g] = the sum of group g, exact as a float; then
// either xp (non-null): per `block` codes the even ones, then the odd ones, the order in which
// the low and high nibbles of block / 2 packed bytes pair with them; or xw: widened to int16.
// Both are zero padded to xstride values.
inline void bq_i8_prepare_token(const BqI8Plan& pl, const int8_t* xi, float* xsumf, int8_t* xp,
                                size_t block, int16_t* xw, size_t xstride) {
  for (size_t g = 0; g < pl.gpr; g++) {
    int32_t s = 0;
    for (size_t j = g * pl.group; j < (g + 1) * pl.group; j++) s += xi[j];
    xsumf[g] = float(s);
  }
  if (xp) {
    std::fill(xp, xp + xstride, int8_t(0));
    for (size_t j = 0; j < pl.k; j++) xp[j / block * block + (j % 2) * (block / 2) + (j % block) / 2] = xi[j];
  } else if (xw) {
    std::fill(xw, xw + xstride, int16_t(0));
    for (size_t j = 0; j < pl.k; j++) xw[j] = xi[j];
  }
}

// acc_g from the sums of 32-code parts: the parts themselves when a group is one part, else
// their sums into acc.
inline const int32_t* bq_group_sums(const BqI8Plan& pl, const int32_t* parts, int32_t* acc) {
  const size_t per = pl.group / 32;
  if (per == 1) return parts;
  for (size_t g = 0; g < pl.gpr; g++) {
    int32_t a = 0;
    for (size_t p = 0; p < per; p++) a += parts[g * per + p];
    acc[g] = a;
  }
  return acc;
}

// Row r's scales (and zeros) streams, as many rows ahead as the codes' prefetch. Without this
// the hardware prefetchers leave them to demand misses: measured, 2x slower on the LM head.
inline void bq_prefetch_scales(const BqI8Plan& pl, size_t r, size_t prefetch) {
  const size_t ahead = prefetch / pl.row_bytes * pl.gpr * 2;
  const char* sp = reinterpret_cast<const char*>(pl.scales + r * pl.gpr) + ahead;
  for (size_t b = 0; b < pl.gpr * 2; b += 64) __builtin_prefetch(sp + b, 0, 3);
  if (pl.zeros) {
    const char* zp = reinterpret_cast<const char*>(pl.zeros + r * pl.gpr) + ahead;
    for (size_t b = 0; b < pl.gpr * 2; b += 64) __builtin_prefetch(zp + b, 0, 3);
  }
}

}  // namespace
}  // namespace lutra
