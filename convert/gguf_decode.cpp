#include "convert/gguf_decode.h"

#include <cmath>
#include <cstring>

#include "runtime/half.h"
#include "runtime/weights.h"

namespace lutra {

namespace {

constexpr size_t kTqBlock = 256;   // weights per TQ1_0 / TQ2_0 block
constexpr size_t kI2Block = 128;   // weights per I2_S block (32 bytes)

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// The 256 codes (weight + 1, so 0..2; TQ2_0 may hold an invalid 3) of one TQ block and its scale.
float tq_block_codes(GgmlType type, const uint8_t* block, uint8_t* codes) {
  if (type == GgmlType::tq2_0) {
    for (size_t h = 0; h < 2; ++h)
      for (size_t l = 0; l < 4; ++l)
        for (size_t m = 0; m < 32; ++m) codes[128 * h + 32 * l + m] = (block[32 * h + m] >> (2 * l)) & 3;
    return f16_to_f32(load_u16(block + 64));
  }
  // TQ1_0: multiplying by 3^n (mod 256) brings trit n to the top of the base-3 fraction.
  static constexpr uint8_t pow3[5] = {1, 3, 9, 27, 81};
  auto trit = [](uint8_t byte, size_t n) { return uint8_t((unsigned(uint8_t(byte * pow3[n])) * 3) >> 8); };
  const uint8_t* qs = block;
  const uint8_t* qh = block + 48;
  for (size_t n = 0; n < 5; ++n)
    for (size_t m = 0; m < 32; ++m) codes[32 * n + m] = trit(qs[m], n);
  for (size_t n = 0; n < 5; ++n)
    for (size_t m = 0; m < 16; ++m) codes[160 + 16 * n + m] = trit(qs[32 + m], n);
  for (size_t n = 0; n < 4; ++n)
    for (size_t m = 0; m < 4; ++m) codes[240 + 4 * n + m] = trit(qh[m], n);
  return f16_to_f32(load_u16(block + 52));
}

// The 128 codes of one I2_S block; code 3 (never written by bitnet.cpp) reads as 0 like its
// dequantizer does.
void i2s_block_codes(const uint8_t* block, uint8_t* codes) {
  for (size_t g = 0; g < 4; ++g)
    for (size_t m = 0; m < 32; ++m) {
      uint8_t c = (block[m] >> (6 - 2 * g)) & 3;
      codes[32 * g + m] = c == 3 ? 1 : c;
    }
}

size_t block_bytes(GgmlType t) { return t == GgmlType::tq1_0 ? 54 : t == GgmlType::tq2_0 ? 66 : 32; }

float i2s_scale(const uint8_t* data, uint64_t n_elements) {
  float s;
  std::memcpy(&s, data + n_elements / 4, 4);
  return s;
}

std::string where(const GgufFile& f, const GgufTensorInfo& t) { return f.name() + ": tensor '" + t.name + "'"; }

}  // namespace

bool ggml_type_is_ternary(uint32_t type) {
  auto t = GgmlType(type);
  return t == GgmlType::tq1_0 || t == GgmlType::tq2_0 || t == GgmlType::i2_s;
}

Result<GgufRows> GgufRows::open(const GgufFile& file, const GgufTensorInfo& tensor) {
  switch (GgmlType(tensor.type)) {
    case GgmlType::f32: case GgmlType::f16: case GgmlType::bf16: case GgmlType::q8_0: case GgmlType::q4_0:
    case GgmlType::tq1_0: case GgmlType::tq2_0: case GgmlType::i2_s: break;
    default:
      return Status::error(where(file, tensor) + " has type " + ggml_type_name(tensor.type) + " (" +
                           std::to_string(tensor.type) +
                           "), which lutra cannot decode (supported: F32, F16, BF16, Q8_0, Q4_0, TQ1_0, TQ2_0, I2_S)");
  }
  if (GgmlType(tensor.type) == GgmlType::i2_s && tensor.row_length() % kI2Block != 0)
    return Status::error(where(file, tensor) + " is I2_S with rows of " + std::to_string(tensor.row_length()) +
                         " weights, not a multiple of 128");
  GgufRows r;
  r.data_ = file.tensor_data(tensor).data();
  r.type_ = tensor.type;
  r.rows_ = tensor.rows();
  r.k_ = tensor.row_length();
  if (GgmlType(tensor.type) == GgmlType::i2_s) r.i2_scale_ = i2s_scale(r.data_, tensor.n_elements());
  return r;
}

void GgufRows::row(size_t r, float* out) const {
  const size_t k = k_;
  switch (GgmlType(type_)) {
    case GgmlType::f32:
      std::memcpy(out, data_ + r * k * 4, k * 4);
      return;
    case GgmlType::f16: {
      const uint8_t* p = data_ + r * k * 2;
      for (size_t j = 0; j < k; ++j) out[j] = f16_to_f32(load_u16(p + 2 * j));
      return;
    }
    case GgmlType::bf16: {
      const uint8_t* p = data_ + r * k * 2;
      for (size_t j = 0; j < k; ++j) out[j] = bf16_to_f32(load_u16(p + 2 * j));
      return;
    }
    case GgmlType::q8_0: {
      const uint8_t* b = data_ + r * (k / 32) * 34;
      for (size_t j = 0; j < k; j += 32, b += 34) {
        const float d = f16_to_f32(load_u16(b));
        for (size_t i = 0; i < 32; ++i) out[j + i] = d * float(int8_t(b[2 + i]));
      }
      return;
    }
    case GgmlType::q4_0: {
      const uint8_t* b = data_ + r * (k / 32) * 18;
      for (size_t j = 0; j < k; j += 32, b += 18) {
        const float d = f16_to_f32(load_u16(b));
        for (size_t i = 0; i < 16; ++i) {
          out[j + i] = d * float(int(b[2 + i] & 15) - 8);
          out[j + 16 + i] = d * float(int(b[2 + i] >> 4) - 8);
        }
      }
      return;
    }
    case GgmlType::tq1_0: case GgmlType::tq2_0: {
      const GgmlType t = GgmlType(type_);
      const uint8_t* b = data_ + r * (k / kTqBlock) * block_bytes(t);
      uint8_t codes[kTqBlock];
      for (size_t j = 0; j < k; j += kTqBlock, b += block_bytes(t)) {
        const float d = tq_block_codes(t, b, codes);
        for (size_t i = 0; i < kTqBlock; ++i) out[j + i] = d * float(int(codes[i]) - 1);
      }
      return;
    }
    case GgmlType::i2_s: {
      const uint8_t* b = data_ + r * k / 4;
      uint8_t codes[kI2Block];
      for (size_t j = 0; j < k; j += kI2Block, b += 32) {
        i2s_block_codes(b, codes);
        for (size_t i = 0; i < kI2Block; ++i) out[j + i] = i2_scale_ * float(int(codes[i]) - 1);
      }
      return;
    }
    default:
      return;  // refused by open()
  }
}

Result<TernaryMatrix> decode_ternary(const GgufFile& file, const GgufTensorInfo& tensor) {
  const GgmlType type = GgmlType(tensor.type);
  if (!ggml_type_is_ternary(tensor.type))
    return Status::error(where(file, tensor) + " has type " + ggml_type_name(tensor.type) + ", not a ternary type");
  TernaryMatrix m;
  m.n = tensor.rows();
  m.k = tensor.row_length();
  const size_t block = type == GgmlType::i2_s ? kI2Block : kTqBlock;
  if (m.k % block != 0)
    return Status::error(where(file, tensor) + " has rows of " + std::to_string(m.k) + " weights, not a multiple of " +
                         std::to_string(block));
  const size_t row_bytes = t2_row_bytes(m.k);
  m.t2.assign(m.n * row_bytes, 0);
  const uint8_t* data = file.tensor_data(tensor).data();
  bool have_scale = false;
  if (type == GgmlType::i2_s) {
    m.scale = i2s_scale(data, tensor.n_elements());
    have_scale = true;
  }
  uint8_t codes[kTqBlock];
  const uint8_t* b = data;
  for (size_t r = 0; r < m.n; ++r) {
    uint8_t* out = m.t2.data() + r * row_bytes;
    for (size_t j = 0; j < m.k; j += block, b += block_bytes(type)) {
      float d = 0;
      if (type == GgmlType::i2_s) {
        i2s_block_codes(b, codes);
      } else {
        d = tq_block_codes(type, b, codes);
      }
      bool nonzero = false;
      for (size_t i = 0; i < block; ++i) {
        if (codes[i] > 2)
          return Status::error(where(file, tensor) + " holds an invalid TQ2_0 code 3 in row " + std::to_string(r));
        nonzero |= codes[i] != 1;
        out[(j + i) / 4] |= uint8_t(codes[i] << (2 * ((j + i) % 4)));
      }
      if (type != GgmlType::i2_s && nonzero) {
        if (!have_scale) {
          m.scale = d;
          have_scale = true;
        } else if (d != m.scale) {
          return Status::error(where(file, tensor) + " has blocks with different scales (" + std::to_string(m.scale) +
                               " and " + std::to_string(d) +
                               "): not one ternary tensor; convert it with --weights b4g32 (or f32)");
        }
      }
    }
  }
  if (!have_scale) m.scale = 1.0f;  // all weights zero: any scale will do
  if (!(m.scale > 0) || !std::isfinite(m.scale))
    return Status::error(where(file, tensor) + " has an invalid ternary scale " + std::to_string(m.scale));
  return m;
}

}  // namespace lutra
