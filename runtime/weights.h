// How a weight matrix [n output rows, k input columns] is stored, and a view of one in memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace lutra {

enum class WeightFormat : uint8_t {
  f32,  // row-major float32
  f16,  // row-major IEEE binary16
  // Ternary, 2 bits per weight, row-major: row r occupies t2_row_bytes(k) bytes; weight j of
  // the row sits in byte j/4, bits 2*(j%4)..2*(j%4)+1, as the code w+1 (0:-1, 1:0, 2:+1;
  // 3 is invalid). One float per tensor, `scale` = mean|W|: W ≈ scale * Wq.
  t2,
  // b-bit uniform weights in groups of `group` along k (k % group == 0), bits 1..8:
  //   W[r][j] = s[r][g] * (q[r][j] - z[r][g]),  g = j / group.
  // Sections, one after the other: codes (n rows of bq_code_bytes_per_row, a little-endian
  // bitstream: code j at bit offset j*bits), scales (n*k/group f16), and for asymmetric
  // weights zeros (n*k/group f16). Symmetric weights have the implicit zero 2^(bits-1).
  bq,
  // Ternary for table lookup (design.md §3), 5 bits per 3 weights (1.67 bits/weight), in
  // tiles of 32 rows (t3_tile_rows). Along k, weights go in groups of 3 (k padded with zero
  // weights to G = lut_groups(t3, k) groups: a multiple of 3 columns, then an even count), one
  // pattern per group v = 9(w0+1) + 3(w1+1) + (w2+1) in [0, 26] (13: all zero), folded to a
  // magnitude index 0..13 and a sign: v <= 13 is stored as (v, +), v > 13 as (26 - v, -).
  // Tile t (rows 32t .. 32t+31; rows past n are padding: all zero weights) is
  // t3_tile_bytes(k) bytes at offset t * t3_tile_bytes(k):
  //   [0, 128)   int32 little-endian neg[s], s = 0..31: how many groups of row 32t+s are
  //              negative (kernels that negate by bitwise not add it back: -T = ~T + 1);
  //   then G/2 blocks of 40 bytes, block p holding groups 2p (L = 0) and 2p+1 (L = 1):
  //   [0, 32)    index nibbles: byte 16L + q holds the index of row q in bits 0..3 and of
  //              row 16 + q in bits 4..7 (q = 0..15);
  //   [32, 40)   two little-endian uint32 sign words S[0], S[1]: the sign of row s = 16h + q
  //              of group 2p+L is bit 8(q%4) + 4L + q/4 of S[h] (1: negative).
  // The byte order is the AVX2 kernel's: one 32-byte load gives 32 rows x 2 groups of indices
  // for pshufb, and each sign word expands with one broadcast, and, cmpeq to the 32 byte masks.
  // Tables (lut_build): per block p, 64 bytes [lo(2p) | lo(2p+1) | hi(2p) | hi(2p+1)], where
  // lo/hi are the low and high bytes of the 16 int16 entries T[i] = sum_j w_j(i) x_j of the
  // group's activations x (i = 0..13; T[14] = T[15] = 0). `scale` = mean|W| as for t2.
  // Prefill (many tokens) reads the same layout without tables: gemm_t3_madd decodes each tile
  // once into codes w+1 and multiplies them with the int8 activations (t3-qs8-gemm-madd-*).
  t3,
  // Ternary for table lookup with 128-entry tables (AVX-512 VBMI vpermi2b; design.md §3), one
  // byte per 5 weights (1.6 bits/weight), in tiles of 64 rows (t5_tile_rows). Along k, weights
  // go in groups of 5 (k padded with zero weights to G = lut_groups(t5, k) = ceil(k/5) groups),
  // one pattern per group v = 81(w0+1) + 27(w1+1) + 9(w2+1) + 3(w3+1) + (w4+1) in [0, 242]
  // (121: all zero), folded to a magnitude index 0..121 and a sign: v <= 121 is stored as
  // (v, +), v > 121 as (242 - v, -). The code byte is index | sign << 7 (vpermi2b reads only
  // bits 0..6 of an index byte, so the byte is the index as it stands; bit 7 is the sign).
  // Tile t (rows 64t .. 64t+63; rows past n are padding: all zero weights) is
  // t5_tile_bytes(k) bytes at offset t * t5_tile_bytes(k):
  //   [0, 256)          int32 little-endian neg[s], s = 0..63: how many groups of row 64t+s are
  //                     negative (kernels that negate by bitwise not add it back: -T = ~T + 1);
  //   [256 + 64g, +64)  the code bytes of group g of the tile's 64 rows: byte 16L + b (L = 0..3)
  //                     holds row 8L + b for b < 8 and row 32 + 8L + (b - 8) for b >= 8.
  // The row order is the kernels': unpacklo/hi_epi8 of the looked-up low and high bytes give
  // the int16 values of rows 0..31 and 32..63 in order, and each tile is read strictly
  // sequentially (the VBMI kernel walks four tiles side by side). Tables (lut_build): per group g, 256 bytes at 256g: the low bytes of the 128
  // int16 entries T[i] = sum_j w_j(i) x_j of the group's activations x (i = 0..121, w_j(i) =
  // base-3 digit j of i, most significant first, minus 1; T[122..127] = 0), then their high
  // bytes. `scale` = mean|W| as for t2.
  t5,
  // Bit-serial table lookup (design.md §3, the T-MAC method): the same b-bit group weights as
  // bq (W[r][j] = s[r][g] * (q[r][j] - z[r][g]), bits 1..4, same codes, scales and zeros), laid
  // out as bit planes for 16-entry table lookups. group % 16 == 0, group <= 256, k % group
  // == 0. Tiles of 32 rows (bp_tile_rows; rows past n are padding: zero codes and scales), tile
  // t at offset t * bp_tile_bytes(k, bits, group, asymmetric). Activations go in chunks of 4
  // (chunk c of group g: activations g*group + 4c + 0..3), chunks in quads of 4. Planes go in
  // pairs (2P, 2P+1), P < ceil(bits/2); odd bits have a last pair whose upper plane is all
  // zero. Within a tile, per group g in order:
  //   [0, 64)    32 f16 scales s[32t + q][g], q = 0..31;
  //   [64, 128)  asymmetric only: 32 f16 zeros z[32t + q][g];
  //   then per quad u, per half h (chunks A = 4u + 2h, B = A + 1), per plane pair P, 64 bytes:
  //   byte 2q + d (row q, plane 2P + d) holds chunk A's nibble in bits 0..3 and chunk B's in
  //   bits 4..7; bit e of a chunk's nibble is that plane's bit of the code of activation e.
  // So the hot loop reads one tile front to back, and a byte lookup of a 64-byte block against
  // one chunk's table gives each row's entries of two planes side by side (one maddubs weighs
  // them by 2^(2P) and 2^(2P+1) and sums them per row). Tables (lut_build_bp, per token, for
  // k activations in groups of `group`): k/16 quads of 128 bytes [lo(c0..c3) | hi(c0..c3)],
  // the low and high bytes of the 16 int16 entries T[p] = sum_{e: bit e of p} x[4c + e] of
  // each chunk c (16 bytes each); then k/group int32 xsum[g] = sum of the group's
  // activations, then k/group floats (unused). The fast (int8) tables (lut_build_bp_fast):
  // k/16 quads of 64 bytes, the int8 entries round(T[p] / ts[g]) of chunks c0..c3, then
  // k/group int32 xsum[g], then k/group floats ts[g] = max|T| of the group / 127 (1 when all
  // T are 0).
  bp,
};

