#include "convert/head_plan.h"

#include "runtime/head.h"
#include "runtime/model.h"

namespace lutra {

namespace {

// Whether rows of `dim` columns can be packed as `s` (b-bit groups must divide the row).
bool fits(const PackSpec& s, size_t dim) {
  if (s.format == WeightFormat::bp) return bp_shape_ok(dim, s.bits, s.group);
  return s.format != WeightFormat::bq || dim % size_t(s.group) == 0;
}

}  // namespace

Result<HeadPlan> plan_head(const ConvertOptions& opts, bool tied, const PackSpec& source, size_t dim) {
  HeadPlan p;
  p.tied = tied;
  p.embedding = source;
  if (!opts.embedding.empty()) {
    auto e = PackSpec::parse(opts.embedding);
    if (!e.ok()) return e.status();
    p.embedding = *e;
  }
  if (!fits(p.embedding, dim))
    return Status::error("cannot pack the embedding as " + p.embedding.to_string() + ": its " + std::to_string(dim) +
                         " columns are not a multiple of the group size");
  if (opts.head == "tied") {
    if (!tied) return Status::error("--head tied needs a model whose head is its embedding (a tied head)");
    return p;
  }
  if (opts.head.empty() && !opts.embedding.empty()) {  // the single-tensor layout of --embedding
    if (!tied) p.head = p.embedding;
    return p;
  }
  PackSpec h;
  if (!opts.head.empty()) {
    auto parsed = PackSpec::parse(opts.head);
    if (!parsed.ok()) return parsed.status();
    h = *parsed;
    if (!fits(h, dim))
      return Status::error("cannot pack the head as " + h.to_string() + ": its " + std::to_string(dim) +
                           " columns are not a multiple of the group size");
  } else {
    h = *PackSpec::parse(kDefaultHeadScreen);
    if (!fits(h, dim)) {  // no screen for this row length: the head keeps the source's precision
      if (!tied) p.head = source;
      return p;
    }
  }
  p.head = h;
  if (!tied && !is_float_format(h.format)) p.exact = source;
  return p;
}

std::string HeadPlan::embedding_name() const { return embedding.to_string(); }

std::string HeadPlan::head_name() const {
  if (!head) return tied ? "tied (multiplies token_embd)" : embedding.to_string();
  std::string s = head->to_string();
  if (exact) return s + ", candidates rescored from output_exact (" + exact->to_string() + ")";
  if (tied && can_rescore_from(embedding.format, head->format))
    return s + ", candidates rescored from token_embd (" + embedding.to_string() + ")";
  return s;
}

Status write_embedding(ModelWriter& w, const HeadPlan& plan, size_t vocab, size_t dim, const RowSource& rows) {
  return write_matrix(w, kTokenEmbd, vocab, dim, plan.embedding, rows);
}

Status write_head(ModelWriter& w, const HeadPlan& plan, size_t vocab, size_t dim, const RowSource& rows,
                  TensorSteps& steps) {
  if (plan.head) {
    LUTRA_TRY(write_matrix(w, kOutput, vocab, dim, *plan.head, rows));
    LUTRA_TRY(steps.step(kOutput));
  }
  if (plan.exact) {
    LUTRA_TRY(write_matrix(w, kOutputExact, vocab, dim, *plan.exact, rows));
    LUTRA_TRY(steps.step(kOutputExact));
  }
  return ok_status();
}

}  // namespace lutra
