// The constant ternary weight columns of a t5 table (WeightFormat::t5), shared by the SIMD table
// builds (AVX-512, NEON): entry i of a group's table is sum_j columns[j][i] * x_j.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace lutra {
namespace {

// columns[j][i] = w_j(i): base-3 digit j of i (most significant first) minus 1, 0 for i >= 122.
constexpr std::array<std::array<int16_t, 128>, 5> make_t5_columns() {
  std::array<std::array<int16_t, 128>, 5> c{};
  for (int i = 0; i < 122; i++) {
    int v = i;
    for (int j = 4; j >= 0; j--, v /= 3) c[size_t(j)][size_t(i)] = int16_t(v % 3 - 1);
  }
  return c;
}
alignas(64) constexpr std::array<std::array<int16_t, 128>, 5> kT5Columns = make_t5_columns();

}  // namespace
}  // namespace lutra
