// bq weights (b-bit codes in groups along k, f16 scale and zero per group) x int8 activations
// with per-token scales (GemmBqI8Fn), AVX2 + F16C (most laptops without AVX-512; without this
// kernel they multiplied the default head in scalar code, 8x slower decode). Tiles of 8 rows.
//
// Bit-identical to lutra_bq_qs8_gemm__scalar, as the AVX-512 kernel is: the integer sums acc_g
// and xsum_g are exact (their order is free); the float combine runs the reference's operations
// per row and group in its order: t_g = s * (float(acc_g) - z * float(xsum_g)) over 8 groups per
// vector (elementwise mul, sub, mul; no FMA), then sum += t_g for g ascending, y = sum / xs.
//
// The integer part works in "parts" of 32 consecutive codes (group % 32 == 0; other groups run
// the scalar reference), 8 parts (256 codes) per step:
// - 4-bit: 32 code bytes = 64 codes, low nibbles the even codes, high nibbles the odd ones, each
//   128-bit lane one part. The activations are permuted once per token (per 64: the 32 even
//   ones, then the 32 odd ones) so maddubs pairs nibbles with them directly (|lo + hi lane| <=
//   4 * 15 * 128, exact in int16) and madd widens to int32.
// - 8-bit, and other widths unpacked to bytes first: maddubs would saturate (255 * 127 * 2 >
//   32767), so 16 codes widen to int16 and madd multiplies them with int16 activations.
// Eight rows' terms are then transposed 8x8 so that the rows' sums run in the lanes of one
// vector (one scalar add chain per row would be the bottleneck). The first token's pass
// prefetches the codes and scales whole rows (at least kPrefetch bytes) ahead; later tokens of a
// tile (prefill) find its rows in cache.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels_common/bq-qs8-gemm-tiles.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

constexpr size_t kStep = 256;       // codes per reduction step (8 parts)
constexpr size_t kPrefetch = 8192;  // at least this many bytes ahead
constexpr size_t kRows = 8;         // output rows per tile (their sums run in the lanes of a vector)

enum class Path { u4, u8, bytes };

// Per-thread scratch, grown once.
struct Scratch {
  std::vector<int8_t> xp;    // 4-bit: permuted activations, per token steps * 256
  std::vector<int16_t> xw;   // byte paths: widened activations, per token steps * 256
  std::vector<float> xsumf;  // per token gstride floats
  std::vector<int32_t> parts, acc;
  std::vector<float> t;      // kRows rows of gstride terms
  std::vector<uint8_t> unpacked;
};

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

inline __m256i dot_u4(__m256i lo, __m256i hi, __m256i xlo, __m256i xhi) {
  const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, xlo), _mm256_maddubs_epi16(hi, xhi));
  return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

// parts[p] = sum of the 32 products of codes 32p .. 32p+31 of a 4-bit row (row_bytes bytes, a
// multiple of 16) with xp (permuted, zero padded to whole steps).
template <bool kPrefetchW>
inline void parts_u4(const uint8_t* codes, size_t row_bytes, const int8_t* xp, size_t prefetch,
                     int32_t* parts) {
  const __m256i nib = _mm256_set1_epi8(0x0f);
  // hadd(hadd(d0, d1), hadd(d2, d3)) holds parts 0 2 4 6 | 1 3 5 7: back to part order.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (size_t b = 0; b < row_bytes; b += kStep / 2, xp += kStep, parts += 8) {
    if constexpr (kPrefetchW) {
      _mm_prefetch(reinterpret_cast<const char*>(codes + b + prefetch), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(codes + b + prefetch + 64), _MM_HINT_T0);
    }
    __m256i d[4];
    for (int t = 0; t < 4; t++) {
      const size_t off = b + 32 * size_t(t);
      __m256i packed;
      if (off + 32 <= row_bytes) packed = load256(codes + off);
      else if (off < row_bytes)  // the row's last 16 bytes
        packed = _mm256_inserti128_si256(_mm256_setzero_si256(),
                                         _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + off)), 0);
      else packed = _mm256_setzero_si256();
      const __m256i lo = _mm256_and_si256(packed, nib);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(packed, 4), nib);
      d[t] = dot_u4(lo, hi, load256(xp + 64 * t), load256(xp + 64 * t + 32));
    }
    const __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(d[0], d[1]), _mm256_hadd_epi32(d[2], d[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(parts), _mm256_permutevar8x32_epi32(s, order));
  }
}

