// The query heads of one KV head (AttentionGqaFn), AArch64 Advanced SIMD, each head in the
// canonical float order exactly as the scalar reference (and the NEON single-head kernel)
// computes it: a q·k dot product's 16 lane chains are four q registers (lane j % 16, ascending
// j, then the fixed tree), and each output dimension is one fma chain over the positions.
//
// What is faster than one head at a time: every key and value row is loaded once for up to 4
// heads. q·K runs 4 heads at one position (16 accumulators); ·V 4 heads x 16 dimensions (16
// accumulators), positions innermost, over chunks of kPvChunk positions so that the passes
// after the first read the chunk's rows from L1 (each chain stops at the chunk's end in out and
// goes on from there: a store and a load, exact). Both streams prefetch rows ahead
// (kernels_common/kv-prefetch.h): on boards with small caches the cache comes from DRAM early.
#include <arm_neon.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels_arm/f32-attention/kv-load-neon.h"
#include "kernels_arm/float-order-neon.h"
#include "kernels_common/kv-prefetch.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

constexpr int kHeads = 4;        // heads per pass
constexpr size_t kPvChunk = 32;  // positions per ·V chunk

// scores[h * n_pos + t] = (q_h · k_t) * scale for h < H.
template <int H, class T>
inline void qk(const float* q, const T* kt, size_t t, size_t n_pos, size_t head_dim, float scale, float* scores) {
  float32x4_t acc[H][4];
  for (int h = 0; h < H; h++)
    for (int c = 0; c < 4; c++) acc[h][c] = vdupq_n_f32(0.0f);
  // 16 values of each query and of row kd from d (a tail copied zero-padded into a float row)
  auto step = [&](const float* qd, size_t q_stride, const auto* kd, size_t d, size_t k_dim) {
    float32x4_t kv[4];
    for (int c = 0; c < 4; c++) kv[c] = kv_load4(kd, d + 4 * c, k_dim);
    for (int h = 0; h < H; h++)
      for (int c = 0; c < 4; c++) acc[h][c] = vfmaq_f32(acc[h][c], vld1q_f32(qd + h * q_stride + 4 * c), kv[c]);
  };
  size_t d = 0;
  for (; d + 16 <= head_dim; d += 16) step(q + d, head_dim, kt, d, head_dim);
  if (d < head_dim) {  // zero-padded to 16 lanes, as the reference's tail: fma(0, 0, +0) adds nothing
    float tq[H][16] = {}, tk[16] = {};
    for (int h = 0; h < H; h++) std::memcpy(tq[h], q + h * head_dim + d, (head_dim - d) * 4);
    for (size_t j = d; j < head_dim; j++) tk[j - d] = kv_float(kt, j, head_dim);
    step(&tq[0][0], 16, static_cast<const float*>(tk), 0, 16);
  }
  for (int h = 0; h < H; h++) scores[h * n_pos + t] = reduce16(acc[h][0], acc[h][1], acc[h][2], acc[h][3]) * scale;
}

// out[h * head_dim + d0 + j] (j < 16) = sum over t in [t0, t1) of p_h[t] * v_t[d0 + j], one fma per
// position, ascending, from +0 (t0 = 0) or from out (the chain so far).
template <int H, class T>
inline void pv_block16(const float* probs, const T* v, size_t t0, size_t t1, size_t n_pos, size_t head_dim,
                       size_t kv_stride, size_t d0, float* out) {
  float32x4_t acc[H][4];
  for (int h = 0; h < H; h++)
    for (int c = 0; c < 4; c++) acc[h][c] = t0 == 0 ? vdupq_n_f32(0.0f) : vld1q_f32(out + h * head_dim + d0 + 4 * c);
  const T* vt = v + t0 * kv_stride;  // row t
  for (size_t t = t0; t < t1; t++, vt += kv_stride) {
    if (d0 == 0) prefetch_kv_ahead(v, t, n_pos, kv_stride, head_dim);
    float32x4_t vv[4];
    for (int c = 0; c < 4; c++) vv[c] = kv_load4(vt, d0 + 4 * c, head_dim);
    for (int h = 0; h < H; h++) {
      const float p = probs[h * n_pos + t];
      for (int c = 0; c < 4; c++) acc[h][c] = vfmaq_n_f32(acc[h][c], vv[c], p);
    }
  }
  for (int h = 0; h < H; h++)
    for (int c = 0; c < 4; c++) vst1q_f32(out + h * head_dim + d0 + 4 * c, acc[h][c]);
}

template <int H, class T>
void heads(const float* q, const T* k, const T* v, size_t n_pos, size_t head_dim, size_t kv_stride, float scale,
           float* scores, float* out) {
  for (size_t t = 0; t < n_pos; t++) {
    prefetch_kv_ahead(k, t, n_pos, kv_stride, head_dim);
    qk<H>(q, k + t * kv_stride, t, n_pos, head_dim, scale, scores);
  }
  for (int h = 0; h < H; h++) lutra_f32_softmax__neon(scores + h * n_pos, n_pos);
  const size_t full = head_dim / 16 * 16;
  for (size_t t0 = 0; t0 < n_pos; t0 += kPvChunk)
    for (size_t d0 = 0; d0 < full; d0 += 16)
      pv_block16<H>(scores, v, t0, std::min(n_pos, t0 + kPvChunk), n_pos, head_dim, kv_stride, d0, out);
  // The last head_dim % 16 dimensions (not in any model lutra knows): four, then one at a time.
  for (int h = 0; h < H; h++) {
    const float* p = scores + h * n_pos;
    size_t d = full;
    for (; d + 4 <= head_dim; d += 4) {
      float32x4_t acc = vdupq_n_f32(0.0f);
      for (size_t t = 0; t < n_pos; t++) acc = vfmaq_n_f32(acc, kv_load4(v + t * kv_stride, d, head_dim), p[t]);
      vst1q_f32(out + h * head_dim + d, acc);
    }
    for (; d < head_dim; d++) {
      float acc = 0.0f;
      for (size_t t = 0; t < n_pos; t++) acc = std::fma(p[t], kv_float(v + t * kv_stride, d, head_dim), acc);
      out[h * head_dim + d] = acc;
    }
  }
}

}  // namespace

void lutra_f32_attention_gqa__neon(const float* q, size_t n_q, const void* k, const void* v, KvType kv_type,
                                   size_t n_pos, size_t head_dim, size_t kv_stride, float scale,
                                   float* scores, float* out) {
  with_kv_elements(kv_type, k, v, [&](auto kt, auto vt) {
    for_head_groups<kHeads>(n_q, [&](auto heads_in_group, size_t g) {
      heads<heads_in_group.value>(q + g * head_dim, kt, vt, n_pos, head_dim, kv_stride, scale, scores + g * n_pos,
                                  out + g * head_dim);
    });
  });
}

}  // namespace lutra
