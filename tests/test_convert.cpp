// The converter: weight-format specs, the packers (round trips through the file and
// dequant_row), llama2.c checkpoints in all three layouts, and synthetic models.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "convert/convert.h"
#include "convert/pack.h"
#include "runtime/half.h"
#include "runtime/kernels.h"
#include "runtime/model.h"
#include "runtime/model_file.h"
#include "tests/test_data.h"

using namespace lutra;
namespace fs = std::filesystem;

namespace {

template <class T>
void append(std::vector<uint8_t>& out, const T* p, size_t count) {
  const uint8_t* b = reinterpret_cast<const uint8_t*>(p);
  out.insert(out.end(), b, b + count * sizeof(T));
}

// Matrices written with write_matrix into one file, read back as rows of floats.
struct Packed {
  std::unique_ptr<ModelFile> file;
  std::vector<float> row(const std::string& name, size_t r) const {
    const TensorInfo* t = file->find(name);
    REQUIRE(t != nullptr);
    WeightView v = weight_view(*file, *t);
    std::vector<float> out(v.k);
    kernels().dequant_row.fn(v, r, out.data());
    return out;
  }
};

struct Matrix {
  std::string name;
  size_t n, k;
  PackSpec spec;
  std::vector<float> w;  // n x k
};

Packed pack_all(const TempDir& tmp, const std::vector<Matrix>& ms) {
  const std::string path = tmp.file("packed.lutra");
  auto w = ModelWriter::create(path);
  REQUIRE_MESSAGE(w.ok(), w.message());
  for (const Matrix& m : ms) {
    Status s = write_matrix(**w, m.name, m.n, m.k, m.spec, [&](size_t r, float* out) {
      std::memcpy(out, m.w.data() + r * m.k, m.k * sizeof(float));
    });
    REQUIRE_MESSAGE(s.ok(), s.message());
  }
  REQUIRE((*w)->finish("{}").ok());
  auto f = ModelFile::open(path);
  REQUIRE_MESSAGE(f.ok(), f.message());
  REQUIRE((*f)->verify().ok());
  return Packed{std::move(f.value())};
}

std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

PackSpec spec(const std::string& s) {
  auto p = PackSpec::parse(s);
  REQUIRE_MESSAGE(p.ok(), p.message());
  return *p;
}

}  // namespace

// ---- PackSpec -------------------------------------------------------------------------------

TEST_CASE("pack spec parses the documented formats and round-trips through to_string") {
  struct Case {
    const char* text;
    WeightFormat format;
    int bits, group;
    bool asym;
  };
  const Case cases[] = {
      {"f32", WeightFormat::f32, 0, 0, false},   {"f16", WeightFormat::f16, 0, 0, false},
      {"t2", WeightFormat::t2, 0, 0, false},     {"b4g32", WeightFormat::bq, 4, 32, false},
      {"b2g64a", WeightFormat::bq, 2, 64, true}, {"b8g32", WeightFormat::bq, 8, 32, false},
      {"b1g32a", WeightFormat::bq, 1, 32, true}, {"b8g128a", WeightFormat::bq, 8, 128, true},
  };
  for (const Case& c : cases) {
    const std::string text = c.text;
    CAPTURE(text);
    auto p = PackSpec::parse(c.text);
    REQUIRE_MESSAGE(p.ok(), p.message());
    CHECK(p->format == c.format);
    CHECK(p->bits == c.bits);
    CHECK(p->group == c.group);
    CHECK(p->asymmetric == c.asym);
    CHECK(p->to_string() == c.text);
  }
}

TEST_CASE("pack spec takes the recipe aliases tl, i2, w<bits>g<group>[a], q8 and q4 as lutra's formats") {
  const std::pair<const char*, const char*> aliases[] = {
      {"tl", "t3"}, {"i2", "t2"}, {"w2g64", "b2g64"}, {"w4g128", "b4g128"}, {"w4g32a", "b4g32a"},
      {"q8", "b8g32"}, {"q4", "b4g32"}};
  for (auto [alias, format] : aliases) {
    CAPTURE(alias);
    auto p = PackSpec::parse(alias);
    REQUIRE_MESSAGE(p.ok(), p.message());
    CHECK(p->to_string() == format);
  }
}

