#include "convert/pack.h"

#include <cmath>
#include <cctype>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "runtime/half.h"
#include "runtime/model.h"

namespace lutra {

using json = nlohmann::json;

std::string PackSpec::to_string() const {
  if (format != WeightFormat::bq && format != WeightFormat::bp) return std::string(lutra::to_string(format));
  return (format == WeightFormat::bq ? "b" : "p") + std::to_string(bits) + "g" + std::to_string(group) + (asymmetric ? "a" : "");
}

// The recipe names of the issue tracker and other tools, as lutra's own: "tl" (table lookup:
// t3, which every CPU runs fast), "i2" (2-bit multiply-add: t2), "w<bits>g<group>[a]" (b-bit
// groups), "q8" / "q4" (b8g32 / b4g32, like ggml's Q8_0 / Q4_0 block size).
std::string canonical_format_name(const std::string& s) {
  if (s == "tl") return "t3";
  if (s == "i2") return "t2";
  if (s == "q8" || s == "q4") return "b" + s.substr(1) + "g32";
  if (s.size() > 1 && s[0] == 'w' && std::isdigit(static_cast<unsigned char>(s[1]))) return "b" + s.substr(1);
  return s;
}

Result<PackSpec> PackSpec::parse(const std::string& name) {
  const std::string s = canonical_format_name(name);
  PackSpec p;
  if (parse_weight_format(s, p.format) && p.format != WeightFormat::bq && p.format != WeightFormat::bp) return p;
  int bits = 0, group = 0;
  char tail = 0;
  const char letter = s.empty() ? 0 : s[0];
  const bool planes = letter == 'p';
  int n = std::sscanf(s.c_str() + (s.empty() ? 0 : 1), "%dg%d%c", &bits, &group, &tail);
  // Symmetric 1-bit has no zero to be symmetric around: 1-bit weights are asymmetric.
  if ((letter == 'b' || planes) && (n == 3 && tail == 'a' ? bits >= 1 : bits >= 2) && bits <= 8 &&
      group > 0 && (n == 2 || tail == 'a') &&
      s == std::string(1, letter) + std::to_string(bits) + "g" + std::to_string(group) + (n == 3 ? "a" : "")) {
    if (planes && (bits > 4 || group % 16 != 0 || group > 256))
      return Status::error("bit-plane format '" + s + "' needs 1..4 bits and a group that is a multiple of 16, at most 256");
    p.format = planes ? WeightFormat::bp : WeightFormat::bq;
    p.bits = bits;
    p.group = group;
    p.asymmetric = n == 3;
    return p;
  }
  return Status::error("unknown weight format '" + name +
                       "' (use f32, f16, t2 (alias i2), t3 (alias tl), t5, b<bits>g<group>[a] such as b4g32 "
                       "(aliases w4g32, q4, q8), or p<bits>g<group>[a] such as p4g32)");
}

void pack_row_f16(const float* x, size_t k, uint8_t* out) {
  for (size_t j = 0; j < k; ++j) {
    uint16_t h = f32_to_f16(x[j]);
    std::memcpy(out + 2 * j, &h, 2);
  }
}

void pack_row_t2(const float* x, size_t k, float scale, uint8_t* out) {
  std::memset(out, 0, t2_row_bytes(k));
  const float inv = scale > 0 ? 1.0f / scale : 0.0f;
  for (size_t j = 0; j < k; ++j) {
    float q = std::nearbyint(x[j] * inv);  // round half to even, as torch.round
    int code = q > 0 ? 2 : q < 0 ? 0 : 1;
    out[j / 4] |= uint8_t(code << (2 * (j % 4)));
  }
}

float ternarize_t2(size_t n, size_t k, const RowSource& rows, std::vector<uint8_t>& t2_packed) {
  std::vector<float> row(k);
  double sum = 0;  // mean|W| over the whole tensor, then ternarize with it
  for (size_t r = 0; r < n; ++r) {
    rows(r, row.data());
    for (float v : row) sum += std::fabs(v);
  }
  const float scale = std::max(float(sum / double(n * k)), 1e-5f);
  t2_packed.assign(n * t2_row_bytes(k), 0);
  for (size_t r = 0; r < n; ++r) {
    rows(r, row.data());
    pack_row_t2(row.data(), k, scale, t2_packed.data() + r * t2_row_bytes(k));
  }
  return scale;
}

void pack_t3_from_t2(const uint8_t* t2_packed, size_t n, size_t k, uint8_t* t3_out) {
  const size_t tile_bytes = t3_tile_bytes(k), groups = lut_groups(WeightFormat::t3, k);
  const size_t tiles = (n + t3_tile_rows - 1) / t3_tile_rows;
  std::memset(t3_out, 0, tiles * tile_bytes);
  for (size_t t = 0; t < tiles; ++t) {
    uint8_t* tile = t3_out + t * tile_bytes;
    for (size_t s = 0; s < t3_tile_rows; ++s) {
      const size_t r = t * t3_tile_rows + s, q = s % 16, h = s / 16;
      const uint8_t* row = r < n ? t2_packed + r * t2_row_bytes(k) : nullptr;
      int32_t negatives = 0;
      for (size_t g = 0; g < groups; ++g) {
        int v = 0;  // v = 9(w0+1) + 3(w1+1) + (w2+1); padding weights are 0
        for (size_t j = 3 * g; j < 3 * g + 3; ++j) {
          int code = row && j < k ? (row[j / 4] >> (2 * (j % 4))) & 3 : 1;
          v = 3 * v + (code == 3 ? 1 : code);
        }
        const bool negative = v > 13;
        uint8_t* block = tile + 128 + (g / 2) * 40;
        const size_t L = g % 2, bit = 8 * (q % 4) + 4 * L + q / 4;
        block[16 * L + q] |= uint8_t((negative ? 26 - v : v) << (4 * h));
        if (negative) {
          block[32 + 4 * h + bit / 8] |= uint8_t(1u << (bit % 8));
          ++negatives;
        }
      }
      for (size_t b = 0; b < 4; ++b) tile[4 * s + b] = uint8_t(uint32_t(negatives) >> (8 * b));
    }
  }
}

void pack_t5_from_t2(const uint8_t* t2_packed, size_t n, size_t k, uint8_t* t5_out) {
  const size_t tile_bytes = t5_tile_bytes(k), groups = lut_groups(WeightFormat::t5, k);
  const size_t tiles = (n + t5_tile_rows - 1) / t5_tile_rows;
  std::memset(t5_out, 0, tiles * tile_bytes);
  for (size_t t = 0; t < tiles; ++t) {
    uint8_t* tile = t5_out + t * tile_bytes;
    for (size_t s = 0; s < t5_tile_rows; ++s) {
      const size_t r = t * t5_tile_rows + s;
      const size_t byte = 16 * (s % 32 / 8) + s % 8 + (s >= 32 ? 8 : 0);  // the kernels' row order
      const uint8_t* row = r < n ? t2_packed + r * t2_row_bytes(k) : nullptr;
      int32_t negatives = 0;
      for (size_t g = 0; g < groups; ++g) {
        int v = 0;  // v = 81(w0+1) + 27(w1+1) + 9(w2+1) + 3(w3+1) + (w4+1); padding weights are 0
        for (size_t j = 5 * g; j < 5 * g + 5; ++j) {
          int code = row && j < k ? (row[j / 4] >> (2 * (j % 4))) & 3 : 1;
          v = 3 * v + (code == 3 ? 1 : code);
        }
        const bool negative = v > 121;
        tile[256 + 64 * g + byte] = uint8_t(negative ? (242 - v) | 128 : v);
        negatives += negative;
      }
      for (size_t b = 0; b < 4; ++b) tile[4 * s + b] = uint8_t(uint32_t(negatives) >> (8 * b));
    }
  }
}

namespace {

// The scale of a symmetric group of b-bit codes q in [-2^(b-1), 2^(b-1) - 1] (stored as
// q + 2^(b-1)). 8 bits: max|x| maps to 127, as Q8_0 maps it (GGUF's Q8_0 imports exactly).
// Fewer bits: the scale with the least squared error among candidates around max|x| / (2^(b-1)
// - 1), each refined by least squares for its codes (the largest value may take the extra
// negative code, or clip): at 4 bits this lowers the rms error by about a fifth, and with it
// the LM head's screen error (perf/RESULTS.md, "the two-stage head").
// Round half to even for |x| < 2^22 (larger values stay large: the callers clamp them),
// without a libm call (the search below rounds 34 times per weight; baseline x86-64 has no
// rounding instruction): adding 1.5 * 2^23 leaves no fraction bits, and float addition rounds
// to nearest even. (Without -ffast-math the compiler keeps (x + big) - big as written.)
inline float round_even(float x) {
  constexpr float big = 12582912.0f;
  return (x + big) - big;
}

float symmetric_scale(const float* v, size_t g, int bits) {
  float amax = 0, max = 0;
  for (size_t j = 0; j < g; ++j)
    if (std::fabs(v[j]) > amax) amax = std::fabs(v[j]), max = v[j];
  const float top = float((1 << (bits - 1)) - 1);
  if (bits >= 8 || amax == 0) return amax / top;
  const float lo = -top - 1;
  float best = amax / top;
  double best_err = -1;
  for (int c = 0; c <= 16; ++c) {
    // max maps to a code between top - 1 and top + 1 (past top: it clips, or takes -top - 1)
    const float d = top - 1.0f + 2.0f * float(c) / 16.0f;
    const float s0 = max > 0 ? amax / d : amax / std::min(d, -lo);
    double sq = 0, sv = 0;
    for (size_t j = 0; j < g; ++j) {
      const float q = std::clamp(round_even(v[j] / s0), lo, top);
      sq += double(q) * q;
      sv += double(q) * v[j];
    }
    if (sq == 0) continue;
    const float s = float(sv / sq);  // least squares for these codes
    if (!(s > 0)) continue;
    double err = 0;
    for (size_t j = 0; j < g; ++j) {
      const double e = double(v[j]) - double(s) * std::clamp(round_even(v[j] / s), lo, top);
      err += e * e;
    }
    if (best_err < 0 || err < best_err) best_err = err, best = s;
  }
  return best;
}

}  // namespace

void pack_row_bq(const float* x, size_t k, const PackSpec& spec, uint8_t* codes, uint16_t* scales,
                 uint16_t* zeros) {
  const size_t g = size_t(spec.group);
  const int qmax = (1 << spec.bits) - 1;
  std::memset(codes, 0, bq_code_bytes_per_row(k, spec.bits));
  for (size_t gi = 0; gi < k / g; ++gi) {
    const float* v = x + gi * g;
    float s, z;
    if (spec.asymmetric) {
      float lo = v[0], hi = v[0];
      for (size_t j = 1; j < g; ++j) lo = std::min(lo, v[j]), hi = std::max(hi, v[j]);
      s = (hi - lo) / float(qmax);
      z = s > 0 ? -lo / s : 0.0f;  // q = x/s + z, so w = s*(q - z)
      if (s == 0 && lo != 0) {     // a constant group: code 0 with zero -lo/|lo| gives lo
        s = std::fabs(lo);
        z = -lo / s;
      }
    } else {
      z = float(1 << (spec.bits - 1));
      s = symmetric_scale(v, g, spec.bits);
    }
    // Quantize against the scale and zero as stored (f16), so dequantization matches.
    const uint16_t sh = f32_to_f16(s), zh = f32_to_f16(z);
    scales[gi] = sh;
    if (zeros) zeros[gi] = zh;
    const float sq = f16_to_f32(sh), zq = spec.asymmetric ? f16_to_f32(zh) : z;
    for (size_t j = 0; j < g; ++j) {
      int q = sq > 0 ? int(std::nearbyint(v[j] / sq + zq)) : int(zq);
      q = std::clamp(q, 0, qmax);
      size_t bit = (gi * g + j) * size_t(spec.bits);
      uint32_t val = uint32_t(q) << (bit % 8);
      for (size_t b = bit / 8; val; ++b, val >>= 8) codes[b] |= uint8_t(val);
    }
  }
}

void pack_bp_from_bq(const WeightView& bq, uint8_t* bp_out) {
  const size_t n = bq.n, k = bq.k, group = size_t(bq.group), gpr = bq.groups_per_row();
  const size_t row_bytes = bq_code_bytes_per_row(k, bq.bits);
  WeightView bp = bq;
  bp.format = WeightFormat::bp;
  bp.data = bp_out;
  std::memset(bp_out, 0, weight_bytes(WeightFormat::bp, n, k, bq.bits, bq.group, bq.asymmetric));
  for (size_t r = 0; r < n; ++r) {
    const uint8_t* codes = bq.bq_codes() + r * row_bytes;
    for (size_t g = 0; g < gpr; ++g) {
      uint8_t* sz = bp_out + (bp_scale_at(bp, r, g) - bp.data);
      std::memcpy(sz, bq.bq_scales() + r * gpr + g, 2);  // f16 as stored
      if (bq.asymmetric) std::memcpy(sz + 64, bq.bq_zeros() + r * gpr + g, 2);
      for (size_t jj = 0; jj < group; ++jj) {
        const size_t j = g * group + jj, bit = j * size_t(bq.bits), c = jj / 4;
        const uint32_t code = (uint32_t(codes[bit / 8]) | uint32_t(bit / 8 + 1 < row_bytes ? codes[bit / 8 + 1] : 0) << 8) >>
                              (bit % 8);
        for (int i = 0; i < bq.bits; ++i)
          if (code >> i & 1) bp_out[bp_nibble_byte(bp, r, g, c, i) - bp.data] |= uint8_t(1u << (4 * (c % 2) + jj % 4));
      }
    }
  }
}

Status write_matrix(ModelWriter& w, const std::string& name, size_t n, size_t k,
                    const PackSpec& spec, const RowSource& rows) {
  TensorInfo info;
  info.name = name;
  info.format = std::string(to_string(spec.format));
  info.shape = {n, k};
  std::vector<float> row(k);
  std::vector<uint8_t> out;
  switch (spec.format) {
    case WeightFormat::f32:
      out.resize(n * k * 4);
      for (size_t r = 0; r < n; ++r) rows(r, reinterpret_cast<float*>(out.data()) + r * k);
      break;
    case WeightFormat::f16:
      out.resize(n * k * 2);
      for (size_t r = 0; r < n; ++r) {
        rows(r, row.data());
        pack_row_f16(row.data(), k, out.data() + r * k * 2);
      }
      break;
    case WeightFormat::t2:
    case WeightFormat::t3:
    case WeightFormat::t5: {
      const float scale = ternarize_t2(n, k, rows, out);
      return write_ternary(w, name, spec.format, n, k, scale, out);
    }
    case WeightFormat::bq:
    case WeightFormat::bp: {
      if (k % size_t(spec.group) != 0)
        return Status::error("cannot pack '" + name + "' as " + spec.to_string() + ": its " +
                             std::to_string(k) + " columns are not a multiple of the group size");
      info.bits = spec.bits;
      info.group = spec.group;
      info.asymmetric = spec.asymmetric;
      // bp: quantized exactly as bq (the same codes, scales and zeros), then laid out as planes.
      std::vector<uint8_t> bq_bytes;
      std::vector<uint8_t>& bq_out = spec.format == WeightFormat::bq ? out : bq_bytes;
      bq_out.resize(weight_bytes(WeightFormat::bq, n, k, spec.bits, spec.group, spec.asymmetric));
      WeightView v{WeightFormat::bq, n, k, bq_out.data(), 1.0f, spec.bits, spec.group, spec.asymmetric};
      const size_t cb = bq_code_bytes_per_row(k, spec.bits), gpr = k / size_t(spec.group);
      uint16_t* scales = const_cast<uint16_t*>(v.bq_scales());
      uint16_t* zeros = const_cast<uint16_t*>(v.bq_zeros());
      for (size_t r = 0; r < n; ++r) {
        rows(r, row.data());
        pack_row_bq(row.data(), k, spec, bq_out.data() + r * cb, scales + r * gpr,
                    zeros ? zeros + r * gpr : nullptr);
      }
      if (spec.format == WeightFormat::bp) {
        out.resize(weight_bytes(WeightFormat::bp, n, k, spec.bits, spec.group, spec.asymmetric));
        pack_bp_from_bq(v, out.data());
      }
      break;
    }
  }
  return w.add_tensor(std::move(info), out);
}

Status write_vector(ModelWriter& w, const std::string& name, std::span<const float> v) {
  TensorInfo info;
  info.name = name;
  info.format = "f32";
  info.shape = {v.size()};
  return w.add_tensor(std::move(info),
                      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.data()), v.size_bytes()));
}

