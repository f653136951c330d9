// bq weights (b-bit codes in groups along k, f16 scale and zero per group) x int8 activations
// with per-token scales (GemmBqI8Fn), AVX-512F/BW/VL/DQ, and with VNNI's vpdpbusd for the 4-bit
// products where the including file asks for it (kVnni); tiles of 16 output rows (the variants
// keep their registered name, "1x4"). Included by bq-qs8-gemm-1x4-avx512{,vnni}.cpp, each built
// with its own ISA's flags (hence the anonymous namespace: no inline function shared between them).
//
// Bit-identical to lutra_bq_qs8_gemm__scalar: the integer sums acc_g and xsum_g are exact (so
// their order is free), and the float combine runs the reference's operations per row and group
// in its order: t_g = s * (float(acc_g) - z * float(xsum_g)) vectorized over 16 groups (the same
// elementwise mul, sub, mul; no FMA), then sum += t_g for g ascending and y = sum / xs.
//
// The integer part works in "parts" of 32 consecutive codes (group % 32 == 0 on the fast
// paths), 16 parts (512 codes) per step, reduced in registers to one int32 each:
// - 4-bit: 64 code bytes = 128 codes, low nibbles the even codes, high nibbles the odd ones, and
//   each 128-bit lane one part. The activations are permuted once per token (per 128: the 64
//   even ones, then the 64 odd ones) so _mm512_maddubs_epi16 pairs nibbles with them directly
//   (|lo + hi lane| <= 4 * 15 * 128, exact in int16), and _mm512_madd_epi16 widens to int32;
//   with VNNI, two _mm512_dpbusd_epi32 do both (u8 x s8 into int32, exact).
// - 8-bit: maddubs would saturate (255 * 127 * 2 > 32767), so 32 codes widen to int16 and
//   _mm512_madd_epi16 multiplies them with the activations widened once per token.
// - anything else: the row's codes are unpacked to bytes, then the 8-bit path (group % 32 == 0)
//   or a plain integer loop per group.
// xsum_g is computed once per token per call. In the first token's pass the codes, scales and
// zeros are prefetched whole rows (at least kPrefetch bytes) ahead, as in
// t2-qs8-gemm-1x4-avx512.cpp; later tokens of a tile find its rows in L1.
// Tiles of 16 rows: each row's terms are computed over 16 groups per vector, then transposed so
// that the 16 rows' sums run in the lanes of one vector (a serial sum per row is the reference's
// order, and one scalar add chain per row was the bottleneck). Prefill (m > 1) runs the m = 1
// path per token over a tile held in L1; it does not share unpacked weights across tokens.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels_common/bq-qs8-gemm-tiles.h"
#include "kernels_x86/avx512-masked.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

constexpr size_t kStep = 512;       // codes per reduction step (16 parts)
constexpr size_t kPrefetch = 8192;  // at least this many bytes ahead
constexpr size_t kRows = 16;  // output rows per tile (their sums run in the lanes of one vector)

inline __mmask16 mask16(size_t live) { return live >= 16 ? kAll16 : __mmask16((1u << live) - 1); }

// Lane L, element t of the result: the sum of lane L of vector t (t = 0..3 for a, b, c, d).
inline __m512i lane_sums4(__m512i a, __m512i b, __m512i c, __m512i d) {
  __m512i ab = _mm512_add_epi32(unpacklo32(a, b), unpackhi32(a, b));
  __m512i cd = _mm512_add_epi32(unpacklo32(c, d), unpackhi32(c, d));
  return _mm512_add_epi32(unpacklo64(ab, cd), unpackhi64(ab, cd));
}

inline __mmask64 bytes_mask(size_t live) { return live >= 64 ? ~__mmask64(0) : (__mmask64(1) << live) - 1; }
inline __mmask32 bytes_mask32(size_t live) { return live >= 32 ? ~__mmask32(0) : (__mmask32(1) << live) - 1; }