// The same for byte codes (row_bytes = k, a multiple of 32), against xw: the activations as int16.
template <bool kPrefetchW>
inline void parts_u8(const uint8_t* codes, size_t row_bytes, const int16_t* xw, size_t prefetch,
                     int32_t* parts) {
  for (size_t b = 0; b < row_bytes; b += kStep, xw += kStep, parts += 8) {
    if constexpr (kPrefetchW)
      for (size_t c = 0; c < kStep; c += 64) _mm_prefetch(reinterpret_cast<const char*>(codes + b + c + prefetch), _MM_HINT_T0);
    __m256i e[8];  // e[p]: 8 partial sums of part p
    for (int p = 0; p < 8; p++) {
      const size_t off = b + 32 * size_t(p);
      if (off >= row_bytes) {
        e[p] = _mm256_setzero_si256();
        continue;
      }
      const __m256i c0 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + off)));
      const __m256i c1 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + off + 16)));
      e[p] = _mm256_add_epi32(_mm256_madd_epi16(c0, load256(xw + 32 * p)), _mm256_madd_epi16(c1, load256(xw + 32 * p + 16)));
    }
    // hadd twice: lane 0 holds the low-lane sums of parts 0-3 (4-7), lane 1 the high-lane ones.
    const __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(e[0], e[1]), _mm256_hadd_epi32(e[2], e[3]));
    const __m256i c = _mm256_hadd_epi32(_mm256_hadd_epi32(e[4], e[5]), _mm256_hadd_epi32(e[6], e[7]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(parts),
                        _mm256_add_epi32(_mm256_permute2x128_si256(a, c, 0x20), _mm256_permute2x128_si256(a, c, 0x31)));
  }
}

// t[g] = s_g * (float(acc_g) - z_g * float(xsum_g)): the reference's terms, the same elementwise
// operations (the product z * xsum is kept out of an FMA); the last gpr % 8 in scalar code.
inline void terms(const int32_t* acc, size_t gpr, const uint16_t* scales, const uint16_t* zeros,
                  float zsym, const float* xsumf, float* t) {
  size_t g = 0;
  for (; g + 8 <= gpr; g += 8) {
    const __m256 a = _mm256_cvtepi32_ps(load256(acc + g));
    const __m256 s = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + g)));
    const __m256 z = zeros ? _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(zeros + g)))
                           : _mm256_set1_ps(zsym);
    __m256 zx = _mm256_mul_ps(z, _mm256_loadu_ps(xsumf + g));
    asm("" : "+x"(zx));  // keeps the product rounded on its own, as in the reference (no FMA)
    _mm256_storeu_ps(t + g, _mm256_mul_ps(s, _mm256_sub_ps(a, zx)));
  }
  for (; g < gpr; g++) {
    const float s = _cvtsh_ss(scales[g]);
    const float z = zeros ? _cvtsh_ss(zeros[g]) : zsym;
    float zx = z * xsumf[g];
    asm("" : "+x"(zx));
    t[g] = s * (float(acc[g]) - zx);
  }
}

