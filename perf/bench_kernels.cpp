// Kernel benchmarks at the BitNet b1.58 2B4T shapes (design.md §3, §7): every GEMM variant this
// CPU supports, with oneDNN's f32 and s8 matmuls as the outside reference. Single-threaded.
//
// Each benchmark runs on one of two weight sets:
//   hot:  one copy of the weights (cache-resident when small);
//   cold: enough distinct copies to pass 256 MiB (the L3 is 32 MiB), the next copy every call,
//         so every call streams its weights from memory. The LM head is one set either way:
//         one copy is already far beyond the L3, so it has only a cold benchmark.
//
// Names: gemm/<kernel>/<N>x<K>/m<m>/<hot|cold>, where <kernel> is the inventory name of the
// variant (a bq variant adds @<format>, e.g. bq-f32-gemm-scalar@b4g32), onednn-f32-matmul or
// onednn-s8s8s32-matmul; the bit-serial bp kernels (@p4g32, @p2g32: the b4g32 / b2g32 weights as
// bit planes) appear as the GEMM alone on prebuilt tables and with the table build per call;
// the table-lookup t3 (and t5) kernels appear as the GEMM alone on prebuilt tables
// (t3-qs8-gemm-*), the table build alone (t3-lut-build-*, hot only) and both per call
// (t3-lut-build-*+t3-qs8-gemm-*); t3-qs8-gemm-madd* is t3 by multiply-add on the int8
// activations (the prefill path, no tables). Counters: weight_bw = bytes of weights read per call as a rate, and at
// m > 1 ops = 2·m·N·K per call as a rate. perf/run_kernels.sh turns the JSON into tables.
//
// Also attention/<kernel>/pos<n>: one token's GQA group of heads (register_attention).
//
// Skipped on purpose: the scalar ternary variant except at 2560x2560 m1, and scalar float
// variants where one call is more than 2^29 multiply-adds (about a second or more each).
#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#ifdef LUTRA_BENCH_OPENMP
#include <omp.h>
#endif

#include "convert/pack.h"
#include "runtime/half.h"
#include "runtime/kernels.h"

namespace {

using namespace lutra;

constexpr size_t kMiB = size_t(1) << 20;
constexpr size_t kColdBytes = 256 * kMiB;           // a cold set passes this
constexpr size_t kMaxSetBytes = 2048 * kMiB;        // and stays under this
constexpr size_t kScalarMaxMacs = size_t(1) << 29;  // scalar float variants: < ~1 s per call

struct Shape {
  size_t n, k;  // output rows, input columns
  bool head;    // the LM head: decode only, cold only
};
constexpr Shape kShapes[] = {
    {2560, 2560, false},   // q_proj, o_proj
    {640, 2560, false},    // k_proj, v_proj (5 KV heads x 128)
    {6912, 2560, false},   // gate_proj, up_proj
    {2560, 6912, false},   // down_proj
    {128256, 2560, true},  // lm_head (tied to the embedding)
};
constexpr size_t kTokens[] = {1, 128};  // decode GEMV, prefill GEMM

size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

std::string dims(const Shape& s) { return std::to_string(s.n) + "x" + std::to_string(s.k); }

size_t copies_for(size_t bytes, bool cold) {
  if (!cold || bytes == 0) return 1;
  return std::clamp(kColdBytes / bytes + 1, size_t(1), std::max(kMaxSetBytes / bytes, size_t(1)));
}

// ---- memory ----------------------------------------------------------------------------------

// Where every weight set lives: one mapping, grown when needed and otherwise reused (no page
// faults after first use), with transparent huge pages asked for so that TLB misses do not blur
// the streaming rate.
class Arena {
 public:
  ~Arena() { release(); }
  uint8_t* get(size_t bytes) {
    if (bytes > cap_) {
      release();
      size_t cap = round_up(bytes, kHuge), len = cap + kHuge;
      void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) return nullptr;
      map_ = p;
      len_ = len;
      cap_ = cap;
      base_ = reinterpret_cast<uint8_t*>(round_up(reinterpret_cast<uintptr_t>(p), kHuge));
      madvise(base_, cap_, MADV_HUGEPAGE);
    }
    return base_;
  }

 private:
  static constexpr size_t kHuge = 2 * kMiB;
  void release() {
    if (map_) munmap(map_, len_);
    map_ = nullptr;
    base_ = nullptr;
    len_ = cap_ = 0;
  }
  void* map_ = nullptr;
  uint8_t* base_ = nullptr;
  size_t len_ = 0, cap_ = 0;
};

// A built weight set and whatever runs on it.
struct Prepared {
  virtual ~Prepared() = default;
  size_t bytes = 0;   // of one copy: what one call reads
  size_t copies = 1;  // in the arena, `stride` bytes apart
  std::string label;
};

