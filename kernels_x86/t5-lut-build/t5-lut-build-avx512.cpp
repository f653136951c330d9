// Table build for t5 (WeightFormat::t5), AVX-512 F/BW: one group of 5 activations per
// iteration. Its 128 int16 entries T[i] = sum_j w_j(i) x_j are 4 vectors of 32, each the sum
// of 5 products of a broadcast activation by a constant ternary weight column (vpmullw; the
// columns are 0 past entry 121, so T[122..127] = 0); per byte plane, the low bytes (and 0xff)
// or high bytes (>> 8) of each pair of vectors pack with vpackuswb (exact: 0..255) and one
// qword permute restores entry order. Same bytes as lutra_t5_lut_build__scalar.
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

void lutra_t5_lut_build__avx512(const int8_t* xq, size_t k, size_t group_begin,
                                    size_t group_end, uint8_t* table) {
  const __m512i low_byte = _mm512_set1_epi16(0xff);
  // vpackuswb packs per 128-bit lane: qwords a0 b0 a1 b1 a2 b2 a3 b3 -> a0..a3 b0..b3.
  const __m512i lanes = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7);
  auto pack = [&](__m512i a, __m512i b) {
    // Zero-masked with a full mask (the same instruction): GCC 12's unmasked form trips
    // -Wmaybe-uninitialized inside its header.
    return _mm512_maskz_permutexvar_epi64(0xff, lanes, _mm512_packus_epi16(a, b));
  };
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
    __m512i lo[4], hi[4];
    for (int c = 0; c < 4; c++)
      lo[c] = _mm512_and_si512(t[c], low_byte), hi[c] = _mm512_srli_epi16(t[c], 8);
    _mm512_storeu_si512(out + 0, pack(lo[0], lo[1]));
    _mm512_storeu_si512(out + 1, pack(lo[2], lo[3]));
    _mm512_storeu_si512(out + 2, pack(hi[0], hi[1]));
    _mm512_storeu_si512(out + 3, pack(hi[2], hi[3]));
  }
}

}  // namespace lutra
