// The scalar reference of every kernel kind: plain loops; float sums in the canonical order of
// runtime/float_order.h, which every SIMD variant reproduces bit for bit. SIMD variants are
// tested against these; they are also the fallback everywhere.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/float_order.h"
#include "runtime/half.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

// The f16 sections of a bq tensor need not be 2-byte aligned (they follow the code bytes).
inline float load_f16(const uint16_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// Code j of a little-endian bitstream of `bits`-bit codes (bits <= 8).
inline uint32_t bq_code(const uint8_t* row, size_t j, int bits) {
  size_t bit = j * size_t(bits);
  size_t byte = bit / 8;
  uint32_t shift = uint32_t(bit % 8);
  uint32_t v = row[byte];
  if (shift + uint32_t(bits) > 8) v |= uint32_t(row[byte + 1]) << 8;  // code spans two bytes
  return (v >> shift) & ((1u << bits) - 1);
}

inline int t2_code(const uint8_t* row, size_t j) { return (row[j / 4] >> (2 * (j % 4))) & 3; }

// Group g of row r of a t3 tensor (WeightFormat::t3): its magnitude index 0..13 and sign.
struct T3Group {
  int index;
  bool negative;
};
inline T3Group t3_group(const WeightView& w, size_t r, size_t g) {
  const uint8_t* block = w.data + (r / t3_tile_rows) * t3_tile_bytes(w.k) + 128 + (g / 2) * 40;
  const size_t s = r % t3_tile_rows, q = s % 16, h = s / 16, L = g % 2;
  const uint8_t* sign_word = block + 32 + 4 * h;
  const size_t bit = 8 * (q % 4) + 4 * L + q / 4;
  return {(block[16 * L + q] >> (4 * h)) & 15, bool((sign_word[bit / 8] >> (bit % 8)) & 1)};
}
// Weight j (0..2) of the pattern with magnitude index i: v = 9(w0+1) + 3(w1+1) + (w2+1).
inline int t3_weight(int i, int j) { return (j == 0 ? i / 9 : j == 1 ? i / 3 % 3 : i % 3) - 1; }

// The code byte of group g of row r of a t5 tensor (WeightFormat::t5): index | sign << 7.
inline uint8_t t5_code(const WeightView& w, size_t r, size_t g) {
  const size_t s = r % t5_tile_rows, L = s % 32 / 8, b = s % 8 + (s >= 32 ? 8 : 0);
  return w.data[(r / t5_tile_rows) * t5_tile_bytes(w.k) + 256 + 64 * g + 16 * L + b];
}
// Weight j (0..4) of the pattern with magnitude index i: base-3 digit j of i, most significant
// first, minus 1.
inline int t5_weight(int i, int j) {
  for (int d = j; d < 4; d++) i /= 3;
  return i % 3 - 1;
}

// Weight (r, j) of a bq tensor as a float: s (q - z), computed as fma(q, s, -(s z)): one
// fused multiply-add per weight in SIMD (the product s z is per group). With the symmetric zero
// 2^(bits-1), s z is exact, so this is s * (q - z) rounded once.
struct BqRow {
  const uint8_t* codes;
  const uint16_t* scales;
  const uint16_t* zeros;  // null: symmetric
  int bits, group;
  float operator()(size_t j) const {
    size_t g = j / size_t(group);
    float s = load_f16(scales + g);
    float z = zeros ? load_f16(zeros + g) : float(1u << (bits - 1));
    return std::fma(float(bq_code(codes, j, bits)), s, -(s * z));
  }
};

BqRow bq_row(const WeightView& w, size_t r) {
  size_t gpr = w.groups_per_row();
  return BqRow{w.bq_codes() + r * bq_code_bytes_per_row(w.k, w.bits), w.bq_scales() + r * gpr,
               w.asymmetric ? w.bq_zeros() + r * gpr : nullptr, w.bits, w.group};
}

}  // namespace

void lutra_f32_f32_gemm__scalar(const WeightView& w, const float* x, float* y, size_t m,
                                size_t n_begin, size_t n_end) {
  const float* wf = reinterpret_cast<const float*>(w.data);
  for (size_t i = 0; i < m; i++) {
    const float* xi = x + i * w.k;
    for (size_t r = n_begin; r < n_end; r++) {
      y[i * w.n + r] = dot_canonical(wf + r * w.k, xi, w.k);
    }
  }
}