// The set of the benchmark that ran last: the repetitions of one benchmark reuse it, any other
// benchmark replaces it, so one set at a time is in memory (random interleaving rebuilds often,
// at memcpy speed).
Arena g_arena;
std::string g_key;
std::unique_ptr<Prepared> g_set;

template <class T, class Build>
T* prepared(const std::string& key, Build build) {
  if (g_key != key || !g_set) {
    g_set.reset();
    g_key.clear();
    g_set = build();
    if (!g_set) return nullptr;
    g_key = key;
  }
  return static_cast<T*>(g_set.get());
}

// Fills [0, bytes) of every copy after the first from the first.
void replicate(uint8_t* base, size_t bytes, size_t stride, size_t copies) {
  for (size_t c = 1; c < copies; c++) std::memcpy(base + c * stride, base, bytes);
}

std::string set_label(size_t bytes, size_t copies) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "copies=%zu set=%.1fMiB", copies, double(bytes * copies) / kMiB);
  return buf;
}

// ---- random data -----------------------------------------------------------------------------

// Uniform in [-1, 1]: mean|W| = 0.5, so a quarter of the ternary weights (|w| < 0.25) round to 0
// and the rest to ±1. How fast a kernel runs does not depend on the values.
void random_floats(std::mt19937& rng, float* out, size_t count) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (size_t i = 0; i < count; i++) out[i] = dist(rng);
}

std::vector<float> random_activations_f32(size_t count) {
  std::mt19937 rng(7);
  std::vector<float> x(count);
  random_floats(rng, x.data(), count);
  return x;
}

std::vector<int8_t> random_activations_s8(size_t count) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> dist(-127, 127);
  std::vector<int8_t> x(count);
  for (auto& v : x) v = int8_t(dist(rng));
  return x;
}

// Rows first_row .. first_row + n - 1 of one matrix section (`row_bytes` per row), copied from
// the pool of distinct rows.
void fill_rows(uint8_t* dst, size_t n, size_t row_bytes, const std::vector<uint8_t>& pool,
               size_t first_row = 0) {
  std::memcpy(dst, pool.data() + first_row * row_bytes, n * row_bytes);
}

// ---- lutra kernels ---------------------------------------------------------------------------

struct LutraSet : Prepared {
  std::vector<WeightView> views;  // one per copy
};

// An n x k matrix in `spec`'s format, packed by the converter's own row packers from random
// floats, `copies` times.
std::unique_ptr<LutraSet> build_lutra(const PackSpec& spec, size_t n, size_t k, size_t copies) {
  constexpr float kScale = 0.5f;  // mean|W| of U(-1, 1)
  const size_t bytes = weight_bytes(spec.format, n, k, spec.bits, spec.group, spec.asymmetric);
  const size_t stride = round_up(bytes, 4096);
  uint8_t* base = g_arena.get(stride * copies);
  if (bytes == 0 || !base) return nullptr;

  // Row sections: the matrix rows, then for bq the scales and the zeros.
  size_t row_bytes = 0, side_bytes = 0;
  switch (spec.format) {
    case WeightFormat::f32:
      row_bytes = 4 * k;
      break;
    case WeightFormat::f16:
      row_bytes = 2 * k;
      break;
    case WeightFormat::t2:
    case WeightFormat::t3:  // packed as t2, then converted
    case WeightFormat::t5:
      row_bytes = t2_row_bytes(k);
      break;
    case WeightFormat::bq:
    case WeightFormat::bp:  // packed as bq, then converted
      row_bytes = bq_code_bytes_per_row(k, spec.bits);
      side_bytes = 2 * (k / size_t(spec.group));
      break;
  }
  // Every row distinct: a matrix repeating a few dozen rows measured the 4-bit head kernel
  // "from DRAM" at 31 GB/s, where the same kernel streams 20 GB/s of distinct rows (as a real
  // model's are, end to end); perf/RESULTS.md, 2026-12-07.
  std::vector<uint8_t> pool(n * row_bytes), scales(n * side_bytes), zeros(n * side_bytes);
  std::vector<float> row(k);
  std::mt19937 rng(1);
  for (size_t p = 0; p < n; p++) {
    random_floats(rng, row.data(), k);
    uint8_t* out = pool.data() + p * row_bytes;
    switch (spec.format) {
      case WeightFormat::f32:
        std::memcpy(out, row.data(), row_bytes);
        break;
      case WeightFormat::f16:
        pack_row_f16(row.data(), k, out);
        break;
      case WeightFormat::t2:
      case WeightFormat::t3:
      case WeightFormat::t5:
        pack_row_t2(row.data(), k, kScale, out);
        break;
      case WeightFormat::bq:
      case WeightFormat::bp:
        pack_row_bq(row.data(), k, spec, out,
                    reinterpret_cast<uint16_t*>(scales.data() + p * side_bytes),
                    reinterpret_cast<uint16_t*>(zeros.data() + p * side_bytes));
        break;
    }
  }
  if (spec.format == WeightFormat::t3 || spec.format == WeightFormat::t5) {
    // the same ternary rows in the table-lookup layout
    std::vector<uint8_t> t2(n * row_bytes);
    fill_rows(t2.data(), n, row_bytes, pool);
    if (spec.format == WeightFormat::t3) pack_t3_from_t2(t2.data(), n, k, base);
    else pack_t5_from_t2(t2.data(), n, k, base);
  } else if (spec.format == WeightFormat::bp) {  // the same bq rows as bit planes
    std::vector<uint8_t> bq(weight_bytes(WeightFormat::bq, n, k, spec.bits, spec.group, spec.asymmetric));
    fill_rows(bq.data(), n, row_bytes, pool);
    fill_rows(bq.data() + n * row_bytes, n, side_bytes, scales);
    if (spec.asymmetric) fill_rows(bq.data() + n * (row_bytes + side_bytes), n, side_bytes, zeros);
    pack_bp_from_bq(WeightView{WeightFormat::bq, n, k, bq.data(), 1.0f, spec.bits, spec.group, spec.asymmetric},
                    base);
  } else {
    fill_rows(base, n, row_bytes, pool);
  }
  if (spec.format == WeightFormat::bq) {
    fill_rows(base + n * row_bytes, n, side_bytes, scales);
    if (spec.asymmetric) fill_rows(base + n * (row_bytes + side_bytes), n, side_bytes, zeros);
  }
  replicate(base, bytes, stride, copies);

  auto set = std::make_unique<LutraSet>();
  set->bytes = bytes;
  set->copies = copies;
  set->label = set_label(bytes, copies);
  for (size_t c = 0; c < copies; c++) {
    WeightView w;
    w.format = spec.format;
    w.n = n;
    w.k = k;
    w.data = base + c * stride;
    w.scale = kScale;
    w.bits = spec.bits;
    w.group = spec.group;
    w.asymmetric = spec.asymmetric;
    set->views.push_back(w);
  }
  return set;
}