TEST_CASE("pack spec rejects symmetric 1-bit, more than 8 bits, empty groups and unknown names") {
  for (std::string bad : {"b1g32", "b9g32", "b4g0", "q3", "", "b0g32a", "w", "wx", "w1g32", "b4g-32", "b4g32b", "b4g32aa",
                          "b04g32", "B4G32", "bq", "b4", "g32", "f64"}) {
    CAPTURE(bad);
    auto p = PackSpec::parse(bad);
    CHECK_FALSE(p.ok());
    if (!p.ok()) CHECK(p.message().find("unknown weight format") != std::string::npos);
  }
}

// ---- packers --------------------------------------------------------------------------------

TEST_CASE("f32 and f16 matrices round trip: f32 exactly, f16 to half precision") {
  TempDir tmp;
  std::vector<Matrix> ms;
  for (size_t k : {1u, 7u, 64u, 130u}) {
    std::vector<float> w = random_floats(3 * k, uint32_t(k), -4.0f, 4.0f);
    w[0] = 65504.0f;  // largest half
    if (w.size() > 1) w[1] = 1e-6f;  // half subnormal
    if (w.size() > 2) w[2] = -0.0f;
    ms.push_back({"f32." + std::to_string(k), 3, k, spec("f32"), w});
    ms.push_back({"f16." + std::to_string(k), 3, k, spec("f16"), w});
  }
  Packed p = pack_all(tmp, ms);
  for (const Matrix& m : ms) {
    CAPTURE(m.name);
    const TensorInfo* t = p.file->find(m.name);
    REQUIRE(t);
    CHECK(t->shape == std::vector<uint64_t>{m.n, m.k});
    for (size_t r = 0; r < m.n; ++r) {
      std::vector<float> got = p.row(m.name, r);
      for (size_t j = 0; j < m.k; ++j) {
        const float want = m.w[r * m.k + j];
        if (m.spec.format == WeightFormat::f32) {
          CHECK(std::memcmp(&got[j], &want, 4) == 0);
        } else {
          // Relative 2^-11 for normal halves, absolute 2^-25 (half the smallest subnormal) below.
          CHECK(std::fabs(got[j] - want) <= std::max(std::fabs(want) * 0x1p-11f, 0x1p-25f));
        }
      }
    }
  }
}

TEST_CASE("t2 packing reproduces absmean ternarization exactly for ragged k") {
  TempDir tmp;
  std::vector<Matrix> ms;
  for (size_t k : {1u, 3u, 4u, 7u, 33u, 130u}) {
    const size_t n = 5;
    ms.push_back({"t2." + std::to_string(k), n, k, spec("t2"), random_floats(n * k, 100 + uint32_t(k))});
  }
  // Heavy-tailed values, so clamping happens often.
  {
    std::vector<float> w = random_floats(4 * 40, 7);
    for (float& x : w) x = x * x * x * 5.0f;
    ms.push_back({"t2.cubed", 4, 40, spec("t2"), w});
  }
  Packed p = pack_all(tmp, ms);
  for (const Matrix& m : ms) {
    CAPTURE(m.name);
    // The documented rule: scale = mean|W| over the whole tensor, Wq = clamp(round(W/scale), -1, 1)
    // with round half to even.
    double sum = 0;
    for (float x : m.w) sum += std::fabs(double(x));
    const float scale = float(sum / double(m.w.size()));
    const TensorInfo* t = p.file->find(m.name);
    REQUIRE(t);
    CHECK(t->format == "t2");
    CHECK(t->scale == scale);
    CHECK(t->bytes == m.n * ((m.k + 3) / 4));
    int mismatches = 0;
    for (size_t r = 0; r < m.n; ++r) {
      std::vector<float> got = p.row(m.name, r);
      for (size_t j = 0; j < m.k; ++j) {
        float q = std::clamp(std::nearbyint(m.w[r * m.k + j] / scale), -1.0f, 1.0f);
        if (got[j] != t->scale * q) ++mismatches;
      }
      // Codes past k in the last byte of the row are zero.
      const uint8_t* row = p.file->data(*t).data() + r * ((m.k + 3) / 4);
      if (m.k % 4) CHECK((row[m.k / 4] >> (2 * (m.k % 4))) == 0);
    }
    CHECK(mismatches == 0);
  }
}

