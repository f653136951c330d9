// bq weights (b-bit codes in groups along k, an f16 scale and zero per group) x f32
// activations, 1 token x 4 output rows per tile, AVX2 + FMA + F16C.
//
// Math, per group g of a row: acc = sum_j (q_j - z) * x_j, where q_j - z is exact in float (q
// is at most 255 and z an f16), then y += s * acc. That is the scalar reference's sum with s
// taken out of each group, so results differ from it only by rounding order.
//
// Paths, chosen per call from bits and group (the vector width must divide the group):
// - 8-bit: vpmovzxbd widens 8 codes at a time.
// - 4-bit: vpmovzxbd widens 8 bytes = 16 codes; the low nibbles (even j) and the high nibbles
//   (odd j) form two vectors, matched by a copy of x permuted once per call (per 16 columns:
//   the 8 even ones, then the 8 odd ones), so no shuffle sorts the codes back into order.
// - anything else: each group's codes are unpacked to bytes with scalar code, then the 8-bit
//   math runs on them (with a masked tail when 8 does not divide the group).
// m == 1 decodes the codes straight into FMAs. m > 1 decodes each 4-row tile once per chunk of
// columns into floats s * (q - z) (exactly the scalar reference's weights) and then takes
// every token's dot products against that buffer, tokens innermost.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

constexpr size_t kLanes = 8;
constexpr size_t kChunkCols = 1024;  // m > 1: columns decoded at a time (4 rows: 16 KiB)

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// The f16 sections need not be 2-byte aligned (they follow the code bytes).
inline float load_f16(const uint16_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline __m256i tail_mask(size_t live) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(live)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// 8 consecutive byte codes as floats.
inline __m256 widen8(const uint8_t* q) {
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q))));
}

enum class Path { u8, u4, bytes };

struct Layout {
  const uint8_t* codes;
  size_t row_bytes, gpr, group;
  const uint16_t* scales;
  const uint16_t* zeros;  // null: symmetric, zero = zsym
  float zsym;
  int bits;

  explicit Layout(const WeightView& w)
      : codes(w.bq_codes()), row_bytes(bq_code_bytes_per_row(w.k, w.bits)), gpr(w.groups_per_row()),
        group(size_t(w.group)), scales(w.bq_scales()), zeros(w.bq_zeros()), zsym(float(1u << (w.bits - 1))),
        bits(w.bits) {}
  float scale(size_t r, size_t g) const { return load_f16(scales + r * gpr + g); }
  float zero(size_t r, size_t g) const { return zeros ? load_f16(zeros + r * gpr + g) : zsym; }
  const uint8_t* row(size_t r) const { return codes + r * row_bytes; }

  // The codes of group g of row r, one byte each, into dst (group bytes).
  void unpack(size_t r, size_t g, uint8_t* dst) const {
    const uint8_t* p = row(r);
    const uint32_t mask = (1u << bits) - 1;
    for (size_t j = g * group, t = 0; t < group; j++, t++) {
      size_t bit = j * size_t(bits);
      uint32_t v = p[bit / 8];
      if (bit % 8 + size_t(bits) > 8) v |= uint32_t(p[bit / 8 + 1]) << 8;  // spans two bytes
      dst[t] = uint8_t((v >> (bit % 8)) & mask);
    }
  }
};

// acc[r] += sum_{j < len} (q[r][j] - z[r]) * x[j], one byte per code. Bytes past len must be
// readable (up to the next multiple of 8); their x is masked to zero.
template <int R>
inline void dot_bytes(const uint8_t* const* q, const float* x, size_t len, const __m256* z, __m256* acc) {
  size_t j = 0;
  for (; j + kLanes <= len; j += kLanes) {
    __m256 xv = _mm256_loadu_ps(x + j);
    for (int r = 0; r < R; r++) acc[r] = _mm256_fmadd_ps(_mm256_sub_ps(widen8(q[r] + j), z[r]), xv, acc[r]);
  }
  if (j < len) {
    __m256 xv = _mm256_maskload_ps(x + j, tail_mask(len - j));
    for (int r = 0; r < R; r++) acc[r] = _mm256_fmadd_ps(_mm256_sub_ps(widen8(q[r] + j), z[r]), xv, acc[r]);
  }
}