void set_counters(benchmark::State& state, size_t weight_bytes, size_t m, const Shape& s) {
  using benchmark::Counter;
  state.counters["weight_bw"] =
      Counter(double(weight_bytes), Counter::kIsIterationInvariantRate, Counter::OneK::kIs1000);
  if (m > 1)
    state.counters["ops"] = Counter(2.0 * double(m * s.n * s.k), Counter::kIsIterationInvariantRate,
                                    Counter::OneK::kIs1000);
}

// X: activation type, Y: output type, Fn: the kernel kind's function pointer type.
template <class X, class Y, class Fn>
void bench_lutra(benchmark::State& state, Fn fn, const PackSpec& spec, const Shape& s, size_t m,
                 size_t copies) {
  const std::string key =
      "lutra/" + spec.to_string() + "/" + dims(s) + "/" + std::to_string(copies);
  auto* set = prepared<LutraSet>(key, [&] { return build_lutra(spec, s.n, s.k, copies); });
  if (!set) {
    state.SkipWithError("could not build the weight set (out of memory?)");
    return;
  }
  std::vector<X> x;
  if constexpr (std::is_same_v<X, float>)
    x = random_activations_f32(m * s.k);
  else
    x = random_activations_s8(m * s.k);
  std::vector<Y> y(m * s.n);
  size_t c = 0;
  for (auto _ : state) {
    fn(set->views[c], x.data(), y.data(), m, 0, s.n);  // the whole row range: one thread
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    if (++c == copies) c = 0;
  }
  set_counters(state, set->bytes, m, s);
  state.SetLabel(set->label);
}

// bq weights x int8 activations (GemmBqI8Fn): the activations quantized per token (xq, xs) once
// before the loop, as the runtime hands them over.
void bench_bq_i8(benchmark::State& state, GemmBqI8Fn fn, const PackSpec& spec, const Shape& s,
                 size_t m, size_t copies) {
  const std::string key =
      "lutra/" + spec.to_string() + "/" + dims(s) + "/" + std::to_string(copies);
  auto* set = prepared<LutraSet>(key, [&] { return build_lutra(spec, s.n, s.k, copies); });
  if (!set) {
    state.SkipWithError("could not build the weight set (out of memory?)");
    return;
  }
  const std::vector<int8_t> xq = random_activations_s8(m * s.k);
  const std::vector<float> xs(m, 127.0f);
  std::vector<float> y(m * s.n);
  size_t c = 0;
  for (auto _ : state) {
    fn(set->views[c], xq.data(), xs.data(), y.data(), m, 0, s.n);  // one thread
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    if (++c == copies) c = 0;
  }
  set_counters(state, set->bytes, m, s);
  state.SetLabel(set->label);
}