TEST_CASE("t2 row packing rounds half to even and clamps to -1..1") {
  const float x[] = {0.5f, 1.5f, -0.5f, -1.5f, 2.5f, 0.49f, -0.51f, 0.0f, 7.0f};
  const int want[] = {0, 1, 0, -1, 1, 0, -1, 0, 1};
  uint8_t out[3] = {0xff, 0xff, 0xff};
  pack_row_t2(x, 9, 1.0f, out);
  for (size_t j = 0; j < 9; ++j) {
    CAPTURE(j);
    int code = (out[j / 4] >> (2 * (j % 4))) & 3;
    CHECK(code - 1 == want[j]);
  }
  CHECK((out[2] >> 2) == 0);
}

TEST_CASE("bq packing errs by at most half a step (8-bit and asymmetric), no more than the absmax scale (symmetric below 8 bits), and is exact for values on the grid") {
  TempDir tmp;
  std::vector<Matrix> ms;
  for (int group : {32, 64}) {
    for (int bits = 1; bits <= 8; ++bits) {
      for (bool asym : {false, true}) {
        if (bits == 1 && !asym) continue;
        const std::string s = "b" + std::to_string(bits) + "g" + std::to_string(group) + (asym ? "a" : "");
        const size_t n = 3, k = 128;
        // Random: rows of different magnitudes; one group offset to all-positive.
        std::vector<float> w = random_floats(n * k, uint32_t(bits * 100 + group + asym));
        for (size_t j = 0; j < k; ++j) w[k + j] *= 20.0f, w[2 * k + j] *= 0.05f;
        for (size_t j = 0; j < size_t(group); ++j) w[j] = w[j] * 0.5f + 3.0f;
        ms.push_back({"rand." + s, n, k, spec(s), w});

        // On the grid: w = step * (c - z) with integer codes covering the extremes, step a power
        // of two so every quantity is exact in f16 and f32.
        const int qmax = (1 << bits) - 1;
        std::vector<float> g(n * k);
        std::mt19937 rng(uint32_t(bits + group));
        for (size_t r = 0; r < n; ++r) {
          const float step = std::ldexp(1.0f, -int(r) - 2);
          for (size_t gi = 0; gi < k / size_t(group); ++gi) {
            // Symmetric grids are centred on 2^(b-1) and reach +-(2^(b-1) - 1); asymmetric ones
            // span qmax steps from an arbitrary integer zero.
            const int zero = asym ? int(rng() % unsigned(qmax + 1)) : (1 << (bits - 1));
            const int lo = asym ? 0 : 1;
            for (size_t j = 0; j < size_t(group); ++j) {
              int c = lo + int(rng() % unsigned(qmax - lo + 1));
              if (j == 0) c = lo;
              if (j == 1) c = qmax;
              g[r * k + gi * size_t(group) + j] = step * float(c - zero);
            }
          }
        }
        ms.push_back({"grid." + s, n, k, spec(s), g});
      }
    }
  }
  Packed p = pack_all(tmp, ms);
  for (const Matrix& m : ms) {
    CAPTURE(m.name);
    const TensorInfo* t = p.file->find(m.name);
    REQUIRE(t);
    CHECK(t->format == "bq");
    CHECK(t->bits == m.spec.bits);
    CHECK(t->group == m.spec.group);
    CHECK(t->asymmetric == m.spec.asymmetric);
    const bool grid = m.name.rfind("grid.", 0) == 0;
    const size_t g = size_t(m.spec.group);
    const int qmax = (1 << m.spec.bits) - 1;
    double worst = 0;  // error / bound
    for (size_t r = 0; r < m.n; ++r) {
      std::vector<float> got = p.row(m.name, r);
      for (size_t gi = 0; gi < m.k / g; ++gi) {
        const float* v = m.w.data() + r * m.k + gi * g;
        float lo = v[0], hi = v[0], amax = 0;
        for (size_t j = 0; j < g; ++j)
          lo = std::min(lo, v[j]), hi = std::max(hi, v[j]), amax = std::max(amax, std::fabs(v[j]));
        // The ideal step: asymmetric (max - min) / (2^b - 1), symmetric max|w| / (2^(b-1) - 1).
        const double step = m.spec.asymmetric ? double(hi - lo) / qmax
                                              : double(amax) / ((1 << (m.spec.bits - 1)) - 1);
        // Half a step, plus the step's f16 rounding (relative 2^-11) over up to qmax steps.
        const double bound = step * (0.5 + qmax * 0x1p-11) + 1e-6 * amax;
        // Symmetric below 8 bits searches the scale of least squared error: never more than the
        // absmax scale's (codes rounded to nearest, clamped to [-2^(b-1), 2^(b-1) - 1]).
        const bool searched = !m.spec.asymmetric && m.spec.bits < 8;
        if (searched && !grid) {
          const double top = (1 << (m.spec.bits - 1)) - 1;
          double err = 0, err_absmax = 0;
          for (size_t j = 0; j < g; ++j) {
            const double q = std::clamp(std::nearbyint(v[j] / step), -top - 1, top);
            err_absmax += (v[j] - step * q) * (v[j] - step * q);
            err += (double(got[gi * g + j]) - v[j]) * (double(got[gi * g + j]) - v[j]);
          }
          // Slack for the f16 rounding of the stored scale (relative 2^-11 per code step).
          CHECK(std::sqrt(err) <= std::sqrt(err_absmax) + step * top * 0x1p-11 * std::sqrt(double(g)) + 1e-6 * amax);
          continue;
        }
        for (size_t j = 0; j < g; ++j) {
          const float want = v[j], have = got[gi * g + j];
          if (grid) {
            if (have != want) {
              CAPTURE(r);
              CAPTURE(gi * g + j);
              CHECK(have == want);
            }
          } else {
            worst = std::max(worst, std::fabs(double(have) - want) / bound);
          }
        }
      }
    }
    if (!grid) CHECK(worst <= 1.0);
  }
}