// parts[p] = sum of the 32 products of codes 32p .. 32p+31 of a 4-bit row (row_bytes bytes)
// with xp (permuted, zero padded to whole steps); (k + 511) / 512 * 16 parts.
template <bool kVnni, bool kPrefetchW>
inline void parts_u4(const uint8_t* codes, size_t row_bytes, const int8_t* xp, size_t prefetch,
                     int32_t* parts) {
  const __m512i nib = _mm512_set1_epi8(0x0f);
  [[maybe_unused]] const __m512i ones = _mm512_set1_epi16(1);
  // Element 4L + t of lane_sums4 is part 4t + L: back to part order.
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  for (size_t b = 0; b < row_bytes; b += kStep / 2, xp += kStep, parts += 16) {
    __m512i d[4];
    for (int t = 0; t < 4; t++) {
      const size_t off = b + 64 * size_t(t);
      __m512i packed;
      if (off + 64 <= row_bytes) {
        if constexpr (kPrefetchW) _mm_prefetch(reinterpret_cast<const char*>(codes + off + prefetch), _MM_HINT_T0);
        packed = _mm512_loadu_si512(codes + off);
      } else {
        packed = off < row_bytes ? _mm512_maskz_loadu_epi8(bytes_mask(row_bytes - off), codes + off)
                                 : _mm512_setzero_si512();
      }
      __m512i lo = _mm512_and_si512(packed, nib);
      __m512i hi = _mm512_and_si512(_mm512_srli_epi16(packed, 4), nib);
      const __m512i xlo = _mm512_loadu_si512(xp + 128 * t), xhi = _mm512_loadu_si512(xp + 128 * t + 64);
      if constexpr (kVnni) {
#if defined(__AVX512VNNI__)
        d[t] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, xlo), hi, xhi);
#endif
      } else {
        d[t] = _mm512_madd_epi16(_mm512_add_epi16(_mm512_maddubs_epi16(lo, xlo), _mm512_maddubs_epi16(hi, xhi)), ones);
      }
    }
    __m512i s = lane_sums4(d[0], d[1], d[2], d[3]);
    _mm512_storeu_si512(parts, _mm512_maskz_permutexvar_epi32(kAll16, order, s));
  }
}

// The same for byte codes (8-bit, or unpacked), against xw: the activations as int16.
template <bool kPrefetchW>
inline void parts_u8(const uint8_t* codes, size_t row_bytes, const int16_t* xw, size_t prefetch,
                     int32_t* parts) {
  for (size_t b = 0; b < row_bytes; b += kStep, xw += kStep, parts += 16) {
    if constexpr (kPrefetchW) {
      for (size_t c = 0; c < kStep; c += 64)
        _mm_prefetch(reinterpret_cast<const char*>(codes + b + c + prefetch), _MM_HINT_T0);
    }
    __m512i q[4];  // lane u: parts 4u .. 4u+3 of this step, partially reduced
    for (int u = 0; u < 4; u++) {
      __m512i e[4];
      for (int t = 0; t < 4; t++) {
        const size_t off = b + 32 * size_t(4 * u + t);
        __m256i c8;
        if (off + 32 <= row_bytes) c8 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + off));
        else c8 = off < row_bytes ? _mm256_maskz_loadu_epi8(bytes_mask32(row_bytes - off), codes + off)
                                  : _mm256_setzero_si256();
        e[t] = _mm512_madd_epi16(_mm512_cvtepu8_epi16(c8), _mm512_loadu_si512(xw + 32 * (4 * u + t)));
      }
      q[u] = lane_sums4(e[0], e[1], e[2], e[3]);  // lane L element t: a quarter of part 4u+t
    }
    // Sum each q[u] over its lanes into lane u: a 4x4 transpose of lanes, added.
    __m512i a = _mm512_add_epi32(shuffle128<_MM_SHUFFLE(1, 0, 1, 0)>(q[0], q[1]),
                                 shuffle128<_MM_SHUFFLE(3, 2, 3, 2)>(q[0], q[1]));
    __m512i c = _mm512_add_epi32(shuffle128<_MM_SHUFFLE(1, 0, 1, 0)>(q[2], q[3]),
                                 shuffle128<_MM_SHUFFLE(3, 2, 3, 2)>(q[2], q[3]));
    _mm512_storeu_si512(parts, _mm512_add_epi32(shuffle128<_MM_SHUFFLE(2, 0, 2, 0)>(a, c),
                                                shuffle128<_MM_SHUFFLE(3, 1, 3, 1)>(a, c)));
  }
}

// t[g] = s_g * (float(acc_g) - z_g * float(xsum_g)): the reference's terms, the same
// elementwise operations (the product z * xsum is kept out of an FMA).
inline void terms(const int32_t* acc, size_t gpr, const uint16_t* scales, const uint16_t* zeros,
                  float zsym, const float* xsumf, float* t) {
  for (size_t g = 0; g < gpr; g += 16) {
    const __mmask16 live = mask16(gpr - g);
    __m512 a = _mm512_maskz_cvtepi32_ps(kAll16, _mm512_maskz_loadu_epi32(live, acc + g));
    __m512 s = _mm512_maskz_cvtph_ps(kAll16, _mm256_maskz_loadu_epi16(live, scales + g));
    __m512 z = zeros ? _mm512_maskz_cvtph_ps(kAll16, _mm256_maskz_loadu_epi16(live, zeros + g))
                     : _mm512_set1_ps(zsym);
    __m512 zx = _mm512_mul_ps(z, _mm512_loadu_ps(xsumf + g));
    asm("" : "+v"(zx));  // keeps the product rounded on its own, as in the reference (no FMA)
    _mm512_storeu_ps(t + g, _mm512_mul_ps(s, _mm512_sub_ps(a, zx)));
  }
}

