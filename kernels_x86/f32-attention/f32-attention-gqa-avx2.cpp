// The query heads of one KV head (AttentionGqaFn), AVX2 + FMA, each head in the canonical float
// order exactly as the scalar reference computes it (runtime/float_order.h): a q·k dot product's
// 16 lane chains are two ymm accumulators (lanes 0-7, 8-15), reduced by the fixed tree, and each
// output dimension is one fma chain over the positions, ascending.
//
// Every key and value row is loaded once for up to 4 heads: q·K runs 4 heads at one position
// (8 accumulators), ·V 4 heads x 16 dimensions (8 accumulators), positions innermost, over chunks
// of kPvChunk positions so that the passes after the first read the chunk's rows from L1, not
// again from memory (each chain stops at the chunk's end in out and goes on from there: a store
// and a load, exact). Both streams prefetch rows ahead (kernels_common/kv-prefetch.h). The
// softmax is the AVX2 one, bit-identical to the reference's. f16 and q8 cache rows widen on load.
#include <immintrin.h>

#include <algorithm>

#include "kernels_common/kv-prefetch.h"
#include "kernels_x86/f32-attention/kv-load-avx2.h"
#include "kernels_x86/float-order-avx2.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

constexpr int kHeads = 4;        // heads per pass
constexpr size_t kPvChunk = 32;  // positions per ·V chunk: 8 KiB of f16 rows at head_dim 128

#define LUTRA_UNROLL _Pragma("GCC unroll 16")

// scores[h * n_pos + t] = (q_h · k_t) * scale for h < H.
template <int H, class T>
inline void qk(const float* q, const T* kt, size_t t, size_t n_pos, size_t head_dim,
               float scale, float* scores) {
  __m256 lo[H], hi[H];
  LUTRA_UNROLL for (int h = 0; h < H; h++) lo[h] = hi[h] = _mm256_setzero_ps();
  for (size_t d = 0; d < head_dim; d += 16) {
    const long left = long(head_dim - d);
    if (left >= 16) {
      const __m256 k0 = kv_load8(kt, d, head_dim), k1 = kv_load8(kt, d + 8, head_dim);
      LUTRA_UNROLL for (int h = 0; h < H; h++) {
        lo[h] = _mm256_fmadd_ps(_mm256_loadu_ps(q + h * head_dim + d), k0, lo[h]);
        hi[h] = _mm256_fmadd_ps(_mm256_loadu_ps(q + h * head_dim + d + 8), k1, hi[h]);
      }
    } else {  // masked lanes add fma(0, 0, +0): nothing
      const __m256i m0 = live_mask8(left), m1 = live_mask8(left - 8);
      const __m256 k0 = kv_load8_part(kt, d, left, head_dim), k1 = kv_load8_part(kt, d + 8, left - 8, head_dim);
      LUTRA_UNROLL for (int h = 0; h < H; h++) {
        lo[h] = _mm256_fmadd_ps(_mm256_maskload_ps(q + h * head_dim + d, m0), k0, lo[h]);
        hi[h] = _mm256_fmadd_ps(_mm256_maskload_ps(q + h * head_dim + d + 8, m1), k1, hi[h]);
      }
    }
  }
  LUTRA_UNROLL for (int h = 0; h < H; h++) scores[h * n_pos + t] = reduce16(lo[h], hi[h]) * scale;
}

// out[h * head_dim + d0 + j] (j < nd <= 16) = sum over t in [t0, t1) of p_h[t] * v_t[d0 + j], one
// fma per position, ascending, from +0 (t0 = 0) or from out (the chain so far).
template <int H, class T>
inline void pv_block(const float* probs, const T* v, size_t t0, size_t t1, size_t n_pos, size_t head_dim,
                     size_t kv_stride, size_t d0, size_t nd, float* out) {
  const __m256i m0 = live_mask8(long(nd)), m1 = live_mask8(long(nd) - 8);
  __m256 lo[H], hi[H];
  LUTRA_UNROLL for (int h = 0; h < H; h++) {
    lo[h] = t0 == 0 ? _mm256_setzero_ps() : _mm256_maskload_ps(out + h * head_dim + d0, m0);
    hi[h] = t0 == 0 ? _mm256_setzero_ps() : _mm256_maskload_ps(out + h * head_dim + d0 + 8, m1);
  }
  const T* vt = v + t0 * kv_stride;  // row t
  if (nd == 16) {
    for (size_t t = t0; t < t1; t++, vt += kv_stride) {
      if (d0 == 0) prefetch_kv_ahead(v, t, n_pos, kv_stride, head_dim);
      const __m256 v0 = kv_load8(vt, d0, head_dim), v1 = kv_load8(vt, d0 + 8, head_dim);
      LUTRA_UNROLL for (int h = 0; h < H; h++) {
        const __m256 s = _mm256_broadcast_ss(probs + h * n_pos + t);
        lo[h] = _mm256_fmadd_ps(s, v0, lo[h]);
        hi[h] = _mm256_fmadd_ps(s, v1, hi[h]);
      }
    }
  } else {
    for (size_t t = t0; t < t1; t++, vt += kv_stride) {
      if (d0 == 0) prefetch_kv_ahead(v, t, n_pos, kv_stride, head_dim);
      const __m256 v0 = kv_load8_part(vt, d0, long(nd), head_dim), v1 = kv_load8_part(vt, d0 + 8, long(nd) - 8, head_dim);
      LUTRA_UNROLL for (int h = 0; h < H; h++) {
        const __m256 s = _mm256_broadcast_ss(probs + h * n_pos + t);
        lo[h] = _mm256_fmadd_ps(s, v0, lo[h]);
        hi[h] = _mm256_fmadd_ps(s, v1, hi[h]);
      }
    }
  }
  LUTRA_UNROLL for (int h = 0; h < H; h++) {
    _mm256_maskstore_ps(out + h * head_dim + d0, m0, lo[h]);
    _mm256_maskstore_ps(out + h * head_dim + d0 + 8, m1, hi[h]);
  }
}

template <int H, class T>
void heads(const float* q, const T* k, const T* v, size_t n_pos, size_t head_dim,
           size_t kv_stride, float scale, float* scores, float* out) {
  for (size_t t = 0; t < n_pos; t++) {
    prefetch_kv_ahead(k, t, n_pos, kv_stride, head_dim);
    qk<H>(q, k + t * kv_stride, t, n_pos, head_dim, scale, scores);
  }
  LUTRA_UNROLL for (int h = 0; h < H; h++) lutra_f32_softmax__avx2(scores + h * n_pos, n_pos);
  for (size_t t0 = 0; t0 < n_pos; t0 += kPvChunk)
    for (size_t d0 = 0; d0 < head_dim; d0 += 16)
      pv_block<H>(scores, v, t0, std::min(n_pos, t0 + kPvChunk), n_pos, head_dim, kv_stride, d0,
                  std::min<size_t>(16, head_dim - d0), out);
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

void lutra_f32_attention_gqa__avx2(const float* q, size_t n_q, const void* k, const void* v, KvType kv_type,
                                   size_t n_pos, size_t head_dim, size_t kv_stride, float scale,
                                   float* scores, float* out) {
  with_kv_elements(kv_type, k, v, [&](auto kt, auto vt) {
    gqa(q, n_q, kt, vt, n_pos, head_dim, kv_stride, scale, scores, out);
  });
}

}  // namespace lutra