TEST_CASE("bq packing of a constant group reproduces the constant") {
  // A group whose weights are all equal: symmetric packing maps it to the top code; asymmetric
  // packing has max - min = 0, and must still give the value back.
  TempDir tmp;
  std::vector<float> w(2 * 32, 0.3f);
  std::fill(w.begin() + 32, w.end(), 0.0f);  // and a group of zeros
  Packed p = pack_all(tmp, {{"sym", 2, 32, spec("b4g32"), w}, {"asym", 2, 32, spec("b4g32a"), w}});
  for (std::string name : {"sym", "asym"}) {
    CAPTURE(name);
    std::vector<float> r0 = p.row(name, 0), r1 = p.row(name, 1);
    CHECK(std::all_of(r1.begin(), r1.end(), [](float x) { return x == 0.0f; }));
    const float err = std::fabs(r0[0] - 0.3f);
    CHECK_MESSAGE(err < 0.3f * 0x1p-10f, "constant group 0.3 dequantizes to " << r0[0]);
  }
}

TEST_CASE("write_matrix refuses a group size that does not divide k") {
  TempDir tmp;
  auto w = ModelWriter::create(tmp.file("m.lutra"));
  REQUIRE(w.ok());
  std::vector<float> row(40, 1.0f);
  Status s = write_matrix(**w, "m", 2, 40, spec("b4g32"), [&](size_t, float* out) {
    std::memcpy(out, row.data(), 40 * sizeof(float));
  });
  CHECK_FALSE(s.ok());
  CHECK(s.message().find("multiple of the group") != std::string::npos);
}

// ---- llama2.c -------------------------------------------------------------------------------

