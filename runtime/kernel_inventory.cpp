// The variants of each kernel kind, scalar reference first, then stronger ISAs in the order
// the dispatcher prefers them (it takes the last one the CPU supports under the cap).
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

constexpr Variant<GemmFloatFn> gemm_f32_variants[] = {
    {"f32-f32-gemm-scalar", Isa::scalar, lutra_f32_f32_gemm__scalar},
#if defined(__x86_64__)
    {"f32-f32-gemm-1x4-avx2", Isa::avx2, lutra_f32_f32_gemm_1x4__avx2},
#endif
#if defined(__aarch64__)
    {"f32-f32-gemm-1x4-neon", Isa::neon, lutra_f32_f32_gemm_1x4__neon},
#endif
};

constexpr Variant<GemmFloatFn> gemm_f16_variants[] = {
    {"f16-f32-gemm-scalar", Isa::scalar, lutra_f16_f32_gemm__scalar},
#if defined(__x86_64__)
    {"f16-f32-gemm-1x4-avx2", Isa::avx2, lutra_f16_f32_gemm_1x4__avx2},
    {"f16-f32-gemm-1x4-avx512", Isa::avx512, lutra_f16_f32_gemm_1x4__avx512},
#endif
#if defined(__aarch64__)
    {"f16-f32-gemm-1x4-neon", Isa::neon, lutra_f16_f32_gemm_1x4__neon},
#endif
};

constexpr Variant<GemmFloatFn> gemm_bq_variants[] = {
    {"bq-f32-gemm-scalar", Isa::scalar, lutra_bq_f32_gemm__scalar},
#if defined(__x86_64__)
    {"bq-f32-gemm-1x4-avx2", Isa::avx2, lutra_bq_f32_gemm_1x4__avx2},
    {"bq-f32-gemm-1x4-avx512", Isa::avx512, lutra_bq_f32_gemm_1x4__avx512},
#endif
#if defined(__aarch64__)
    {"bq-f32-gemm-1x4-neon", Isa::neon, lutra_bq_f32_gemm_1x4__neon},
#endif
};

constexpr Variant<GemmTernaryFn> gemm_t2_variants[] = {
    {"t2-qs8-gemm-scalar", Isa::scalar, lutra_t2_qs8_gemm__scalar},
#if defined(__x86_64__)
    {"t2-qs8-gemm-1x4-avx2", Isa::avx2, lutra_t2_qs8_gemm_1x4__avx2},
    {"t2-qs8-gemm-1x4-avx512", Isa::avx512, lutra_t2_qs8_gemm_1x4__avx512},
    {"t2-qs8-gemm-1x4-avx512vnni", Isa::avx512vnni, lutra_t2_qs8_gemm_1x4__avx512vnni},
#endif
#if defined(__aarch64__)
    {"t2-qs8-gemm-1x4-neon", Isa::neon, lutra_t2_qs8_gemm_1x4__neon},
    {"t2-qs8-gemm-1x4-neondot", Isa::neondot, lutra_t2_qs8_gemm_1x4__neondot},
    {"t2-qs8-gemm-8x4-neoni8mm", Isa::neoni8mm, lutra_t2_qs8_gemm_8x4__neoni8mm},
#endif
};

constexpr Variant<GemmBqI8Fn> gemm_bq_i8_variants[] = {
    {"bq-qs8-gemm-scalar", Isa::scalar, lutra_bq_qs8_gemm__scalar},
#if defined(__x86_64__)
    {"bq-qs8-gemm-1x8-avx2", Isa::avx2, lutra_bq_qs8_gemm_1x8__avx2},
    {"bq-qs8-gemm-1x4-avx512", Isa::avx512, lutra_bq_qs8_gemm_1x4__avx512},
    {"bq-qs8-gemm-1x4-avx512vnni", Isa::avx512vnni, lutra_bq_qs8_gemm_1x4__avx512vnni},
#endif
#if defined(__aarch64__)
    {"bq-qs8-gemm-1x4-neon", Isa::neon, lutra_bq_qs8_gemm_1x4__neon},
    {"bq-qs8-gemm-1x4-neondot", Isa::neondot, lutra_bq_qs8_gemm_1x4__neondot},
    {"bq-qs8-gemm-1x4-neoni8mm", Isa::neoni8mm, lutra_bq_qs8_gemm_1x4__neoni8mm},
#endif
};