// Table-lookup kernels (t3, t5): the table build of the m tokens alone (build, no gemm), the GEMM
// on tables built once before the loop (gemm, no build), or both per call as the runtime runs
// them (build + gemm). The table build reads no weights; its weight_bw is that of the GEMM it
// serves, so the three rows compare.
void bench_lut(benchmark::State& state, LutBuildFn build, GemmLutFn gemm, const PackSpec& spec,
               const Shape& s, size_t m, size_t copies) {
  const std::string key =
      "lutra/" + spec.to_string() + "/" + dims(s) + "/" + std::to_string(copies);
  auto* set = prepared<LutraSet>(key, [&] { return build_lutra(spec, s.n, s.k, copies); });
  if (!set) {
    state.SkipWithError("could not build the weight set (out of memory?)");
    return;
  }
  const std::vector<int8_t> x = random_activations_s8(m * s.k);
  const size_t groups = lut_groups(spec.format, s.k);
  const size_t stride = round_up(lut_table_bytes(spec.format, s.k), 64);
  std::vector<uint8_t> tables(m * stride + 64);
  uint8_t* tab = reinterpret_cast<uint8_t*>(round_up(reinterpret_cast<uintptr_t>(tables.data()), 64));
  auto build_all = [&] {
    for (size_t i = 0; i < m; i++) build(x.data() + i * s.k, s.k, 0, groups, tab + i * stride);
  };
  const KernelInventory& inv = kernel_inventory();
  LutBuildFn reference_build = (spec.format == WeightFormat::t5 ? inv.lut_build_t5 : inv.lut_build_t3).front().fn;
  if (!build) {
    for (size_t i = 0; i < m; i++) reference_build(x.data() + i * s.k, s.k, 0, groups, tab + i * stride);
  }
  std::vector<int32_t> y(m * s.n);
  size_t c = 0;
  for (auto _ : state) {
    if (build) build_all();
    if (gemm) gemm(set->views[c], tab, stride, y.data(), m, 0, s.n);
    benchmark::DoNotOptimize(tab);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    if (++c == copies) c = 0;
  }
  set_counters(state, set->bytes, m, s);
  state.SetLabel(set->label);
}

// Bit-serial table lookup (bp): as bench_lut, the GEMM on tables built once before the loop
// (build null) or the table build of the m tokens and the GEMM per call.
void bench_bp(benchmark::State& state, BpLutBuildFn build, GemmBpFn gemm, bool fast,
              const PackSpec& spec, const Shape& s, size_t m, size_t copies) {
  const std::string key =
      "lutra/" + spec.to_string() + "/" + dims(s) + "/" + std::to_string(copies);
  auto* set = prepared<LutraSet>(key, [&] { return build_lutra(spec, s.n, s.k, copies); });
  if (!set) {
    state.SkipWithError("could not build the weight set (out of memory?)");
    return;
  }
  const std::vector<int8_t> x = random_activations_s8(m * s.k);
  const std::vector<float> xs(m, 127.0f);
  const size_t group = size_t(spec.group), stride = round_up(bp_table_bytes(s.k, spec.group, fast), 64);
  std::vector<uint8_t> tables(m * stride + 64);
  uint8_t* tab = reinterpret_cast<uint8_t*>(round_up(reinterpret_cast<uintptr_t>(tables.data()), 64));
  const BpLutBuildFn first = build ? build
                             : fast ? kernel_inventory().lut_build_bp_fast.front().fn
                                    : kernel_inventory().lut_build_bp.front().fn;
  auto build_all = [&](BpLutBuildFn b) {
    for (size_t i = 0; i < m; i++) b(x.data() + i * s.k, s.k, group, 0, s.k / group, tab + i * stride);
  };
  build_all(first);
  std::vector<float> y(m * s.n);
  size_t c = 0;
  for (auto _ : state) {
    if (build) build_all(build);
    gemm(set->views[c], tab, stride, xs.data(), y.data(), m, 0, s.n);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    if (++c == copies) c = 0;
  }
  set_counters(state, set->bytes, m, s);
  state.SetLabel(set->label);
}

// ---- oneDNN ----------------------------------------------------------------------------------

struct OnednnSet : Prepared {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::matmul matmul;
  dnnl::memory src, dst;
  std::vector<std::unordered_map<int, dnnl::memory>> args;  // one per weight copy
};

