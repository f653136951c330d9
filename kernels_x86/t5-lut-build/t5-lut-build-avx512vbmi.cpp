// Table build for t5 (WeightFormat::t5), AVX-512 VBMI: one group of 5 activations per
// iteration. Its 128 int16 entries T[i] = sum_j w_j(i) x_j are 4 vectors of 32, each the sum
// of 5 products of a broadcast activation by a constant ternary weight column (vpmullw; the
// columns are 0 past entry 121, so T[122..127] = 0); two vpermt2b per byte plane then gather
// the low and the high bytes of all 128 entries. Same bytes as lutra_t5_lut_build__scalar.
#include <immintrin.h>

#include <array>

#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

// columns[j][i] = w_j(i): base-3 digit j of i (most significant first) minus 1, 0 for i >= 122.
constexpr std::array<std::array<int16_t, 128>, 5> make_columns() {
  std::array<std::array<int16_t, 128>, 5> c{};
  for (int i = 0; i < 122; i++) {
    int v = i;
    for (int j = 4; j >= 0; j--, v /= 3) c[size_t(j)][size_t(i)] = int16_t(v % 3 - 1);
  }
  return c;
}
alignas(64) constexpr std::array<std::array<int16_t, 128>, 5> kColumns = make_columns();

inline __m512i column(int j, int chunk) {
  return _mm512_load_si512(kColumns[size_t(j)].data() + 32 * chunk);
}

}  // namespace

void lutra_t5_lut_build__avx512vbmi(const int8_t* xq, size_t k, size_t group_begin,
                                    size_t group_end, uint8_t* table) {
  // Byte i of the result: byte 2i (low planes) or 2i + 1 (high) of the pair (a, b) of int16
  // vectors, i.e. of entry i of the 64 entries they hold.
  alignas(64) uint8_t even[64], odd[64];
  for (int i = 0; i < 64; i++) even[i] = uint8_t(2 * i), odd[i] = uint8_t(2 * i + 1);
  const __m512i lo_bytes = _mm512_load_si512(even), hi_bytes = _mm512_load_si512(odd);
  for (size_t g = group_begin; g < group_end; g++) {
    __m512i x[5];
    for (size_t j = 0; j < 5; j++)
      x[j] = _mm512_set1_epi16(5 * g + j < k ? xq[5 * g + j] : 0);  // zero padding
    __m512i t[4];
    for (int c = 0; c < 4; c++) {
      __m512i s = _mm512_mullo_epi16(x[0], column(0, c));
      for (int j = 1; j < 5; j++) s = _mm512_add_epi16(s, _mm512_mullo_epi16(x[j], column(j, c)));
      t[c] = s;
    }
    __m512i* out = reinterpret_cast<__m512i*>(table + 256 * g);
    _mm512_storeu_si512(out + 0, _mm512_permutex2var_epi8(t[0], lo_bytes, t[1]));
    _mm512_storeu_si512(out + 1, _mm512_permutex2var_epi8(t[2], lo_bytes, t[3]));
    _mm512_storeu_si512(out + 2, _mm512_permutex2var_epi8(t[0], hi_bytes, t[1]));
    _mm512_storeu_si512(out + 3, _mm512_permutex2var_epi8(t[2], hi_bytes, t[3]));
  }
}

}  // namespace lutra