constexpr Variant<LutBuildFn> lut_build_t3_variants[] = {
    {"t3-lut-build-scalar", Isa::scalar, lutra_t3_lut_build__scalar},
#if defined(__x86_64__)
    {"t3-lut-build-avx2", Isa::avx2, lutra_t3_lut_build__avx2},
#endif
#if defined(__aarch64__)
    {"t3-lut-build-neon", Isa::neon, lutra_t3_lut_build__neon},
#endif
};

constexpr Variant<GemmLutFn> gemm_t3_variants[] = {
    {"t3-qs8-gemm-scalar", Isa::scalar, lutra_t3_qs8_gemm__scalar},
#if defined(__x86_64__)
    {"t3-qs8-gemm-1x32-avx2", Isa::avx2, lutra_t3_qs8_gemm_1x32__avx2},
    {"t3-qs8-gemm-1x32-avx512", Isa::avx512, lutra_t3_qs8_gemm_1x32__avx512},
#endif
#if defined(__aarch64__)
    {"t3-qs8-gemm-1x32-neon", Isa::neon, lutra_t3_qs8_gemm_1x32__neon},
#endif
};

constexpr Variant<GemmTernaryFn> gemm_t3_madd_variants[] = {
    {"t3-qs8-gemm-madd-scalar", Isa::scalar, lutra_t3_qs8_gemm_madd__scalar},
#if defined(__x86_64__)
    {"t3-qs8-gemm-madd32x2-avx2", Isa::avx2, lutra_t3_qs8_gemm_madd32x2__avx2},
    {"t3-qs8-gemm-madd32x2-avxvnni", Isa::avxvnni, lutra_t3_qs8_gemm_madd32x2__avxvnni},
    {"t3-qs8-gemm-madd32x12-avx512", Isa::avx512, lutra_t3_qs8_gemm_madd32x12__avx512},
    {"t3-qs8-gemm-madd32x12-avx512vnni", Isa::avx512vnni, lutra_t3_qs8_gemm_madd32x12__avx512vnni},
#endif
#if defined(__aarch64__)
    {"t3-qs8-gemm-madd4x16-neondot", Isa::neondot, lutra_t3_qs8_gemm_madd4x16__neondot},
    {"t3-qs8-gemm-madd8x8-neoni8mm", Isa::neoni8mm, lutra_t3_qs8_gemm_madd8x8__neoni8mm},
#endif
};

// Only x86 has a fused form yet: where the chosen one is the scalar reference, Context converts
// gemm_t3_madd's sums itself.
constexpr Variant<GemmTernaryScaledFn> gemm_t3_madd_scaled_variants[] = {
    {"t3-qs8-gemm-madd-scaled-scalar", Isa::scalar, lutra_t3_qs8_gemm_madd_scaled__scalar},
#if defined(__x86_64__)
    {"t3-qs8-gemm-madd32x2-scaled-avx2", Isa::avx2, lutra_t3_qs8_gemm_madd32x2_scaled__avx2},
    {"t3-qs8-gemm-madd32x2-scaled-avxvnni", Isa::avxvnni, lutra_t3_qs8_gemm_madd32x2_scaled__avxvnni},
    {"t3-qs8-gemm-madd32x12-scaled-avx512", Isa::avx512, lutra_t3_qs8_gemm_madd32x12_scaled__avx512},
    {"t3-qs8-gemm-madd32x12-scaled-avx512vnni", Isa::avx512vnni, lutra_t3_qs8_gemm_madd32x12_scaled__avx512vnni},
#endif
};

constexpr Variant<QuantizeI8Fn> quantize_i8_variants[] = {
    {"f32-qs8-quantize-scalar", Isa::scalar, lutra_f32_qs8_quantize__scalar},
#if defined(__x86_64__)
    {"f32-qs8-quantize-avx2", Isa::avx2, lutra_f32_qs8_quantize__avx2},
#endif
#if defined(__aarch64__)
    {"f32-qs8-quantize-neon", Isa::neon, lutra_f32_qs8_quantize__neon},
#endif
};

