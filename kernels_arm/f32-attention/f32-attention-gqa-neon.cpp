// The query heads of one KV head (AttentionGqaFn), AArch64 Advanced SIMD: one call of the NEON
// single-head kernel per head (bit-identical to the scalar reference, as that one is). Loading
// each key and value row once for the group, as the x86 variants do, is left to do here.
#include "runtime/kernel_variants.h"

namespace lutra {

void lutra_f32_attention_gqa__neon(const float* q, size_t n_q, const void* k, const void* v, KvType kv_type,
                                   size_t n_pos, size_t head_dim, size_t kv_stride, float scale,
                                   float* scores, float* out) {
  for (size_t g = 0; g < n_q; g++)
    lutra_f32_attention__neon(q + g * head_dim, k, v, kv_type, n_pos, head_dim, kv_stride, scale,
                              scores + g * n_pos, out + g * head_dim);
}

}  // namespace lutra
