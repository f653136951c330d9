#include "runtime/context.h"
#include "runtime/half.h"

#include <algorithm>
#include <cstring>
#include <cmath>
#include <cstdlib>
#include <string_view>

namespace lutra {

namespace {
size_t align64(size_t bytes) { return (bytes + 63) / 64 * 64; }

// Software prefetch of row r of a float-GEMV format (f32, f16; bq: its codes).
void prefetch_row(const WeightView& w, size_t r) {
  const size_t bytes = w.format == WeightFormat::f32   ? w.k * 4
                       : w.format == WeightFormat::f16 ? w.k * 2
                                                       : bq_code_bytes_per_row(w.k, w.bits);
  const uint8_t* p = w.data + r * bytes;
  for (size_t at = 0; at < bytes; at += 64) __builtin_prefetch(p + at);
}
// Every row split (row_align_) must be whole tiles of each format's kernels.
static_assert(t3_tile_rows % bp_tile_rows == 0 && t5_tile_rows % t3_tile_rows == 0);

// Prefill of t3 weights: from this many tokens on, the multiply-add kernel (gemm_t3_madd, int8
// activations, no tables) where the CPU has a SIMD one; below it (decode), table lookup. Its
// fixed cost is decoding each weight tile (~4 us per 32x2560 tile here), so it wins from 8
// tokens with VNNI and from ~32 with maddubs (kernel benchmarks, perf/RESULTS.md, "t3 prefill
// by multiply-add"). On ARM the sdot kernel (neondot and up) takes VNNI's threshold, from static
// instruction counts (no ARM board measured yet): its hot loop spends ~0.08 instructions per
// token and weight against ~0.26 for the NEON lookup kernel, plus ~0.33 per weight to decode
// each tile once per token chunk, so it breaks even near 2 tokens; 8 leaves a margin for what
// the counts miss (the decode's stores, the activation copy, the tables' L1 hits).
// LUTRA_T3_PREFILL=lookup keeps table lookup for every m (A/B runs).
bool t3_by_madd(size_t m) {
  static const bool lookup_only = [] {
    const char* env = std::getenv("LUTRA_T3_PREFILL");
    return env && std::string_view(env) == "lookup";
  }();
  const Isa isa = kernels().gemm_t3_madd.isa;
  if (lookup_only || isa == Isa::scalar) return false;
  const bool dot = isa == Isa::avx512vnni || isa == Isa::neondot || isa == Isa::neoni8mm;
  return m >= (dot ? 8u : 32u);
}
}  // namespace

Result<std::unique_ptr<Context>> Context::create(const Model& model, const ContextParams& p) {
  const ModelConfig& c = model.config();
  std::unique_ptr<Context> ctx(new Context(model));
  ctx->n_ctx_ = p.n_ctx > 0 ? p.n_ctx : std::min(c.max_seq_len, 4096);
  if (ctx->n_ctx_ > (1 << 20)) return Status::error("context size " + std::to_string(p.n_ctx) + " is too large");
  ctx->n_batch_ = std::max(1, std::min(p.n_batch, ctx->n_ctx_));
  ctx->logits_all_ = p.logits_all;
  ctx->bq_int8_ = p.bq_int8;
  ctx->bp_fast_ = p.bp_fast;
  // Never more workers than CPUs: a worker without a core stalls every barrier.
  int n_threads = std::min(p.n_threads > 0 ? p.n_threads : default_thread_count(), usable_cpu_count());
  ctx->pool_ = std::make_unique<ThreadPool>(n_threads);

  const size_t B = size_t(ctx->n_batch_), T = size_t(n_threads), N = size_t(ctx->n_ctx_);
  const size_t dim = size_t(c.dim), qd = size_t(c.q_dim()), kvd = size_t(c.kv_dim()),
               hid = size_t(c.hidden_dim), hd = size_t(c.head_dim);
  ctx->max_width_ = std::max({dim, qd, hid});
  ctx->kv_type_ = p.kv_type;
  const size_t kv_layer_bytes = size_t(c.n_kv_heads) * N * kv_row_bytes(p.kv_type, hd);
  ctx->k_cache_.assign(size_t(c.n_layers) * kv_layer_bytes, 0);
  ctx->v_cache_.assign(size_t(c.n_layers) * kv_layer_bytes, 0);
  ctx->k_new_.assign(B * kvd, 0.0f);
  ctx->v_new_.assign(B * kvd, 0.0f);
  ctx->x_.assign(B * dim, 0.0f);
  ctx->xb_.assign(B * std::max(dim, qd), 0.0f);
  ctx->q_.assign(B * qd, 0.0f);
  ctx->att_.assign(B * qd, 0.0f);
  ctx->tmp_.assign(B * dim, 0.0f);
  ctx->hb_.assign(B * hid, 0.0f);
  ctx->hb2_.assign(B * hid, 0.0f);
  ctx->xq_.assign(B * ctx->max_width_, 0);
  ctx->xs_.assign(B, 1.0f);
  // Ternary kernels write acc[i * n + r] for their rows r of an n-row matrix: each worker
  // gets a whole (n_batch, widest ternary n) slice, the head's vocabulary included when the
  // head is ternary.
  ctx->acc_width_ = ctx->max_width_;
  const WeightView& head = model.weights().output;
  if (is_ternary(head.format))
    ctx->acc_width_ = std::max(ctx->acc_width_, head.n);
  ctx->acc_.assign(T * B * ctx->acc_width_, 0);
  // Tables for the widest input, in 64-byte-aligned rows so workers building adjacent groups
  // of different tokens never share a cache line. A token's row holds t3 tables, then t5
  // tables at table_t5_offset_ (those of the formats the model has: t5's are ~5x t3's).
  bool has_t5 = false;
  for (const TensorInfo& t : model.file().tensors()) has_t5 |= t.format == "t5";
  // Output rows are split across workers in whole tiles of the widest kernel the model uses,
  // the same for every layer (the FFN's activation step reuses its gate/up split): 64 rows
  // only with t5, so the 640-row K/V layers of 2B4T still spread over 20 workers otherwise.
  ctx->row_align_ = has_t5 ? t5_tile_rows : t3_tile_rows;
  ctx->table_t5_offset_ = align64(lut_table_bytes(WeightFormat::t3, ctx->max_width_));
  ctx->table_stride_ = ctx->table_t5_offset_ +
                       (has_t5 ? align64(lut_table_bytes(WeightFormat::t5, ctx->max_width_)) : 0);
  ctx->tables_storage_.assign(B * ctx->table_stride_ + 64, 0);
  ctx->tables_ = ctx->tables_storage_.data() +
                 (64 - reinterpret_cast<uintptr_t>(ctx->tables_storage_.data()) % 64) % 64;
  // Bit-plane tables, for the largest of the bp matrices' inputs (none: no buffer).
  auto bp_need = [&](const WeightView& w) {
    if (w.format == WeightFormat::bp)
      ctx->bp_table_stride_ = std::max(ctx->bp_table_stride_, (bp_table_bytes(w.k, w.group, p.bp_fast) + 63) / 64 * 64);
  };
  bp_need(head);
  for (const LayerWeights& L : model.weights().layers)
    for (const WeightView* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) bp_need(*w);
  if (ctx->bp_table_stride_) {
    ctx->bp_tables_storage_.assign(B * ctx->bp_table_stride_ + 64, 0);
    ctx->bp_tables_ = ctx->bp_tables_storage_.data() +
                      (64 - reinterpret_cast<uintptr_t>(ctx->bp_tables_storage_.data()) % 64) % 64;
  }
  ctx->scores_.assign(T * size_t(c.n_heads / c.n_kv_heads) * N, 0.0f);  // a GQA group's rows
  const size_t n_logits = p.logits_all ? B : 1;
  ctx->logits_.assign(n_logits * size_t(c.vocab_size), 0.0f);
  if (model.weights().output_exact.data && p.head_candidates > 0) {
    const size_t K = std::min(size_t(p.head_candidates), size_t(c.vocab_size));
    ctx->head_candidates_ = K;
    ctx->head_cand_.assign(T * n_logits * K, HeadCandidate{});
    ctx->head_count_.assign(T * n_logits, 0);
    ctx->head_merge_.assign(T * T * K, HeadCandidate{});
  }

  // RoPE angles as llama2.c and Hugging Face define them, a float frequency theta^(-2i/head_dim)
  // times a float position: pos * freq. pow, cos and sin run in double and round once to float:
  // glibc's float versions may differ by architecture (and by FMA ifunc), while an error of the
  // double ones (under 1 double ulp) changes the float only in the rare case that it lands
  // within it of a float rounding boundary, so the tables are the same on every machine.
  ctx->rope_cos_.resize(N * hd / 2);
  ctx->rope_sin_.resize(N * hd / 2);
  for (size_t i = 0; i < hd / 2; ++i) {
    const float freq = float(1.0 / std::pow(double(c.rope_theta), double(2 * i) / double(hd)));
    for (size_t pos = 0; pos < N; ++pos) {
      const double angle = double(float(pos) * freq);
      ctx->rope_cos_[pos * hd / 2 + i] = float(std::cos(angle));
      ctx->rope_sin_[pos * hd / 2 + i] = float(std::sin(angle));
    }
  }
  return ctx;
}

Status Context::eval(std::span<const int32_t> tokens) {
  if (tokens.empty()) return ok_status();
  if (size_t(n_past_) + tokens.size() > size_t(n_ctx_))
    return Status::error("context is full: " + std::to_string(n_past_) + " + " +
                         std::to_string(tokens.size()) + " tokens exceed the context of " +
                         std::to_string(n_ctx_) + " (raise -c)");
  for (int32_t t : tokens)
    if (t < 0 || t >= cfg_.vocab_size)
      return Status::error("token id " + std::to_string(t) + " is outside the vocabulary");
  for (size_t at = 0; at < tokens.size(); at += size_t(n_batch_)) {
    batch_ = tokens.subspan(at, std::min(tokens.size() - at, size_t(n_batch_)));
    batch_pos_ = n_past_;
    auto body = [this](int ith, int nth) { forward(ith, nth); };
    pool_->run(body);
    // A NaN or infinity in the head's input (a corrupt file, an overflow) would give garbage,
    // and the int8 screen of the head hides it from the logits: refuse it here (dim floats).
    const size_t n_out = logits_all_ ? batch_.size() : 1, dim = size_t(cfg_.dim);
    for (size_t i = 0; i < n_out * dim; ++i)
      if (!std::isfinite(xb_[i]))
        return Status::error("the model produced non-finite activations (a corrupt file? `lutra info --verify` checks it)");
    n_past_ += int(batch_.size());
    logits_last_ = logits_.data() + (logits_all_ ? batch_.size() - 1 : 0) * size_t(cfg_.vocab_size);
  }
  return ok_status();
}

void Context::prepare_input(const float* x, const float* norm, size_t n, float* y, size_t m,
                            std::initializer_list<const WeightView*> consumers, int ith, int nth) {
  const KernelTable& k = kernels();
  bool quantize = false, tables = false, tables_t5 = false;
  const WeightView* bp = nullptr;
  for (const WeightView* w : consumers) {
    quantize |= is_ternary(w->format) || w->format == WeightFormat::bp || (bq_int8_ && w->format == WeightFormat::bq);
    tables |= w->format == WeightFormat::t3 && !t3_by_madd(m);
    tables_t5 |= w->format == WeightFormat::t5;
    if (w->format == WeightFormat::bp) bp = w;
  }
  // Per token: norm, then int8 (a token's max|x| needs its whole row).
  for (size_t i = size_t(ith); i < m; i += size_t(nth)) {
    if (norm) k.rmsnorm.fn(x + i * n, norm, y + i * n, n, cfg_.norm_eps);
    if (quantize) xs_[i] = k.quantize_i8.fn(y + i * n, n, xq_.data() + i * n);
  }
  pool_->barrier();
  if (!tables && !tables_t5 && !bp) return;
  // Tables: every worker builds its share of the groups of every token (any split gives the
  // same bytes; even t3 group counts, and whole t5 groups of 256 bytes, keep workers on
  // separate cache lines).
  size_t g0, g1;
  if (tables) {
    ThreadPool::split(lut_groups(WeightFormat::t3, n), ith, nth, 2, g0, g1);
    if (g0 < g1)
      for (size_t i = 0; i < m; ++i) k.lut_build_t3.fn(xq_.data() + i * n, n, g0, g1, tables_ + i * table_stride_);
  }
  if (tables_t5) {
    ThreadPool::split(lut_groups(WeightFormat::t5, n), ith, nth, 1, g0, g1);
    if (g0 < g1)
      for (size_t i = 0; i < m; ++i)
        k.lut_build_t5.fn(xq_.data() + i * n, n, g0, g1, tables_ + table_t5_offset_ + i * table_stride_);
  }
  if (bp) {  // by quantization groups (each carries its own xsum, and in fast mode its scale)
    const BpLutBuildFn build = bp_fast_ ? k.lut_build_bp_fast.fn : k.lut_build_bp.fn;
    const size_t group = size_t(bp->group);
    ThreadPool::split(n / group, ith, nth, 1, g0, g1);
    if (g0 < g1)
      for (size_t i = 0; i < m; ++i) build(xq_.data() + i * n, n, group, g0, g1, bp_tables_ + i * bp_table_stride_);
  }
  pool_->barrier();
}

void Context::linear(const WeightView& w, const LinearInput& in, float* y, size_t m, int ith, int nth,
                     bool accumulate) {
  const KernelTable& k = kernels();
  size_t r0, r1;
  ThreadPool::split(w.n, ith, nth, row_align_, r0, r1);
  if (r0 >= r1) return;
  switch (w.format) {
    case WeightFormat::f32:
    case WeightFormat::f16: gemm_float(w, in.x, y, m, r0, r1); break;
    case WeightFormat::bq:
      if (bq_int8_) k.gemm_bq_i8.fn(w, in.xq, in.xs, y, m, r0, r1);
      else gemm_float(w, in.x, y, m, r0, r1);
      break;
    case WeightFormat::bp:
      (bp_fast_ ? k.gemm_bp_fast : k.gemm_bp).fn(w, in.bp_tables, bp_table_stride_, in.xs, y, m, r0, r1);
      break;
    case WeightFormat::t2:
    case WeightFormat::t3:
    case WeightFormat::t5: {
      // y = (Wq · xq) * mean|W| / s, from exact int32 sums: where the prefill kernel can, it
      // applies the scale itself (the same float operations as the loop below).
      if (w.format == WeightFormat::t3 && t3_by_madd(m) && k.gemm_t3_madd_scaled.isa != Isa::scalar) {
        k.gemm_t3_madd_scaled.fn(w, in.xq, in.xs, y, m, r0, r1, accumulate);
        break;
      }
      int32_t* acc = acc_.data() + size_t(ith) * size_t(n_batch_) * acc_width_;
      if (w.format == WeightFormat::t2) k.gemm_t2.fn(w, in.xq, acc, m, r0, r1);
      else if (w.format == WeightFormat::t5)
        k.gemm_t5.fn(w, in.tables + table_t5_offset_, table_stride_, acc, m, r0, r1);
      else if (t3_by_madd(m)) k.gemm_t3_madd.fn(w, in.xq, acc, m, r0, r1);
      else k.gemm_t3.fn(w, in.tables, table_stride_, acc, m, r0, r1);
      // (accumulate: y += that, the float product rounded first, as linear_residual's tmp_ was)
      for (size_t i = 0; i < m; ++i) {
        const float s = w.scale / in.xs[i];
        float* __restrict yi = y + i * w.n;
        const int32_t* __restrict ai = acc + i * w.n;
        if (accumulate)
          for (size_t r = r0; r < r1; ++r) yi[r] += float(ai[r]) * s;
        else
          for (size_t r = r0; r < r1; ++r) yi[r] = float(ai[r]) * s;
      }
      break;
    }
  }
}

void Context::gemm_float(const WeightView& w, const float* x, float* y, size_t m, size_t r0, size_t r1) {
  const KernelTable& k = kernels();
  const GemmFloatFn fn = w.format == WeightFormat::f32 ? k.gemm_f32.fn : w.format == WeightFormat::f16 ? k.gemm_f16.fn : k.gemm_bq.fn;
  fn(w, x, y, m, r0, r1);
}

void Context::rescore_head(size_t n_out, int ith, int nth) {
  const WeightView& exact = model_.weights().output_exact;
  const size_t V = size_t(cfg_.vocab_size), K = head_candidates_, dim = size_t(cfg_.dim);
  const size_t n_logits = logits_all_ ? size_t(n_batch_) : 1;
  auto candidates = [&](int worker, size_t i) { return head_cand_.data() + (size_t(worker) * n_logits + i) * K; };
  auto count = [&](int worker, size_t i) -> size_t& { return head_count_[size_t(worker) * n_logits + i]; };
  // Each worker's best K among the head rows it multiplied (linear's split).
  size_t r0, r1;
  ThreadPool::split(V, ith, nth, row_align_, r0, r1);
  for (size_t i = 0; i < n_out; ++i) count(ith, i) = select_top(logits_.data() + i * V, r0, r1, K, candidates(ith, i));
  pool_->barrier();
  // The global best K are among the workers' best K: each worker finds the K-th of them and
  // rescores its own candidates that rank no lower (rows it owns, so no two workers write one).
  HeadCandidate* merged = head_merge_.data() + size_t(ith) * size_t(nth) * K;
  for (size_t i = 0; i < n_out; ++i) {
    if (count(ith, i) == 0) continue;
    size_t n = 0;
    for (int t = 0; t < nth; ++t)
      for (size_t c = 0; c < count(t, i); ++c) merged[n++] = candidates(t, i)[c];
    const bool all = n <= K;
    const HeadCandidate last = all ? HeadCandidate{} : kth_best(merged, n, K);
    float* logits = logits_.data() + i * V;
    // This worker's members, gathered into its own merge buffer (done with): its candidate list
    // stays as it is, since the other workers may still be reading it.
    const HeadCandidate* mine = candidates(ith, i);
    size_t members = 0;
    for (size_t c = 0; c < count(ith, i); ++c)
      if (all || !ranks_before(last, mine[c])) merged[members++] = mine[c];
    mine = merged;
    // The rows are scattered over the exact matrix: fetch the next one while this one is summed
    // (the hardware prefetchers do not guess the jump).
    for (size_t c = 0; c < members; ++c) {
      if (c + 1 < members) prefetch_row(exact, size_t(mine[c + 1].id));
      gemm_float(exact, xb_.data() + i * dim, logits, 1, size_t(mine[c].id), size_t(mine[c].id) + 1);
    }
  }
}

void Context::linear_residual(const WeightView& w, const LinearInput& in, size_t m, int ith, int nth) {
  // Ternary weights add their scaled sums straight into x (one pass less over the rows).
  if (is_ternary(w.format)) return linear(w, in, x_.data(), m, ith, nth, true);
  // Each worker adds exactly the rows linear() gave it, so no barrier is needed between.
  linear(w, in, tmp_.data(), m, ith, nth);
  size_t r0, r1;
  ThreadPool::split(w.n, ith, nth, row_align_, r0, r1);
  for (size_t i = 0; i < m; ++i)
    for (size_t r = r0; r < r1; ++r) x_[i * w.n + r] += tmp_[i * w.n + r];
}

// One forward pass over batch_ (m tokens at positions batch_pos_...), run by every worker.
// Phases are separated by barriers; within a phase each worker owns its tokens or rows.
void Context::forward(int ith, int nth) {
  const KernelTable& k = kernels();
  const Weights& W = model_.weights();
  ThreadPool& pool = *pool_;
  const size_t m = batch_.size(), dim = size_t(cfg_.dim), qd = size_t(cfg_.q_dim()),
               kvd = size_t(cfg_.kv_dim()), hid = size_t(cfg_.hidden_dim),
               hd = size_t(cfg_.head_dim), N = size_t(n_ctx_);
  const size_t pos0 = size_t(batch_pos_);
  const LinearInput xb_in{xb_.data(), xq_.data(), xs_.data(), tables_, bp_tables_};
  const LinearInput att_in{att_.data(), xq_.data(), xs_.data(), tables_, bp_tables_};
  const LinearInput hb_in{hb_.data(), xq_.data(), xs_.data(), tables_, bp_tables_};

  // Token embeddings → x
  for (size_t i = size_t(ith); i < m; i += size_t(nth))
    k.dequant_row.fn(W.token_embd, size_t(batch_[i]), x_.data() + i * dim);
  pool.barrier();

  for (size_t l = 0; l < W.layers.size(); ++l) {
    const LayerWeights& L = W.layers[l];
    // This layer's cache, (kv_heads, n_ctx, head_dim): each head's positions are one contiguous
    // stream, which attention reads front to back (interleaved heads, 256-byte slices 1280
    // bytes apart, left the prefetchers behind at depth).
    const size_t kv_heads = size_t(cfg_.n_kv_heads), row_bytes = kv_row_bytes(kv_type_, hd),
                 head_bytes = N * row_bytes;
    uint8_t* kc = k_cache_.data() + l * kv_heads * head_bytes;
    uint8_t* vc = v_cache_.data() + l * kv_heads * head_bytes;

    // ---- attention ----
    // xb = rmsnorm(x) (and its int8 form / tables for ternary weights)
    prepare_input(x_.data(), L.attn_norm, dim, xb_.data(), m, {&L.wq, &L.wk, &L.wv}, ith, nth);
    // q = Wq xb; k, v = Wk xb, Wv xb
    linear(L.wq, xb_in, q_.data(), m, ith, nth);
    linear(L.wk, xb_in, k_new_.data(), m, ith, nth);
    linear(L.wv, xb_in, v_new_.data(), m, ith, nth);
    pool.barrier();
    // RoPE on q and k, then k and v into the cache rows of these positions
    for (size_t i = size_t(ith); i < m; i += size_t(nth)) {
      const float* cs = rope_cos_.data() + (pos0 + i) * hd / 2;
      const float* sn = rope_sin_.data() + (pos0 + i) * hd / 2;
      float* ki = k_new_.data() + i * kvd;
      const float* vi = v_new_.data() + i * kvd;
      k.rope.fn(q_.data() + i * qd, size_t(cfg_.n_heads), hd, cs, sn, cfg_.rope_style);
      k.rope.fn(ki, size_t(cfg_.n_kv_heads), hd, cs, sn, cfg_.rope_style);
      for (size_t h = 0; h < kv_heads; h++) {
        kv_store_row(kv_type_, ki + h * hd, hd, kc + h * head_bytes + (pos0 + i) * row_bytes);
        kv_store_row(kv_type_, vi + h * hd, hd, vc + h * head_bytes + (pos0 + i) * row_bytes);
      }
    }
    pool.barrier();
    // Causal GQA attention: a work item is the query heads of one KV head for one token, in
    // one call that reads each cached key and value row once for all of them. Items run KV head
    // by KV head, so a worker's consecutive items share that head's cache rows. (Splitting a
    // group's heads over workers, for more items at decode, made each worker stream the whole
    // head's cache: decode at depth 4096 then did not scale from 1 to 2 threads.)
    {
      const size_t group = size_t(cfg_.n_heads) / kv_heads;
      const float scale = 1.0f / std::sqrt(float(hd));
      float* scores = scores_.data() + size_t(ith) * group * N;
      for (size_t item = size_t(ith); item < kv_heads * m; item += size_t(nth)) {
        const size_t kvh = item / m, i = item % m, h = kvh * group;
        k.attention_gqa.fn(q_.data() + i * qd + h * hd, group, kc + kvh * head_bytes, vc + kvh * head_bytes, kv_type_,
                           pos0 + i + 1, hd, kv_row_units(kv_type_, hd), scale, scores, att_.data() + i * qd + h * hd);
      }
    }
    pool.barrier();
    // att = attn_sub_norm(att) (BitNet), then int8 / tables
    prepare_input(att_.data(), L.attn_sub_norm, qd, att_.data(), m, {&L.wo}, ith, nth);
    // x += Wo att
    linear_residual(L.wo, att_in, m, ith, nth);
    pool.barrier();

    // ---- feed-forward ----
    prepare_input(x_.data(), L.ffn_norm, dim, xb_.data(), m, {&L.w_gate, &L.w_up}, ith, nth);
    // hb = act(W_gate xb) * (W_up xb), each worker on its own rows
    linear(L.w_gate, xb_in, hb_.data(), m, ith, nth);
    linear(L.w_up, xb_in, hb2_.data(), m, ith, nth);
    {
      size_t r0, r1;
      ThreadPool::split(hid, ith, nth, row_align_, r0, r1);
      const GluFn glu = cfg_.activation == Activation::silu ? k.silu_mul.fn : k.relu2_mul.fn;
      if (r0 < r1)
        for (size_t i = 0; i < m; ++i)
          glu(hb_.data() + i * hid + r0, hb2_.data() + i * hid + r0, hb_.data() + i * hid + r0, r1 - r0);
    }
    pool.barrier();
    // hb = ffn_sub_norm(hb) (BitNet), then int8 / tables
    prepare_input(hb_.data(), L.ffn_sub_norm, hid, hb_.data(), m, {&L.w_down}, ith, nth);
    // x += W_down hb
    linear_residual(L.w_down, hb_in, m, ith, nth);
    pool.barrier();
  }

  // ---- head: logits of the last token (or of all, with logits_all) ----
  const size_t first = logits_all_ ? 0 : m - 1, n_out = m - first;
  prepare_input(x_.data() + first * dim, W.output_norm, dim, xb_.data(), n_out, {&W.output}, ith, nth);
  linear(W.output, xb_in, logits_.data(), n_out, ith, nth);
  if (head_candidates_) rescore_head(n_out, ith, nth);
}

}  // namespace lutra
