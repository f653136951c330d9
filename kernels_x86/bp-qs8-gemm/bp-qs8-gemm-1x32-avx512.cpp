// Bit-serial table-lookup GEMM, exact mode (WeightFormat::bp, GemmBpFn), 1 token x 32 rows per
// tile, AVX-512 (F/BW/VL). The AVX2 kernel's scheme a quad at a time: the low and high byte
// tables of the quad's 4 chunks are one 64-byte register each, and one 64-byte index load per
// plane gives the nibbles of 32 rows x 4 chunks (lane = chunk); four vpshufb, byte unpacks
// into int16 (rows 0-7, 8-15, 16-23, 24-31), shifted by the plane and summed in int16 for
// 2 * bp_flush_quads quads (each lane sees one chunk per quad), widened to int32 and the
// four lanes summed per group. The float steps are the reference's: bit-identical to it.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels_x86/bp-qs8-gemm/bp-qs8-gemm-tiles.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

constexpr size_t kPrefetch = 8192;  // bytes ahead in the weight stream

// Zero-masked forms with full masks: GCC 12's unmasked forms of these trip
// -Wmaybe-uninitialized inside its headers (see t2-qs8-gemm-1x4-avx512.cpp).
constexpr __mmask64 kAll64 = ~__mmask64(0);
constexpr __mmask32 kAll32 = ~__mmask32(0);
inline __m512i unpacklo8(__m512i a, __m512i b) { return _mm512_maskz_unpacklo_epi8(kAll64, a, b); }
inline __m512i unpackhi8(__m512i a, __m512i b) { return _mm512_maskz_unpackhi_epi8(kAll64, a, b); }
inline __m512i widen16(__m256i v) { return _mm512_maskz_cvtepi16_epi32(0xffff, v); }
inline __m512i sll16(__m512i v, __m128i s) { return _mm512_maskz_sll_epi16(kAll32, v, s); }

inline void tile_dot(const WeightView& w, const uint8_t* tile, const uint8_t* tab, float xs,
                     float out[32]) {
  const __m512i nibble = _mm512_set1_epi8(0x0f);
  const size_t group = size_t(w.group), gpr = w.groups_per_row(), quads = group / 16;
  const size_t flush = 2 * bp_flush_quads(w.bits), gbytes = bp_group_bytes(w.bits, w.group, w.asymmetric);
  const int bits = w.bits;
  const int32_t* xsums = reinterpret_cast<const int32_t*>(tab + w.k / 16 * 128);
  const __m256 zsym = _mm256_set1_ps(float(1u << (bits - 1)));
  __m256 sum[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  const uint8_t* gp = tile;
  for (size_t g = 0; g < gpr; g++, gp += gbytes) {
    const uint8_t* planes = gp + (w.asymmetric ? 128 : 64);
    const uint8_t* gtab = tab + g * quads * 128;
    // acc[j]: rows 8j..8j+7 of chunks {0, 2} (low half) and {1, 3} (high half), int32
    __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                      _mm512_setzero_si512()};
    for (size_t u0 = 0; u0 < quads; u0 += flush) {
      __m512i a[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                      _mm512_setzero_si512()};
      for (size_t u = u0; u < std::min(quads, u0 + flush); u++) {
        const __m512i tl = _mm512_loadu_si512(gtab + u * 128);
        const __m512i th = _mm512_loadu_si512(gtab + u * 128 + 64);
        const uint8_t* qp = planes + u * size_t(bits) * 64;
        for (int i = 0; i < bits; i++) {
          _mm_prefetch(reinterpret_cast<const char*>(qp + 64 * i) + kPrefetch, _MM_HINT_T0);
          const __m128i sh = _mm_cvtsi32_si128(i);
          const __m512i idx = _mm512_loadu_si512(qp + 64 * i);
          const __m512i il = _mm512_and_si512(idx, nibble);
          const __m512i ih = _mm512_and_si512(_mm512_srli_epi16(idx, 4), nibble);
          const __m512i l0 = _mm512_shuffle_epi8(tl, il), h0 = _mm512_shuffle_epi8(th, il);
          const __m512i l1 = _mm512_shuffle_epi8(tl, ih), h1 = _mm512_shuffle_epi8(th, ih);
          a[0] = _mm512_add_epi16(a[0], sll16(unpacklo8(l0, h0), sh));
          a[1] = _mm512_add_epi16(a[1], sll16(unpackhi8(l0, h0), sh));
          a[2] = _mm512_add_epi16(a[2], sll16(unpacklo8(l1, h1), sh));
          a[3] = _mm512_add_epi16(a[3], sll16(unpackhi8(l1, h1), sh));
        }
      }
      for (int j = 0; j < 4; j++) {  // lanes (chunks) 0, 1 and 2, 3, widened
        acc[j] = _mm512_add_epi32(acc[j], widen16(_mm512_castsi512_si256(a[j])));
        acc[j] = _mm512_add_epi32(acc[j], widen16(_mm512_extracti64x4_epi64(a[j], 1)));
      }
    }
    // sum += s * (float(acc) - z * float(xsum)), the reference's operations (no FMA).
    const __m256 xsum = _mm256_set1_ps(float(xsums[g]));
    for (int j = 0; j < 4; j++) {
      const __m256i rows = _mm256_add_epi32(_mm512_castsi512_si256(acc[j]), _mm512_extracti64x4_epi64(acc[j], 1));
      const __m256 s = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(gp + 16 * j)));
      const __m256 z = w.asymmetric ? _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(gp + 64 + 16 * j)))
                                    : zsym;
      __m256 zx = _mm256_mul_ps(z, xsum);
      asm("" : "+v"(zx));  // rounded on its own, as in the reference
      __m256 t = _mm256_mul_ps(s, _mm256_sub_ps(_mm256_cvtepi32_ps(rows), zx));
      asm("" : "+v"(t));
      sum[j] = _mm256_add_ps(sum[j], t);
    }
  }
  const __m256 d = _mm256_set1_ps(xs);
  for (int j = 0; j < 4; j++) _mm256_storeu_ps(out + 8 * j, _mm256_div_ps(sum[j], d));
}

}  // namespace

void lutra_bp_qs8_gemm_1x32__avx512(const WeightView& w, const uint8_t* tables, size_t table_stride,
                                    const float* xs, float* y, size_t m, size_t n_begin, size_t n_end) {
  bp_gemm_tiles(w, tables, table_stride, xs, y, m, n_begin, n_end,
                [&w](const uint8_t* tile, const uint8_t* tab, float x, float* out) { tile_dot(w, tile, tab, x, out); });
}

}  // namespace lutra
