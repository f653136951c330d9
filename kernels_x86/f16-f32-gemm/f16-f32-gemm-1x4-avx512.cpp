// f16 weights x f32 activations, 1 token x 4 output rows per tile, AVX-512F (vcvtph2ps on 16
// halves, zero-masked only to dodge a GCC 12 warning) with AVX-512BW masked loads for the ragged
// end of k. One accumulator per row is the 16 lanes of the canonical float order
// (runtime/float_order.h); masked lanes add fma(0, 0, lane), the canonical tail.
#include <immintrin.h>

#include "kernels_x86/float-order-avx512.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

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
  for (int r = 0; r < R; r++) y[r] = reduce16(acc[r]);
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