namespace {

// The legacy stories260K checkpoint, split into its tensors (legacy order; see llama2c.cpp).
struct Llama2c {
  int32_t hdr[7];  // dim, hidden, layers, heads, kv_heads, vocab, seq
  size_t dim, hid, L, kvd, V;
  std::vector<float> emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final;
};

bool read_legacy(const std::vector<uint8_t>& b, Llama2c& m) {
  if (b.size() < 28) return false;
  std::memcpy(m.hdr, b.data(), 28);
  m.dim = size_t(m.hdr[0]);
  m.hid = size_t(m.hdr[1]);
  m.L = size_t(m.hdr[2]);
  m.kvd = m.dim / size_t(m.hdr[3]) * size_t(m.hdr[4]);
  m.V = size_t(std::abs(m.hdr[5]));
  size_t at = 28;
  auto take = [&](std::vector<float>& v, size_t count) {
    v.resize(count);
    std::memcpy(v.data(), b.data() + at, count * 4);
    at += count * 4;
  };
  take(m.emb, m.V * m.dim);
  take(m.rms_att, m.L * m.dim);
  take(m.wq, m.L * m.dim * m.dim);
  take(m.wk, m.L * m.kvd * m.dim);
  take(m.wv, m.L * m.kvd * m.dim);
  take(m.wo, m.L * m.dim * m.dim);
  take(m.rms_ffn, m.L * m.dim);
  take(m.w1, m.L * m.hid * m.dim);
  take(m.w2, m.L * m.dim * m.hid);
  take(m.w3, m.L * m.hid * m.dim);
  take(m.rms_final, m.dim);
  return at <= b.size();
}

// The versioned export's 256-byte header.
std::vector<uint8_t> export_header(const Llama2c& m, int32_t version, int32_t group) {
  std::vector<uint8_t> h(256, 0);
  const uint32_t magic = 0x616b3432;
  std::memcpy(h.data(), &magic, 4);
  std::memcpy(h.data() + 4, &version, 4);
  int32_t ints[7];
  std::memcpy(ints, m.hdr, sizeof ints);
  ints[5] = int32_t(m.V);
  std::memcpy(h.data() + 8, ints, 28);
  h[36] = 1;  // shared classifier
  if (version == 2) std::memcpy(h.data() + 37, &group, 4);
  return h;
}

std::vector<uint8_t> export_v1(const Llama2c& m) {
  std::vector<uint8_t> out = export_header(m, 1, 0);
  for (const std::vector<float>* v :
       {&m.rms_att, &m.rms_ffn, &m.rms_final, &m.emb, &m.wq, &m.wk, &m.wv, &m.wo, &m.w1, &m.w2, &m.w3})
    append(out, v->data(), v->size());
  return out;
}

// llama2.c's quantize_q80: per group, scale = max|w| / 127, q = round(w / scale).
void q80(const float* w, size_t count, size_t group, std::vector<uint8_t>& out) {
  std::vector<int8_t> q(count);
  std::vector<float> s(count / group);
  for (size_t g = 0; g < count / group; ++g) {
    float amax = 0;
    for (size_t j = 0; j < group; ++j) amax = std::max(amax, std::fabs(w[g * group + j]));
    s[g] = amax / 127.0f;
    for (size_t j = 0; j < group; ++j)
      q[g * group + j] = s[g] > 0 ? int8_t(std::nearbyint(w[g * group + j] / s[g])) : 0;
  }
  append(out, q.data(), q.size());
  append(out, s.data(), s.size());
}

std::vector<uint8_t> export_v2(const Llama2c& m, size_t group) {
  std::vector<uint8_t> out = export_header(m, 2, int32_t(group));
  for (const std::vector<float>* v : {&m.rms_att, &m.rms_ffn, &m.rms_final}) append(out, v->data(), v->size());
  q80(m.emb.data(), m.emb.size(), group, out);
  // Each layer's matrix on its own: int8 values, then its scales.
  auto layers = [&](const std::vector<float>& v, size_t per_layer) {
    for (size_t l = 0; l < m.L; ++l) q80(v.data() + l * per_layer, per_layer, group, out);
  };
  layers(m.wq, m.dim * m.dim);
  layers(m.wk, m.kvd * m.dim);
  layers(m.wv, m.kvd * m.dim);
  layers(m.wo, m.dim * m.dim);
  layers(m.w1, m.hid * m.dim);
  layers(m.w2, m.dim * m.hid);
  layers(m.w3, m.hid * m.dim);
  return out;
}

struct Stories {
  std::string bin, tok;
};

std::optional<Stories> stories_files() {
  auto bin = test_data_file("stories260K.bin");
  if (!bin) return std::nullopt;
  auto tok = test_data_file("tok512.bin");
  if (!tok) return std::nullopt;
  return Stories{bin->string(), tok->string()};
}

ConvertOptions with_tokenizer(const Stories& s) {
  ConvertOptions o;
  o.tokenizer = s.tok;
  return o;
}

}  // namespace