Status write_ternary(ModelWriter& w, const std::string& name, WeightFormat format, size_t n, size_t k,
                     float scale, std::span<const uint8_t> t2_packed) {
  TensorInfo info;
  info.name = name;
  info.format = std::string(to_string(format));
  info.shape = {n, k};
  info.scale = scale;
  if (format == WeightFormat::t2) return w.add_tensor(std::move(info), t2_packed);
  std::vector<uint8_t> packed(weight_bytes(format, n, k));
  if (format == WeightFormat::t5) pack_t5_from_t2(t2_packed.data(), n, k, packed.data());
  else pack_t3_from_t2(t2_packed.data(), n, k, packed.data());
  return w.add_tensor(std::move(info), packed);
}

Status TensorSteps::step(const std::string& tensor) {
  if (opts_.progress_count) opts_.progress_count(++done_, total_);
  if (opts_.progress) opts_.progress(tensor, w_.bytes_written());
  if (opts_.interrupt && opts_.interrupt->load()) return Status::error("conversion interrupted; no file written");
  return ok_status();
}

static Status write_blob(ModelWriter& w, const char* name, const std::string& blob) {
  // Built whole: GCC 12 warned (falsely) about assigning "u8" to a default-made format.
  TensorInfo info{.name = name, .format = "u8", .shape = {blob.size()}};
  return w.add_tensor(std::move(info),
                      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(blob.data()), blob.size()));
}

Status write_spm_tokenizer(ModelWriter& w, const std::string& spm_proto) {
  return write_blob(w, kTokenizerSpm, spm_proto);
}

Status write_bpe_tokenizer(ModelWriter& w, const std::string& bpe_blob) {
  return write_blob(w, kTokenizerBpe, bpe_blob);
}

std::string model_metadata(const ModelConfig& config, const std::string& provenance_json,
                           const std::string& tokenizer_type) {
  json j = {{"config", json::parse(config.to_json())},
            {"tokenizer", {{"type", tokenizer_type}}},
            {"provenance", json::parse(provenance_json)}};
  return j.dump();
}

}  // namespace lutra