void lutra_f16_f32_gemm__scalar(const WeightView& w, const float* x, float* y, size_t m,
                                size_t n_begin, size_t n_end) {
  const uint16_t* wh = reinterpret_cast<const uint16_t*>(w.data);
  for (size_t i = 0; i < m; i++) {
    const float* xi = x + i * w.k;
    for (size_t r = n_begin; r < n_end; r++) {
      const uint16_t* row = wh + r * w.k;  // f16 -> f32 is exact
      y[i * w.n + r] = dot_canonical_fn([row](size_t j) { return f16_to_f32(row[j]); }, xi, w.k);
    }
  }
}

void lutra_bq_f32_gemm__scalar(const WeightView& w, const float* x, float* y, size_t m,
                               size_t n_begin, size_t n_end) {
  for (size_t i = 0; i < m; i++) {
    const float* xi = x + i * w.k;
    for (size_t r = n_begin; r < n_end; r++) {
      // weights as dequant_row has them; 4-bit codes in groups of 32: the lanes of byte pairs
      const BqRow row = bq_row(w, r);
      y[i * w.n + r] = w.bits == 4 && w.group % 32 == 0 ? dot_canonical_pairs_fn(row, xi, w.k)
                                                         : dot_canonical_fn(row, xi, w.k);
    }
  }
}

void lutra_t2_qs8_gemm__scalar(const WeightView& w, const int8_t* xq, int32_t* acc, size_t m,
                               size_t n_begin, size_t n_end) {
  size_t row_bytes = t2_row_bytes(w.k);
  for (size_t i = 0; i < m; i++) {
    const int8_t* xi = xq + i * w.k;
    for (size_t r = n_begin; r < n_end; r++) {
      const uint8_t* row = w.data + r * row_bytes;
      int32_t sum = 0;
      for (size_t j = 0; j < w.k; j++) sum += (t2_code(row, j) - 1) * int32_t(xi[j]);
      acc[i * w.n + r] = sum;
    }
  }
}

void lutra_t3_lut_build__scalar(const int8_t* xq, size_t k, size_t group_begin,
                                 size_t group_end, uint8_t* table) {
  for (size_t g = group_begin; g < group_end; g++) {
    int32_t x[3];
    for (size_t j = 0; j < 3; j++) x[j] = 3 * g + j < k ? xq[3 * g + j] : 0;  // zero padding
    uint8_t* lo = table + (g / 2) * 64 + (g % 2) * 16;
    uint8_t* hi = lo + 32;
    for (int i = 0; i < 16; i++) {
      int32_t t = 0;
      if (i < 14)
        for (int j = 0; j < 3; j++) t += t3_weight(i, j) * x[j];
      lo[i] = uint8_t(uint32_t(t) & 0xff);
      hi[i] = uint8_t((uint32_t(t) >> 8) & 0xff);
    }
  }
}

void lutra_t3_qs8_gemm__scalar(const WeightView& w, const uint8_t* tables, size_t table_stride,
                               int32_t* acc, size_t m, size_t n_begin, size_t n_end) {
  const size_t groups = lut_groups(WeightFormat::t3, w.k);
  for (size_t i = 0; i < m; i++) {
    const uint8_t* tab = tables + i * table_stride;
    for (size_t r = n_begin; r < n_end; r++) {
      int32_t sum = 0;
      for (size_t g = 0; g < groups; g++) {
        T3Group p = t3_group(w, r, g);
        const uint8_t* lo = tab + (g / 2) * 64 + (g % 2) * 16;
        int32_t t = int16_t(uint16_t(lo[p.index] | lo[32 + p.index] << 8));
        sum += p.negative ? -t : t;
      }
      acc[i * w.n + r] = sum;
    }
  }
}

// The multiply-add form of the t3 GEMM (gemm_t3_madd): the weights decoded one by one.
namespace {
// Row r of t3 weights times one token's k activations, exact.
int32_t t3_row_dot(const WeightView& w, size_t r, const int8_t* x) {
  int32_t sum = 0;
  for (size_t j = 0; j < w.k; j++) {
    T3Group p = t3_group(w, r, j / 3);
    const int v = t3_weight(p.index, int(j % 3));
    sum += (p.negative ? -v : v) * x[j];
  }
  return sum;
}
}  // namespace