TEST_CASE("llama2.c stories260K converts and loads with its documented shapes") {
  auto files = stories_files();
  if (!files) return;
  TempDir tmp;
  const std::string out = tmp.file("stories.lutra");
  std::vector<std::string> progress;
  ConvertOptions opts = with_tokenizer(*files);
  opts.progress = [&](const std::string& name, uint64_t) { progress.push_back(name); };
  Status s = convert_model(files->bin, out, opts);
  REQUIRE_MESSAGE(s.ok(), s.message());
  CHECK_FALSE(fs::exists(out + ".tmp"));
  CHECK(std::find(progress.begin(), progress.end(), "blk.4.ffn_up") != progress.end());

  auto m = Model::load(out);
  REQUIRE_MESSAGE(m.ok(), m.message());
  const ModelConfig& c = (*m)->config();
  CHECK(c.arch == "llama");
  CHECK(c.dim == 64);
  CHECK(c.hidden_dim == 172);
  CHECK(c.n_layers == 5);
  CHECK(c.n_heads == 8);
  CHECK(c.n_kv_heads == 4);
  CHECK(c.head_dim == 8);
  CHECK(c.vocab_size == 512);
  CHECK(c.max_seq_len == 512);
  CHECK(c.tied_embeddings);
  CHECK(c.bos_id == 1);
  CHECK(c.eos_id == 2);
  CHECK((*m)->tokenizer().vocab_size() == 512);
  const Weights& w = (*m)->weights();
  CHECK(w.token_embd.n == 512);
  CHECK(w.token_embd.k == 64);
  CHECK(w.token_embd.format == WeightFormat::f32);
  // The tied head: a 4-bit screen of the embedding, rescored from the f32 embedding itself.
  CHECK(w.output.format == WeightFormat::bq);
  CHECK(w.output.bits == 4);
  CHECK(w.output_exact.data == w.token_embd.data);
  REQUIRE(w.layers.size() == 5);
  CHECK(w.layers[0].wk.n == 32);
  CHECK(w.layers[0].wk.k == 64);
  CHECK(w.layers[4].w_down.n == 64);
  CHECK(w.layers[4].w_down.k == 172);
  CHECK((*m)->file().verify().ok());

  // The weights are the checkpoint's, unchanged (f32 by default).
  Llama2c src;
  REQUIRE(read_legacy(read_bytes(files->bin), src));
  CHECK(std::memcmp(w.token_embd.data, src.emb.data(), src.emb.size() * 4) == 0);
  CHECK(std::memcmp(w.layers[3].wv.data, src.wv.data() + 3 * 32 * 64, 32 * 64 * 4) == 0);
  CHECK(std::memcmp(w.output_norm, src.rms_final.data(), 64 * 4) == 0);
}

TEST_CASE("a truncated llama2.c checkpoint is refused and leaves no output") {
  auto files = stories_files();
  if (!files) return;
  TempDir tmp;
  const std::vector<uint8_t> good = read_bytes(files->bin);
  const std::string in = tmp.file("cut.bin"), out = tmp.file("cut.lutra");
  for (size_t size : {good.size() - 1, good.size() / 2, size_t(20), size_t(27), size_t(28)}) {
    CAPTURE(size);
    write_bytes(in, std::vector<uint8_t>(good.begin(), good.begin() + long(size)));
    Status s = convert_model(in, out, with_tokenizer(*files));
    REQUIRE_FALSE(s.ok());
    INFO("message: " << s.message());
    const bool says = s.message().find("truncated") != std::string::npos ||
                      s.message().find("too small") != std::string::npos;
    CHECK(says);
    CHECK_FALSE(fs::exists(out));
    CHECK_FALSE(fs::exists(out + ".tmp"));
  }
}

TEST_CASE("a llama2.c checkpoint with bytes appended or without a tokenizer is refused") {
  auto files = stories_files();
  if (!files) return;
  TempDir tmp;
  std::vector<uint8_t> b = read_bytes(files->bin);
  b.insert(b.end(), {0, 0, 0, 0});
  const std::string in = tmp.file("long.bin"), out = tmp.file("long.lutra");
  write_bytes(in, b);
  Status s = convert_llama2c(in, out, with_tokenizer(*files));
  REQUIRE_FALSE(s.ok());
  CHECK(s.message().find("4 bytes more") != std::string::npos);
  CHECK_FALSE(fs::exists(out));
  CHECK_FALSE(fs::exists(out + ".tmp"));

  Status no_tok = convert_llama2c(files->bin, out, ConvertOptions{});
  REQUIRE_FALSE(no_tok.ok());
  CHECK(no_tok.message().find("--tokenizer") != std::string::npos);
  CHECK_FALSE(fs::exists(out));

  ConvertOptions missing = with_tokenizer(*files);
  missing.tokenizer = tmp.file("no-such-tokenizer.bin");
  CHECK_FALSE(convert_llama2c(files->bin, out, missing).ok());
  CHECK_FALSE(fs::exists(out));
  CHECK_FALSE(fs::exists(out + ".tmp"));
}

