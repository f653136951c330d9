// Bit-serial table-lookup GEMM, fast mode (int8 tables, GemmBpFn), 1 token x 32 rows per tile,
// AVX-512 (F/BW/VL). The AVX2 fast kernel's scheme a quad at a time: the quad's 4 int8 tables
// are one 64-byte register, one index load per plane covers 32 rows x 4 chunks, one vpshufb
// per 16 rows, shifts split even and odd rows into int16 times 2^plane; int16 sums for
// 4 * bp_flush_quads quads, then int32, lanes summed and rows put back in order per group.
// Bit-identical to the fast scalar reference.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels_x86/bp-qs8-gemm/bp-qs8-gemm-tiles.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

constexpr size_t kPrefetch = 8192;  // bytes ahead in the weight stream

constexpr __mmask32 kAll32 = ~__mmask32(0);
inline __m512i widen16(__m256i v) { return _mm512_maskz_cvtepi16_epi32(0xffff, v); }
inline __m512i sra16(__m512i v, __m128i s) { return _mm512_maskz_sra_epi16(kAll32, v, s); }

inline void tile_dot(const WeightView& w, const uint8_t* tile, const uint8_t* tab, float xs,
                     float out[32]) {
  const __m512i nibble = _mm512_set1_epi8(0x0f), high = _mm512_set1_epi16(int16_t(0xff00));
  const size_t group = size_t(w.group), gpr = w.groups_per_row(), quads = group / 16;
  const size_t flush = 4 * bp_flush_quads(w.bits), gbytes = bp_group_bytes(w.bits, w.group, w.asymmetric);
  const int bits = w.bits;
  const int32_t* xsums = reinterpret_cast<const int32_t*>(tab + w.k / 16 * 64);
  const float* tscales = reinterpret_cast<const float*>(xsums + gpr);
  const __m256 zsym = _mm256_set1_ps(float(1u << (bits - 1)));
  __m256 sum[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  const uint8_t* gp = tile;
  for (size_t g = 0; g < gpr; g++, gp += gbytes) {
    const uint8_t* planes = gp + (w.asymmetric ? 128 : 64);
    const uint8_t* gtab = tab + g * quads * 64;
    // acc[0]: rows 0, 2, .. 14; acc[1]: rows 1, 3, .. 15; acc[2], acc[3]: the same for 16..31
    __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                      _mm512_setzero_si512()};
    for (size_t u0 = 0; u0 < quads; u0 += flush) {
      __m512i a[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                      _mm512_setzero_si512()};
      for (size_t u = u0; u < std::min(quads, u0 + flush); u++) {
        const __m512i t = _mm512_loadu_si512(gtab + u * 64);
        const uint8_t* qp = planes + u * size_t(bits) * 64;
        for (int i = 0; i < bits; i++) {
          _mm_prefetch(reinterpret_cast<const char*>(qp + 64 * i) + kPrefetch, _MM_HINT_T0);
          const __m128i sh = _mm_cvtsi32_si128(8 - i);  // (byte << 8) >> (8 - i) = byte * 2^i
          const __m512i idx = _mm512_loadu_si512(qp + 64 * i);
          const __m512i lo = _mm512_shuffle_epi8(t, _mm512_and_si512(idx, nibble));
          const __m512i hi = _mm512_shuffle_epi8(t, _mm512_and_si512(_mm512_srli_epi16(idx, 4), nibble));
          a[0] = _mm512_add_epi16(a[0], sra16(_mm512_slli_epi16(lo, 8), sh));
          a[1] = _mm512_add_epi16(a[1], sra16(_mm512_and_si512(lo, high), sh));
          a[2] = _mm512_add_epi16(a[2], sra16(_mm512_slli_epi16(hi, 8), sh));
          a[3] = _mm512_add_epi16(a[3], sra16(_mm512_and_si512(hi, high), sh));
        }
      }
      for (int j = 0; j < 4; j++) {
        acc[j] = _mm512_add_epi32(acc[j], widen16(_mm512_castsi512_si256(a[j])));
        acc[j] = _mm512_add_epi32(acc[j], widen16(_mm512_extracti64x4_epi64(a[j], 1)));
      }
    }
    // Lanes summed (8 even or odd rows each), then back to row order: 0-7, 8-15, 16-23, 24-31.
    __m256i rows[4];
    for (int q = 0; q < 2; q++) {
      const __m256i e = _mm256_add_epi32(_mm512_castsi512_si256(acc[2 * q]), _mm512_extracti64x4_epi64(acc[2 * q], 1));
      const __m256i o = _mm256_add_epi32(_mm512_castsi512_si256(acc[2 * q + 1]), _mm512_extracti64x4_epi64(acc[2 * q + 1], 1));
      const __m256i lo = _mm256_unpacklo_epi32(e, o), hi = _mm256_unpackhi_epi32(e, o);
      rows[2 * q] = _mm256_permute2x128_si256(lo, hi, 0x20);
      rows[2 * q + 1] = _mm256_permute2x128_si256(lo, hi, 0x31);
    }
    // sum += s * (ts * float(acc) - z * float(xsum)), the fast reference's operations (no FMA).
    const __m256 xsum = _mm256_set1_ps(float(xsums[g])), ts = _mm256_set1_ps(tscales[g]);
    for (int j = 0; j < 4; j++) {
      const __m256 s = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(gp + 16 * j)));
      const __m256 z = w.asymmetric ? _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(gp + 64 + 16 * j)))
                                    : zsym;
      __m256 zx = _mm256_mul_ps(z, xsum), ta = _mm256_mul_ps(ts, _mm256_cvtepi32_ps(rows[j]));
      asm("" : "+v"(zx), "+v"(ta));  // each product rounded on its own, as in the reference
      __m256 tt = _mm256_mul_ps(s, _mm256_sub_ps(ta, zx));
      asm("" : "+v"(tt));
      sum[j] = _mm256_add_ps(sum[j], tt);
    }
  }
  const __m256 d = _mm256_set1_ps(xs);
  for (int j = 0; j < 4; j++) _mm256_storeu_ps(out + 8 * j, _mm256_div_ps(sum[j], d));
}

}  // namespace

void lutra_bp_qs8_gemm_fast_1x32__avx512(const WeightView& w, const uint8_t* tables, size_t table_stride,
                                         const float* xs, float* y, size_t m, size_t n_begin, size_t n_end) {
  bp_gemm_tiles(w, tables, table_stride, xs, y, m, n_begin, n_end,
                [&w](const uint8_t* tile, const uint8_t* tab, float x, float* out) { tile_dot(w, tile, tab, x, out); });
}

}  // namespace lutra
