// One query head's attention over cached positions (AttentionFn), AArch64 Advanced SIMD, in the
// canonical float order (runtime/float_order.h): each q·k dot product in four q registers of
// lanes, the NEON softmax, then the weighted sum of V rows four dimensions at a time, positions
// ascending with one fma each, as in the scalar reference. f16 and q8 cache rows widen on load.
#include <arm_neon.h>

#include <cmath>
#include <cstring>

#include "kernels_arm/f32-attention/kv-load-neon.h"
#include "kernels_arm/float-order-neon.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

template <class T>
inline float dot(const float* a, const T* b, size_t n) {
  float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
  // 16 values of a and of row b from d (a tail copied zero-padded into a float row: bd 0, 16)
  auto step = [&](const float* pa, const auto* pb, size_t bd, size_t b_dim) {
    for (int c = 0; c < 4; c++) acc[c] = vfmaq_f32(acc[c], vld1q_f32(pa + 4 * c), kv_load4(pb, bd + 4 * c, b_dim));
  };
  size_t d = 0;
  for (; d + 16 <= n; d += 16) step(a + d, b, d, n);
  if (d < n) {
    float ta[16] = {}, tb[16] = {};
    std::memcpy(ta, a + d, (n - d) * 4);
    for (size_t j = d; j < n; j++) tb[j - d] = kv_float(b, j, n);
    step(ta, static_cast<const float*>(tb), 0, 16);
  }
  return reduce16(acc[0], acc[1], acc[2], acc[3]);
}

template <class T>
void attention(const float* q, const T* k, const T* v, size_t n_pos, size_t head_dim, size_t kv_stride,
               float scale, float* scores, float* out) {
  for (size_t t = 0; t < n_pos; t++) scores[t] = dot(q, k + t * kv_stride, head_dim) * scale;
  lutra_f32_softmax__neon(scores, n_pos);
  size_t d = 0;
  for (; d + 4 <= head_dim; d += 4) {
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (size_t t = 0; t < n_pos; t++) acc = vfmaq_n_f32(acc, kv_load4(v + t * kv_stride, d, head_dim), scores[t]);
    vst1q_f32(out + d, acc);
  }
  for (; d < head_dim; d++) {
    float acc = 0.0f;
    for (size_t t = 0; t < n_pos; t++) acc = std::fma(scores[t], kv_float(v + t * kv_stride, d, head_dim), acc);
    out[d] = acc;
  }
}

}  // namespace

void lutra_f32_attention__neon(const float* q, const void* k, const void* v, KvType kv_type, size_t n_pos,
                               size_t head_dim, size_t kv_stride, float scale, float* scores,
                               float* out) {
  with_kv_elements(kv_type, k, v, [&](auto kt, auto vt) {
    attention(q, kt, vt, n_pos, head_dim, kv_stride, scale, scores, out);
  });
}

}  // namespace lutra
