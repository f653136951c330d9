// bq weights (b-bit codes in groups along k, an f16 scale and zero per group) x f32
// activations, 1 token x 4 output rows per tile, AVX-512F + FMA + F16C, in the canonical float
// order (runtime/float_order.h): the weights are the scalar reference's fma(q, s, -(s z)), one
// accumulator per row holds the 16 lanes, so results are bit-identical to the reference.
//
// Paths, chosen per call from bits and group:
// - 8-bit (groups a multiple of 32): vpmovzxbd widens 16 codes at a time.
// - 4-bit (groups a multiple of 32): vpmovzxbd widens 16 bytes = 32 codes; the low nibbles
//   (even j) and the high ones (odd j) go to the pair lanes of float_order.h, against a copy of
//   x permuted once per call (pair_lane_order), so no shuffle sorts the codes.
// - anything else: each group's codes are unpacked to bytes with scalar code first.
// Intrinsics that GCC 12 implements with _mm512_undefined_* trip -Wuninitialized, so the
// zero-masked forms are used throughout (as in f16-f32-gemm-1x4-avx512.cpp).
// m == 1 on the u8 and u4 paths decodes the codes straight into the FMAs. Otherwise each 4-row
// tile is decoded once per chunk of columns into float weights and every token's lanes are
// accumulated against that buffer, tokens innermost.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include "kernels_common/bq-f32-gemm-tiles.h"
#include "kernels_x86/float-order-avx512.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

constexpr size_t kLanes = 16;
constexpr size_t kChunkCols = 1024;  // m > 1: columns decoded at a time (4 rows: 16 KiB)

