// The embedding and LM-head tensors every importer writes: a two-stage head by default.
//   token_embd    the embedding rows the forward pass looks up, one per token: kept at the
//                 source's precision (f32 for f32 sources, else f16), so the lookup loses
//                 nothing and costs nothing per token.
//   output        the head the decode multiplies with every vocabulary row, the largest matrix
//                 read per token: by default a low-bit "screen" (kDefaultHeadScreen), read with
//                 int8 activations.
//   output_exact  untied models: their head at the source's precision. The runtime rescores the
//                 screen's best candidates from it (tied models rescore from token_embd), so the
//                 logits that sampling can choose from are the float ones (runtime/head.h).
// `--embedding E` alone keeps the single-tensor layout: the head multiplies token_embd itself
// (tied) or an `output` in the same format (untied), and nothing is rescored. `--head H` sets the
// screen's format; `--head tied` multiplies token_embd (tied models).
#pragma once

#include <optional>
#include <string>

#include "convert/pack.h"

namespace lutra {

// The default screen: 4-bit symmetric groups of 32 (4.5 bits/weight). Why this one: the head
// study in perf/RESULTS.md ("the two-stage head").
inline constexpr const char* kDefaultHeadScreen = "b4g32";

struct HeadPlan {
  PackSpec embedding;             // token_embd
  std::optional<PackSpec> head;   // a separate `output`; none: tied models multiply token_embd
  std::optional<PackSpec> exact;  // output_exact (untied models with a low-bit head)
  bool tied = true;
  // Tensors write_head writes (for TensorSteps' count).
  size_t head_tensors() const { return (head ? 1 : 0) + (exact ? 1 : 0); }
  // The recipe's "embedding" and "head" entries, e.g. "f16 (source precision)" and
  // "b4g32, candidates rescored from token_embd".
  std::string embedding_name() const;
  std::string head_name() const;
};

// `source` is the source embedding's precision as a format (f32, f16, or the exact quantized
// format such as llama2.c's b8g<group>); dim is the rows' length.
Result<HeadPlan> plan_head(const ConvertOptions& opts, bool tied, const PackSpec& source, size_t dim);

// token_embd from the source embedding's rows.
Status write_embedding(ModelWriter& w, const HeadPlan& plan, size_t vocab, size_t dim, const RowSource& rows);
// output and output_exact as planned, from the head's source rows (the embedding's when tied),
// each followed by steps.step().
Status write_head(ModelWriter& w, const HeadPlan& plan, size_t vocab, size_t dim, const RowSource& rows,
                  TensorSteps& steps);

}  // namespace lutra
