// Bit-serial table-lookup GEMM, fast mode (int8 tables, GemmBpFn), 1 token x 32 rows per tile,
// AVX2. Per quad the int8 tables of chunks 0/1 and 2/3 are one 32-byte register each; per
// plane and half, one pshufb per 16 rows gives the entries as bytes, which shifts split into
// even and odd rows as int16 already multiplied by 2^plane (no byte unpacks: half the shuffle
// work of the exact mode). Sums stay in int16 for 2 * bp_flush_quads quads (|entry| <= 127),
// then widen to int32, are put back in row order, and meet the group's table scale, f16 scales
// and zeros in the fast reference's float steps: bit-identical to it.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels_x86/bp-qs8-gemm/bp-qs8-gemm-tiles.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

constexpr size_t kPrefetch = 8192;  // bytes ahead in the weight stream

inline void tile_dot(const WeightView& w, const uint8_t* tile, const uint8_t* tab, float xs,
                     float out[32]) {
  const __m256i nibble = _mm256_set1_epi8(0x0f), high = _mm256_set1_epi16(int16_t(0xff00));
  const size_t group = size_t(w.group), gpr = w.groups_per_row(), quads = group / 16;
  const size_t flush = 2 * bp_flush_quads(w.bits), gbytes = bp_group_bytes(w.bits, w.group, w.asymmetric);
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
    __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                      _mm256_setzero_si256()};
    for (size_t u0 = 0; u0 < quads; u0 += flush) {
      __m256i a[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                      _mm256_setzero_si256()};
      for (size_t u = u0; u < std::min(quads, u0 + flush); u++) {
        const __m256i t0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(gtab + u * 64));
        const __m256i t1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(gtab + u * 64 + 32));
        const uint8_t* qp = planes + u * size_t(bits) * 64;
        _mm_prefetch(reinterpret_cast<const char*>(qp) + kPrefetch, _MM_HINT_T0);
        for (int i = 0; i < bits; i++) {
          if (i % 2 == 1) _mm_prefetch(reinterpret_cast<const char*>(qp + 64 * i) + kPrefetch, _MM_HINT_T0);
          // (byte << 8) >> (8 - i), arithmetic: the signed byte times 2^i
          const __m128i sh = _mm_cvtsi32_si128(8 - i);
          for (int h = 0; h < 2; h++) {
            const __m256i idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qp + 64 * i + 32 * h));
            const __m256i t = h ? t1 : t0;
            const __m256i lo = _mm256_shuffle_epi8(t, _mm256_and_si256(idx, nibble));
            const __m256i hi = _mm256_shuffle_epi8(t, _mm256_and_si256(_mm256_srli_epi16(idx, 4), nibble));
            a[0] = _mm256_add_epi16(a[0], _mm256_sra_epi16(_mm256_slli_epi16(lo, 8), sh));
            a[1] = _mm256_add_epi16(a[1], _mm256_sra_epi16(_mm256_and_si256(lo, high), sh));
            a[2] = _mm256_add_epi16(a[2], _mm256_sra_epi16(_mm256_slli_epi16(hi, 8), sh));
            a[3] = _mm256_add_epi16(a[3], _mm256_sra_epi16(_mm256_and_si256(hi, high), sh));
          }
        }
      }
      for (int j = 0; j < 4; j++) {  // even chunks (lane 0) + odd chunks (lane 1), widened
        acc[j] = _mm256_add_epi32(acc[j], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(a[j])));
        acc[j] = _mm256_add_epi32(acc[j], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(a[j], 1)));
      }
    }
    // Back to row order: rows 0-7, 8-15, 16-23, 24-31.
    __m256i rows[4];
    for (int q = 0; q < 2; q++) {
      const __m256i lo = _mm256_unpacklo_epi32(acc[2 * q], acc[2 * q + 1]);  // 0-3 | 8-11
      const __m256i hi = _mm256_unpackhi_epi32(acc[2 * q], acc[2 * q + 1]);  // 4-7 | 12-15
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
      asm("" : "+x"(zx), "+x"(ta));  // each product rounded on its own, as in the reference
      __m256 t = _mm256_mul_ps(s, _mm256_sub_ps(ta, zx));
      asm("" : "+x"(t));
      sum[j] = _mm256_add_ps(sum[j], t);
    }
  }
  const __m256 d = _mm256_set1_ps(xs);
  for (int j = 0; j < 4; j++) _mm256_storeu_ps(out + 8 * j, _mm256_div_ps(sum[j], d));
}

}  // namespace

void lutra_bp_qs8_gemm_fast_1x32__avx2(const WeightView& w, const uint8_t* tables, size_t table_stride,
                                       const float* xs, float* y, size_t m, size_t n_begin, size_t n_end) {
  bp_gemm_tiles(w, tables, table_stride, xs, y, m, n_begin, n_end,
                [&w](const uint8_t* tile, const uint8_t* tab, float x, float* out) { tile_dot(w, tile, tab, x, out); });
}

}  // namespace lutra