// One row: y = (0 + t[0] + t[1] + ... ) / xs, in order, as the reference sums.
inline float sum_row(const float* t, size_t gpr, float xs) {
  float sum = 0.0f;
  for (size_t g = 0; g < gpr; g++) sum += t[g];
  return sum / xs;
}

// Sixteen rows at once (row rr's terms at t + rr * stride): each lane runs one row's sum in
// the same order, over 16x16 transposes of the terms. out[rr] = sum / xs.
inline void sum_rows16(const float* t, size_t stride, size_t gpr, float xs, float* out) {
  __m512 sum = _mm512_setzero_ps();
  for (size_t g0 = 0; g0 < gpr; g0 += 16) {
    __m512i r[16], u[16];
    for (int a = 0; a < 16; a++) r[a] = _mm512_loadu_si512(t + a * stride + g0);
    for (int i = 0; i < 8; i++) {
      u[2 * i] = unpacklo32(r[2 * i], r[2 * i + 1]);
      u[2 * i + 1] = unpackhi32(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {  // u[4i + c] lane L: column 4L + c, rows 4i .. 4i+3
      r[4 * i] = unpacklo64(u[4 * i], u[4 * i + 2]);
      r[4 * i + 1] = unpackhi64(u[4 * i], u[4 * i + 2]);
      r[4 * i + 2] = unpacklo64(u[4 * i + 1], u[4 * i + 3]);
      r[4 * i + 3] = unpackhi64(u[4 * i + 1], u[4 * i + 3]);
    }
    __m512i col[16];
    for (int c = 0; c < 4; c++) {
      __m512i A = shuffle128<_MM_SHUFFLE(1, 0, 1, 0)>(r[c], r[4 + c]);
      __m512i B = shuffle128<_MM_SHUFFLE(3, 2, 3, 2)>(r[c], r[4 + c]);
      __m512i C = shuffle128<_MM_SHUFFLE(1, 0, 1, 0)>(r[8 + c], r[12 + c]);
      __m512i D = shuffle128<_MM_SHUFFLE(3, 2, 3, 2)>(r[8 + c], r[12 + c]);
      col[c] = shuffle128<_MM_SHUFFLE(2, 0, 2, 0)>(A, C);
      col[4 + c] = shuffle128<_MM_SHUFFLE(3, 1, 3, 1)>(A, C);
      col[8 + c] = shuffle128<_MM_SHUFFLE(2, 0, 2, 0)>(B, D);
      col[12 + c] = shuffle128<_MM_SHUFFLE(3, 1, 3, 1)>(B, D);
    }
    const size_t live = std::min<size_t>(16, gpr - g0);
    for (size_t g = 0; g < live; g++) sum = _mm512_add_ps(sum, _mm512_castsi512_ps(col[g]));
  }
  _mm512_storeu_ps(out, _mm512_div_ps(sum, _mm512_set1_ps(xs)));
}

enum class Path { u4, u8, bytes_parts, bytes_loop };

// Per-thread scratch, grown once.
struct Scratch {
  std::vector<int8_t> xp;     // 4-bit: permuted activations, per token steps * 512
  std::vector<int16_t> xw;    // byte paths: widened activations, per token steps * 512
  std::vector<float> xsumf;   // per token gpr16 floats
  std::vector<int32_t> parts, acc;
  std::vector<float> t;
  std::vector<uint8_t> unpacked;
};

// Row r, token i: the terms of its sum into t.
template <Path P, bool kVnni, bool kPrefetchW>
inline void row_terms(const BqI8Plan& pl, Scratch& sc, size_t r, size_t i, const int8_t* xi,
                       float* t, size_t prefetch, size_t xstride, size_t gstride) {
  const uint8_t* row = pl.codes + r * pl.row_bytes;
  const int32_t* acc = sc.acc.data();
  if constexpr (P == Path::bytes_loop) {
    int32_t* sums = sc.acc.data();
    const uint8_t* u = sc.unpacked.data();
    for (size_t g = 0; g < pl.gpr; g++) {
      int32_t a = 0;
      for (size_t j = g * pl.group; j < (g + 1) * pl.group; j++) a += int32_t(u[j]) * int32_t(xi[j]);
      sums[g] = a;
    }
  } else {
    int32_t* parts = sc.parts.data();
    if constexpr (P == Path::u4) parts_u4<kVnni, kPrefetchW>(row, pl.row_bytes, sc.xp.data() + i * xstride, prefetch, parts);
    else if constexpr (P == Path::u8) parts_u8<kPrefetchW>(row, pl.row_bytes, sc.xw.data() + i * xstride, prefetch, parts);
    else parts_u8<false>(sc.unpacked.data(), pl.k, sc.xw.data() + i * xstride, 0, parts);
    acc = bq_group_sums(pl, parts, sc.acc.data());
  }
  const uint16_t* zeros = pl.zeros ? pl.zeros + r * pl.gpr : nullptr;
  if constexpr (kPrefetchW) bq_prefetch_scales(pl, r, prefetch);
  terms(acc, pl.gpr, pl.scales + r * pl.gpr, zeros, pl.zsym, sc.xsumf.data() + i * gstride, t);
}

template <Path P, bool kVnni>
void gemm(const BqI8Plan& pl, const int8_t* xq, const float* xs, float* y, size_t m, size_t n_begin,
          size_t n_end, Scratch& sc, size_t xstride, size_t gstride) {
  // The weights are prefetched whole rows ahead, at least kPrefetch bytes.
  const size_t prefetch = pl.row_bytes * ((kPrefetch + pl.row_bytes - 1) / pl.row_bytes);
  float* t = sc.t.data();
  for (size_t r0 = n_begin; r0 < n_end; r0 += kRows) {
    const size_t rows = std::min(kRows, n_end - r0);
    for (size_t i = 0; i < m; i++) {
      const int8_t* xi = xq + i * pl.k;
      for (size_t rr = 0; rr < rows; rr++) {
        const size_t r = r0 + rr;
        if constexpr (P == Path::bytes_parts || P == Path::bytes_loop) {
          const uint8_t* row = pl.codes + r * pl.row_bytes;
          for (size_t j = 0; j < pl.k; j++) sc.unpacked[j] = uint8_t(bq_code_at(row, j, pl.bits));
        }
        if (i == 0) row_terms<P, kVnni, true>(pl, sc, r, i, xi, t + rr * gstride, prefetch, xstride, gstride);
        else row_terms<P, kVnni, false>(pl, sc, r, i, xi, t + rr * gstride, prefetch, xstride, gstride);
      }
      float* yi = y + i * pl.n + r0;
      if (rows == 16) sum_rows16(t, gstride, pl.gpr, xs[i], yi);
      else
        for (size_t rr = 0; rr < rows; rr++) yi[rr] = sum_row(t + rr * gstride, pl.gpr, xs[i]);
    }
  }
}

template <bool kVnni>
void gemm_bq_qs8(const WeightView& w, const int8_t* xq, const float* xs, float* y, size_t m,
                 size_t n_begin, size_t n_end) {
  if (n_begin >= n_end || m == 0) return;
  const BqI8Plan pl(w, kStep);
  const bool g32 = pl.group % 32 == 0;
  const Path path = !g32 ? Path::bytes_loop : w.bits == 4 ? Path::u4 : w.bits == 8 ? Path::u8 : Path::bytes_parts;

  thread_local Scratch sc;
  const size_t xstride = pl.steps * kStep, gstride = (pl.gpr + 15) / 16 * 16;
  if (path == Path::u4) {
    if (sc.xp.size() < m * xstride) sc.xp.resize(m * xstride);
  } else if (path != Path::bytes_loop) {
    if (sc.xw.size() < m * xstride) sc.xw.resize(m * xstride);
  }
  if (sc.xsumf.size() < m * gstride) sc.xsumf.resize(m * gstride);
  if (sc.parts.size() < pl.steps * 16) sc.parts.resize(pl.steps * 16);
  if (sc.acc.size() < gstride) sc.acc.resize(gstride);
  if (sc.t.size() < kRows * gstride) sc.t.resize(kRows * gstride);
  if (sc.unpacked.size() < pl.k) sc.unpacked.resize(pl.k);
  // Activations, once per token: permuted (4-bit, per 128 codes) or widened (byte paths), and
  // the group sums.
  for (size_t i = 0; i < m; i++)
    bq_i8_prepare_token(pl, xq + i * w.k, sc.xsumf.data() + i * gstride,
                        path == Path::u4 ? sc.xp.data() + i * xstride : nullptr, 128,
                        path == Path::u4 || path == Path::bytes_loop ? nullptr : sc.xw.data() + i * xstride, xstride);
  switch (path) {
    case Path::u4: gemm<Path::u4, kVnni>(pl, xq, xs, y, m, n_begin, n_end, sc, xstride, gstride); break;
    case Path::u8: gemm<Path::u8, kVnni>(pl, xq, xs, y, m, n_begin, n_end, sc, xstride, gstride); break;
    case Path::bytes_parts: gemm<Path::bytes_parts, kVnni>(pl, xq, xs, y, m, n_begin, n_end, sc, xstride, gstride); break;
    case Path::bytes_loop: gemm<Path::bytes_loop, kVnni>(pl, xq, xs, y, m, n_begin, n_end, sc, xstride, gstride); break;
  }
}

}  // namespace
}  // namespace lutra
