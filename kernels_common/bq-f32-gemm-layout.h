// What every bq float GEMM variant (AVX2, AVX-512, NEON) reads of a bq tensor: per row its code
// bytes, per group its scale and zero, and a group's codes unpacked one per byte (the generic
// path for bit widths without a SIMD unpack). ISA-neutral; LoadF16 is how the including file
// turns one f16 into a float (F16C on x86, fcvt on AArch64: both exact). Each file including it
// is compiled with different ISA flags: the anonymous namespace gives each its own copy.
#pragma once

#include <cstddef>
#include <cstdint>

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

}  // namespace
}  // namespace lutra