std::string_view to_string(WeightFormat f);
bool parse_weight_format(std::string_view s, WeightFormat& out);

inline size_t t2_row_bytes(size_t k) { return (k + 3) / 4; }
// Ternary formats: exact int32 sums against int8 activations, scaled by mean|W|.
inline bool is_ternary(WeightFormat f) {
  return f == WeightFormat::t2 || f == WeightFormat::t3 || f == WeightFormat::t5;
}
inline size_t bq_code_bytes_per_row(size_t k, int bits) { return (k * size_t(bits) + 7) / 8; }

// Table-lookup formats. Groups per token (and per weight row), with padding: t3: ceil(k/3)
// rounded up to even, t5: ceil(k/5) (0 for formats without tables).
size_t lut_groups(WeightFormat f, size_t k);
// Bytes of one token's tables (lut_build output): t3: 32 per group, t5: 256 per group (0 for
// non-LUT formats).
size_t lut_table_bytes(WeightFormat f, size_t k);
constexpr size_t t3_tile_rows = 32;
inline size_t t3_tile_bytes(size_t k) {
  return 128 + lut_groups(WeightFormat::t3, k) / 2 * 40;
}

// t5 (see WeightFormat::t5): groups per token are ceil(k/5); tables take 256 bytes per group.
constexpr size_t t5_tile_rows = 64;
inline size_t t5_tile_bytes(size_t k) { return 256 + (k + 4) / 5 * 64; }
// bp (bit-plane) layout, see WeightFormat::bp.
constexpr size_t bp_tile_rows = 32;
inline bool bp_shape_ok(size_t k, int bits, int group) {
  return bits >= 1 && bits <= 4 && group > 0 && group % 16 == 0 && group <= 256 &&
         k % size_t(group) == 0;
}
inline size_t bp_plane_pairs(int bits) { return size_t(bits + 1) / 2; }
inline size_t bp_group_bytes(int bits, int group, bool asymmetric) {
  return 64 * (asymmetric ? 2 : 1) + size_t(group) / 16 * bp_plane_pairs(bits) * 128;
}
inline size_t bp_tile_bytes(size_t k, int bits, int group, bool asymmetric) {
  return k / size_t(group) * bp_group_bytes(bits, group, asymmetric);
}
// Bytes of one token's tables, exact (int16 entries) or fast (int8 entries).
inline size_t bp_table_bytes(size_t k, int group, bool fast) {
  return k / 16 * (fast ? 64 : 128) + k / size_t(group) * 8;
}