void lutra_t3_qs8_gemm_madd__scalar(const WeightView& w, const int8_t* xq, int32_t* acc,
                                    size_t m, size_t n_begin, size_t n_end) {
  for (size_t i = 0; i < m; i++)
    for (size_t r = n_begin; r < n_end; r++) acc[i * w.n + r] = t3_row_dot(w, r, xq + i * w.k);
}

void lutra_t3_qs8_gemm_madd_scaled__scalar(const WeightView& w, const int8_t* xq, const float* xs,
                                           float* y, size_t m, size_t n_begin, size_t n_end,
                                           bool accumulate) {
  for (size_t i = 0; i < m; i++) {
    const float s = w.scale / xs[i];
    for (size_t r = n_begin; r < n_end; r++) {
      const float v = float(t3_row_dot(w, r, xq + i * w.k)) * s;
      y[i * w.n + r] = accumulate ? y[i * w.n + r] + v : v;
    }
  }
}

void lutra_t5_lut_build__scalar(const int8_t* xq, size_t k, size_t group_begin,
                                 size_t group_end, uint8_t* table) {
  for (size_t g = group_begin; g < group_end; g++) {
    int32_t x[5];
    for (size_t j = 0; j < 5; j++) x[j] = 5 * g + j < k ? xq[5 * g + j] : 0;  // zero padding
    uint8_t* lo = table + 256 * g;
    uint8_t* hi = lo + 128;
    for (int i = 0; i < 128; i++) {
      int32_t t = 0;
      if (i < 122)
        for (int j = 0; j < 5; j++) t += t5_weight(i, j) * x[j];
      lo[i] = uint8_t(uint32_t(t) & 0xff);
      hi[i] = uint8_t((uint32_t(t) >> 8) & 0xff);
    }
  }
}

void lutra_t5_qs8_gemm__scalar(const WeightView& w, const uint8_t* tables, size_t table_stride,
                               int32_t* acc, size_t m, size_t n_begin, size_t n_end) {
  const size_t groups = lut_groups(WeightFormat::t5, w.k);
  for (size_t i = 0; i < m; i++) {
    const uint8_t* tab = tables + i * table_stride;
    for (size_t r = n_begin; r < n_end; r++) {
      int32_t sum = 0;
      for (size_t g = 0; g < groups; g++) {
        const uint8_t code = t5_code(w, r, g), index = code & 127;
        const uint8_t* lo = tab + 256 * g;
        int32_t t = int16_t(uint16_t(lo[index] | lo[128 + index] << 8));
        sum += code & 128 ? -t : t;
      }
      acc[i * w.n + r] = sum;
    }
  }
}

float lutra_f32_qs8_quantize__scalar(const float* x, size_t k, int8_t* xq) {
  float amax = 0.0f;
  for (size_t j = 0; j < k; j++) amax = std::max(amax, std::fabs(x[j]));
  float s = 127.0f / std::max(amax, 1e-5f);
  for (size_t j = 0; j < k; j++) {
    float q = std::nearbyint(x[j] * s);  // half to even in the default rounding mode
    xq[j] = int8_t(std::clamp(q, -128.0f, 127.0f));
  }
  return s;
}

void lutra_f32_rmsnorm__scalar(const float* x, const float* w, float* y, size_t n, float eps) {
  const float ss = dot_canonical(x, x, n);
  float inv = 1.0f / std::sqrt(ss / float(n) + eps);
  for (size_t j = 0; j < n; j++) y[j] = x[j] * inv * w[j];
}

void lutra_f32_softmax__scalar(float* x, size_t n) {
  if (n == 0) return;
  float mx = x[0];
  for (size_t j = 1; j < n; j++) mx = std::max(mx, x[j]);
  for (size_t j = 0; j < n; j++) x[j] = exp_canonical(x[j] - mx);  // the max: no overflow
  const float sum = sum_canonical(x, n);
  for (size_t j = 0; j < n; j++) x[j] /= sum;
}

