// KV cache elements as floats, for the NEON attention kernels: f32 rows load as they are, f16
// rows widen exactly (fcvtl). Four at a time, or one.
#pragma once

#include <arm_neon.h>

#include <cstdint>

namespace lutra {
namespace {

inline float32x4_t kv_load4(const float* p) { return vld1q_f32(p); }
inline float32x4_t kv_load4(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
inline float kv_float(const float* p) { return *p; }
inline float kv_float(const uint16_t* p) { return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vld1_dup_u16(p))), 0); }

}  // namespace
}  // namespace lutra
