// bq weights (b-bit codes in groups along k, an f16 scale and zero per group) x f32
// activations, 1 token x 4 output rows per tile, AVX2 + FMA + F16C, in the canonical float
// order (runtime/float_order.h): the weights are the scalar reference's fma(q, s, -(s z)) and
// two accumulators per row hold lanes 0-7 and 8-15, so results are bit-identical to it.
//
// Paths, chosen per call from bits and group:
// - 8-bit (groups a multiple of 32): vpmovzxbd widens 8 codes at a time.
// - 4-bit (groups a multiple of 32): vpmovzxbd widens 8 bytes = 16 codes; the low nibbles
//   (even j) and the high ones (odd j) go to the pair lanes of float_order.h, against a copy of
//   x permuted once per call (pair_lane_order), so no shuffle sorts the codes.
// - anything else: each group's codes are unpacked to bytes with scalar code first.
// m == 1 on the u8 and u4 paths decodes the codes straight into the FMAs. Otherwise each 4-row
// tile is decoded once per chunk of columns into float weights and every token's lanes are
// accumulated against that buffer, tokens innermost.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include "kernels_common/bq-f32-gemm-tiles.h"
#include "kernels_x86/float-order-avx2.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

constexpr size_t kLanes = 8;
constexpr size_t kChunkCols = 1024;  // m > 1: columns decoded at a time (4 rows: 16 KiB)

// The f16 sections need not be 2-byte aligned (they follow the code bytes).
inline float load_f16(const uint16_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// 8 consecutive byte codes as floats.
inline __m256 widen8(const uint8_t* q) {
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q))));
}

using Path = BqPath;
using Layout = BqLayout<load_f16>;

// Weights of a group as the scalar reference computes them: fma(q, s, -(s z)), nsz = -(s z).
inline __m256 weight(__m256 q, __m256 nsz, __m256 s) { return _mm256_fmadd_ps(q, s, nsz); }

// Weights at positions j..j+31 (j a multiple of 32) of a u8 or u4 group whose codes start at q,
// into w[4] (canonical lanes 0-7, 8-15, 0-7, 8-15). u8: columns j..j+31. u4 (16 bytes per 32
// columns, byte b holding column 2b in its low nibble and 2b+1 in its high one, float_order.h's
// pair lanes): the low nibbles of bytes 0-7 and 8-15, then their high nibbles, to be matched
// with x in pair_lane_order.
template <Path P>
inline void weights32(const uint8_t* q, size_t j, __m256 nsz, __m256 s, __m256* w) {
  if constexpr (P == Path::u4) {
    const __m256i b0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + j / 2)));
    const __m256i b1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + j / 2 + 8)));
    const __m256i nib = _mm256_set1_epi32(0xf);
    w[0] = weight(_mm256_cvtepi32_ps(_mm256_and_si256(b0, nib)), nsz, s);
    w[1] = weight(_mm256_cvtepi32_ps(_mm256_and_si256(b1, nib)), nsz, s);
    w[2] = weight(_mm256_cvtepi32_ps(_mm256_srli_epi32(b0, 4)), nsz, s);
    w[3] = weight(_mm256_cvtepi32_ps(_mm256_srli_epi32(b1, 4)), nsz, s);
  } else {
#pragma GCC unroll 4  // (unrolled late, GCC 12 keeps the vector arrays in memory)
    for (int c = 0; c < 4; c++) w[c] = weight(widen8(q + j + c * kLanes), nsz, s);
  }
}

// m == 1, u8 and u4 (groups a multiple of 32): out[r] = row r0 + r of W times x, the codes
// decoded straight into the FMAs; lo and hi hold the canonical lanes 0-7 and 8-15 of each row.
template <int R, Path P>
void tile_m1(const Layout& L, size_t r0, const float* x, float* out) {
  __m256 lo[R], hi[R];
  for (int r = 0; r < R; r++) lo[r] = hi[r] = _mm256_setzero_ps();
  const size_t G = L.group;
  for (size_t g = 0; g < L.gpr; g++) {
    __m256 nsz[R], s[R];
    const uint8_t* q[R];
    for (int r = 0; r < R; r++) {
      nsz[r] = _mm256_set1_ps(L.neg_scaled_zero(r0 + r, g));
      s[r] = _mm256_set1_ps(L.scale(r0 + r, g));
      if constexpr (P == Path::u8) {
        q[r] = L.row(r0 + r) + g * G;
        // The hardware prefetcher falls behind on 4 interleaved streams of 8-bit codes: fetch
        // the same bytes of the next tile (4 rows on) while this one computes.
        for (size_t b = 0; b < G; b += 64) _mm_prefetch(reinterpret_cast<const char*>(q[r] + 4 * L.row_bytes + b), _MM_HINT_T0);
      } else {
        q[r] = L.row(r0 + r) + g * G / 2;
      }
    }
    for (size_t j = 0; j < G; j += 4 * kLanes) {
      __m256 xv[4];
#pragma GCC unroll 4
      for (int c = 0; c < 4; c++) xv[c] = _mm256_loadu_ps(x + g * G + j + c * kLanes);
#pragma GCC unroll 4
      for (int r = 0; r < R; r++) {
        __m256 w[4];
        weights32<P>(q[r], j, nsz[r], s[r], w);
        lo[r] = _mm256_fmadd_ps(w[0], xv[0], lo[r]);
        hi[r] = _mm256_fmadd_ps(w[1], xv[1], hi[r]);
        lo[r] = _mm256_fmadd_ps(w[2], xv[2], lo[r]);
        hi[r] = _mm256_fmadd_ps(w[3], xv[3], hi[r]);
      }
    }
  }
  for (int r = 0; r < R; r++) out[r] = reduce16(lo[r], hi[r]);
}

