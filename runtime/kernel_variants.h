// Every kernel variant, one symbol each. Names read `lutra_<what>__<isa>`: what it computes
// (weight format, activation format, op, register tile MRxNR = tokens x output rows), then
// the instruction set after the double underscore. The inventory (kernel_inventory.cpp) lists
// them; the x86 ones live in kernels_x86/<op>/<op>-<tile>-<isa>.cpp, compiled with that ISA's
// flags only, so declaring them here is safe on every CPU: they are only called after dispatch.
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/kernels.h"

namespace lutra {

// ---- scalar references (runtime/kernels_scalar.cpp) ----------------------------------------
void lutra_f32_f32_gemm__scalar(const WeightView& w, const float* x, float* y, size_t m,
                                size_t n_begin, size_t n_end);
void lutra_f16_f32_gemm__scalar(const WeightView& w, const float* x, float* y, size_t m,
                                size_t n_begin, size_t n_end);
void lutra_bq_f32_gemm__scalar(const WeightView& w, const float* x, float* y, size_t m,
                               size_t n_begin, size_t n_end);
void lutra_t2_qs8_gemm__scalar(const WeightView& w, const int8_t* xq, int32_t* acc, size_t m,
                               size_t n_begin, size_t n_end);
void lutra_bq_qs8_gemm__scalar(const WeightView& w, const int8_t* xq, const float* xs, float* y,
                               size_t m, size_t n_begin, size_t n_end);
void lutra_t3_lut_build__scalar(const int8_t* xq, size_t k, size_t group_begin,
                                 size_t group_end, uint8_t* table);
void lutra_t3_qs8_gemm__scalar(const WeightView& w, const uint8_t* tables, size_t table_stride,
                               int32_t* acc, size_t m, size_t n_begin, size_t n_end);
void lutra_t3_qs8_gemm_madd__scalar(const WeightView& w, const int8_t* xq, int32_t* acc,
                                    size_t m, size_t n_begin, size_t n_end);
void lutra_t3_qs8_gemm_madd_scaled__scalar(const WeightView& w, const int8_t* xq, const float* xs,
                                           float* y, size_t m, size_t n_begin, size_t n_end,
                                           bool accumulate);
void lutra_t5_lut_build__scalar(const int8_t* xq, size_t k, size_t group_begin,
                                 size_t group_end, uint8_t* table);
void lutra_t5_qs8_gemm__scalar(const WeightView& w, const uint8_t* tables, size_t table_stride,
                               int32_t* acc, size_t m, size_t n_begin, size_t n_end);
float lutra_f32_qs8_quantize__scalar(const float* x, size_t k, int8_t* xq);
void lutra_f32_rmsnorm__scalar(const float* x, const float* w, float* y, size_t n, float eps);
void lutra_f32_softmax__scalar(float* x, size_t n);
void lutra_f32_rope__scalar(float* v, size_t n_heads, size_t head_dim, const float* cos,
                            const float* sin, RopeStyle style);
void lutra_f32_attention__scalar(const float* q, const void* k, const void* v, KvType kv_type, size_t n_pos,
                                 size_t head_dim, size_t kv_stride, float scale, float* scores,
                                 float* out);
void lutra_f32_attention_gqa__scalar(const float* q, size_t n_q, const void* k, const void* v, KvType kv_type,
                                     size_t n_pos, size_t head_dim, size_t kv_stride, float scale,
                                     float* scores, float* out);
void lutra_f32_silu_mul__scalar(const float* gate, const float* up, float* out, size_t n);
void lutra_f32_relu2_mul__scalar(const float* gate, const float* up, float* out, size_t n);
void lutra_dequant_row__scalar(const WeightView& w, size_t r, float* out);
// bit-serial table lookup (runtime/kernels_scalar_bp.cpp)
void lutra_bp_lut_build__scalar(const int8_t* xq, size_t k, size_t group, size_t group_begin,
                                size_t group_end, uint8_t* table);
void lutra_bp_lut_build_fast__scalar(const int8_t* xq, size_t k, size_t group, size_t group_begin,
                                     size_t group_end, uint8_t* table);
void lutra_bp_qs8_gemm__scalar(const WeightView& w, const uint8_t* tables, size_t table_stride,
                               const float* xs, float* y, size_t m, size_t n_begin, size_t n_end);
void lutra_bp_qs8_gemm_fast__scalar(const WeightView& w, const uint8_t* tables,
                                    size_t table_stride, const float* xs, float* y, size_t m,
                                    size_t n_begin, size_t n_end);

#if defined(__x86_64__)
// ---- AVX2 + FMA + F16C (kernels_x86/*/*-avx2.cpp) -------------------------------------------
void lutra_f32_f32_gemm_1x4__avx2(const WeightView& w, const float* x, float* y, size_t m,
                                  size_t n_begin, size_t n_end);
void lutra_f16_f32_gemm_1x4__avx2(const WeightView& w, const float* x, float* y, size_t m,
                                  size_t n_begin, size_t n_end);
void lutra_t2_qs8_gemm_1x4__avx2(const WeightView& w, const int8_t* xq, int32_t* acc,
                                 size_t m, size_t n_begin, size_t n_end);
void lutra_bq_f32_gemm_1x4__avx2(const WeightView& w, const float* x, float* y, size_t m,
                                 size_t n_begin, size_t n_end);
void lutra_t3_qs8_gemm_madd32x2__avx2(const WeightView& w, const int8_t* xq, int32_t* acc, size_t m,
                                      size_t n_begin, size_t n_end);
void lutra_t3_qs8_gemm_madd32x2_scaled__avx2(const WeightView& w, const int8_t* xq, const float* xs, float* y,
                                             size_t m, size_t n_begin, size_t n_end, bool accumulate);
void lutra_t3_qs8_gemm_madd32x2__avxvnni(const WeightView& w, const int8_t* xq, int32_t* acc, size_t m,
                                         size_t n_begin, size_t n_end);
void lutra_t3_qs8_gemm_madd32x2_scaled__avxvnni(const WeightView& w, const int8_t* xq, const float* xs, float* y,
                                                size_t m, size_t n_begin, size_t n_end, bool accumulate);
void lutra_bq_qs8_gemm_1x8__avx2(const WeightView& w, const int8_t* xq, const float* xs, float* y,
                                 size_t m, size_t n_begin, size_t n_end);
void lutra_t3_lut_build__avx2(const int8_t* xq, size_t k, size_t group_begin, size_t group_end,
                               uint8_t* table);
void lutra_t3_qs8_gemm_1x32__avx2(const WeightView& w, const uint8_t* tables,
                                  size_t table_stride, int32_t* acc, size_t m, size_t n_begin,
                                  size_t n_end);
void lutra_bp_lut_build__avx2(const int8_t* xq, size_t k, size_t group, size_t group_begin,
                              size_t group_end, uint8_t* table);
void lutra_bp_lut_build_fast__avx2(const int8_t* xq, size_t k, size_t group, size_t group_begin,
                                   size_t group_end, uint8_t* table);
void lutra_bp_qs8_gemm_1x32__avx2(const WeightView& w, const uint8_t* tables, size_t table_stride,
                                  const float* xs, float* y, size_t m, size_t n_begin, size_t n_end);
void lutra_bp_qs8_gemm_fast_1x32__avx2(const WeightView& w, const uint8_t* tables,
                                       size_t table_stride, const float* xs, float* y, size_t m,
                                       size_t n_begin, size_t n_end);
float lutra_f32_qs8_quantize__avx2(const float* x, size_t k, int8_t* xq);
void lutra_f32_attention__avx2(const float* q, const void* k, const void* v, KvType kv_type, size_t n_pos,
                               size_t head_dim, size_t kv_stride, float scale, float* scores,
                               float* out);
void lutra_f32_attention_gqa__avx2(const float* q, size_t n_q, const void* k, const void* v, KvType kv_type,
                                   size_t n_pos, size_t head_dim, size_t kv_stride, float scale,
                                   float* scores, float* out);
void lutra_f32_rmsnorm__avx2(const float* x, const float* w, float* y, size_t n, float eps);
void lutra_f32_softmax__avx2(float* x, size_t n);
void lutra_f32_silu_mul__avx2(const float* gate, const float* up, float* out, size_t n);
void lutra_f32_relu2_mul__avx2(const float* gate, const float* up, float* out, size_t n);
void lutra_f32_rope__avx2(float* v, size_t n_heads, size_t head_dim, const float* cos,
                          const float* sin, RopeStyle style);

// ---- AVX-512 F/BW/VL/DQ (kernels_x86/*/*-avx512.cpp) ----------------------------------------
void lutra_f32_attention_gqa__avx512(const float* q, size_t n_q, const void* k, const void* v, KvType kv_type,
                                     size_t n_pos, size_t head_dim, size_t kv_stride, float scale,
                                     float* scores, float* out);
void lutra_f32_relu2_mul__avx512(const float* gate, const float* up, float* out, size_t n);
void lutra_f32_rope__avx512(float* v, size_t n_heads, size_t head_dim, const float* cos,
                            const float* sin, RopeStyle style);
void lutra_f16_f32_gemm_1x4__avx512(const WeightView& w, const float* x, float* y, size_t m,
                                    size_t n_begin, size_t n_end);
void lutra_t2_qs8_gemm_1x4__avx512(const WeightView& w, const int8_t* xq, int32_t* acc,
                                   size_t m, size_t n_begin, size_t n_end);
void lutra_t2_qs8_gemm_1x4__avx512vnni(const WeightView& w, const int8_t* xq, int32_t* acc,
                                       size_t m, size_t n_begin, size_t n_end);
void lutra_bq_f32_gemm_1x4__avx512(const WeightView& w, const float* x, float* y, size_t m,
                                   size_t n_begin, size_t n_end);
void lutra_bq_qs8_gemm_1x4__avx512(const WeightView& w, const int8_t* xq, const float* xs,
                                   float* y, size_t m, size_t n_begin, size_t n_end);
void lutra_bq_qs8_gemm_1x4__avx512vnni(const WeightView& w, const int8_t* xq, const float* xs,
                                       float* y, size_t m, size_t n_begin, size_t n_end);
void lutra_t3_qs8_gemm_madd32x12__avx512(const WeightView& w, const int8_t* xq, int32_t* acc,
                                         size_t m, size_t n_begin, size_t n_end);
void lutra_t3_qs8_gemm_madd32x12__avx512vnni(const WeightView& w, const int8_t* xq,
                                             int32_t* acc, size_t m, size_t n_begin,
                                             size_t n_end);
void lutra_t3_qs8_gemm_madd32x12_scaled__avx512(const WeightView& w, const int8_t* xq,
                                                const float* xs, float* y, size_t m,
                                                size_t n_begin, size_t n_end, bool accumulate);
void lutra_t3_qs8_gemm_madd32x12_scaled__avx512vnni(const WeightView& w, const int8_t* xq,
                                                    const float* xs, float* y, size_t m,
                                                    size_t n_begin, size_t n_end, bool accumulate);
void lutra_t3_qs8_gemm_1x32__avx512(const WeightView& w, const uint8_t* tables,
                                    size_t table_stride, int32_t* acc, size_t m,
                                    size_t n_begin, size_t n_end);
void lutra_t5_lut_build__avx512(const int8_t* xq, size_t k, size_t group_begin, size_t group_end,
                                uint8_t* table);
void lutra_t5_qs8_gemm_1x256__avx512(const WeightView& w, const uint8_t* tables,
                                     size_t table_stride, int32_t* acc, size_t m,
                                     size_t n_begin, size_t n_end);
void lutra_bp_qs8_gemm_1x32__avx512(const WeightView& w, const uint8_t* tables,
                                    size_t table_stride, const float* xs, float* y, size_t m,
                                    size_t n_begin, size_t n_end);
void lutra_bp_qs8_gemm_fast_1x32__avx512(const WeightView& w, const uint8_t* tables,
                                         size_t table_stride, const float* xs, float* y, size_t m,
                                         size_t n_begin, size_t n_end);

// ---- AVX-512 F/BW/VL/DQ + VBMI (kernels_x86/*/*-avx512vbmi.cpp) -----------------------------
void lutra_t5_lut_build__avx512vbmi(const int8_t* xq, size_t k, size_t group_begin,
                                    size_t group_end, uint8_t* table);
void lutra_t5_qs8_gemm_1x256__avx512vbmi(const WeightView& w, const uint8_t* tables,
                                         size_t table_stride, int32_t* acc, size_t m,
                                         size_t n_begin, size_t n_end);
#endif

#if defined(__aarch64__)
// ---- NEON ternary kernels: t3, t2, t5 (kernels_arm/t*-*/*-neon|neondot|neoni8mm.cpp) --------
void lutra_t3_lut_build__neon(const int8_t* xq, size_t k, size_t group_begin, size_t group_end,
                              uint8_t* table);
void lutra_t3_qs8_gemm_1x32__neon(const WeightView& w, const uint8_t* tables,
                                  size_t table_stride, int32_t* acc, size_t m, size_t n_begin,
                                  size_t n_end);
void lutra_t2_qs8_gemm_1x4__neon(const WeightView& w, const int8_t* xq, int32_t* acc, size_t m,
                                 size_t n_begin, size_t n_end);
void lutra_t2_qs8_gemm_1x4__neondot(const WeightView& w, const int8_t* xq, int32_t* acc,
                                    size_t m, size_t n_begin, size_t n_end);
void lutra_t2_qs8_gemm_8x4__neoni8mm(const WeightView& w, const int8_t* xq, int32_t* acc,
                                     size_t m, size_t n_begin, size_t n_end);
void lutra_t3_qs8_gemm_madd4x16__neondot(const WeightView& w, const int8_t* xq, int32_t* acc,
                                         size_t m, size_t n_begin, size_t n_end);
void lutra_t3_qs8_gemm_madd8x8__neoni8mm(const WeightView& w, const int8_t* xq, int32_t* acc,
                                         size_t m, size_t n_begin, size_t n_end);
void lutra_t5_lut_build__neon(const int8_t* xq, size_t k, size_t group_begin, size_t group_end,
                              uint8_t* table);
void lutra_t5_qs8_gemm_1x256__neon(const WeightView& w, const uint8_t* tables,
                                   size_t table_stride, int32_t* acc, size_t m, size_t n_begin,
                                   size_t n_end);

// ---- NEON quantize, bq int8 and bit-serial (bp) kernels (kernels_arm/{f32-qs8-quantize,
// bq-qs8-gemm,bp-lut-build,bp-qs8-gemm}/*-neon|neondot|neoni8mm.cpp) -----------------------------
float lutra_f32_qs8_quantize__neon(const float* x, size_t k, int8_t* xq);
void lutra_bq_qs8_gemm_1x4__neon(const WeightView& w, const int8_t* xq, const float* xs, float* y,
                                 size_t m, size_t n_begin, size_t n_end);
void lutra_bq_qs8_gemm_1x4__neondot(const WeightView& w, const int8_t* xq, const float* xs,
                                    float* y, size_t m, size_t n_begin, size_t n_end);
void lutra_bq_qs8_gemm_1x4__neoni8mm(const WeightView& w, const int8_t* xq, const float* xs,
                                     float* y, size_t m, size_t n_begin, size_t n_end);
void lutra_bp_lut_build__neon(const int8_t* xq, size_t k, size_t group, size_t group_begin,
                              size_t group_end, uint8_t* table);
void lutra_bp_lut_build_fast__neon(const int8_t* xq, size_t k, size_t group, size_t group_begin,
                                   size_t group_end, uint8_t* table);
void lutra_bp_qs8_gemm_1x32__neon(const WeightView& w, const uint8_t* tables, size_t table_stride,
                                  const float* xs, float* y, size_t m, size_t n_begin, size_t n_end);
void lutra_bp_qs8_gemm_fast_1x32__neon(const WeightView& w, const uint8_t* tables,
                                       size_t table_stride, const float* xs, float* y, size_t m,
                                       size_t n_begin, size_t n_end);

// ---- float kernels in the canonical float order, baseline AArch64 Advanced SIMD
// (kernels_arm/*/*-neon.cpp) ------------------------------------------------------------------
void lutra_f32_f32_gemm_1x4__neon(const WeightView& w, const float* x, float* y, size_t m,
                                  size_t n_begin, size_t n_end);
void lutra_f16_f32_gemm_1x4__neon(const WeightView& w, const float* x, float* y, size_t m,
                                  size_t n_begin, size_t n_end);
void lutra_bq_f32_gemm_1x4__neon(const WeightView& w, const float* x, float* y, size_t m,
                                 size_t n_begin, size_t n_end);
void lutra_f32_rmsnorm__neon(const float* x, const float* w, float* y, size_t n, float eps);
void lutra_f32_softmax__neon(float* x, size_t n);
void lutra_f32_rope__neon(float* v, size_t n_heads, size_t head_dim, const float* cos,
                          const float* sin, RopeStyle style);
void lutra_f32_attention__neon(const float* q, const void* k, const void* v, KvType kv_type, size_t n_pos,
                               size_t head_dim, size_t kv_stride, float scale, float* scores,
                               float* out);
void lutra_f32_attention_gqa__neon(const float* q, size_t n_q, const void* k, const void* v, KvType kv_type,
                                   size_t n_pos, size_t head_dim, size_t kv_stride, float scale,
                                   float* scores, float* out);
void lutra_f32_silu_mul__neon(const float* gate, const float* up, float* out, size_t n);
void lutra_f32_relu2_mul__neon(const float* gate, const float* up, float* out, size_t n);
#endif

}  // namespace lutra