TEST_CASE("the llama2.c export v1 converts to the same tensors as the legacy file") {
  auto files = stories_files();
  if (!files) return;
  Llama2c src;
  REQUIRE(read_legacy(read_bytes(files->bin), src));
  TempDir tmp;
  const std::string v1 = tmp.file("v1.bin");
  write_bytes(v1, export_v1(src));

  const std::string out_legacy = tmp.file("legacy.lutra"), out_v1 = tmp.file("v1.lutra");
  REQUIRE(convert_llama2c(files->bin, out_legacy, with_tokenizer(*files)).ok());
  Status s = convert_llama2c(v1, out_v1, with_tokenizer(*files));
  REQUIRE_MESSAGE(s.ok(), s.message());

  auto a = ModelFile::open(out_legacy), b = ModelFile::open(out_v1);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  REQUIRE((*a)->tensors().size() == (*b)->tensors().size());
  for (const TensorInfo& t : (*a)->tensors()) {
    CAPTURE(t.name);
    const TensorInfo* u = (*b)->find(t.name);
    REQUIRE(u != nullptr);
    CHECK(u->format == t.format);
    CHECK(u->shape == t.shape);
    auto da = (*a)->data(t), db = (*b)->data(*u);
    REQUIRE(da.size() == db.size());
    CHECK(std::memcmp(da.data(), db.data(), da.size()) == 0);
  }
  CHECK(Model::load(out_v1).ok());

  // An export version the converter does not know is named.
  std::vector<uint8_t> v3 = export_v1(src);
  int32_t three = 3;
  std::memcpy(v3.data() + 4, &three, 4);
  write_bytes(v1, v3);
  Status bad = convert_llama2c(v1, tmp.file("v3.lutra"), with_tokenizer(*files));
  CHECK_FALSE(bad.ok());
  CHECK(bad.message().find("version 3") != std::string::npos);
}

TEST_CASE("the llama2.c export v2 (int8 groups) converts within half a quantization step") {
  auto files = stories_files();
  if (!files) return;
  Llama2c src;
  REQUIRE(read_legacy(read_bytes(files->bin), src));
  // Groups run along rows of k = 64 or 172 values: 4 is the largest size dividing both.
  const size_t group = 4;
  TempDir tmp;
  const std::string v2 = tmp.file("v2.bin"), out = tmp.file("v2.lutra");
  write_bytes(v2, export_v2(src, group));
  Status s = convert_llama2c(v2, out, with_tokenizer(*files));
  REQUIRE_MESSAGE(s.ok(), s.message());
  auto m = Model::load(out);
  REQUIRE_MESSAGE(m.ok(), m.message());
  const Weights& w = (*m)->weights();
  CHECK(w.layers[0].wq.format == WeightFormat::bq);
  CHECK(w.layers[0].wq.bits == 8);
  CHECK(w.layers[0].wq.group == int(group));

  // Norms stay fp32, exactly.
  CHECK(std::memcmp(w.layers[2].ffn_norm, src.rms_ffn.data() + 2 * 64, 64 * 4) == 0);

  // Every matrix weight within half of its group's llama2.c step (max|group| / 127), plus the
  // f16 rounding of the repacked scale over up to 127 steps.
  auto check_matrix = [&](const char* what, const WeightView& v, const float* orig) {
    const std::string name = what;
    CAPTURE(name);
    std::vector<float> row(v.k);
    double worst = 0;
    for (size_t r = 0; r < v.n; ++r) {
      kernels().dequant_row.fn(v, r, row.data());
      for (size_t g = 0; g < v.k / group; ++g) {
        const float* o = orig + r * v.k + g * group;
        float amax = 0;
        for (size_t j = 0; j < group; ++j) amax = std::max(amax, std::fabs(o[j]));
        const double step = double(amax) / 127.0;
        const double bound = step * 0.5 + 127.0 * (step * 0x1p-11 + 0x1p-25) + 1e-7 * amax;
        for (size_t j = 0; j < group; ++j)
          worst = std::max(worst, std::fabs(double(row[g * group + j]) - o[j]) / bound);
      }
    }
    CHECK(worst <= 1.0);
  };
  check_matrix("token_embd", w.token_embd, src.emb.data());
  for (size_t l = 0; l < src.L; ++l) {
    const LayerWeights& L = w.layers[l];
    check_matrix("wq", L.wq, src.wq.data() + l * 64 * 64);
    check_matrix("wk", L.wk, src.wk.data() + l * src.kvd * 64);
    check_matrix("wv", L.wv, src.wv.data() + l * src.kvd * 64);
    check_matrix("wo", L.wo, src.wo.data() + l * 64 * 64);
    check_matrix("w1", L.w_gate, src.w1.data() + l * 172 * 64);
    check_matrix("w2", L.w_down, src.w2.data() + l * 64 * 172);
    check_matrix("w3", L.w_up, src.w3.data() + l * 172 * 64);
  }

  // A group size that does not divide the rows is refused.
  std::vector<uint8_t> bad = read_bytes(v2);
  int32_t g8 = 8;
  std::memcpy(bad.data() + 37, &g8, 4);
  write_bytes(v2, bad);
  Status e = convert_llama2c(v2, tmp.file("bad.lutra"), with_tokenizer(*files));
  CHECK_FALSE(e.ok());
  CHECK(e.message().find("group size") != std::string::npos);
}