void lutra_f32_rope__scalar(float* v, size_t n_heads, size_t head_dim, const float* cos,
                            const float* sin, RopeStyle style) {
  size_t half = head_dim / 2;
  for (size_t h = 0; h < n_heads; h++) {
    float* vh = v + h * head_dim;
    for (size_t i = 0; i < half; i++) {
      size_t a = style == RopeStyle::interleaved ? 2 * i : i;
      size_t b = style == RopeStyle::interleaved ? 2 * i + 1 : i + half;
      float v0 = vh[a], v1 = vh[b];
      vh[a] = v0 * cos[i] - v1 * sin[i];
      vh[b] = v0 * sin[i] + v1 * cos[i];
    }
  }
}

namespace {

// Value j of a cached K or V row as a float (f16 widens exactly, q8 is q * its block's scale).
inline float kv_float(const float* row, size_t j, size_t) { return row[j]; }
inline float kv_float(const uint16_t* row, size_t j, size_t) { return f16_to_f32(row[j]); }
inline float kv_float(const int8_t* row, size_t j, size_t head_dim) { return kv_q8_value(row, j, head_dim); }

template <class T>
void attention(const float* q, const T* k, const T* v, size_t n_pos, size_t head_dim, size_t kv_stride,
               float scale, float* scores, float* out) {
  for (size_t t = 0; t < n_pos; t++) {
    const T* kt = k + t * kv_stride;
    // fma(k, q, lane) is fma(q, k, lane): the canonical q·k, with k widened as it is read.
    scores[t] = dot_canonical_fn([kt, head_dim](size_t j) { return kv_float(kt, j, head_dim); }, q, head_dim) * scale;
  }
  lutra_f32_softmax__scalar(scores, n_pos);
  for (size_t d = 0; d < head_dim; d++) out[d] = 0.0f;
  for (size_t t = 0; t < n_pos; t++) {
    const T* vt = v + t * kv_stride;
    for (size_t d = 0; d < head_dim; d++) out[d] = std::fma(scores[t], kv_float(vt, d, head_dim), out[d]);
  }
}

}  // namespace

void lutra_f32_attention__scalar(const float* q, const void* k, const void* v, KvType kv_type, size_t n_pos,
                                 size_t head_dim, size_t kv_stride, float scale, float* scores,
                                 float* out) {
  with_kv_elements(kv_type, k, v, [&](auto kt, auto vt) {
    attention(q, kt, vt, n_pos, head_dim, kv_stride, scale, scores, out);
  });
}

void lutra_f32_attention_gqa__scalar(const float* q, size_t n_q, const void* k, const void* v, KvType kv_type,
                                     size_t n_pos, size_t head_dim, size_t kv_stride, float scale,
                                     float* scores, float* out) {
  for (size_t g = 0; g < n_q; g++)
    lutra_f32_attention__scalar(q + g * head_dim, k, v, kv_type, n_pos, head_dim, kv_stride, scale,
                                scores + g * n_pos, out + g * head_dim);
}

void kv_store_row(KvType t, const float* x, size_t head_dim, void* row) {
  if (t == KvType::f32) {
    std::memcpy(row, x, head_dim * 4);
  } else if (t == KvType::f16) {
    for (size_t j = 0; j < head_dim; j++) {
      const uint16_t h = f32_to_f16(x[j]);
      std::memcpy(static_cast<uint8_t*>(row) + 2 * j, &h, 2);
    }
  } else {
    int8_t* q = static_cast<int8_t*>(row);
    for (size_t b = 0; b < head_dim; b += kKvQ8Block) {
      const size_t n = std::min(kKvQ8Block, head_dim - b);
      float amax = 0.0f;
      for (size_t j = 0; j < n; j++) amax = std::max(amax, std::fabs(x[b + j]));
      const float scale = amax / 127.0f;
      const float inv = scale > 0.0f ? 1.0f / scale : 0.0f;
      for (size_t j = 0; j < n; j++) {  // nearest, ties to even; out of range clamps, NaN is 0
        const float r = std::nearbyint(x[b + j] * inv);
        q[b + j] = int8_t(r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r == r ? r : 0.0f);
      }
      std::memcpy(q + head_dim + 4 * (b / kKvQ8Block), &scale, 4);
    }
  }
}

