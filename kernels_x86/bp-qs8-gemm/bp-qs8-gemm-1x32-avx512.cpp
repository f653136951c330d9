// Bit-serial table-lookup GEMM, exact mode (WeightFormat::bp, GemmBpFn), 1 token x 32 rows per
// tile, AVX-512 (F/BW/VL). Per half quad (chunks A, B) the low and high byte tables of each
// chunk are broadcast to all four lanes; per plane pair, one 64-byte load holds both chunks'
// nibbles of 32 rows x 2 planes (byte 2q + d: row q, plane 2P + d). vpshufb looks up the low
// and the high bytes, and maddubs by (2^(2P), 2^(2P+1)) weighs the two planes and sums them
// per row into int16: low-byte sums (unsigned, wrapping) and high-byte sums apart, flushed to
// int32 as lo + 256 hi every 4 quads. Rows stay in order, so per group the exact int32
// acc_g of 16 rows per vector meets the f16 scales (and zeros) in the reference's float
// steps: bit-identical to the bq-qs8 scalar reference.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels_x86/bp-qs8-gemm/bp-qs8-gemm-tiles.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

// Zero-masked forms with full masks (same instructions), as in the t2/t3 AVX-512 kernels:
// GCC 12's unmasked broadcast, extract and convert intrinsics trip -Wmaybe-uninitialized
// inside its headers (they start from _mm512_undefined_*).
constexpr __mmask8 kAll8 = 0xff;
constexpr __mmask16 kAll16 = 0xffff;
constexpr __mmask32 kAll32 = 0xffffffff;

constexpr size_t kPrefetch = 8192;  // bytes ahead in the weight stream

inline __m512i bcast16(const uint8_t* p) {
  return _mm512_maskz_broadcast_i32x4(kAll16, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

inline void tile_dot(const WeightView& w, const uint8_t* tile, const uint8_t* tab, float xs,
                     float out[32]) {
  const __m512i nibble = _mm512_set1_epi8(0x0f);
  const size_t group = size_t(w.group), gpr = w.groups_per_row(), quads = group / 16;
  const size_t pairs = bp_plane_pairs(w.bits), gbytes = bp_group_bytes(w.bits, w.group, w.asymmetric);
  const int32_t* xsums = reinterpret_cast<const int32_t*>(tab + w.k / 16 * 128);
  const __m512 zsym = _mm512_set1_ps(float(1u << (w.bits - 1)));
  __m512i weight[2];  // bytes (2^(2P), 2^(2P+1)) repeated
  for (size_t P = 0; P < 2; P++) weight[P] = _mm512_set1_epi16(int16_t((1 << (2 * P)) | (2 << (2 * P)) << 8));
  __m512 sum[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  const uint8_t* gp = tile;
  for (size_t g = 0; g < gpr; g++, gp += gbytes) {
    const uint8_t* blk = gp + (w.asymmetric ? 128 : 64);
    const uint8_t* gtab = tab + g * quads * 128;
    __m512i acc[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};  // rows 0-15, 16-31
    for (size_t u0 = 0; u0 < quads; u0 += 4) {
      __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
      for (size_t u = u0; u < std::min(quads, u0 + 4); u++) {
        for (size_t h = 0; h < 2; h++) {
          const uint8_t* qt = gtab + u * 128 + 32 * h;
          const __m512i loA = bcast16(qt), loB = bcast16(qt + 16);
          const __m512i hiA = bcast16(qt + 64), hiB = bcast16(qt + 80);
          for (size_t P = 0; P < pairs; P++, blk += 64) {
            _mm_prefetch(reinterpret_cast<const char*>(blk) + kPrefetch, _MM_HINT_T0);
            const __m512i idx = _mm512_loadu_si512(blk);
            const __m512i ia = _mm512_and_si512(idx, nibble);
            const __m512i ib = _mm512_and_si512(_mm512_srli_epi16(idx, 4), nibble);
            lo = _mm512_add_epi16(lo, _mm512_maddubs_epi16(_mm512_shuffle_epi8(loA, ia), weight[P]));
            lo = _mm512_add_epi16(lo, _mm512_maddubs_epi16(_mm512_shuffle_epi8(loB, ib), weight[P]));
            hi = _mm512_add_epi16(hi, _mm512_maddubs_epi16(weight[P], _mm512_shuffle_epi8(hiA, ia)));
            hi = _mm512_add_epi16(hi, _mm512_maddubs_epi16(weight[P], _mm512_shuffle_epi8(hiB, ib)));
          }
        }
      }
      // lo sums are unsigned (< 2^16 for 4 quads: 16 chunks x 255 x 15); value = lo + 256 hi
      for (int r = 0; r < 2; r++) {
        const __m256i l = r ? _mm512_maskz_extracti64x4_epi64(kAll8, lo, 1) : _mm512_maskz_extracti64x4_epi64(kAll8, lo, 0);
        const __m256i hh = r ? _mm512_maskz_extracti64x4_epi64(kAll8, hi, 1) : _mm512_maskz_extracti64x4_epi64(kAll8, hi, 0);
        acc[r] = _mm512_add_epi32(acc[r], _mm512_maskz_cvtepu16_epi32(kAll16, l));
        acc[r] = _mm512_add_epi32(acc[r], _mm512_maskz_slli_epi32(kAll16, _mm512_maskz_cvtepi16_epi32(kAll16, hh), 8));
      }
    }
    // sum += s * (float(acc) - z * float(xsum)), the reference's operations (no FMA).
    const __m512 xsum = _mm512_set1_ps(float(xsums[g]));
    for (int r = 0; r < 2; r++) {
      const __m512 s = _mm512_maskz_cvtph_ps(kAll16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(gp + 32 * r)));
      const __m512 z = w.asymmetric ? _mm512_maskz_cvtph_ps(kAll16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(gp + 64 + 32 * r)))
                                    : zsym;
      __m512 zx = _mm512_mul_ps(z, xsum);
      asm("" : "+v"(zx));  // rounded on its own, as in the reference
      __m512 t = _mm512_mul_ps(s, _mm512_sub_ps(_mm512_maskz_cvtepi32_ps(kAll16, acc[r]), zx));
      asm("" : "+v"(t));
      sum[r] = _mm512_add_ps(sum[r], t);
    }
  }
  const __m512 d = _mm512_set1_ps(xs);
  for (int r = 0; r < 2; r++) _mm512_storeu_ps(out + 16 * r, _mm512_div_ps(sum[r], d));
}

}  // namespace

void lutra_bp_qs8_gemm_1x32__avx512(const WeightView& w, const uint8_t* tables, size_t table_stride,
                                    const float* xs, float* y, size_t m, size_t n_begin, size_t n_end) {
  bp_gemm_tiles(w, tables, table_stride, xs, y, m, n_begin, n_end,
                [&w](const uint8_t* tile, const uint8_t* tab, float x, float* out) { tile_dot(w, tile, tab, x, out); });
}

}  // namespace lutra