// Rows r0..r0+R-1, columns [c0, c0 + cols) (whole groups) as float weights into dst (row
// stride `stride`, a multiple of 16; the padding past cols is zeroed).
template <int R, Path P>
void decode_tile(const Layout& L, size_t r0, size_t c0, size_t cols, uint8_t* buf, float* dst, size_t stride) {
  const size_t G = L.group;
  for (int r = 0; r < R; r++) {
    float* d = dst + r * stride;
    for (size_t g = c0 / G; g < (c0 + cols) / G; g++, d += G) {
      const __m256 nsz = _mm256_set1_ps(L.neg_scaled_zero(r0 + r, g)), s = _mm256_set1_ps(L.scale(r0 + r, g));
      const uint8_t* q = L.row(r0 + r) + (P == Path::u4 ? g * G / 2 : g * G);
      if constexpr (P == Path::bytes) {
        L.unpack(r0 + r, g, buf);
        size_t j = 0;
        for (; j + kLanes <= G; j += kLanes) _mm256_storeu_ps(d + j, weight(widen8(buf + j), nsz, s));
        if (j < G) _mm256_maskstore_ps(d + j, live_mask8(long(G - j)), weight(widen8(buf + j), nsz, s));
      } else {
        for (size_t j = 0; j < G; j += 4 * kLanes) {
          __m256 w[4];
          weights32<P>(q, j, nsz, s, w);
          for (int c = 0; c < 4; c++) _mm256_storeu_ps(d + j + c * kLanes, w[c]);
        }
      }
    }
    std::fill(dst + r * stride + cols, dst + (r + 1) * stride, 0.0f);
  }
}

// lo/hi[r] += the canonical lanes of w[r][0..cols) * x over a decoded tile (padding zero; cols
// starts at a multiple of 16 columns of the row, so lane j % 16 is the canonical one).
template <int R>
inline void dot_tile(const float* w, size_t stride, const float* x, size_t cols, __m256* lo, __m256* hi) {
  size_t j = 0;
  for (; j + 2 * kLanes <= cols; j += 2 * kLanes) {
    const __m256 x0 = _mm256_loadu_ps(x + j), x1 = _mm256_loadu_ps(x + j + kLanes);
    for (int r = 0; r < R; r++) {
      lo[r] = _mm256_fmadd_ps(_mm256_loadu_ps(w + r * stride + j), x0, lo[r]);
      hi[r] = _mm256_fmadd_ps(_mm256_loadu_ps(w + r * stride + j + kLanes), x1, hi[r]);
    }
  }
  if (j < cols) {
    const __m256 x0 = _mm256_maskload_ps(x + j, live_mask8(long(cols - j)));
    const __m256 x1 = _mm256_maskload_ps(x + j + kLanes, live_mask8(long(cols - j) - 8));
    for (int r = 0; r < R; r++) {
      lo[r] = _mm256_fmadd_ps(_mm256_loadu_ps(w + r * stride + j), x0, lo[r]);
      hi[r] = _mm256_fmadd_ps(_mm256_loadu_ps(w + r * stride + j + kLanes), x1, hi[r]);
    }
  }
}

template <Path P>
void gemm(const WeightView& w, const float* x, float* y, size_t m, size_t n_begin, size_t n_end) {
  const Layout L(w);
  const size_t k = w.k;
  if constexpr (P == Path::u4) {  // k is a multiple of 32
    thread_local std::vector<float> xp;  // grows once: the token loop allocates nothing
    if (xp.size() < m * k) xp.resize(m * k);
    pair_lane_order(x, m * k, xp.data());
    x = xp.data();
  }
  if (m == 1 && P != Path::bytes) {
    size_t r = n_begin;
    float out[4];
    for (; r + 4 <= n_end; r += 4) {
      tile_m1<4, P>(L, r, x, out);
      std::memcpy(y + r, out, sizeof out);
    }
    for (; r < n_end; r++) tile_m1<1, P>(L, r, x, y + r);
    return;
  }
  bq_gemm_chunks<kChunkCols>(
      w, x, y, m, n_begin, n_end,
      [&L](auto R, size_t r, size_t c0, size_t cols, uint8_t* buf, float* tile, size_t stride) {
        decode_tile<decltype(R)::value, P>(L, r, c0, cols, buf, tile, stride);
      },
      [](auto R, const float* tile, size_t stride, const float* xi, size_t cols, float* li) {
        constexpr int kR = decltype(R)::value;
        __m256 lo[kR], hi[kR];
        for (int t = 0; t < kR; t++) {
          lo[t] = _mm256_loadu_ps(li + kFloatLanes * t);
          hi[t] = _mm256_loadu_ps(li + kFloatLanes * t + kLanes);
        }
        dot_tile<kR>(tile, stride, xi, cols, lo, hi);
        for (int t = 0; t < kR; t++) {
          _mm256_storeu_ps(li + kFloatLanes * t, lo[t]);
          _mm256_storeu_ps(li + kFloatLanes * t + kLanes, hi[t]);
        }
      },
      [](const float* l) { return reduce16(_mm256_loadu_ps(l), _mm256_loadu_ps(l + kLanes)); });
}

}  // namespace

void lutra_bq_f32_gemm_1x4__avx2(const WeightView& w, const float* x, float* y, size_t m,
                                 size_t n_begin, size_t n_end) {
  bq_gemm_entry(w, y, m, n_begin, n_end, [&](auto path) { gemm<decltype(path)::value>(w, x, y, m, n_begin, n_end); });
}

}  // namespace lutra
