// The query heads of one KV head (AttentionGqaFn), AVX-512F, each head in the canonical float
// order exactly as the scalar reference computes it (runtime/float_order.h): a q·k dot product's
// 16 lane chains are one zmm accumulator (lane j % 16, ascending j, one fma each, then the fixed
// tree), and each output dimension is one fma chain over the positions, ascending.
//
// What is faster than one head at a time: every key and value row is loaded once for up to 4
// heads, and the independent chains are many enough to keep both fma pipes busy. q·K runs 4
// heads x 4 positions (16 accumulators, their 16 reduction trees done together in 15
// shuffle-add steps instead of one after another); ·V runs 4 heads x 64 dimensions (16
// accumulators), positions innermost, over chunks of kPvChunk positions so that the second
// 64-dimension pass reads the chunk's rows from L1, not again from memory (each chain stops at the
// chunk's end in out and goes on from there: a store and a load, exact). Both streams prefetch
// rows ahead (kernels_common/kv-prefetch.h). The softmax is the AVX2 one, bit-identical to the
// reference's. f16 cache rows widen on load (vcvtph2ps, exact), q8 rows to q * scale.
#include <immintrin.h>

#include <algorithm>

#include "kernels_common/kv-prefetch.h"
#include "kernels_x86/avx512-masked.h"
#include "kernels_x86/float-order-avx512.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

constexpr int kHeads = 4;  // heads per pass
constexpr int kPos = 4;    // positions per q·k block
constexpr size_t kPvChunk = 32;  // positions per ·V chunk: 8 KiB of f16 rows at head_dim 128

#define LUTRA_UNROLL _Pragma("GCC unroll 16")

// Lanes live (< n) of 16.
inline __mmask16 live16(size_t n) { return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1); }

// Values d..d+15 of a cached row as floats (d a multiple of 16), lanes outside m zero.
inline __m512 kv_load16(__mmask16 m, const float* row, size_t d, size_t) { return _mm512_maskz_loadu_ps(m, row + d); }
inline __m512 kv_load16(__mmask16 m, const uint16_t* row, size_t d, size_t) {
  return _mm512_maskz_cvtph_ps(kAll16, _mm256_maskz_loadu_epi16(m, row + d));
}
inline __m512 kv_load16(__mmask16 m, const int8_t* row, size_t d, size_t head_dim) {
  const __m512 x = _mm512_maskz_cvtepi32_ps(kAll16, _mm512_maskz_cvtepi8_epi32(kAll16, _mm_maskz_loadu_epi8(m, row + d)));
  return _mm512_maskz_mul_ps(kAll16, x, _mm512_set1_ps(kv_q8_scale(row, d, head_dim)));
}

// scores[h * n_pos + t + p] = (q_h · k_{t+p}) * scale for h < H, p < P.
template <int H, int P, class T>
inline void qk_block(const float* q, const T* k, size_t t, size_t n_pos, size_t head_dim,
                     size_t kv_stride, float scale, float* scores) {
  __m512 acc[H][P];
  LUTRA_UNROLL for (int h = 0; h < H; h++)
    LUTRA_UNROLL for (int p = 0; p < P; p++) acc[h][p] = _mm512_setzero_ps();
  for (size_t d = 0; d < head_dim; d += 16) {
    const __mmask16 m = live16(head_dim - d);  // masked lanes add fma(0, 0, +0): nothing
    __m512 kv[P];
    LUTRA_UNROLL for (int p = 0; p < P; p++) kv[p] = kv_load16(m, k + (t + p) * kv_stride, d, head_dim);
    LUTRA_UNROLL for (int h = 0; h < H; h++) {
      const __m512 qv = _mm512_maskz_loadu_ps(m, q + h * head_dim + d);
      LUTRA_UNROLL for (int p = 0; p < P; p++) acc[h][p] = _mm512_fmadd_ps(qv, kv[p], acc[h][p]);
    }
  }
  if constexpr (H == 4 && P == 4) {
    // The 16 trees at once, each add the same pair as reduce16's (lane i + lane i + step), with
    // the sums transposed as they go: A[4p + h] = acc[h][p]; step 8 pairs 256-bit halves of two
    // accumulators, step 4 the 128-bit blocks of two of those, steps 2 and 1 lanes within
    // blocks. Block h of the result then holds head h's 4 positions, in order.
    const __m512 A[16] = {acc[0][0], acc[1][0], acc[2][0], acc[3][0], acc[0][1], acc[1][1],
                          acc[2][1], acc[3][1], acc[0][2], acc[1][2], acc[2][2], acc[3][2],
                          acc[0][3], acc[1][3], acc[2][3], acc[3][3]};
    __m512 B[8], C[4], D[2];
    LUTRA_UNROLL for (int j = 0; j < 8; j++)  // [A(2j) 0-7, A(2j+1) 0-7] + [their 8-15]
      B[j] = _mm512_add_ps(_mm512_maskz_shuffle_f32x4(kAll16, A[2 * j], A[2 * j + 1], 0x44),
                           _mm512_maskz_shuffle_f32x4(kAll16, A[2 * j], A[2 * j + 1], 0xee));
    LUTRA_UNROLL for (int j = 0; j < 4; j++)  // blocks (0, 2) + (1, 3) of B(2j), B(2j+1)
      C[j] = _mm512_add_ps(_mm512_maskz_shuffle_f32x4(kAll16, B[2 * j], B[2 * j + 1], 0x88),
                           _mm512_maskz_shuffle_f32x4(kAll16, B[2 * j], B[2 * j + 1], 0xdd));
    LUTRA_UNROLL for (int j = 0; j < 2; j++)  // lanes (0, 1) + (2, 3) of each block
      D[j] = _mm512_add_ps(_mm512_maskz_shuffle_ps(kAll16, C[2 * j], C[2 * j + 1], 0x44),
                           _mm512_maskz_shuffle_ps(kAll16, C[2 * j], C[2 * j + 1], 0xee));
    // lane 0 + lane 1 of each pair: lane 4h + p = head h, position p
    const __m512 E = _mm512_mul_ps(_mm512_add_ps(_mm512_maskz_shuffle_ps(kAll16, D[0], D[1], 0x88),
                                                 _mm512_maskz_shuffle_ps(kAll16, D[0], D[1], 0xdd)),
                                   _mm512_set1_ps(scale));
    _mm_storeu_ps(scores + 0 * n_pos + t, _mm512_maskz_extractf32x4_ps(0xf, E, 0));
    _mm_storeu_ps(scores + 1 * n_pos + t, _mm512_maskz_extractf32x4_ps(0xf, E, 1));
    _mm_storeu_ps(scores + 2 * n_pos + t, _mm512_maskz_extractf32x4_ps(0xf, E, 2));
    _mm_storeu_ps(scores + 3 * n_pos + t, _mm512_maskz_extractf32x4_ps(0xf, E, 3));
  } else {
    LUTRA_UNROLL for (int h = 0; h < H; h++)
      LUTRA_UNROLL for (int p = 0; p < P; p++) scores[h * n_pos + t + p] = reduce16(acc[h][p]) * scale;
  }
}

