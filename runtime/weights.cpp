#include "runtime/weights.h"

namespace lutra {

std::string_view to_string(WeightFormat f) {
  switch (f) {
    case WeightFormat::f32: return "f32";
    case WeightFormat::f16: return "f16";
    case WeightFormat::t2: return "t2";
    case WeightFormat::bq: return "bq";
    case WeightFormat::t3: return "t3";
    case WeightFormat::t5: return "t5";
    case WeightFormat::bp: return "bp";
  }
  return "?";
}

bool parse_weight_format(std::string_view s, WeightFormat& out) {
  for (WeightFormat f : {WeightFormat::f32, WeightFormat::f16, WeightFormat::t2, WeightFormat::bq,
                         WeightFormat::t3, WeightFormat::t5,
                         WeightFormat::bp}) {
    if (s == to_string(f)) {
      out = f;
      return true;
    }
  }
  return false;
}

size_t weight_bytes(WeightFormat f, size_t n, size_t k, int bits, int group, bool asymmetric) {
  switch (f) {
    case WeightFormat::f32: return n * k * 4;
    case WeightFormat::f16: return n * k * 2;
    case WeightFormat::t2: return n * t2_row_bytes(k);
    case WeightFormat::bq: {
      if (bits < 1 || bits > 8 || group <= 0 || k % size_t(group) != 0) return 0;
      size_t groups = n * (k / size_t(group));
      return n * bq_code_bytes_per_row(k, bits) + groups * 2 * (asymmetric ? 2 : 1);
    }
    case WeightFormat::t3: return (n + t3_tile_rows - 1) / t3_tile_rows * t3_tile_bytes(k);
    case WeightFormat::t5: return (n + t5_tile_rows - 1) / t5_tile_rows * t5_tile_bytes(k);
    case WeightFormat::bp:
      if (!bp_shape_ok(k, bits, group)) return 0;
      return (n + bp_tile_rows - 1) / bp_tile_rows * bp_tile_bytes(k, bits, group, asymmetric);
  }
  return 0;
}

size_t lut_groups(WeightFormat f, size_t k) {
  switch (f) {
    case WeightFormat::t3: return ((k + 2) / 3 + 1) / 2 * 2;
    case WeightFormat::t5: return (k + 4) / 5;
    default: return 0;
  }
}

size_t lut_table_bytes(WeightFormat f, size_t k) {
  switch (f) {
    case WeightFormat::t3: return lut_groups(f, k) * 32;
    case WeightFormat::t5: return lut_groups(f, k) * 256;
    default: return 0;
  }
}

}  // namespace lutra