// The same for packed 4-bit codes (len % 16 == 0) against the even/odd-permuted x.
template <int R>
inline void dot_u4(const uint8_t* const* q, const float* xp, size_t len, const __m256* z, __m256* acc) {
  const __m256i nib = _mm256_set1_epi32(0xf);
  for (size_t j = 0; j < len; j += 2 * kLanes) {
    __m256 xe = _mm256_loadu_ps(xp + j), xo = _mm256_loadu_ps(xp + j + kLanes);
    for (int r = 0; r < R; r++) {
      __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q[r] + j / 2)));
      __m256 de = _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_and_si256(b, nib)), z[r]);
      __m256 dO = _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(b, 4)), z[r]);
      acc[r] = _mm256_fmadd_ps(de, xe, acc[r]);
      acc[r] = _mm256_fmadd_ps(dO, xo, acc[r]);
    }
  }
}

// m == 1: out[r] = row r0 + r of W times x (xp: x permuted for the 4-bit path). buf holds R
// unpacked groups (bytes path).
template <int R, Path P>
void tile_m1(const Layout& L, size_t r0, const float* x, uint8_t* buf, size_t buf_stride, float* out) {
  __m256 tot[R];
  for (int r = 0; r < R; r++) tot[r] = _mm256_setzero_ps();
  const size_t G = L.group;
  for (size_t g = 0; g < L.gpr; g++) {
    __m256 z[R], acc[R];
    const uint8_t* q[R];
    for (int r = 0; r < R; r++) {
      z[r] = _mm256_set1_ps(L.zero(r0 + r, g));
      acc[r] = _mm256_setzero_ps();
      if constexpr (P == Path::u8) {
        q[r] = L.row(r0 + r) + g * G;
        // The hardware prefetcher falls behind on 4 interleaved streams of 8-bit codes: fetch
        // the same bytes of the next tile (4 rows on) while this one computes.
        for (size_t b = 0; b < G; b += 64) _mm_prefetch(reinterpret_cast<const char*>(q[r] + 4 * L.row_bytes + b), _MM_HINT_T0);
      } else if constexpr (P == Path::u4) {
        q[r] = L.row(r0 + r) + g * G / 2;
      } else {
        L.unpack(r0 + r, g, buf + r * buf_stride);
        q[r] = buf + r * buf_stride;
      }
    }
    if constexpr (P == Path::u4) dot_u4<R>(q, x + g * G, G, z, acc);
    else dot_bytes<R>(q, x + g * G, G, z, acc);
    for (int r = 0; r < R; r++) tot[r] = _mm256_fmadd_ps(_mm256_set1_ps(L.scale(r0 + r, g)), acc[r], tot[r]);
  }
  for (int r = 0; r < R; r++) out[r] = hsum(tot[r]);
}

// m > 1: rows r0..r0+R-1, columns [c0, c0 + cols) (whole groups) as floats s * (q - z) into
// dst (row stride `stride`, a multiple of 8; the padding past cols is zeroed).
template <int R, Path P>
void decode_tile(const Layout& L, size_t r0, size_t c0, size_t cols, uint8_t* buf, float* dst, size_t stride) {
  const size_t G = L.group;
  for (int r = 0; r < R; r++) {
    float* d = dst + r * stride;
    for (size_t g = c0 / G; g < (c0 + cols) / G; g++, d += G) {
      const __m256 z = _mm256_set1_ps(L.zero(r0 + r, g)), s = _mm256_set1_ps(L.scale(r0 + r, g));
      if constexpr (P == Path::u4) {
        const uint8_t* q = L.row(r0 + r) + g * G / 2;
        const __m256i nib = _mm256_set1_epi32(0xf);
        for (size_t j = 0; j < G; j += 2 * kLanes) {
          __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + j / 2)));
          __m256 we = _mm256_mul_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_and_si256(b, nib)), z), s);
          __m256 wo = _mm256_mul_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(b, 4)), z), s);
          __m256 a = _mm256_unpacklo_ps(we, wo), c = _mm256_unpackhi_ps(we, wo);  // 0-3 8-11 | 4-7 12-15
          _mm256_storeu_ps(d + j, _mm256_permute2f128_ps(a, c, 0x20));
          _mm256_storeu_ps(d + j + kLanes, _mm256_permute2f128_ps(a, c, 0x31));
        }
      } else {
        const uint8_t* q = L.row(r0 + r) + g * G;
        if constexpr (P == Path::bytes) {
          L.unpack(r0 + r, g, buf);
          q = buf;
        }
        size_t j = 0;
        for (; j + kLanes <= G; j += kLanes) _mm256_storeu_ps(d + j, _mm256_mul_ps(_mm256_sub_ps(widen8(q + j), z), s));
        if (j < G) _mm256_maskstore_ps(d + j, tail_mask(G - j), _mm256_mul_ps(_mm256_sub_ps(widen8(q + j), z), s));
      }
    }
    std::fill(dst + r * stride + cols, dst + (r + 1) * stride, 0.0f);
  }
}

