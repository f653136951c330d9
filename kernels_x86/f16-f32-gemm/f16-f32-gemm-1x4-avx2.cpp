// f16 weights x f32 activations, 1 token x 4 output rows per tile, AVX2 + FMA + F16C
// (vcvtph2ps widens exactly), in the canonical float order (runtime/float_order.h): two
// accumulators per row hold lanes 0-7 and 8-15. The ragged end of a row is copied to a
// zero-padded buffer.
#include <immintrin.h>

#include <cstring>

#include "kernels_x86/float-order-avx2.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

inline __m256 widen8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

template <int R>
void rows_tile(const uint16_t* w0, size_t k, const float* x, float* y) {
  __m256 lo[R], hi[R];
  for (int r = 0; r < R; r++) lo[r] = hi[r] = _mm256_setzero_ps();
  size_t j = 0;
  for (; j + 16 <= k; j += 16) {
    const __m256 x0 = _mm256_loadu_ps(x + j), x1 = _mm256_loadu_ps(x + j + 8);
    for (int r = 0; r < R; r++) {
      lo[r] = _mm256_fmadd_ps(widen8(w0 + r * k + j), x0, lo[r]);
      hi[r] = _mm256_fmadd_ps(widen8(w0 + r * k + j + 8), x1, hi[r]);
    }
  }
  if (j < k) {  // zero lanes add fma(0, 0, lane): the canonical tail
    const __m256i m0 = live_mask8(long(k - j)), m1 = live_mask8(long(k - j) - 8);
    const __m256 x0 = _mm256_maskload_ps(x + j, m0), x1 = _mm256_maskload_ps(x + j + 8, m1);
    for (int r = 0; r < R; r++) {
      uint16_t tail[16] = {};
      std::memcpy(tail, w0 + r * k + j, (k - j) * 2);
      lo[r] = _mm256_fmadd_ps(widen8(tail), x0, lo[r]);
      hi[r] = _mm256_fmadd_ps(widen8(tail + 8), x1, hi[r]);
    }
  }
  for (int r = 0; r < R; r++) y[r] = reduce16(lo[r], hi[r]);
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