// The f16 sections need not be 2-byte aligned (they follow the code bytes).
inline float load_f16(const uint16_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline __mmask16 tail_mask(size_t live) { return __mmask16((1u << live) - 1); }

inline __m512 to_float(__m512i v) { return _mm512_maskz_cvtepi32_ps(0xffff, v); }

// 16 consecutive byte codes, widened to int32.
inline __m512i widen16(const uint8_t* q) {
  return _mm512_maskz_cvtepu8_epi32(0xffff, _mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
}

using Path = BqPath;
using Layout = BqLayout<load_f16>;

// Weights of a group as the scalar reference computes them: fma(q, s, -(s z)), nsz = -(s z).
inline __m512 weight(__m512i q, __m512 nsz, __m512 s) { return _mm512_fmadd_ps(to_float(q), s, nsz); }

// Weights j..j+31 (j a multiple of 32) of a u8 or u4 group whose codes start at q, w0 and w1 in
// the order of the canonical lanes: u8 columns j..j+15, then j+16..j+31; u4 (16 bytes, byte b
// holding column 2b in its low nibble and 2b+1 in its high one, float_order.h's pair lanes) the
// low nibbles, then the high ones, to be matched with x in pair_lane_order.
template <Path P>
inline void weights32(const uint8_t* q, size_t j, __m512 nsz, __m512 s, __m512& w0, __m512& w1) {
  if constexpr (P == Path::u4) {
    const __m512i b = widen16(q + j / 2);
    w0 = weight(_mm512_and_si512(b, _mm512_set1_epi32(0xf)), nsz, s);
    w1 = weight(_mm512_maskz_srli_epi32(0xffff, b, 4), nsz, s);
  } else {
    w0 = weight(widen16(q + j), nsz, s);
    w1 = weight(widen16(q + j + kLanes), nsz, s);
  }
}

// m == 1, u8 and u4 (groups a multiple of 32): out[r] = row r0 + r of W times x, the codes
// decoded straight into the FMAs; one accumulator per row is the 16 canonical lanes.
template <int R, Path P>
void tile_m1(const Layout& L, size_t r0, const float* x, float* out) {
  __m512 acc[R];
  for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
  const size_t G = L.group;
  for (size_t g = 0; g < L.gpr; g++) {
    __m512 nsz[R], s[R];
    const uint8_t* q[R];
    for (int r = 0; r < R; r++) {
      nsz[r] = _mm512_set1_ps(L.neg_scaled_zero(r0 + r, g));
      s[r] = _mm512_set1_ps(L.scale(r0 + r, g));
      if constexpr (P == Path::u8) {
        q[r] = L.row(r0 + r) + g * G;
        // The hardware prefetcher falls behind on 4 interleaved streams of 8-bit codes: fetch
        // the same bytes of the next tile (4 rows on) while this one computes.
        for (size_t b = 0; b < G; b += 64) _mm_prefetch(reinterpret_cast<const char*>(q[r] + 4 * L.row_bytes + b), _MM_HINT_T0);
      } else {
        q[r] = L.row(r0 + r) + g * G / 2;
      }
    }
    for (size_t j = 0; j < G; j += 2 * kLanes) {
      const __m512 x0 = _mm512_loadu_ps(x + g * G + j), x1 = _mm512_loadu_ps(x + g * G + j + kLanes);
      for (int r = 0; r < R; r++) {
        __m512 w0, w1;
        weights32<P>(q[r], j, nsz[r], s[r], w0, w1);
        acc[r] = _mm512_fmadd_ps(w1, x1, _mm512_fmadd_ps(w0, x0, acc[r]));
      }
    }
  }
  for (int r = 0; r < R; r++) out[r] = reduce16(acc[r]);
}

// Rows r0..r0+R-1, columns [c0, c0 + cols) (whole groups) as float weights into dst (row
// stride `stride`, a multiple of 16; the padding past cols is zeroed).
template <int R, Path P>
void decode_tile(const Layout& L, size_t r0, size_t c0, size_t cols, uint8_t* buf, float* dst, size_t stride) {
  const size_t G = L.group;
  for (int r = 0; r < R; r++) {
    float* d = dst + r * stride;
    for (size_t g = c0 / G; g < (c0 + cols) / G; g++, d += G) {
      const __m512 nsz = _mm512_set1_ps(L.neg_scaled_zero(r0 + r, g)), s = _mm512_set1_ps(L.scale(r0 + r, g));
      const uint8_t* q = L.row(r0 + r) + (P == Path::u4 ? g * G / 2 : g * G);
      if constexpr (P == Path::bytes) {
        L.unpack(r0 + r, g, buf);
        size_t j = 0;
        for (; j + kLanes <= G; j += kLanes) _mm512_storeu_ps(d + j, weight(widen16(buf + j), nsz, s));
        if (j < G) _mm512_mask_storeu_ps(d + j, tail_mask(G - j), weight(widen16(buf + j), nsz, s));
      } else {
        for (size_t j = 0; j < G; j += 2 * kLanes) {
          __m512 w0, w1;
          weights32<P>(q, j, nsz, s, w0, w1);
          _mm512_storeu_ps(d + j, w0);
          _mm512_storeu_ps(d + j + kLanes, w1);
        }
      }
    }
    std::fill(dst + r * stride + cols, dst + (r + 1) * stride, 0.0f);
  }
}

// acc[r] += the canonical lanes of w[r][0..cols) * x over a decoded tile (padding zero; cols
// starts at a multiple of 16 columns of the row, so lane j % 16 is the canonical one).
template <int R>
inline void dot_tile(const float* w, size_t stride, const float* x, size_t cols, __m512* acc) {
  size_t j = 0;
  for (; j + kLanes <= cols; j += kLanes) {
    const __m512 xv = _mm512_loadu_ps(x + j);
    for (int r = 0; r < R; r++) acc[r] = _mm512_fmadd_ps(_mm512_loadu_ps(w + r * stride + j), xv, acc[r]);
  }
  if (j < cols) {
    const __m512 xv = _mm512_maskz_loadu_ps(tail_mask(cols - j), x + j);
    for (int r = 0; r < R; r++) acc[r] = _mm512_fmadd_ps(_mm512_loadu_ps(w + r * stride + j), xv, acc[r]);
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
        __m512 acc[kR];
        for (int t = 0; t < kR; t++) acc[t] = _mm512_loadu_ps(li + kLanes * t);
        dot_tile<kR>(tile, stride, xi, cols, acc);
        for (int t = 0; t < kR; t++) _mm512_storeu_ps(li + kLanes * t, acc[t]);
      },
      [](const float* l) { return reduce16(_mm512_loadu_ps(l)); });
}

}  // namespace

void lutra_bq_f32_gemm_1x4__avx512(const WeightView& w, const float* x, float* y, size_t m,
                                   size_t n_begin, size_t n_end) {
  bq_gemm_entry(w, y, m, n_begin, n_end, [&](auto path) { gemm<decltype(path)::value>(w, x, y, m, n_begin, n_end); });
}

}  // namespace lutra
