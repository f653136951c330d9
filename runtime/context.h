// An inference context: the KV cache, every activation buffer (planned once, so evaluating
// tokens allocates nothing), the worker pool, and the forward pass.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <vector>

#include "runtime/head.h"
#include "runtime/kernels.h"
#include "runtime/model.h"
#include "runtime/thread_pool.h"

namespace lutra {

struct ContextParams {
  int n_ctx = 0;        // KV cache positions; 0: the model's training context, at most 4096
  int n_threads = 0;    // workers; 0: one per physical core; at most the usable CPUs
  int n_batch = 64;     // tokens evaluated per forward pass during prefill
  bool logits_all = false;  // keep logits of every token of a batch (perplexity, eval)
  // Multiply b-bit (bq) weights, such as the LM head's screen, by int8-quantized activations
  // (per-token absmax, as every peer runtime does): ~3x faster than float activations, which
  // are the exact path (off).
  bool bq_int8 = true;
  // Rows of a two-stage head rescored from its exact rows per token (runtime/head.h): the
  // best `head_candidates` by the screen's logits. 0: the screen's logits only. Models
  // without exact rows ignore it.
  int head_candidates = kDefaultHeadCandidates;
  // The KV cache's element type (runtime/kernels.h): f16 halves what attention reads per token
  // at depth and the cache's memory; f32 is exact (the reference comparisons use it).
  KvType kv_type = KvType::f16;
  // Bit-plane (bp) weights through int8 tables (the fast, approximate mode; its measured error
  // is in tests/test_bp.cpp). Off: exact int16 tables, bit-identical to bq with bq_int8.
  bool bp_fast = false;
};

class Context {
 public:
  static Result<std::unique_ptr<Context>> create(const Model& model, const ContextParams& params);

  // Appends tokens at positions n_past()...; afterwards logits() holds the last token's
  // logits (and logits(i) the i-th token's of the last batch, with logits_all).
  Status eval(std::span<const int32_t> tokens);
  const float* logits() const { return logits_last_; }
  const float* logits(size_t i) const { return logits_.data() + i * size_t(cfg_.vocab_size); }
  int n_past() const { return n_past_; }
  int n_ctx() const { return n_ctx_; }
  int n_batch() const { return n_batch_; }  // tokens per forward pass: logits(i) covers one
  int n_threads() const { return pool_->size(); }
  void reset() { truncate(0); }
  // Keeps the first n cached positions (n <= n_past()) and forgets the rest: the next eval
  // continues at position n (a benchmark's fixed depth; a prompt that shares a prefix).
  void truncate(int n) {
    n_past_ = std::clamp(n, 0, n_past_);
    logits_last_ = nullptr;
  }
  // Bytes of the KV cache (both K and V, every layer and position) and of one position of it.
  size_t kv_cache_bytes() const { return k_cache_.size() + v_cache_.size(); }
  KvType kv_type() const { return kv_type_; }
  size_t kv_bytes_per_position() const { return kv_cache_bytes() / size_t(n_ctx_); }
  const Model& model() const { return model_; }

 private:
  Context(const Model& model) : model_(model), cfg_(model.config()) {}
  void forward(int ith, int nth);  // run by every worker on batch_ / batch_pos_

