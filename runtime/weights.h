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
};

std::string_view to_string(WeightFormat f);
bool parse_weight_format(std::string_view s, WeightFormat& out);

inline size_t t2_row_bytes(size_t k) { return (k + 3) / 4; }
inline size_t bq_code_bytes_per_row(size_t k, int bits) { return (k * size_t(bits) + 7) / 8; }

struct WeightView {
  WeightFormat format = WeightFormat::f32;
  size_t n = 0, k = 0;        // output rows, input columns
  const uint8_t* data = nullptr;
  float scale = 1.0f;         // t2: mean|W|
  int bits = 0, group = 0;    // bq
  bool asymmetric = false;    // bq: zeros section present

  size_t groups_per_row() const { return group ? k / size_t(group) : 0; }
  const uint8_t* bq_codes() const { return data; }
  const uint16_t* bq_scales() const {
    return reinterpret_cast<const uint16_t*>(data + n * bq_code_bytes_per_row(k, bits));
  }
  const uint16_t* bq_zeros() const { return asymmetric ? bq_scales() + n * groups_per_row() : nullptr; }
};

// Bytes a tensor of this format and shape occupies in the model file (0 if the shape is invalid).
size_t weight_bytes(WeightFormat f, size_t n, size_t k, int bits = 0, int group = 0, bool asymmetric = false);

}  // namespace lutra