void lutra_f32_silu_mul__scalar(const float* gate, const float* up, float* out, size_t n) {
  for (size_t j = 0; j < n; j++) out[j] = gate[j] / (1.0f + exp_canonical(-gate[j])) * up[j];
}

void lutra_f32_relu2_mul__scalar(const float* gate, const float* up, float* out, size_t n) {
  for (size_t j = 0; j < n; j++) {
    float g = std::max(gate[j], 0.0f);
    out[j] = g * g * up[j];
  }
}

void lutra_dequant_row__scalar(const WeightView& w, size_t r, float* out) {
  switch (w.format) {
    case WeightFormat::f32:
      std::memcpy(out, w.data + r * w.k * 4, w.k * 4);
      return;
    case WeightFormat::f16: {
      const uint16_t* row = reinterpret_cast<const uint16_t*>(w.data) + r * w.k;
      for (size_t j = 0; j < w.k; j++) out[j] = f16_to_f32(row[j]);
      return;
    }
    case WeightFormat::t2: {
      const uint8_t* row = w.data + r * t2_row_bytes(w.k);
      for (size_t j = 0; j < w.k; j++) out[j] = w.scale * float(t2_code(row, j) - 1);
      return;
    }
    case WeightFormat::bq: {
      BqRow row = bq_row(w, r);
      for (size_t j = 0; j < w.k; j++) out[j] = row(j);
      return;
    }
    case WeightFormat::t3:
      for (size_t j = 0; j < w.k; j++) {
        T3Group p = t3_group(w, r, j / 3);
        int v = t3_weight(p.index, int(j % 3));
        out[j] = w.scale * float(p.negative ? -v : v);
      }
      return;
    case WeightFormat::t5:
      for (size_t j = 0; j < w.k; j++) {
        const uint8_t code = t5_code(w, r, j / 5);
        const int v = t5_weight(code & 127, int(j % 5));
        out[j] = w.scale * float(code & 128 ? -v : v);
      }
      return;
    case WeightFormat::bp:
      for (size_t j = 0; j < w.k; j++) {
        const uint8_t* sz = bp_scale_at(w, r, j / size_t(w.group));
        const float s = load_f16(reinterpret_cast<const uint16_t*>(sz));
        const float z = w.asymmetric ? load_f16(reinterpret_cast<const uint16_t*>(sz + 64))
                                     : float(1u << (w.bits - 1));
        out[j] = s * (float(bp_code(w, r, j)) - z);
      }
      return;
  }
}

}  // namespace lutra

// bq weights x int8 activations (GemmBqI8Fn): the formula of its comment in runtime/kernels.h,
// literally. Per row, groups ascending: exact int32 sums, then one float combine per group.
namespace lutra {

void lutra_bq_qs8_gemm__scalar(const WeightView& w, const int8_t* xq, const float* xs, float* y,
                               size_t m, size_t n_begin, size_t n_end) {
  const size_t gpr = w.groups_per_row(), group = size_t(w.group);
  const size_t row_bytes = bq_code_bytes_per_row(w.k, w.bits);
  const float zsym = float(1u << (w.bits - 1));
  for (size_t i = 0; i < m; i++) {
    const int8_t* xi = xq + i * w.k;
    for (size_t r = n_begin; r < n_end; r++) {
      const uint8_t* codes = w.bq_codes() + r * row_bytes;
      const uint16_t* scales = w.bq_scales() + r * gpr;
      const uint16_t* zeros = w.asymmetric ? w.bq_zeros() + r * gpr : nullptr;
      float sum = 0.0f;
      for (size_t g = 0; g < gpr; g++) {
        int32_t acc = 0, xsum = 0;
        for (size_t j = g * group; j < (g + 1) * group; j++) {
          acc += int32_t(bq_code(codes, j, w.bits)) * int32_t(xi[j]);
          xsum += int32_t(xi[j]);
        }
        const float s = load_f16(scales + g);
        const float z = zeros ? load_f16(zeros + g) : zsym;
        sum += s * (float(acc) - z * float(xsum));
      }
      y[i * w.n + r] = sum / xs[i];
    }
  }
}

}  // namespace lutra