// out[h * head_dim + d0 + j] (j < nd <= 64) = sum over t in [t0, t1) of p_h[t] * v_t[d0 + j], one
// fma per position, ascending, from +0 (t0 = 0) or from out (the chain so far).
template <int H, class T>
inline void pv_block(const float* probs, const T* v, size_t t0, size_t t1, size_t n_pos, size_t head_dim,
                     size_t kv_stride, size_t d0, size_t nd, float* out) {
  __mmask16 m[4];
  LUTRA_UNROLL for (int c = 0; c < 4; c++) m[c] = nd > size_t(16 * c) ? live16(nd - 16 * c) : __mmask16(0);
  __m512 acc[H][4];
  LUTRA_UNROLL for (int h = 0; h < H; h++)
    LUTRA_UNROLL for (int c = 0; c < 4; c++)
      acc[h][c] = t0 == 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m[c], out + h * head_dim + d0 + 16 * c);
  const T* vt = v + t0 * kv_stride;  // row t
  for (size_t t = t0; t < t1; t++, vt += kv_stride) {
    if (d0 == 0) prefetch_kv_ahead(v, t, n_pos, kv_stride, head_dim);
    __m512 vv[4];
    LUTRA_UNROLL for (int c = 0; c < 4; c++) vv[c] = kv_load16(m[c], vt, d0 + 16 * c, head_dim);
    LUTRA_UNROLL for (int h = 0; h < H; h++) {
      const __m512 s = _mm512_set1_ps(probs[h * n_pos + t]);
      LUTRA_UNROLL for (int c = 0; c < 4; c++) acc[h][c] = _mm512_fmadd_ps(s, vv[c], acc[h][c]);
    }
  }
  LUTRA_UNROLL for (int h = 0; h < H; h++)
    LUTRA_UNROLL for (int c = 0; c < 4; c++) _mm512_mask_storeu_ps(out + h * head_dim + d0 + 16 * c, m[c], acc[h][c]);
}

template <int H, class T>
void heads(const float* q, const T* k, const T* v, size_t n_pos, size_t head_dim,
           size_t kv_stride, float scale, float* scores, float* out) {
  size_t t = 0;
  for (; t + kPos <= n_pos; t += kPos) {
    for (size_t p = 0; p < size_t(kPos); p++) prefetch_kv_ahead(k, t + p, n_pos, kv_stride, head_dim);
    qk_block<H, kPos>(q, k, t, n_pos, head_dim, kv_stride, scale, scores);
  }
  for (; t < n_pos; t++) qk_block<H, 1>(q, k, t, n_pos, head_dim, kv_stride, scale, scores);
  LUTRA_UNROLL for (int h = 0; h < H; h++) lutra_f32_softmax__avx2(scores + h * n_pos, n_pos);
  for (size_t t0 = 0; t0 < n_pos; t0 += kPvChunk)
    for (size_t d0 = 0; d0 < head_dim; d0 += 64)
      pv_block<H>(scores, v, t0, std::min(n_pos, t0 + kPvChunk), n_pos, head_dim, kv_stride, d0,
                  std::min<size_t>(64, head_dim - d0), out);
}

template <class T>
void gqa(const float* q, size_t n_q, const T* k, const T* v, size_t n_pos, size_t head_dim, size_t kv_stride,
         float scale, float* scores, float* out) {
  for_head_groups<kHeads>(n_q, [&](auto heads_in_group, size_t g) {
    heads<heads_in_group.value>(q + g * head_dim, k, v, n_pos, head_dim, kv_stride, scale, scores + g * n_pos,
                                out + g * head_dim);
  });
}

#undef LUTRA_UNROLL

}  // namespace

void lutra_f32_attention_gqa__avx512(const float* q, size_t n_q, const void* k, const void* v, KvType kv_type,
                                     size_t n_pos, size_t head_dim, size_t kv_stride, float scale,
                                     float* scores, float* out) {
  with_kv_elements(kv_type, k, v, [&](auto kt, auto vt) {
    gqa(q, n_q, kt, vt, n_pos, head_dim, kv_stride, scale, scores, out);
  });
}

}  // namespace lutra
