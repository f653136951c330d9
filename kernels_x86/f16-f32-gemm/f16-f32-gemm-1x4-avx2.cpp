// f16 weights x f32 activations, 1 token x 4 output rows per tile, AVX2 + FMA + F16C
// (vcvtph2ps widens exactly). The ragged end of a row is copied to a zero-padded buffer.
#include <immintrin.h>

#include <cstring>

#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int R>
void rows_tile(const uint16_t* w0, size_t k, const float* x, float* y) {
  __m256 acc[R];
  for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
  size_t j = 0;
  for (; j + 8 <= k; j += 8) {
    __m256 xv = _mm256_loadu_ps(x + j);
    for (int r = 0; r < R; r++) {
      __m256 wv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w0 + r * k + j)));
      acc[r] = _mm256_fmadd_ps(wv, xv, acc[r]);
    }
  }
  if (j < k) {
    __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(k - j)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 xv = _mm256_maskload_ps(x + j, live);
    for (int r = 0; r < R; r++) {
      uint16_t tail[8] = {};
      std::memcpy(tail, w0 + r * k + j, (k - j) * 2);
      __m256 wv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tail)));
      acc[r] = _mm256_fmadd_ps(wv, xv, acc[r]);
    }
  }
  for (int r = 0; r < R; r++) y[r] = hsum(acc[r]);
}

}  // namespace

void lutra_f16_f32_gemm_1x4__avx2(const WeightView& w, const float* x, float* y, size_t m,
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
