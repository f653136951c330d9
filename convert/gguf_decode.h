// Decoding GGUF tensor data: float rows for requantization into lutra's formats, and ternary
// types straight to lutra's t2 codes and one scale, so exact ternary weights stay exact.
//
// Block layouts (ggml-quants / bitnet.cpp), all little-endian, d = fp16 block scale:
//   Q8_0   32 weights in 34 bytes: d, int8 q[32];             w = d * q
//   Q4_0   32 weights in 18 bytes: d, uint8 qs[16];           w[j] = d * ((qs[j] & 15) - 8),
//                                                              w[j + 16] = d * ((qs[j] >> 4) - 8)
//   TQ2_0  256 weights in 66 bytes: uint8 qs[64], d;           weight 128h + 32l + m is code
//          (qs[32h + m] >> 2l) & 3, meaning code - 1           (h < 2, l < 4, m < 32)
//   TQ1_0  256 weights in 54 bytes: uint8 qs[48], qh[4], d;    base-3 fixed point: byte b holds
//          trits t_n = ((uint8)(b * 3^n) * 3) >> 8, meaning t - 1. Weights 0..159: byte qs[m],
//          trit n for weight 32n + m; 160..239: qs[32 + m], trit n for 160 + 16n + m;
//          240..255: qh[m], trit n for 240 + 4n + m.
//   I2_S   (bitnet.cpp, x86 layout) 128 weights per 32 bytes over the whole tensor: weight
//          32g + m of a block is (byte m >> (6 - 2g)) & 3, codes 0/1/2 = -1/0/+1; after the
//          n/4 code bytes one float32 scale (the weights' magnitude), padded to 32 bytes.
#pragma once

#include <cstdint>
#include <vector>

#include "convert/gguf.h"
#include "runtime/status.h"

namespace lutra {

// True for the types that hold ternary weights (TQ1_0, TQ2_0, I2_S).
bool ggml_type_is_ternary(uint32_t type);

// Decodes a tensor as rows of floats (rows x row_length). F32, F16, BF16, Q8_0, Q4_0 and the
// ternary types; anything else is refused naming the type and the tensor.
class GgufRows {
 public:
  static Result<GgufRows> open(const GgufFile& file, const GgufTensorInfo& tensor);
  size_t rows() const { return rows_; }
  size_t row_length() const { return k_; }
  void row(size_t r, float* out) const;

 private:
  const uint8_t* data_ = nullptr;
  uint32_t type_ = 0;
  size_t rows_ = 0, k_ = 0;
  float i2_scale_ = 0;
};

// A ternary tensor in lutra's t2 layout (runtime/weights.h): n rows of t2_row_bytes(k) bytes,
// codes w + 1, and the one scale every non-zero weight has.
struct TernaryMatrix {
  size_t n = 0, k = 0;
  float scale = 0;
  std::vector<uint8_t> t2;
};

// TQ1_0 / TQ2_0 / I2_S without a float detour. TQ blocks carry their own scales: they must all
// agree (blocks whose weights are all zero excepted), since t2 has one scale per tensor.
Result<TernaryMatrix> decode_ternary(const GgufFile& file, const GgufTensorInfo& tensor);

}  // namespace lutra