// y[m][n] = x[m][k] · W^T, W stored as our n x k rows (oneDNN's {K, N} in tag ba), reordered
// once into the layout the matmul chose (format_tag::any); s8 weights are ternary.
std::unique_ptr<OnednnSet> build_onednn(bool int8, const Shape& s, size_t m, bool cold) {
  using tag = dnnl::memory::format_tag;
  using dt = dnnl::memory::data_type;
  auto set = std::make_unique<OnednnSet>();
  dnnl::stream stream(set->engine);
  const dnnl::memory::dim M = dnnl::memory::dim(m), N = dnnl::memory::dim(s.n),
                          K = dnnl::memory::dim(s.k);
  const dt wt = int8 ? dt::s8 : dt::f32;
  const size_t elem = int8 ? 1 : 4;
  dnnl::memory::desc src_md({M, K}, wt, tag::ab), dst_md({M, N}, int8 ? dt::s32 : dt::f32, tag::ab);
  dnnl::memory::desc any_md({K, N}, wt, tag::any);
#if DNNL_VERSION_MAJOR >= 3
  dnnl::matmul::primitive_desc pd(set->engine, src_md, any_md, dst_md);
#else
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, any_md, dst_md), set->engine);
#endif
  set->matmul = dnnl::matmul(pd);
  const dnnl::memory::desc wei_md = pd.weights_desc();
  const size_t bytes = wei_md.get_size();
  const size_t copies = copies_for(bytes, cold);
  const size_t stride = round_up(bytes, 4096);
  uint8_t* base = g_arena.get(stride * copies);
  if (!base) return nullptr;

  // Distinct random rows (s8: ternary, as BitNet's weights), reordered into the
  // chosen layout. The f32 head is 1.3 GB, so big f32 sets go in chunks of rows, each into its
  // place (chunks start at multiples of 3072 rows, a multiple of every N block oneDNN uses).
  // Not s8: its layout carries the s8s8 compensation after the weights, which a reorder into a
  // part of the tensor does not place right (it crashed the matmul).
  std::vector<uint8_t> pool(s.n * s.k * elem);
  {
    std::mt19937 rng(1);
    std::vector<float> row(s.k);
    for (size_t p = 0; p < s.n; p++) {
      random_floats(rng, row.data(), s.k);
      if (int8) {
        for (size_t j = 0; j < s.k; j++)
          pool[p * s.k + j] =
              uint8_t(int8_t(std::clamp(std::nearbyint(row[j] / 0.5f), -1.0f, 1.0f)));
      } else {
        std::memcpy(pool.data() + p * s.k * 4, row.data(), s.k * 4);
      }
    }
  }
  const size_t row_bytes = s.k * elem;
  const dnnl::memory::desc user_md({K, N}, wt, tag::ba);
  if (wei_md == user_md) {
    fill_rows(base, s.n, row_bytes, pool);
  } else {
    size_t chunk = s.n;
    if (!int8 && s.n * row_bytes > 512 * kMiB)
      chunk = std::max<size_t>(3072, 64 * kMiB / row_bytes / 3072 * 3072);
    std::vector<uint8_t> user(chunk * row_bytes);
    for (size_t n0 = 0; n0 < s.n; n0 += chunk) {
      const size_t nc = std::min(chunk, s.n - n0);
      fill_rows(user.data(), nc, row_bytes, pool, n0);
      const dnnl::memory::dims part{K, dnnl::memory::dim(nc)};
      dnnl::memory from({part, wt, tag::ba}, set->engine, user.data());
      dnnl::memory to(nc == s.n ? wei_md : wei_md.submemory_desc(part, {0, dnnl::memory::dim(n0)}),
                      set->engine, base);
      dnnl::reorder(from, to).execute(stream, from, to);
    }
    stream.wait();
  }
  replicate(base, bytes, stride, copies);

  set->src = dnnl::memory(src_md, set->engine);
  set->dst = dnnl::memory(dst_md, set->engine);
  std::vector<float> xf;
  std::vector<int8_t> xq;
  if (int8) {
    xq = random_activations_s8(m * s.k);
    std::memcpy(set->src.get_data_handle(), xq.data(), xq.size());
  } else {
    xf = random_activations_f32(m * s.k);
    std::memcpy(set->src.get_data_handle(), xf.data(), xf.size() * 4);
  }
  for (size_t c = 0; c < copies; c++) {
    dnnl::memory w(wei_md, set->engine, base + c * stride);
    set->args.push_back(
        {{DNNL_ARG_SRC, set->src}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, set->dst}});
  }

  // What the set computes is known (row r is pool row r): check 64 rows spread over the first
  // and the last copy once, so a wrong layout or reorder fails loudly instead of timing garbage.
  std::vector<size_t> sample;
  for (size_t r = 0; r < s.n; r += std::max<size_t>(1, s.n / 64)) sample.push_back(r);
  std::vector<double> ref(m * sample.size());
  for (size_t i = 0; i < m; i++)
    for (size_t q = 0; q < sample.size(); q++) {
      const size_t p = sample[q];
      double sum = 0;
      for (size_t j = 0; j < s.k; j++) {
        double wv = int8 ? double(int8_t(pool[p * s.k + j]))
                         : double(reinterpret_cast<const float*>(pool.data())[p * s.k + j]);
        sum += wv * (int8 ? double(xq[i * s.k + j]) : double(xf[i * s.k + j]));
      }
      ref[i * sample.size() + q] = sum;
    }
  for (size_t c : {size_t(0), copies - 1}) {
    set->matmul.execute(stream, set->args[c]);
    stream.wait();
    for (size_t i = 0; i < m; i++)
      for (size_t q = 0; q < sample.size(); q++) {
        const size_t r = sample[q];
        const double want = ref[i * sample.size() + q];
        const double got =
            int8 ? double(static_cast<const int32_t*>(set->dst.get_data_handle())[i * s.n + r])
                 : double(static_cast<const float*>(set->dst.get_data_handle())[i * s.n + r]);
        if (std::fabs(got - want) > (int8 ? 0.0 : 1e-3 * (1.0 + std::fabs(want))))
          throw std::runtime_error("oneDNN result check failed at copy " + std::to_string(c) +
                                   ", token " + std::to_string(i) + ", row " + std::to_string(r));
      }
  }

  set->bytes = bytes;
  set->copies = copies;
  set->label = std::string(pd.impl_info_str()) + " " + set_label(bytes, copies);
  return set;
}