TEST_CASE("convert_model names the inputs it does not convert") {
  TempDir tmp;
  ConvertOptions o;
  Status missing = convert_model(tmp.file("nothing.bin"), tmp.file("o.lutra"), o);
  CHECK(missing.message().find("does not exist") != std::string::npos);
  write_bytes(tmp.file("x.gguf"), {'G', 'G', 'U', 'F', 3, 0, 0, 0});
  Status gguf = convert_model(tmp.file("x.gguf"), tmp.file("o.lutra"), o);
  CHECK(gguf.message().find("GGUF") != std::string::npos);
  // A Hugging Face folder whose config names no architecture (tests/test_hf.cpp has the rest).
  fs::create_directories(tmp.path() / "hf");
  write_bytes((tmp.path() / "hf" / "config.json").string(), {'{', '}'});
  Status hf = convert_model((tmp.path() / "hf").string(), tmp.file("o.lutra"), o);
  CHECK(hf.message().find("Hugging Face") != std::string::npos);
  CHECK(hf.message().find("architecture") != std::string::npos);
  // Garbage is not mistaken for a checkpoint.
  std::vector<uint8_t> junk(1000, 0xab);
  write_bytes(tmp.file("junk.bin"), junk);
  Status j = convert_model(tmp.file("junk.bin"), tmp.file("o.lutra"), o);
  CHECK_FALSE(j.ok());
  CHECK(j.message().find("implausible") != std::string::npos);
  CHECK_FALSE(fs::exists(tmp.file("o.lutra")));
}

// ---- synthetic ------------------------------------------------------------------------------

TEST_CASE("synthetic tiny and llama-tiny models load, and the seed decides their bytes") {
  TempDir tmp;
  for (std::string preset : {"tiny", "llama-tiny"}) {
    CAPTURE(preset);
    ConvertOptions o;
    o.seed = 5;
    const std::string a = tmp.file(preset + ".a"), b = tmp.file(preset + ".b"), c = tmp.file(preset + ".c");
    REQUIRE(make_synthetic(preset, a, o).ok());
    REQUIRE(make_synthetic(preset, b, o).ok());
    o.seed = 6;
    REQUIRE(make_synthetic(preset, c, o).ok());

    auto m = Model::load(a);
    REQUIRE_MESSAGE(m.ok(), m.message());
    CHECK((*m)->file().verify().ok());
    CHECK(read_bytes(a) == read_bytes(b));

    // Not only the recorded seed: the weights differ.
    auto fa = ModelFile::open(a), fc = ModelFile::open(c);
    REQUIRE(fa.ok());
    REQUIRE(fc.ok());
    for (std::string name : {kTokenEmbd, "blk.0.attn_q"}) {
      CAPTURE(name);
      auto da = (*fa)->data(*(*fa)->find(name)), dc = (*fc)->data(*(*fc)->find(name));
      REQUIRE(da.size() == dc.size());
      CHECK(std::memcmp(da.data(), dc.data(), da.size()) != 0);
    }
  }
  {
    auto m = Model::load(tmp.file("tiny.a"));
    REQUIRE(m.ok());
    CHECK((*m)->config().arch == "bitnet-b1.58");
    CHECK((*m)->weights().layers[0].wq.format == WeightFormat::t2);
  }
}

TEST_CASE("an unknown synthetic preset is an error listing the presets") {
  TempDir tmp;
  Status s = make_synthetic("huge", tmp.file("x.lutra"), ConvertOptions{});
  REQUIRE_FALSE(s.ok());
  CHECK(s.message().find("'huge'") != std::string::npos);
  CHECK(s.message().find(synthetic_presets()) != std::string::npos);
  CHECK(std::string(synthetic_presets()).find("llama-tiny") != std::string::npos);
  CHECK_FALSE(fs::exists(tmp.file("x.lutra")));
  CHECK_FALSE(fs::exists(tmp.file("x.lutra.tmp")));
}