// Eight rows at once (row rr's terms at t + rr * stride): each lane runs one row's sum in the
// reference's order, over 8x8 transposes of the terms. out[rr] = sum / xs.
inline void sum_rows8(const float* t, size_t stride, size_t gpr, float xs, float* out) {
  __m256 sum = _mm256_setzero_ps();
  for (size_t g0 = 0; g0 < gpr; g0 += 8) {
    __m256 r[8], u[8], v[8];
    for (int a = 0; a < 8; a++) r[a] = _mm256_loadu_ps(t + a * stride + g0);
    for (int i = 0; i < 4; i++) {
      u[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);      // lane: r0g0 r1g0 r0g1 r1g1
      u[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);  // lane: r0g2 r1g2 r0g3 r1g3
    }
    for (int i = 0; i < 2; i++) {  // rows 4i .. 4i+3, per lane: columns c of v[4i + c]
      v[4 * i] = _mm256_shuffle_ps(u[4 * i], u[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
      v[4 * i + 1] = _mm256_shuffle_ps(u[4 * i], u[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
      v[4 * i + 2] = _mm256_shuffle_ps(u[4 * i + 1], u[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
      v[4 * i + 3] = _mm256_shuffle_ps(u[4 * i + 1], u[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    __m256 col[8];
    for (int c = 0; c < 4; c++) {
      col[c] = _mm256_permute2f128_ps(v[c], v[4 + c], 0x20);
      col[4 + c] = _mm256_permute2f128_ps(v[c], v[4 + c], 0x31);
    }
    const size_t live = std::min<size_t>(8, gpr - g0);
    for (size_t g = 0; g < live; g++) sum = _mm256_add_ps(sum, col[g]);
  }
  _mm256_storeu_ps(out, _mm256_div_ps(sum, _mm256_set1_ps(xs)));
}

// One row: y = (0 + t[0] + t[1] + ... ) / xs, in order, as the reference sums.
inline float sum_row(const float* t, size_t gpr, float xs) {
  float sum = 0.0f;
  for (size_t g = 0; g < gpr; g++) sum += t[g];
  return sum / xs;
}

// Row r, token i: the terms of its sum into t.
template <Path P, bool kPrefetchW>
inline void row_terms(const BqI8Plan& pl, Scratch& sc, size_t r, size_t i, float* t, size_t prefetch,
                      size_t xstride, size_t gstride) {
  const uint8_t* row = pl.codes + r * pl.row_bytes;
  int32_t* parts = sc.parts.data();
  if constexpr (P == Path::u4) parts_u4<kPrefetchW>(row, pl.row_bytes, sc.xp.data() + i * xstride, prefetch, parts);
  else if constexpr (P == Path::u8) parts_u8<kPrefetchW>(row, pl.row_bytes, sc.xw.data() + i * xstride, prefetch, parts);
  else parts_u8<false>(sc.unpacked.data(), pl.k, sc.xw.data() + i * xstride, 0, parts);
  const int32_t* acc = bq_group_sums(pl, parts, sc.acc.data());
  const uint16_t* zeros = pl.zeros ? pl.zeros + r * pl.gpr : nullptr;
  if constexpr (kPrefetchW) bq_prefetch_scales(pl, r, prefetch);
  terms(acc, pl.gpr, pl.scales + r * pl.gpr, zeros, pl.zsym, sc.xsumf.data() + i * gstride, t);
}

template <Path P>
void gemm(const BqI8Plan& pl, const float* xs, float* y, size_t m, size_t n_begin, size_t n_end,
          Scratch& sc, size_t xstride, size_t gstride) {
  const size_t prefetch = pl.row_bytes * ((kPrefetch + pl.row_bytes - 1) / pl.row_bytes);
  float* t = sc.t.data();
  for (size_t r0 = n_begin; r0 < n_end; r0 += kRows) {
    const size_t rows = std::min(kRows, n_end - r0);
    for (size_t i = 0; i < m; i++) {
      for (size_t rr = 0; rr < rows; rr++) {
        const size_t r = r0 + rr;
        if constexpr (P == Path::bytes) {
          const uint8_t* row = pl.codes + r * pl.row_bytes;
          for (size_t j = 0; j < pl.k; j++) sc.unpacked[j] = uint8_t(bq_code_at(row, j, pl.bits));
        }
        if (i == 0) row_terms<P, true>(pl, sc, r, i, t + rr * gstride, prefetch, xstride, gstride);
        else row_terms<P, false>(pl, sc, r, i, t + rr * gstride, prefetch, xstride, gstride);
      }
      float* yi = y + i * pl.n + r0;
      if (rows == kRows) sum_rows8(t, gstride, pl.gpr, xs[i], yi);
      else
        for (size_t rr = 0; rr < rows; rr++) yi[rr] = sum_row(t + rr * gstride, pl.gpr, xs[i]);
    }
  }
}

}  // namespace

void lutra_bq_qs8_gemm_1x8__avx2(const WeightView& w, const int8_t* xq, const float* xs, float* y,
                                 size_t m, size_t n_begin, size_t n_end) {
  if (n_begin >= n_end || m == 0) return;
  if (w.group % 32 != 0) {  // no whole 32-code parts: the reference's plain loops
    lutra_bq_qs8_gemm__scalar(w, xq, xs, y, m, n_begin, n_end);
    return;
  }
  const BqI8Plan pl(w, kStep);
  const Path path = w.bits == 4 ? Path::u4 : w.bits == 8 ? Path::u8 : Path::bytes;

  thread_local Scratch sc;
  const size_t xstride = pl.steps * kStep, gstride = (pl.gpr + 7) / 8 * 8;
  if (path == Path::u4) {
    if (sc.xp.size() < m * xstride) sc.xp.resize(m * xstride);
  } else if (sc.xw.size() < m * xstride) {
    sc.xw.resize(m * xstride);
  }
  if (sc.xsumf.size() < m * gstride) sc.xsumf.resize(m * gstride);
  if (sc.parts.size() < pl.steps * 8) sc.parts.resize(pl.steps * 8);
  if (sc.acc.size() < gstride) sc.acc.resize(gstride);
  if (sc.t.size() < kRows * gstride) sc.t.resize(kRows * gstride);
  if (path == Path::bytes && sc.unpacked.size() < pl.k) sc.unpacked.resize(pl.k);
  // Activations, once per token: permuted (4-bit, per 64 codes) or widened (byte paths), and
  // the group sums.
  for (size_t i = 0; i < m; i++)
    bq_i8_prepare_token(pl, xq + i * w.k, sc.xsumf.data() + i * gstride,
                        path == Path::u4 ? sc.xp.data() + i * xstride : nullptr, 64,
                        path == Path::u4 ? nullptr : sc.xw.data() + i * xstride, xstride);
  switch (path) {
    case Path::u4: gemm<Path::u4>(pl, xs, y, m, n_begin, n_end, sc, xstride, gstride); break;
    case Path::u8: gemm<Path::u8>(pl, xs, y, m, n_begin, n_end, sc, xstride, gstride); break;
    case Path::bytes: gemm<Path::bytes>(pl, xs, y, m, n_begin, n_end, sc, xstride, gstride); break;
  }
}

}  // namespace lutra