  // The input of a linear layer: floats; for ternary weights their int8 form, and for
  // table-lookup weights the tables built from it.
  struct LinearInput {
    const float* x;
    const int8_t* xq;
    const float* xs;        // per-token quantization scales
    const uint8_t* tables;  // token i's at tables + i * table_stride_
    const uint8_t* bp_tables;  // bit-plane tables: token i's at bp_tables + i * bp_table_stride_
  };
  // y = W in for this worker's rows; accumulate (ternary formats only): y += W in.
  void linear(const WeightView& w, const LinearInput& in, float* y, size_t m, int ith, int nth,
              bool accumulate = false);
  // Float-format weights (f32, f16, bq with float activations): rows [r0, r1) of y = W x.
  static void gemm_float(const WeightView& w, const float* x, float* y, size_t m, size_t r0, size_t r1);
  // The head's second stage (runtime/head.h) on logits_ of n_out tokens: the best candidates
  // of each worker's rows, then every worker rescores its own members of the global best.
  void rescore_head(size_t n_out, int ith, int nth);
  // x += W in (W has dim output rows), through tmp_.
  void linear_residual(const WeightView& w, const LinearInput& in, size_t m, int ith, int nth);
  // Readies y (m tokens of n values) for the linear layers `consumers`: y = rmsnorm(x) when
  // `norm` is given, then xq_/xs_ if any consumer is ternary and tables_ (bp_tables_) if any
  // is a table-lookup format (bit-plane; all bp consumers of one input share a group size). Ends at a barrier, so every worker may then read all of it.
  void prepare_input(const float* x, const float* norm, size_t n, float* y, size_t m,
                     std::initializer_list<const WeightView*> consumers, int ith, int nth);

  const Model& model_;
  const ModelConfig& cfg_;
  std::unique_ptr<ThreadPool> pool_;
  int n_ctx_ = 0, n_batch_ = 0, n_past_ = 0;
  size_t row_align_ = 32;  // rows per worker split: whole tiles of the model's widest kernel
  bool logits_all_ = false;
  bool bq_int8_ = false;
  bool bp_fast_ = false;

  // The batch being evaluated.
  std::span<const int32_t> batch_;
  int batch_pos_ = 0;

  // KV cache, (layer, kv_head, n_ctx, head_dim) elements of kv_type_ each, as bytes; the new tokens' keys
  // and values are computed in float first (k_new_, v_new_: n_batch x kv_dim), then stored.
  KvType kv_type_ = KvType::f16;
  std::vector<uint8_t> k_cache_, v_cache_;
  std::vector<float> k_new_, v_new_;
  // RoPE angles: cos and sin, (n_ctx, head_dim/2).
  std::vector<float> rope_cos_, rope_sin_;
  // Activations, (n_batch, width).
  std::vector<float> x_;      // residual stream (dim)
  std::vector<float> xb_;     // normed input of a linear layer (max(dim, q_dim))
  std::vector<float> q_;      // queries (q_dim)
  std::vector<float> att_;    // attention output (q_dim)
  std::vector<float> tmp_;    // linear output before the residual add (dim)
  std::vector<float> hb_, hb2_;  // FFN gate and up (hidden_dim)
  std::vector<int8_t> xq_;    // int8 activations (max width)
  std::vector<float> xs_;     // their per-token scales
  std::vector<int32_t> acc_;  // per worker: ternary accumulators (n_batch, acc_width_)
  size_t acc_width_ = 0;
  std::vector<uint8_t> tables_storage_;
  uint8_t* tables_ = nullptr;  // lookup tables (n_batch, table_stride_), 64-byte aligned
  size_t table_stride_ = 0;
  size_t table_t5_offset_ = 0;  // t5 tables within a token's row (after the t3 tables)
  std::vector<uint8_t> bp_tables_storage_;
  uint8_t* bp_tables_ = nullptr;  // bit-plane tables (n_batch, bp_table_stride_), 64-byte aligned
  size_t bp_table_stride_ = 0;
  std::vector<float> scores_; // per worker: attention scores (n_ctx)
  std::vector<float> logits_; // (n_batch or 1, vocab)
  size_t head_candidates_ = 0;  // 0: no second stage (no exact rows, or turned off)
  std::vector<HeadCandidate> head_cand_;   // per worker: (n_batch or 1, head_candidates_)
  std::vector<size_t> head_count_;         // per worker: (n_batch or 1) candidates found
  std::vector<HeadCandidate> head_merge_;  // per worker: (n_threads * head_candidates_)
  const float* logits_last_ = nullptr;
  size_t max_width_ = 0;
};

}  // namespace lutra
