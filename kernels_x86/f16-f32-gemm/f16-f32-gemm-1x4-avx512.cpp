// f16 weights x f32 activations, 1 token x 4 output rows per tile, AVX-512F (vcvtph2ps on 16
// halves, zero-masked only to dodge the GCC 12 warning below) with AVX-512BW masked loads for
// the ragged end of k.
#include <immintrin.h>

#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

// Own reduction, with zero-masked extracts: GCC 12's reduce and cast intrinsics trip
// -Wuninitialized inside its headers (they use _mm512_undefined_*).
inline float hsum(__m512 v) {
  __m256 h = _mm256_add_ps(_mm512_maskz_extractf32x8_ps(0xff, v, 0), _mm512_maskz_extractf32x8_ps(0xff, v, 1));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int R>
void rows_tile(const uint16_t* w0, size_t k, const float* x, float* y) {
  __m512 acc[R];
  for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
  size_t j = 0;
  for (; j + 16 <= k; j += 16) {
    __m512 xv = _mm512_loadu_ps(x + j);
    for (int r = 0; r < R; r++) {
      __m512 wv = _mm512_maskz_cvtph_ps(0xffff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w0 + r * k + j)));
      acc[r] = _mm512_fmadd_ps(wv, xv, acc[r]);
    }
  }
  if (j < k) {
    __mmask16 live = __mmask16((1u << (k - j)) - 1);
    __m512 xv = _mm512_maskz_loadu_ps(live, x + j);
    for (int r = 0; r < R; r++) {
      __m512 wv = _mm512_maskz_cvtph_ps(0xffff, _mm256_maskz_loadu_epi16(live, w0 + r * k + j));
      acc[r] = _mm512_fmadd_ps(wv, xv, acc[r]);
    }
  }
  for (int r = 0; r < R; r++) y[r] = hsum(acc[r]);
}

}  // namespace

void lutra_f16_f32_gemm_1x4__avx512(const WeightView& w, const float* x, float* y, size_t m,
                                    size_t n_begin, size_t n_end) {
  const uint16_t* wh = reinterpret_cast<const uint16_t*>(w.data);
  const size_t k = w.k;
  size_t r = n_begin;
  float out[4];
  for (; r + 4 <= n_end; r += 4) {
    for (size_t i = 0; i < m; i++) {  // tokens innermost: the 4 rows stay in cache
      rows_tile<4>(wh + r * k, k, x + i * k, out);
      for (int t = 0; t < 4; t++) y[i * w.n + r + t] = out[t];
    }
  }
  for (; r < n_end; r++)
    for (size_t i = 0; i < m; i++) rows_tile<1>(wh + r * k, k, x + i * k, &y[i * w.n + r]);
}

}  // namespace lutra