// out[r] = sum_{j < cols} w[r][j] * x[j] over a decoded tile (padding zero).
template <int R>
inline void dot_tile(const float* w, size_t stride, const float* x, size_t cols, float* out) {
  __m256 acc[R];
  for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
  size_t j = 0;
  for (; j + kLanes <= cols; j += kLanes) {
    __m256 xv = _mm256_loadu_ps(x + j);
    for (int r = 0; r < R; r++) acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(w + r * stride + j), xv, acc[r]);
  }
  if (j < cols) {
    __m256 xv = _mm256_maskload_ps(x + j, tail_mask(cols - j));
    for (int r = 0; r < R; r++) acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(w + r * stride + j), xv, acc[r]);
  }
  for (int r = 0; r < R; r++) out[r] = hsum(acc[r]);
}

template <Path P>
void gemm(const WeightView& w, const float* x, float* y, size_t m, size_t n_begin, size_t n_end) {
  const Layout L(w);
  const size_t k = w.k, G = L.group, gpad = (G + kLanes - 1) / kLanes * kLanes;
  // Per-thread scratch that grows once (the token loop allocates nothing).
  thread_local std::vector<uint8_t> buf;
  thread_local std::vector<float> xp;
  if (P == Path::bytes && buf.size() < 4 * gpad) buf.resize(4 * gpad);
  if (m == 1) {
    if constexpr (P == Path::u4) {  // per 16 columns: the 8 even ones, then the 8 odd ones
      if (xp.size() < k) xp.resize(k);
      for (size_t b = 0; b < k; b += 2 * kLanes)
        for (size_t t = 0; t < kLanes; t++) {
          xp[b + t] = x[b + 2 * t];
          xp[b + kLanes + t] = x[b + 2 * t + 1];
        }
      x = xp.data();
    }
    size_t r = n_begin;
    float out[4];
    for (; r + 4 <= n_end; r += 4) {
      tile_m1<4, P>(L, r, x, buf.data(), gpad, out);
      std::memcpy(y + r, out, sizeof out);
    }
    for (; r < n_end; r++) tile_m1<1, P>(L, r, x, buf.data(), gpad, y + r);
    return;
  }
  const size_t chunk = std::max<size_t>(1, kChunkCols / G) * G;
  const size_t stride = (std::min(chunk, k) + kLanes - 1) / kLanes * kLanes;
  thread_local std::vector<float> tile;
  if (tile.size() < 4 * stride) tile.resize(4 * stride);
  float out[4];
  for (size_t r = n_begin; r < n_end; r += 4) {
    const size_t rows = std::min<size_t>(4, n_end - r);
    for (size_t c0 = 0; c0 < k; c0 += chunk) {
      const size_t cols = std::min(chunk, k - c0);
      if (rows == 4) decode_tile<4, P>(L, r, c0, cols, buf.data(), tile.data(), stride);
      else
        for (size_t t = 0; t < rows; t++) decode_tile<1, P>(L, r + t, c0, cols, buf.data(), tile.data() + t * stride, stride);
      for (size_t i = 0; i < m; i++) {  // tokens innermost: the tile is decoded once
        if (rows == 4) dot_tile<4>(tile.data(), stride, x + i * k + c0, cols, out);
        else
          for (size_t t = 0; t < rows; t++) dot_tile<1>(tile.data() + t * stride, stride, x + i * k + c0, cols, out + t);
        float* yi = y + i * w.n + r;
        for (size_t t = 0; t < rows; t++) yi[t] = c0 == 0 ? out[t] : yi[t] + out[t];
      }
    }
  }
}

}  // namespace

void lutra_bq_f32_gemm_1x4__avx2(const WeightView& w, const float* x, float* y, size_t m,
                                 size_t n_begin, size_t n_end) {
  if (n_begin >= n_end || m == 0) return;
  if (w.k == 0) {
    for (size_t i = 0; i < m; i++) std::fill(y + i * w.n + n_begin, y + i * w.n + n_end, 0.0f);
    return;
  }
  if (w.bits == 8 && w.group % kLanes == 0) gemm<Path::u8>(w, x, y, m, n_begin, n_end);
  else if (w.bits == 4 && w.group % (2 * kLanes) == 0) gemm<Path::u4>(w, x, y, m, n_begin, n_end);
  else gemm<Path::bytes>(w, x, y, m, n_begin, n_end);
}

}  // namespace lutra
