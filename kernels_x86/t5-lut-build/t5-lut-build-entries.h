// The 128 int16 entries of one t5 group's table, shared by the AVX-512 table builds (with and
// without VBMI, which differ only in how they split the entries into byte planes): each of
// the 4 vectors of 32 entries is the sum of 5 products of a broadcast activation by a constant
// ternary weight column (vpmullw; the columns are 0 past entry 121, so T[122..127] = 0).
// Included only by files compiled with AVX-512 flags; the anonymous namespace gives each its
// own copy.
#pragma once

#include <immintrin.h>

#include <array>
#include <cstddef>
#include <cstdint>

#include "kernels_common/t5-lut-columns.h"

namespace lutra {
namespace {

// t[c] = entries 32c .. 32c+31 of group g of the k activations xq (zero past k).
inline void t5_group_entries(const int8_t* xq, size_t k, size_t g, __m512i t[4]) {
  __m512i x[5];
  for (size_t j = 0; j < 5; j++) x[j] = _mm512_set1_epi16(5 * g + j < k ? xq[5 * g + j] : 0);
  for (int c = 0; c < 4; c++) {
    __m512i s = _mm512_setzero_si512();
    for (size_t j = 0; j < 5; j++)
      s = _mm512_add_epi16(s, _mm512_mullo_epi16(x[j], _mm512_load_si512(kT5Columns[j].data() + 32 * c)));
    t[c] = s;
  }
}

}  // namespace
}  // namespace lutra