struct WeightView {
  WeightFormat format = WeightFormat::f32;
  size_t n = 0, k = 0;        // output rows, input columns
  const uint8_t* data = nullptr;
  float scale = 1.0f;         // t2, t3, t5: mean|W|
  int bits = 0, group = 0;    // bq
  bool asymmetric = false;    // bq: zeros section present

  size_t groups_per_row() const { return group ? k / size_t(group) : 0; }
  const uint8_t* bq_codes() const { return data; }
  const uint16_t* bq_scales() const {
    return reinterpret_cast<const uint16_t*>(data + n * bq_code_bytes_per_row(k, bits));
  }
  const uint16_t* bq_zeros() const { return asymmetric ? bq_scales() + n * groups_per_row() : nullptr; }
};

// Reading a bp tensor one weight at a time (packer checks, dequantization, scalar kernels).
// The bytes of group g of the tile holding row r: scales at +0, zeros at +64, then the planes.
inline const uint8_t* bp_group_at(const WeightView& w, size_t r, size_t g) {
  return w.data + r / bp_tile_rows * bp_tile_bytes(w.k, w.bits, w.group, w.asymmetric) +
         g * bp_group_bytes(w.bits, w.group, w.asymmetric);
}
// The byte holding plane i of row r, chunk c of group g (the nibble's bits 4*(c%2)..+3).
inline const uint8_t* bp_nibble_byte(const WeightView& w, size_t r, size_t g, size_t c, int i) {
  const size_t pairs = bp_plane_pairs(w.bits);
  return bp_group_at(w, r, g) + 64 * (w.asymmetric ? 2 : 1) +
         ((c / 2) * pairs + size_t(i) / 2) * 64 + 2 * (r % bp_tile_rows) + size_t(i) % 2;
}
inline uint32_t bp_nibble(const WeightView& w, size_t r, size_t g, size_t c, int i) {
  return uint32_t(*bp_nibble_byte(w, r, g, c, i) >> (4 * (c % 2))) & 15u;
}
inline uint32_t bp_code(const WeightView& w, size_t r, size_t j) {
  const size_t group = size_t(w.group), jj = j % group;
  uint32_t code = 0;
  for (int i = 0; i < w.bits; i++) code |= (bp_nibble(w, r, j / group, jj / 4, i) >> (jj % 4) & 1u) << i;
  return code;
}
// The f16 scale (and zero) of row r, group g.
inline const uint8_t* bp_scale_at(const WeightView& w, size_t r, size_t g) {
  return bp_group_at(w, r, g) + 2 * (r % bp_tile_rows);
}

// Bytes a tensor of this format and shape occupies in the model file (0 if the shape is invalid).
size_t weight_bytes(WeightFormat f, size_t n, size_t k, int bits = 0, int group = 0, bool asymmetric = false);

}  // namespace lutra
