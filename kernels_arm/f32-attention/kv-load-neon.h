// KV cache values as floats, for the NEON attention kernels: values d..d+3 of a cached row (d a
// multiple of 4), or value d alone. f32 rows load as they are, f16 rows widen exactly (fcvtl),
// q8 rows widen and multiply by their block's scale (runtime/kernels.h).
#pragma once

#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#include "runtime/kernels.h"

namespace lutra {
namespace {

inline float32x4_t kv_load4(const float* row, size_t d, size_t) { return vld1q_f32(row + d); }
inline float32x4_t kv_load4(const uint16_t* row, size_t d, size_t) {
  return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(row + d)));
}
inline float32x4_t kv_load4(const int8_t* row, size_t d, size_t head_dim) {
  int32_t bits;
  std::memcpy(&bits, row + d, 4);
  const int16x8_t w = vmovl_s8(vreinterpret_s8_s32(vdup_n_s32(bits)));
  return vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(w))), kv_q8_scale(row, d, head_dim));
}
inline float kv_float(const float* row, size_t d, size_t) { return row[d]; }
inline float kv_float(const uint16_t* row, size_t d, size_t) {
  return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vld1_dup_u16(row + d))), 0);
}
inline float kv_float(const int8_t* row, size_t d, size_t head_dim) { return kv_q8_value(row, d, head_dim); }

}  // namespace
}  // namespace lutra