void bench_onednn(benchmark::State& state, bool int8, const Shape& s, size_t m, bool cold) {
  const std::string key = std::string("onednn/") + (int8 ? "s8" : "f32") + "/" + dims(s) + "/m" +
                          std::to_string(m) + (cold ? "/cold" : "/hot");
  OnednnSet* set = nullptr;
  try {
    set = prepared<OnednnSet>(key, [&] { return build_onednn(int8, s, m, cold); });
  } catch (const std::exception& e) {  // dnnl::error, or the result check
    g_set.reset();
    g_key.clear();
    state.SkipWithError((std::string("oneDNN: ") + e.what()).c_str());
    return;
  }
  if (!set) {
    state.SkipWithError("could not build the weight set (out of memory?)");
    return;
  }
  dnnl::stream stream(set->engine);
  size_t c = 0;
  for (auto _ : state) {
    set->matmul.execute(stream, set->args[c]);
    stream.wait();
    if (++c == set->copies) c = 0;
  }
  set_counters(state, set->bytes, m, s);
  state.SetLabel(set->label);
}

// ---- registration ----------------------------------------------------------------------------

void add(const std::string& kernel, const Shape& s, size_t m, bool cold,
         std::function<void(benchmark::State&)> fn) {
  const std::string name =
      "gemm/" + kernel + "/" + dims(s) + "/m" + std::to_string(m) + (cold ? "/cold" : "/hot");
  benchmark::RegisterBenchmark(name.c_str(), [fn](benchmark::State& st) { fn(st); })
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
}