constexpr Variant<RmsNormFn> rmsnorm_variants[] = {
    {"f32-rmsnorm-scalar", Isa::scalar, lutra_f32_rmsnorm__scalar},
#if defined(__x86_64__)
    {"f32-rmsnorm-avx2", Isa::avx2, lutra_f32_rmsnorm__avx2},
#endif
#if defined(__aarch64__)
    {"f32-rmsnorm-neon", Isa::neon, lutra_f32_rmsnorm__neon},
#endif
};

constexpr Variant<SoftmaxFn> softmax_variants[] = {
    {"f32-softmax-scalar", Isa::scalar, lutra_f32_softmax__scalar},
#if defined(__x86_64__)
    {"f32-softmax-avx2", Isa::avx2, lutra_f32_softmax__avx2},
#endif
#if defined(__aarch64__)
    {"f32-softmax-neon", Isa::neon, lutra_f32_softmax__neon},
#endif
};

constexpr Variant<RopeFn> rope_variants[] = {
    {"f32-rope-scalar", Isa::scalar, lutra_f32_rope__scalar},
#if defined(__x86_64__)
    {"f32-rope-avx2", Isa::avx2, lutra_f32_rope__avx2},
    {"f32-rope-avx512", Isa::avx512, lutra_f32_rope__avx512},
#endif
#if defined(__aarch64__)
    {"f32-rope-neon", Isa::neon, lutra_f32_rope__neon},
#endif
};

constexpr Variant<AttentionFn> attention_variants[] = {
    {"f32-attention-scalar", Isa::scalar, lutra_f32_attention__scalar},
#if defined(__x86_64__)
    {"f32-attention-avx2", Isa::avx2, lutra_f32_attention__avx2},
#endif
#if defined(__aarch64__)
    {"f32-attention-neon", Isa::neon, lutra_f32_attention__neon},
#endif
};

constexpr Variant<AttentionGqaFn> attention_gqa_variants[] = {
    {"f32-attention-gqa-scalar", Isa::scalar, lutra_f32_attention_gqa__scalar},
#if defined(__x86_64__)
    {"f32-attention-gqa-avx2", Isa::avx2, lutra_f32_attention_gqa__avx2},
    {"f32-attention-gqa-avx512", Isa::avx512, lutra_f32_attention_gqa__avx512},
#endif
#if defined(__aarch64__)
    {"f32-attention-gqa-neon", Isa::neon, lutra_f32_attention_gqa__neon},
#endif
};

constexpr Variant<GluFn> silu_mul_variants[] = {
    {"f32-silu-mul-scalar", Isa::scalar, lutra_f32_silu_mul__scalar},
#if defined(__x86_64__)
    {"f32-silu-mul-avx2", Isa::avx2, lutra_f32_silu_mul__avx2},
#endif
#if defined(__aarch64__)
    {"f32-silu-mul-neon", Isa::neon, lutra_f32_silu_mul__neon},
#endif
};

constexpr Variant<GluFn> relu2_mul_variants[] = {
    {"f32-relu2-mul-scalar", Isa::scalar, lutra_f32_relu2_mul__scalar},
#if defined(__x86_64__)
    {"f32-relu2-mul-avx2", Isa::avx2, lutra_f32_relu2_mul__avx2},
    {"f32-relu2-mul-avx512", Isa::avx512, lutra_f32_relu2_mul__avx512},
#endif
#if defined(__aarch64__)
    {"f32-relu2-mul-neon", Isa::neon, lutra_f32_relu2_mul__neon},
#endif
};

constexpr Variant<DequantRowFn> dequant_row_variants[] = {
    {"dequant-row-scalar", Isa::scalar, lutra_dequant_row__scalar},
};

constexpr Variant<LutBuildFn> lut_build_t5_variants[] = {
    {"t5-lut-build-scalar", Isa::scalar, lutra_t5_lut_build__scalar},
#if defined(__x86_64__)
    {"t5-lut-build-avx512", Isa::avx512, lutra_t5_lut_build__avx512},
    {"t5-lut-build-avx512vbmi", Isa::avx512vbmi, lutra_t5_lut_build__avx512vbmi},
#endif
#if defined(__aarch64__)
    {"t5-lut-build-neon", Isa::neon, lutra_t5_lut_build__neon},
#endif
};

