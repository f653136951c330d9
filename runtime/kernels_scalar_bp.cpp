// Scalar references of the bit-serial table-lookup kinds (WeightFormat::bp): the table builds,
// exact and fast, and the GEMMs over them, plane by plane as the SIMD variants do, in plain
// loops. The exact GEMM equals the bq-qs8 scalar reference bit for bit (tests/test_bp.cpp).
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "runtime/half.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

inline float load_f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// The 16 entries T[p] = sum_{e: bit e of p} x[e] of one chunk of 4 activations.
inline void chunk_entries(const int8_t* x, int32_t t[16]) {
  for (int p = 0; p < 16; p++) {
    t[p] = 0;
    for (int e = 0; e < 4; e++)
      if (p >> e & 1) t[p] += x[e];
  }
}

inline int32_t group_xsum(const int8_t* x, size_t group) {
  int32_t s = 0;
  for (size_t j = 0; j < group; j++) s += x[j];
  return s;
}

// acc_g = sum over planes i of 2^i * sum over chunks of T_c[nibble of plane i], one row, one
// group; `entry(c, p)` reads entry p of chunk c (group-relative) of the token's tables.
template <class Entry>
inline int32_t row_group_acc(const WeightView& w, size_t r, size_t g, Entry entry) {
  int32_t acc = 0;
  for (int i = 0; i < w.bits; i++) {
    int32_t plane = 0;
    for (size_t c = 0; c < size_t(w.group) / 4; c++)
      plane += entry(c, bp_nibble(w, r, g, c, i));
    acc += plane * (int32_t(1) << i);
  }
  return acc;
}

// Group g's f16 scale of row r and its zero (2^(bits-1) for symmetric weights).
struct ScaleZero {
  float s, z;
};
inline ScaleZero scale_zero(const WeightView& w, size_t r, size_t g) {
  const uint8_t* at = bp_scale_at(w, r, g);
  return {load_f16_at(at), w.asymmetric ? load_f16_at(at + 64) : float(1u << (w.bits - 1))};
}

// The GEMM of both modes: `term(r, g, tab)` is group g's float term of row r.
template <class Term>
inline void bp_gemm(const WeightView& w, const uint8_t* tables, size_t table_stride,
                    const float* xs, float* y, size_t m, size_t n_begin, size_t n_end, Term term) {
  const size_t gpr = w.groups_per_row();
  for (size_t i = 0; i < m; i++) {
    const uint8_t* tab = tables + i * table_stride;
    for (size_t r = n_begin; r < n_end; r++) {
      float sum = 0.0f;
      for (size_t g = 0; g < gpr; g++) sum += term(r, g, tab);
      y[i * w.n + r] = sum / xs[i];
    }
  }
}

}  // namespace

void lutra_bp_lut_build__scalar(const int8_t* xq, size_t k, size_t group, size_t group_begin,
                                size_t group_end, uint8_t* table) {
  const size_t gpr = k / group;
  uint8_t* xsums = table + k / 16 * 128;
  for (size_t g = group_begin; g < group_end; g++) {
    for (size_t c = g * group / 4; c < (g + 1) * group / 4; c++) {
      int32_t t[16];
      chunk_entries(xq + 4 * c, t);
      uint8_t* lo = table + c / 4 * 128 + c % 4 * 16;
      for (int p = 0; p < 16; p++) {
        lo[p] = uint8_t(uint32_t(t[p]) & 0xff);
        lo[64 + p] = uint8_t(uint32_t(t[p]) >> 8 & 0xff);
      }
    }
    const int32_t xsum = group_xsum(xq + g * group, group);
    std::memcpy(xsums + 4 * g, &xsum, 4);
    std::memset(xsums + 4 * gpr + 4 * g, 0, 4);
  }
}

void lutra_bp_lut_build_fast__scalar(const int8_t* xq, size_t k, size_t group, size_t group_begin,
                                     size_t group_end, uint8_t* table) {
  const size_t gpr = k / group;
  uint8_t* xsums = table + k / 16 * 64;
  for (size_t g = group_begin; g < group_end; g++) {
    // max|T| of the group: per chunk the larger of its positive and negative sums.
    int32_t tmax = 0;
    for (size_t c = g * group / 4; c < (g + 1) * group / 4; c++) {
      int32_t pos = 0, neg = 0;
      for (int e = 0; e < 4; e++) (xq[4 * c + e] > 0 ? pos : neg) += xq[4 * c + e];
      tmax = std::max({tmax, pos, -neg});
    }
    for (size_t c = g * group / 4; c < (g + 1) * group / 4; c++) {
      int32_t t[16];
      chunk_entries(xq + 4 * c, t);
      int8_t* q = reinterpret_cast<int8_t*>(table + c / 4 * 64 + c % 4 * 16);
      for (int p = 0; p < 16; p++) {
        // round(127 T / tmax), half away from zero, in integers (|q| <= 127)
        const int32_t num = 254 * t[p] + (t[p] >= 0 ? tmax : -tmax);
        q[p] = tmax ? int8_t(num / (2 * tmax)) : 0;
      }
    }
    const int32_t xsum = group_xsum(xq + g * group, group);
    const float ts = tmax ? float(tmax) / 127.0f : 1.0f;
    std::memcpy(xsums + 4 * g, &xsum, 4);
    std::memcpy(xsums + 4 * gpr + 4 * g, &ts, 4);
  }
}

void lutra_bp_qs8_gemm__scalar(const WeightView& w, const uint8_t* tables, size_t table_stride,
                               const float* xs, float* y, size_t m, size_t n_begin, size_t n_end) {
  const size_t group = size_t(w.group), quads = w.k / 16;
  bp_gemm(w, tables, table_stride, xs, y, m, n_begin, n_end, [&](size_t r, size_t g, const uint8_t* tab) {
    const uint8_t* lo = tab + g * group / 16 * 128;  // the group's first quad
    const int32_t acc = row_group_acc(w, r, g, [lo](size_t c, uint32_t p) {
      const uint8_t* e = lo + c / 4 * 128 + c % 4 * 16 + p;
      return int32_t(int16_t(uint16_t(e[0] | e[64] << 8)));
    });
    int32_t xsum;
    std::memcpy(&xsum, tab + quads * 128 + 4 * g, 4);
    const auto [s, z] = scale_zero(w, r, g);
    return s * (float(acc) - z * float(xsum));
  });
}

void lutra_bp_qs8_gemm_fast__scalar(const WeightView& w, const uint8_t* tables,
                                    size_t table_stride, const float* xs, float* y, size_t m,
                                    size_t n_begin, size_t n_end) {
  const size_t group = size_t(w.group), gpr = w.groups_per_row(), quads = w.k / 16;
  bp_gemm(w, tables, table_stride, xs, y, m, n_begin, n_end, [&](size_t r, size_t g, const uint8_t* tab) {
    const int8_t* q = reinterpret_cast<const int8_t*>(tab + g * group / 16 * 64);
    const int32_t acc = row_group_acc(w, r, g, [q](size_t c, uint32_t p) {
      return int32_t(q[c / 4 * 64 + c % 4 * 16 + p]);
    });
    int32_t xsum;
    float ts;
    std::memcpy(&xsum, tab + quads * 64 + 4 * g, 4);
    std::memcpy(&ts, tab + quads * 64 + 4 * gpr + 4 * g, 4);
    const auto [s, z] = scale_zero(w, r, g);
    return s * (ts * float(acc) - z * float(xsum));
  });
}

}  // namespace lutra