void register_all() {
  const KernelInventory& inv = kernel_inventory();
  const PackSpec t2{WeightFormat::t2}, t3{WeightFormat::t3}, t5{WeightFormat::t5},
      f16{WeightFormat::f16}, f32{WeightFormat::f32};
  const PackSpec bq_specs[] = {PackSpec{WeightFormat::bq, 8, 32, false},
                               PackSpec{WeightFormat::bq, 4, 32, false}};
  for (const Shape& s : kShapes) {
    for (size_t m : kTokens) {
      if (s.head && m != 1) continue;  // the head runs on the last token only
      const bool attention_square = s.n == 2560 && s.k == 2560;
      const bool scalar_ok = m * s.n * s.k <= kScalarMaxMacs;
      for (bool cold : {false, true}) {
        if (s.head && !cold) continue;
        auto copies = [&](const PackSpec& p) {
          return s.head
                     ? size_t(1)
                     : copies_for(weight_bytes(p.format, s.n, s.k, p.bits, p.group, p.asymmetric),
                                  cold);
        };
        for (const auto& v : inv.gemm_t2) {
          if (!cpu_supports(v.isa) || (v.isa == Isa::scalar && !(attention_square && m == 1)))
            continue;
          add(v.name, s, m, cold, [fn = v.fn, s, m, c = copies(t2), t2](benchmark::State& st) {
            bench_lutra<int8_t, int32_t>(st, fn, t2, s, m, c);
          });
        }
        // t3 and t5 next to t2: each GEMM alone and with the table build of its own ISA (the
        // scalar build where its ISA has none); each build alone, hot only (it reads no weights).
        auto add_lut = [&](const PackSpec& spec, std::span<const Variant<LutBuildFn>> builds,
                           std::span<const Variant<GemmLutFn>> gemms) {
          for (const auto& g : gemms) {
            if (!cpu_supports(g.isa) || (g.isa == Isa::scalar && !(attention_square && m == 1)))
              continue;
            Variant<LutBuildFn> b = builds.front();
            for (const auto& v : builds)
              if (v.isa == g.isa) b = v;
            add(g.name, s, m, cold, [fn = g.fn, s, m, c = copies(spec), spec](benchmark::State& st) {
              bench_lut(st, nullptr, fn, spec, s, m, c);
            });
            add(std::string(b.name) + "+" + g.name, s, m, cold,
                [bfn = b.fn, fn = g.fn, s, m, c = copies(spec), spec](benchmark::State& st) {
                  bench_lut(st, bfn, fn, spec, s, m, c);
                });
          }
          for (const auto& b : builds) {
            if (cold || !cpu_supports(b.isa) || s.head) continue;
            add(b.name, s, m, cold, [fn = b.fn, s, m, spec](benchmark::State& st) {
              bench_lut(st, fn, nullptr, spec, s, m, 1);
            });
          }
        };
        add_lut(t3, inv.lut_build_t3, inv.gemm_t3);
        // t3 by multiply-add (the prefill path: int8 activations, no tables)
        for (const auto& v : inv.gemm_t3_madd) {
          if (!cpu_supports(v.isa) || v.isa == Isa::scalar) continue;
          add(v.name, s, m, cold, [fn = v.fn, s, m, c = copies(t3), t3](benchmark::State& st) {
            bench_lutra<int8_t, int32_t>(st, fn, t3, s, m, c);
          });
        }
        add_lut(t5, inv.lut_build_t5, inv.gemm_t5);
        for (const auto& v : inv.gemm_f16) {
          if (!cpu_supports(v.isa) || (v.isa == Isa::scalar && !scalar_ok)) continue;
          add(v.name, s, m, cold, [fn = v.fn, s, m, c = copies(f16), f16](benchmark::State& st) {
            bench_lutra<float, float>(st, fn, f16, s, m, c);
          });
        }
        for (const PackSpec& spec : bq_specs) {
          for (const auto& v : inv.gemm_bq) {
            if (!cpu_supports(v.isa) || (v.isa == Isa::scalar && !scalar_ok)) continue;
            add(std::string(v.name) + "@" + spec.to_string(), s, m, cold,
                [fn = v.fn, s, m, c = copies(spec), spec](benchmark::State& st) {
                  bench_lutra<float, float>(st, fn, spec, s, m, c);
                });
          }
          for (const auto& v : inv.gemm_bq_i8) {
            if (!cpu_supports(v.isa) || (v.isa == Isa::scalar && !scalar_ok)) continue;
            add(std::string(v.name) + "@" + spec.to_string(), s, m, cold,
                [fn = v.fn, s, m, c = copies(spec), spec](benchmark::State& st) {
                  bench_bq_i8(st, fn, spec, s, m, c);
                });
          }
        }
        // Bit-serial (bp) next to bq at the same bits, exact and fast, decode only, at the head
        // and one square layer: the GEMM alone and with the table build of the strongest ISA
        // that has one.
        if (m == 1 && (s.head || attention_square)) {
          for (const PackSpec& spec : {PackSpec{WeightFormat::bp, 4, 32, false}, PackSpec{WeightFormat::bp, 2, 32, false}}) {
            for (bool fast : {false, true}) {
              const auto& builds = fast ? inv.lut_build_bp_fast : inv.lut_build_bp;
              Variant<BpLutBuildFn> b = builds.front();
              for (const auto& v : builds)
                if (cpu_supports(v.isa)) b = v;
              for (const auto& g : fast ? inv.gemm_bp_fast : inv.gemm_bp) {
                if (!cpu_supports(g.isa) || (g.isa == Isa::scalar && (!scalar_ok || s.head))) continue;
                add(std::string(g.name) + "@" + spec.to_string(), s, m, cold,
                    [fn = g.fn, fast, s, m, c = copies(spec), spec](benchmark::State& st) {
                      bench_bp(st, nullptr, fn, fast, spec, s, m, c);
                    });
                add(std::string(b.name) + "+" + g.name + "@" + spec.to_string(), s, m, cold,
                    [bfn = b.fn, fn = g.fn, fast, s, m, c = copies(spec), spec](benchmark::State& st) {
                      bench_bp(st, bfn, fn, fast, spec, s, m, c);
                    });
              }
            }
          }
        }
        if (attention_square) {
          for (const auto& v : inv.gemm_f32) {
            if (!cpu_supports(v.isa) || (v.isa == Isa::scalar && !scalar_ok)) continue;
            add(v.name, s, m, cold, [fn = v.fn, s, m, c = copies(f32), f32](benchmark::State& st) {
              bench_lutra<float, float>(st, fn, f32, s, m, c);
            });
          }
        }
        const bool onednn_cold = cold && !s.head;
        add("onednn-f32-matmul", s, m, cold, [s, m, onednn_cold](benchmark::State& st) {
          bench_onednn(st, false, s, m, onednn_cold);
        });
        add("onednn-s8s8s32-matmul", s, m, cold, [s, m, onednn_cold](benchmark::State& st) {
          bench_onednn(st, true, s, m, onednn_cold);
        });
      }
    }
  }
}

