// The micro-kernel interface: one function-pointer type per kernel kind, the variants of each
// kind (the scalar reference is always one of them), and the table the dispatcher fills once
// from the CPU's features.
//
// Conventions shared by every kind:
// - matrices are row-major; activations x are [m][k] (row stride k), outputs y are [m][n]
//   (row stride n, the layer's full output width);
// - a GEMM variant computes only output rows n_begin <= r < n_end, so workers can split a
//   layer by rows; it must give the same result for a row whatever the split;
// - ternary kernels return exact int32 sums: every variant is bit-identical to the scalar
//   reference. Float kernels sum in the one canonical order of runtime/float_order.h, so they
//   are bit-identical to the scalar reference too, on every ISA.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>
#include <span>
#include <string>

#include "runtime/weights.h"

namespace lutra {

// Instruction sets a variant can need. Ranks within each architecture (the cap chain):
// scalar < avx2 < avxvnni < avx512 < avx512vnni < avx512vbmi, scalar < neon < neondot < neoni8mm.
// avx2 includes FMA and F16C; avxvnni adds AVX-VNNI (the VEX-encoded 256-bit vpdpbusd of Alder
// Lake and later Intel laptops, which lack AVX-512). avx512 is F/BW/VL/DQ; avx512vnni and
// avx512vbmi each add one extension to it. A CPU can have any of the extensions without the
// others (Zen 4: AVX-512 VNNI, no AVX-VNNI): cpu_supports checks each for real, so a cap at
// avx512vbmi still skips VNNI variants where VNNI is missing.
// neondot is AArch64 Advanced SIMD with the dot-product instructions (sdot), neoni8mm adds the
// int8 matrix multiply (smmla).
enum class Isa : uint8_t { scalar, avx2, avx512, neon, neondot, avx512vnni, avx512vbmi, neoni8mm, avxvnni };
const char* to_string(Isa isa);
// Every ISA, x86's chain then ARM's (for listing, parsing and help texts).
inline constexpr Isa kAllIsas[] = {Isa::scalar,     Isa::avx2,       Isa::avxvnni, Isa::avx512, Isa::avx512vnni,
                                   Isa::avx512vbmi, Isa::neon,       Isa::neondot, Isa::neoni8mm};
// "scalar, avx2, ..., neoni8mm": the names a cap accepts.
std::string isa_names();

// ---- kinds ---------------------------------------------------------------------------------

// y[i][r] = sum_j W[r][j] * x[i][j] for float-format weights (f32, f16, bq; a bq weight is
// fma(q, s, -(s z))), summed in the canonical order of runtime/float_order.h.
using GemmFloatFn = void (*)(const WeightView& w, const float* x, float* y, size_t m,
                             size_t n_begin, size_t n_end);
// acc[i][r] = sum_j Wq[r][j] * xq[i][j], exact, for ternary (t2) weights.
using GemmTernaryFn = void (*)(const WeightView& w, const int8_t* xq, int32_t* acc, size_t m,
                               size_t n_begin, size_t n_end);
// The same sums turned into the BitLinear output in the same pass, for t3 by multiply-add (the
// prefill path): y[i][r] = float(acc[i][r]) * (w.scale / xs[i]), accumulate: y[i][r] += that.
// The float operations of converting GemmTernaryFn's sums that way, so bit-identical to it; what
// it saves is writing the int32 sums out and reading them back.
using GemmTernaryScaledFn = void (*)(const WeightView& w, const int8_t* xq, const float* xs,
                                     float* y, size_t m, size_t n_begin, size_t n_end,
                                     bool accumulate);
// ---- table-lookup (LUT) ternary kernels -------------------------------------------------------
// A LUT weight format travels with a table layout: lut_build turns one token's int8
// activations into the tables its GEMM indexes with the packed weight bits (design.md §3).
// Tables are built once per token and shared by every output row; workers build disjoint
// group ranges of them in parallel. Table bytes per token: lut_table_bytes(format, k).
// Builds the tables of groups [group_begin, group_end) of one token (k activations).
using LutBuildFn = void (*)(const int8_t* xq, size_t k, size_t group_begin, size_t group_end,
                            uint8_t* table);
// acc[i][r] = sum_j Wq[r][j] * xq[i][j], exact, reading token i's tables at
// tables + i * table_stride. Same result as GemmTernaryFn on the same ternary matrix.
using GemmLutFn = void (*)(const WeightView& w, const uint8_t* tables, size_t table_stride,
                           int32_t* acc, size_t m, size_t n_begin, size_t n_end);

// b-bit group weights (bq) against int8 activations quantized per token (xs = quantize_i8's
// scales): per row r, over groups g in order,
//   acc_g = Σ_{j∈g} q[r][j]·xq[i][j],  xsum_g = Σ_{j∈g} xq[i][j]          (exact int32)
//   sum  += s[r][g] * (float(acc_g) - z[r][g] * float(xsum_g))          (float, g ascending)
//   y[i][r] = sum / xs[i]
// Every variant is bit-identical to the scalar reference (same float operations in the same
// order per row); the path as a whole approximates the float one by quantizing activations.
using GemmBqI8Fn = void (*)(const WeightView& w, const int8_t* xq, const float* xs, float* y,
                            size_t m, size_t n_begin, size_t n_end);

// ---- bit-serial table lookup (bp) ------------------------------------------------------------
// Tables of one token (WeightFormat::bp documents both layouts) for the quantization groups
// [group_begin, group_end) of k activations in groups of `group`; workers build disjoint group
// ranges in parallel, and any split writes the same bytes.
using BpLutBuildFn = void (*)(const int8_t* xq, size_t k, size_t group, size_t group_begin,
                              size_t group_end, uint8_t* table);
// Exact mode: y[i][r] from token i's exact tables (at tables + i * table_stride) by the formula
// of GemmBqI8Fn: per group, acc_g = sum over planes p of 2^p * (sum of the looked-up entries)
// = sum_j q[r][j] xq[i][j] exactly, xsum_g from the tables, then the same float steps in the
// same order. Bit-identical to the bq-qs8 scalar reference on the same codes, scales, zeros.
// Fast mode (int8 tables): acc8_g = the same sum over the int8 entries, and
//   sum += s[r][g] * (ts[g] * float(acc8_g) - z[r][g] * float(xsum_g)),  y = sum / xs[i]
// (approximate: the entries are rounded; variants are bit-identical to the fast reference).
using GemmBpFn = void (*)(const WeightView& w, const uint8_t* tables, size_t table_stride,
                          const float* xs, float* y, size_t m, size_t n_begin, size_t n_end);

// Per-token absmax int8 quantization (BitNet b1.58): s = 127 / max(max|x|, 1e-5),
// xq = clamp(round(x * s), -128, 127), rounding half to even (as torch.round and the
// default SIMD conversion do); returns s.
using QuantizeI8Fn = float (*)(const float* x, size_t k, int8_t* xq);
// y = x / sqrt(mean(x^2) + eps) * w
using RmsNormFn = void (*)(const float* x, const float* w, float* y, size_t n, float eps);
// In-place softmax over n values.
using SoftmaxFn = void (*)(float* x, size_t n);

enum class RopeStyle : uint8_t {
  interleaved,  // rotate pairs (2i, 2i+1): llama2.c, GGUF llama
  half_split,   // rotate pairs (i, i + d/2): Hugging Face rotate_half
};
// Rotates n_heads vectors of head_dim values (consecutive in v) by the angles whose cos and
// sin (head_dim/2 values each, pair i at frequency i) are given.
using RopeFn = void (*)(float* v, size_t n_heads, size_t head_dim, const float* cos,
                        const float* sin, RopeStyle style);

// The KV cache's element type: f16 by default (half the bytes a decode step reads at depth),
// f32 the exact option, q8 the small one (a bit over a quarter of f32's bytes). The attention
// kernels widen f16 to f32 on load (exact) and q8 to q * scale (one rounding, the same on every
// ISA), so all of them run the same float operations in the same order.
enum class KvType : uint8_t { f32, f16, q8 };
inline const char* kv_type_name(KvType t) { return t == KvType::f32 ? "f32" : t == KvType::f16 ? "f16" : "q8"; }
// A q8 row (one position of one KV head): head_dim int8 values, then one f32 scale per block of
// kKvQ8Block values (the block's absmax / 127). The kernels' vector loads (4, 8 or 16 values at
// a multiple of their width) never straddle a block.
inline constexpr size_t kKvQ8Block = 32;
// Storage units (floats, f16 halves, or bytes) of one cached row of head_dim values: a row's
// kv_stride in a contiguous cache.
inline constexpr size_t kv_row_units(KvType t, size_t head_dim) {
  return t == KvType::q8 ? head_dim + 4 * ((head_dim + kKvQ8Block - 1) / kKvQ8Block) : head_dim;
}
inline constexpr size_t kv_row_bytes(KvType t, size_t head_dim) {
  return kv_row_units(t, head_dim) * (t == KvType::f32 ? 4 : t == KvType::f16 ? 2 : 1);
}
// The scale of value d of a q8 row.
inline float kv_q8_scale(const int8_t* row, size_t d, size_t head_dim) {
  float s;
  std::memcpy(&s, row + head_dim + 4 * (d / kKvQ8Block), 4);
  return s;
}
// Value d of a q8 row as a float: q * scale, the one rounding every ISA's kernels make too.
inline float kv_q8_value(const int8_t* row, size_t d, size_t head_dim) {
  return float(row[d]) * kv_q8_scale(row, d, head_dim);
}
// Writes head_dim floats as one cache row of type t (f16 rounded to nearest even, q8 by the
// block scales above): one scalar routine, so every ISA caches the same bits.
void kv_store_row(KvType t, const float* x, size_t head_dim, void* row);
// Calls f(k, v) with the cache rows typed as their elements: const float*, const uint16_t* (f16
// bits) or const int8_t* (q8 rows), so a kernel writes its body once as a template over the
// element type. Kernels load through (row, d, head_dim), which a q8 row needs for its scale.
template <class F>
inline void with_kv_elements(KvType t, const void* k, const void* v, F&& f) {
  if (t == KvType::f16) f(static_cast<const uint16_t*>(k), static_cast<const uint16_t*>(v));
  else if (t == KvType::q8) f(static_cast<const int8_t*>(k), static_cast<const int8_t*>(v));
  else f(static_cast<const float*>(k), static_cast<const float*>(v));
}
// Calls f(std::integral_constant<int, H>{}, g) for query heads g .. g+H-1 of n_q, kMax heads at
// a time (the last group fewer): how the GQA kernels block their heads.
template <int kMax, class F>
inline void for_head_groups(size_t n_q, F&& f) {
  for (size_t g = 0; g < n_q; g += size_t(kMax)) {
    const size_t h = n_q - g < size_t(kMax) ? n_q - g : size_t(kMax);
    [&]<int... H>(std::integer_sequence<int, H...>) {
      ((h == size_t(H + 1) ? f(std::integral_constant<int, H + 1>{}, g) : void()), ...);
    }(std::make_integer_sequence<int, kMax>{});
  }
}

// One query head over n_pos cached positions: out = softmax(q·K^T * scale) · V.
// k and v point at this head's slice of position 0, elements of kv_type; consecutive positions
// are kv_stride elements apart. scores is scratch of n_pos floats.
using AttentionFn = void (*)(const float* q, const void* k, const void* v, KvType kv_type, size_t n_pos,
                             size_t head_dim, size_t kv_stride, float scale, float* scores,
                             float* out);
// The n_q query heads that share one KV head (grouped-query attention), query g at q + g *
// head_dim, its output at out + g * head_dim: each exactly as AttentionFn computes it (the same
// float operations in the same order per head), so one call equals n_q calls of the reference;
// reading each key and value row once for the whole group is what makes it faster. scores is
// scratch of n_q * n_pos floats.
using AttentionGqaFn = void (*)(const float* q, size_t n_q, const void* k, const void* v,
                                KvType kv_type, size_t n_pos, size_t head_dim, size_t kv_stride, float scale,
                                float* scores, float* out);
// Gated activations: out = act(gate) * up, act = SiLU (x*sigmoid(x)) or relu² (max(x,0)^2).
using GluFn = void (*)(const float* gate, const float* up, float* out, size_t n);
// Row r of W as floats (embedding lookup), for every weight format.
using DequantRowFn = void (*)(const WeightView& w, size_t r, float* out);

// ---- variants ------------------------------------------------------------------------------

template <class Fn>
struct Variant {
  const char* name;  // e.g. "t2-qs8-gemm-1x8-avx2"
  Isa isa;
  Fn fn;
};

// Every variant of each kind, the scalar reference first.
struct KernelInventory {
  std::span<const Variant<GemmFloatFn>> gemm_f32, gemm_f16, gemm_bq;
  std::span<const Variant<GemmTernaryFn>> gemm_t2;
  std::span<const Variant<GemmBqI8Fn>> gemm_bq_i8;
  std::span<const Variant<LutBuildFn>> lut_build_t3;
  std::span<const Variant<GemmLutFn>> gemm_t3;
  // t3 weights by multiply-add on the int8 activations (no tables): the prefill path.
  std::span<const Variant<GemmTernaryFn>> gemm_t3_madd;
  std::span<const Variant<GemmTernaryScaledFn>> gemm_t3_madd_scaled;  // the same, scaled to floats
  std::span<const Variant<QuantizeI8Fn>> quantize_i8;
  std::span<const Variant<RmsNormFn>> rmsnorm;
  std::span<const Variant<SoftmaxFn>> softmax;
  std::span<const Variant<RopeFn>> rope;
  std::span<const Variant<AttentionFn>> attention;
  std::span<const Variant<AttentionGqaFn>> attention_gqa;
  std::span<const Variant<GluFn>> silu_mul, relu2_mul;
  std::span<const Variant<DequantRowFn>> dequant_row;
  std::span<const Variant<LutBuildFn>> lut_build_t5;
  std::span<const Variant<GemmLutFn>> gemm_t5;
  std::span<const Variant<BpLutBuildFn>> lut_build_bp, lut_build_bp_fast;
  std::span<const Variant<GemmBpFn>> gemm_bp, gemm_bp_fast;
};
const KernelInventory& kernel_inventory();

// The chosen variant of each kind.
struct KernelTable {
  Variant<GemmFloatFn> gemm_f32, gemm_f16, gemm_bq;
  Variant<GemmTernaryFn> gemm_t2;
  Variant<GemmBqI8Fn> gemm_bq_i8;
  Variant<LutBuildFn> lut_build_t3;
  Variant<GemmLutFn> gemm_t3;
  Variant<GemmTernaryFn> gemm_t3_madd;
  Variant<GemmTernaryScaledFn> gemm_t3_madd_scaled;
  Variant<QuantizeI8Fn> quantize_i8;
  Variant<RmsNormFn> rmsnorm;
  Variant<SoftmaxFn> softmax;
  Variant<RopeFn> rope;
  Variant<AttentionFn> attention;
  Variant<AttentionGqaFn> attention_gqa;
  Variant<GluFn> silu_mul, relu2_mul;
  Variant<DequantRowFn> dequant_row;
  Variant<LutBuildFn> lut_build_t5;
  Variant<GemmLutFn> gemm_t5;
  Variant<BpLutBuildFn> lut_build_bp, lut_build_bp_fast;
  Variant<GemmBpFn> gemm_bp, gemm_bp_fast;
};

// What this CPU can run (the hardware, whatever the cap: tests run every variant it can).
// The cap, from the environment variable LUTRA_ISA (one of isa_names()) or set_isa_cap,
// limits only the table kernels() chooses from, so one machine can take the paths of weaker
// CPUs. A cap naming another architecture's ISA leaves the scalar kernels.
bool cpu_supports(Isa isa);
Isa isa_cap();
// The kernel table for this CPU, chosen once (strongest supported variant of each kind).
const KernelTable& kernels();
// Rebuilds the table under a new cap (tests, `lutra info --isa`); not thread-safe.
void set_isa_cap(Isa cap);
bool parse_isa(const std::string& s, Isa& out);

}  // namespace lutra
