// Quantizers and packers from float rows to the model file's weight formats (runtime/weights.h),
// and the pieces every importer writes (config, tokenizer, provenance).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "convert/convert.h"
#include "runtime/config.h"
#include "runtime/model_file.h"

namespace lutra {

// Target format of a matrix: "f32", "f16", "t2" (absmean ternary), "t3" and "t5" (the same
// ternary weights in the table-lookup layouts), "b<bits>g<group>[a]"
// (e.g. "b4g32": 4-bit symmetric in groups of 32; "b4g32a": asymmetric), "p<bits>g<group>[a]"
// (the same b-bit weights, bits 1..4, as bit planes for table lookup: WeightFormat::bp).
struct PackSpec {
  WeightFormat format = WeightFormat::f32;
  int bits = 0, group = 0;
  bool asymmetric = false;
  std::string to_string() const;
  // Also takes the recipe aliases tl, i2, w<bits>g<group>[a], q8, q4 (canonical_format_name).
  static Result<PackSpec> parse(const std::string& s);
};

std::string canonical_format_name(const std::string& s);

// Writes row r of the source matrix (k floats) to out.
using RowSource = std::function<void(size_t r, float* out)>;

// Quantizes/packs an n x k matrix into `spec` and adds it to the file. Ternary weights (t2, t3, t5)
// use BitNet b1.58's absmean: scale = mean|W|, Wq = clamp(round(W / scale), -1, 1).
Status write_matrix(ModelWriter& w, const std::string& name, size_t n, size_t k,
                    const PackSpec& spec, const RowSource& rows);
Status write_vector(ModelWriter& w, const std::string& name, std::span<const float> v);
// An already-ternarized matrix, given in the t2 layout with its scale, written as `format`
// (t2 as is, t3 and t5 repacked).
Status write_ternary(ModelWriter& w, const std::string& name, WeightFormat format, size_t n, size_t k,
                     float scale, std::span<const uint8_t> t2_packed);

// Row packers (exposed for tests and importers that stream).
void pack_row_f16(const float* x, size_t k, uint8_t* out);
void pack_row_t2(const float* x, size_t k, float scale, uint8_t* out);
// Absmean ternarization of a whole matrix into the t2 layout (n * t2_row_bytes(k) bytes);
// returns the scale mean|W| (at least 1e-5). Both ternary formats start here.
float ternarize_t2(size_t n, size_t k, const RowSource& rows, std::vector<uint8_t>& t2_packed);
// The same ternary matrix in the t3 layout (weight_bytes(t3, n, k) bytes, see WeightFormat::t3)
// from its t2 packing; invalid t2 codes (3) read as 0.
void pack_t3_from_t2(const uint8_t* t2_packed, size_t n, size_t k, uint8_t* t3_out);
// The same in the t5 layout (weight_bytes(t5, n, k) bytes, see WeightFormat::t5).
void pack_t5_from_t2(const uint8_t* t2_packed, size_t n, size_t k, uint8_t* t5_out);
// Codes, scales and zeros of one row into their sections (see WeightFormat::bq).
void pack_row_bq(const float* x, size_t k, const PackSpec& spec, uint8_t* codes, uint16_t* scales,
                 uint16_t* zeros);

// The same matrix as bit planes (weight_bytes(bp, ...) bytes, see WeightFormat::bp) from its bq
// packing (bits 1..4, bp_shape_ok): identical codes, scales and zeros.
void pack_bp_from_bq(const WeightView& bq, uint8_t* bp_out);

// Each importer calls step() after writing a tensor: it reports progress (the tensor, bytes
// written so far, and tensors done of the total) and stops the conversion on Ctrl-C. The total
// is the config's graph: the tokenizer, the embedding, 9 tensors a layer (11 with sub-norms),
// the final norm and the head's own tensors (HeadPlan::head_tensors, convert/head_plan.h).
class TensorSteps {
 public:
  TensorSteps(const ConvertOptions& opts, const ModelWriter& w, const ModelConfig& c, size_t head_tensors)
      : opts_(opts), w_(w), total_(3 + size_t(c.n_layers) * (c.sub_norms ? 11 : 9) + head_tensors) {}
  Status step(const std::string& tensor);

 private:
  const ConvertOptions& opts_;
  const ModelWriter& w_;
  size_t total_, done_ = 0;
};

// The tokenizer blob and the directory metadata every importer writes. `tokenizer_type` is
// "spm" (write_spm_tokenizer) or "bpe" (write_bpe_tokenizer: Tokenizer::bpe_blob()).
Status write_spm_tokenizer(ModelWriter& w, const std::string& spm_proto);
Status write_bpe_tokenizer(ModelWriter& w, const std::string& bpe_blob);
std::string model_metadata(const ModelConfig& config, const std::string& provenance_json,
                           const std::string& tokenizer_type = "spm");

}  // namespace lutra
