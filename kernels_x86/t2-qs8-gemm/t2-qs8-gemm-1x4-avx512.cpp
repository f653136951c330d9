// Ternary x int8 GEMM, 1 token x 4 output rows per tile, AVX-512BW: the AVX2 scheme at twice
// the width. 64 packed bytes hold codes 4q+t (q < 64) at bits 2t of byte q; activations of
// each 256-wide block are permuted once per call to the order t*64 + q. maddubs lanes stay in
// [-512, 510], four of them summed fit int16, so the int32 result is exact.
#include <immintrin.h>

#include <vector>

#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

constexpr size_t kBlock = 256;  // codes per 64 packed bytes

// Own reduction, with zero-masked extracts: GCC 12's reduce and cast intrinsics trip
// -Wuninitialized inside its headers (they use _mm512_undefined_*).
inline int32_t hsum(__m512i v) {
  __m256i h = _mm256_add_epi32(_mm512_maskz_extracti64x4_epi64(0xff, v, 0), _mm512_maskz_extracti64x4_epi64(0xff, v, 1));
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

inline __m512i block_dot(__m512i packed, const int8_t* xb) {
  const __m512i mask = _mm512_set1_epi8(3);
  __m512i c0 = _mm512_and_si512(packed, mask);
  __m512i c1 = _mm512_and_si512(_mm512_srli_epi16(packed, 2), mask);
  __m512i c2 = _mm512_and_si512(_mm512_srli_epi16(packed, 4), mask);
  __m512i c3 = _mm512_and_si512(_mm512_srli_epi16(packed, 6), mask);
  auto x = [&](int t) { return _mm512_loadu_si512(xb + 64 * t); };
  __m512i p = _mm512_add_epi16(_mm512_maddubs_epi16(c0, x(0)), _mm512_maddubs_epi16(c1, x(1)));
  p = _mm512_add_epi16(p, _mm512_maddubs_epi16(c2, x(2)));
  p = _mm512_add_epi16(p, _mm512_maddubs_epi16(c3, x(3)));
  return _mm512_madd_epi16(p, _mm512_set1_epi16(1));
}

template <int R>
void rows_tile(const uint8_t* w0, size_t row_bytes, const int8_t* xp, size_t n_blocks,
               int32_t x_sum, int32_t* out) {
  size_t full = row_bytes / 64;
  __m512i acc[R];
  for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_si512();
  for (size_t b = 0; b < full; b++) {
    for (int r = 0; r < R; r++) {
      __m512i packed = _mm512_loadu_si512(w0 + r * row_bytes + 64 * b);
      acc[r] = _mm512_add_epi32(acc[r], block_dot(packed, xp + b * kBlock));
    }
  }
  if (full < n_blocks) {  // ragged k: masked load of the row's last bytes (their x are 0)
    __mmask64 live = (__mmask64(1) << (row_bytes - 64 * full)) - 1;
    for (int r = 0; r < R; r++) {
      __m512i packed = _mm512_maskz_loadu_epi8(live, w0 + r * row_bytes + 64 * full);
      acc[r] = _mm512_add_epi32(acc[r], block_dot(packed, xp + full * kBlock));
    }
  }
  for (int r = 0; r < R; r++) out[r] = hsum(acc[r]) - x_sum;
}

}  // namespace

void lutra_t2_qs8_gemm_1x4__avx512(const WeightView& w, const int8_t* xq, int32_t* acc,
                                   size_t m, size_t n_begin, size_t n_end) {
  const size_t k = w.k, row_bytes = t2_row_bytes(k);
  const size_t n_blocks = (k + kBlock - 1) / kBlock, stride = n_blocks * kBlock;
  thread_local std::vector<int8_t> xp;  // permuted activations, grows once per thread
  thread_local std::vector<int32_t> x_sum;
  xp.assign(m * stride, 0);
  x_sum.assign(m, 0);
  for (size_t i = 0; i < m; i++) {
    const int8_t* x = xq + i * k;
    int8_t* dst = xp.data() + i * stride;
    for (size_t j = 0; j < k; j++) {
      size_t b = j / kBlock, q = (j % kBlock) / 4, t = j % 4;
      dst[b * kBlock + t * 64 + q] = x[j];
      x_sum[i] += x[j];
    }
  }
  size_t r = n_begin;
  int32_t out[4];
  for (; r + 4 <= n_end; r += 4) {
    for (size_t i = 0; i < m; i++) {  // tokens innermost: the 4 rows stay in L1
      rows_tile<4>(w.data + r * row_bytes, row_bytes, xp.data() + i * stride, n_blocks, x_sum[i], out);
      for (int t = 0; t < 4; t++) acc[i * w.n + r + t] = out[t];
    }
  }
  for (; r < n_end; r++)
    for (size_t i = 0; i < m; i++)
      rows_tile<1>(w.data + r * row_bytes, row_bytes, xp.data() + i * stride, n_blocks, x_sum[i],
                   &acc[i * w.n + r]);
}

}  // namespace lutra
