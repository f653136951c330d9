// What every bq float GEMM variant (AVX2, AVX-512, NEON) shares, ISA-neutral:
// - BqLayout: what it reads of a bq tensor: per row its code bytes, per group its scale and
//   zero, and a group's codes unpacked one per byte (the generic path for bit widths without a
//   SIMD unpack). LoadF16 is how the including file turns one f16 into a float (F16C on x86,
//   fcvt on AArch64: both exact).
// - bq_gemm_chunks: the prefill (m > 1) and generic-width loops; bq_gemm_entry: the checks and
//   the choice of path every variant starts with.
// Each file including it is compiled with different ISA flags: the anonymous namespace gives
// each its own copy.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <type_traits>
#include <vector>

#include "runtime/float_order.h"
#include "runtime/weights.h"

namespace lutra {
namespace {

// How a variant walks the codes: 8-bit and 4-bit codes have SIMD unpacks, other widths go
// through BqLayout::unpack.
enum class BqPath { u8, u4, bytes };

template <float (*LoadF16)(const uint16_t*)>
struct BqLayout {
  const uint8_t* codes;
  size_t row_bytes, gpr, group;
  const uint16_t* scales;
  const uint16_t* zeros;  // null: symmetric, zero = zsym
  float zsym;
  int bits;

  explicit BqLayout(const WeightView& w)
      : codes(w.bq_codes()), row_bytes(bq_code_bytes_per_row(w.k, w.bits)), gpr(w.groups_per_row()),
        group(size_t(w.group)), scales(w.bq_scales()), zeros(w.bq_zeros()), zsym(float(1u << (w.bits - 1))),
        bits(w.bits) {}
  float scale(size_t r, size_t g) const { return LoadF16(scales + r * gpr + g); }
  float zero(size_t r, size_t g) const { return zeros ? LoadF16(zeros + r * gpr + g) : zsym; }
  float neg_scaled_zero(size_t r, size_t g) const { return -(scale(r, g) * zero(r, g)); }
  const uint8_t* row(size_t r) const { return codes + r * row_bytes; }

  // The codes of group g of row r, one byte each, into dst (group bytes).
  void unpack(size_t r, size_t g, uint8_t* dst) const {
    const uint8_t* p = row(r);
    const uint32_t mask = (1u << bits) - 1;
    for (size_t j = g * group, t = 0; t < group; j++, t++) {
      size_t bit = j * size_t(bits);
      uint32_t v = p[bit / 8];
      if (bit % 8 + size_t(bits) > 8) v |= uint32_t(p[bit / 8 + 1]) << 8;  // spans two bytes
      dst[t] = uint8_t((v >> (bit % 8)) & mask);
    }
  }
};

// Tiles of 4 rows (the last ones alone), decoded to floats in chunks of whole groups and whole
// 16-column blocks, so every chunk starts at lane 0; each chunk is decoded once and dotted
// with every token (tokens innermost), and the 16 canonical lanes of each (token, row) carry
// from chunk to chunk in memory, reduced at the end. The variant supplies, for R = 4 or 1
// (std::integral_constant):
//   decode(R, r, c0, cols, buf, tile, stride): rows r..r+R-1, columns c0..c0+cols-1 as floats
//     (weights in the canonical order) at tile + t * stride; buf is one group of scratch bytes
//   dot(R, tile, stride, x, cols, lanes): adds row t's dot with x to lanes + 16 t (16 lanes each)
//   reduce(lanes): the canonical tree of 16 lanes
template <size_t kChunkCols, class Decode, class Dot, class Reduce>
void bq_gemm_chunks(const WeightView& w, const float* x, float* y, size_t m, size_t n_begin,
                    size_t n_end, Decode decode, Dot dot, Reduce reduce) {
  using Four = std::integral_constant<int, 4>;
  using One = std::integral_constant<int, 1>;
  const size_t k = w.k, G = size_t(w.group), L = kFloatLanes;
  const size_t gpad = (G + L - 1) / L * L;
  const size_t unit = G / std::gcd(G, L) * L;
  const size_t chunk = std::max<size_t>(1, kChunkCols / unit) * unit;
  const size_t stride = (std::min(chunk, k) + L - 1) / L * L;
  // Per-thread scratch that grows once (the token loop allocates nothing).
  thread_local std::vector<uint8_t> buf;
  thread_local std::vector<float> tile;
  thread_local std::vector<float> lanes;  // [token][row][16]
  if (buf.size() < gpad) buf.resize(gpad);
  if (tile.size() < 4 * stride) tile.resize(4 * stride);
  if (lanes.size() < 4 * L * m) lanes.resize(4 * L * m);
  for (size_t r = n_begin; r < n_end; r += 4) {
    const size_t rows = std::min<size_t>(4, n_end - r);
    std::fill(lanes.begin(), lanes.begin() + long(4 * L * m), 0.0f);
    for (size_t c0 = 0; c0 < k; c0 += chunk) {
      const size_t cols = std::min(chunk, k - c0);
      if (rows == 4) decode(Four{}, r, c0, cols, buf.data(), tile.data(), stride);
      else
        for (size_t t = 0; t < rows; t++) decode(One{}, r + t, c0, cols, buf.data(), tile.data() + t * stride, stride);
      for (size_t i = 0; i < m; i++) {
        float* li = lanes.data() + 4 * L * i;
        const float* xi = x + i * k + c0;
        if (rows == 4) dot(Four{}, tile.data(), stride, xi, cols, li);
        else
          for (size_t t = 0; t < rows; t++) dot(One{}, tile.data() + t * stride, stride, xi, cols, li + L * t);
      }
    }
    for (size_t i = 0; i < m; i++)
      for (size_t t = 0; t < rows; t++) y[i * w.n + r + t] = reduce(lanes.data() + L * (4 * i + t));
  }
}

// The entry every variant shares: an empty range does nothing, k = 0 gives zeros, then
// gemm(std::integral_constant<BqPath, path>{}) by code width: 8- and 4-bit codes in groups of
// whole 32 columns have SIMD unpacks, other widths and groups go through bytes.
template <class Gemm>
void bq_gemm_entry(const WeightView& w, float* y, size_t m, size_t n_begin, size_t n_end, Gemm gemm) {
  if (n_begin >= n_end || m == 0) return;
  if (w.k == 0) {
    for (size_t i = 0; i < m; i++) std::fill(y + i * w.n + n_begin, y + i * w.n + n_end, 0.0f);
    return;
  }
  if (w.bits == 8 && w.group % 32 == 0) gemm(std::integral_constant<BqPath, BqPath::u8>{});
  else if (w.bits == 4 && w.group % 32 == 0) gemm(std::integral_constant<BqPath, BqPath::u4>{});
  else gemm(std::integral_constant<BqPath, BqPath::bytes>{});
}

}  // namespace
}  // namespace lutra