// Attention of one token's GQA group at the 2B4T shape (4 query heads sharing a KV head, head
// dim 128, the KV head's positions contiguous as the runtime lays them out) over n_pos cached
// positions, in each KV cache type: the single-head kind called per head, and the group kind
// once. Names: attention/<kernel>@<f32|f16|q8>/pos<n_pos>; ops = 4 heads x 2 x 2 x n_pos x 128
// per call as a rate.
void register_attention() {
  constexpr size_t kGroup = 4, kHeadDim = 128;
  const KernelInventory& inv = kernel_inventory();
  using Call = std::function<void(const float*, const void*, const void*, KvType, size_t, float*, float*)>;
  auto add_one = [](const std::string& name, size_t n_pos, KvType type, Call call) {
    const std::string full = "attention/" + name + "@" + kv_type_name(type) + "/pos" + std::to_string(n_pos);
    benchmark::RegisterBenchmark(full.c_str(), [n_pos, type, call](benchmark::State& st) {
      std::vector<float> q(kGroup * kHeadDim), kf(n_pos * kHeadDim), vf(n_pos * kHeadDim);
      std::vector<float> scores(kGroup * n_pos), out(kGroup * kHeadDim);
      uint32_t seed = 1;
      for (auto* vec : {&q, &kf, &vf})
        for (float& x : *vec) x = float((seed = seed * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
      const size_t row = kv_row_bytes(type, kHeadDim);
      std::vector<uint8_t> k(n_pos * row), v(n_pos * row);
      for (size_t t = 0; t < n_pos; t++) {
        kv_store_row(type, kf.data() + t * kHeadDim, kHeadDim, k.data() + t * row);
        kv_store_row(type, vf.data() + t * kHeadDim, kHeadDim, v.data() + t * row);
      }
      for (auto _ : st) {
        call(q.data(), k.data(), v.data(), type, n_pos, scores.data(), out.data());
        benchmark::DoNotOptimize(out.data());
      }
      st.counters["ops"] = benchmark::Counter(double(kGroup * 4 * n_pos * kHeadDim),
                                              benchmark::Counter::kIsIterationInvariantRate);
    })->Unit(benchmark::kMicrosecond);
  };
  for (size_t n_pos : {size_t(128), size_t(512), size_t(4096)})
    for (KvType type : {KvType::f32, KvType::f16, KvType::q8}) {
      for (const auto& a : inv.attention) {
        if (!cpu_supports(a.isa)) continue;
        add_one(a.name, n_pos, type, [fn = a.fn](const float* q, const void* k, const void* v, KvType t, size_t n,
                                                 float* sc, float* o) {
          for (size_t g = 0; g < kGroup; g++)
            fn(q + g * kHeadDim, k, v, t, n, kHeadDim, kv_row_units(t, kHeadDim), 0.088f, sc + g * n, o + g * kHeadDim);
        });
      }
      for (const auto& a : inv.attention_gqa) {
        if (!cpu_supports(a.isa)) continue;
        add_one(a.name, n_pos, type, [fn = a.fn](const float* q, const void* k, const void* v, KvType t, size_t n,
                                                 float* sc, float* o) {
          fn(q, kGroup, k, v, t, n, kHeadDim, kv_row_units(t, kHeadDim), 0.088f, sc, o);
        });
      }
    }
}

}  // namespace

int main(int argc, char** argv) {
#ifdef LUTRA_BENCH_OPENMP
  omp_set_num_threads(1);  // oneDNN on one thread, as every lutra kernel here
#endif
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::string isas;
  for (Isa isa : kAllIsas)
    if (cpu_supports(isa)) isas += std::string(isas.empty() ? "" : ",") + to_string(isa);
  benchmark::AddCustomContext("lutra_isas", isas);
  const dnnl_version_t* v = dnnl_version();
  benchmark::AddCustomContext(
      "onednn_version",
      std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch));
  register_all();
  register_attention();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