constexpr Variant<GemmLutFn> gemm_t5_variants[] = {
    {"t5-qs8-gemm-scalar", Isa::scalar, lutra_t5_qs8_gemm__scalar},
#if defined(__x86_64__)
    {"t5-qs8-gemm-1x256-avx512", Isa::avx512, lutra_t5_qs8_gemm_1x256__avx512},
    {"t5-qs8-gemm-1x256-avx512vbmi", Isa::avx512vbmi, lutra_t5_qs8_gemm_1x256__avx512vbmi},
#endif
#if defined(__aarch64__)
    {"t5-qs8-gemm-1x256-neon", Isa::neon, lutra_t5_qs8_gemm_1x256__neon},
#endif
};

constexpr Variant<BpLutBuildFn> lut_build_bp_variants[] = {
    {"bp-lut-build-scalar", Isa::scalar, lutra_bp_lut_build__scalar},
#if defined(__x86_64__)
    {"bp-lut-build-avx2", Isa::avx2, lutra_bp_lut_build__avx2},
#endif
#if defined(__aarch64__)
    {"bp-lut-build-neon", Isa::neon, lutra_bp_lut_build__neon},
#endif
};

constexpr Variant<BpLutBuildFn> lut_build_bp_fast_variants[] = {
    {"bp-lut-build-fast-scalar", Isa::scalar, lutra_bp_lut_build_fast__scalar},
#if defined(__x86_64__)
    {"bp-lut-build-fast-avx2", Isa::avx2, lutra_bp_lut_build_fast__avx2},
#endif
#if defined(__aarch64__)
    {"bp-lut-build-fast-neon", Isa::neon, lutra_bp_lut_build_fast__neon},
#endif
};

constexpr Variant<GemmBpFn> gemm_bp_variants[] = {
    {"bp-qs8-gemm-scalar", Isa::scalar, lutra_bp_qs8_gemm__scalar},
#if defined(__x86_64__)
    {"bp-qs8-gemm-1x32-avx2", Isa::avx2, lutra_bp_qs8_gemm_1x32__avx2},
    {"bp-qs8-gemm-1x32-avx512", Isa::avx512, lutra_bp_qs8_gemm_1x32__avx512},
#endif
#if defined(__aarch64__)
    {"bp-qs8-gemm-1x32-neon", Isa::neon, lutra_bp_qs8_gemm_1x32__neon},
#endif
};

constexpr Variant<GemmBpFn> gemm_bp_fast_variants[] = {
    {"bp-qs8-gemm-fast-scalar", Isa::scalar, lutra_bp_qs8_gemm_fast__scalar},
#if defined(__x86_64__)
    {"bp-qs8-gemm-fast-1x32-avx2", Isa::avx2, lutra_bp_qs8_gemm_fast_1x32__avx2},
    {"bp-qs8-gemm-fast-1x32-avx512", Isa::avx512, lutra_bp_qs8_gemm_fast_1x32__avx512},
#endif
#if defined(__aarch64__)
    {"bp-qs8-gemm-fast-1x32-neon", Isa::neon, lutra_bp_qs8_gemm_fast_1x32__neon},
#endif
};

}  // namespace

const KernelInventory& kernel_inventory() {
  static const KernelInventory inventory{
      .gemm_f32 = gemm_f32_variants,
      .gemm_f16 = gemm_f16_variants,
      .gemm_bq = gemm_bq_variants,
      .gemm_t2 = gemm_t2_variants,
      .gemm_bq_i8 = gemm_bq_i8_variants,
      .lut_build_t3 = lut_build_t3_variants,
      .gemm_t3 = gemm_t3_variants,
      .gemm_t3_madd = gemm_t3_madd_variants,
      .gemm_t3_madd_scaled = gemm_t3_madd_scaled_variants,
      .quantize_i8 = quantize_i8_variants,
      .rmsnorm = rmsnorm_variants,
      .softmax = softmax_variants,
      .rope = rope_variants,
      .attention = attention_variants,
      .attention_gqa = attention_gqa_variants,
      .silu_mul = silu_mul_variants,
      .relu2_mul = relu2_mul_variants,
      .dequant_row = dequant_row_variants,
      .lut_build_t5 = lut_build_t5_variants,
      .gemm_t5 = gemm_t5_variants,
      .lut_build_bp = lut_build_bp_variants,
      .lut_build_bp_fast = lut_build_bp_fast_variants,
      .gemm_bp = gemm_bp_variants,
      .gemm_bp_fast = gemm_bp_fast_variants,
  };
  return inventory;
}

}  // namespace lutra
