// Bit-serial table-lookup GEMM, exact mode (WeightFormat::bp, GemmBpFn), 1 token x 32 rows per
// tile, AVX2. Per quad (16 activations, 4 chunks) the tables of chunks 0/1 and 2/3 are loaded
// once as [lo(c) | lo(c+1)] and [hi(c) | hi(c+1)]; per plane, two 32-byte index loads give the
// nibbles of 32 rows x 2 chunks each; four pshufb look up the low and high bytes, unpack joins
// them into int16 entries (rows 0-7, 8-15, 16-23, 24-31; lane = chunk parity), shifted by the
// plane and summed in int16 for up to bp_flush_quads quads, then widened to int32. Per group
// the exact int32 acc_g meets the f16 scales (and zeros) in the reference's float steps,
// eight rows per vector: bit-identical to the bq-qs8 scalar reference.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels_x86/bp-qs8-gemm/bp-qs8-gemm-tiles.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

constexpr size_t kPrefetch = 8192;  // bytes ahead in the weight stream

// 32 rows of one token: out[s] = y of row s of the tile.
inline void tile_dot(const WeightView& w, const uint8_t* tile, const uint8_t* tab, float xs,
                     float out[32]) {
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  const size_t group = size_t(w.group), gpr = w.groups_per_row(), quads = group / 16;
  const size_t flush = bp_flush_quads(w.bits), gbytes = bp_group_bytes(w.bits, w.group, w.asymmetric);
  const int bits = w.bits;
  const int32_t* xsums = reinterpret_cast<const int32_t*>(tab + w.k / 16 * 128);
  const __m256 zsym = _mm256_set1_ps(float(1u << (bits - 1)));
  __m256 sum[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  const uint8_t* gp = tile;
  for (size_t g = 0; g < gpr; g++, gp += gbytes) {
    const uint8_t* planes = gp + (w.asymmetric ? 128 : 64);
    const uint8_t* gtab = tab + g * quads * 128;
    __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                      _mm256_setzero_si256()};
    for (size_t u0 = 0; u0 < quads; u0 += flush) {
      __m256i a[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                      _mm256_setzero_si256()};
      for (size_t u = u0; u < std::min(quads, u0 + flush); u++) {
        const uint8_t* qt = gtab + u * 128;
        const __m256i tl0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qt));
        const __m256i tl1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qt + 32));
        const __m256i th0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qt + 64));
        const __m256i th1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qt + 96));
        const uint8_t* qp = planes + u * size_t(bits) * 64;
        _mm_prefetch(reinterpret_cast<const char*>(qp) + kPrefetch, _MM_HINT_T0);
        for (int i = 0; i < bits; i++) {
          if (i % 2 == 1) _mm_prefetch(reinterpret_cast<const char*>(qp + 64 * i) + kPrefetch, _MM_HINT_T0);
          const __m128i sh = _mm_cvtsi32_si128(i);
          for (int h = 0; h < 2; h++) {
            const __m256i idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qp + 64 * i + 32 * h));
            const __m256i il = _mm256_and_si256(idx, nibble);
            const __m256i ih = _mm256_and_si256(_mm256_srli_epi16(idx, 4), nibble);
            const __m256i tl = h ? tl1 : tl0, th = h ? th1 : th0;
            const __m256i l0 = _mm256_shuffle_epi8(tl, il), h0 = _mm256_shuffle_epi8(th, il);
            const __m256i l1 = _mm256_shuffle_epi8(tl, ih), h1 = _mm256_shuffle_epi8(th, ih);
            a[0] = _mm256_add_epi16(a[0], _mm256_sll_epi16(_mm256_unpacklo_epi8(l0, h0), sh));
            a[1] = _mm256_add_epi16(a[1], _mm256_sll_epi16(_mm256_unpackhi_epi8(l0, h0), sh));
            a[2] = _mm256_add_epi16(a[2], _mm256_sll_epi16(_mm256_unpacklo_epi8(l1, h1), sh));
            a[3] = _mm256_add_epi16(a[3], _mm256_sll_epi16(_mm256_unpackhi_epi8(l1, h1), sh));
          }
        }
      }
      for (int j = 0; j < 4; j++) {  // even chunks (lane 0) + odd chunks (lane 1), widened
        acc[j] = _mm256_add_epi32(acc[j], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(a[j])));
        acc[j] = _mm256_add_epi32(acc[j], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(a[j], 1)));
      }
    }
    // sum += s * (float(acc) - z * float(xsum)), the reference's operations (no FMA).
    const __m256 xsum = _mm256_set1_ps(float(xsums[g]));
    for (int j = 0; j < 4; j++) {
      const __m256 s = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(gp + 16 * j)));
      const __m256 z = w.asymmetric ? _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(gp + 64 + 16 * j)))
                                    : zsym;
      __m256 zx = _mm256_mul_ps(z, xsum);
      asm("" : "+x"(zx));  // rounded on its own, as in the reference
      __m256 t = _mm256_mul_ps(s, _mm256_sub_ps(_mm256_cvtepi32_ps(acc[j]), zx));
      asm("" : "+x"(t));
      sum[j] = _mm256_add_ps(sum[j], t);
    }
  }
  const __m256 d = _mm256_set1_ps(xs);
  for (int j = 0; j < 4; j++) _mm256_storeu_ps(out + 8 * j, _mm256_div_ps(sum[j], d));
}

}  // namespace

void lutra_bp_qs8_gemm_1x32__avx2(const WeightView& w, const uint8_t* tables, size_t table_stride,
                                  const float* xs, float* y, size_t m, size_t n_begin, size_t n_end) {
  bp_gemm_tiles(w, tables, table_stride, xs, y, m, n_begin, n_end,
                [&w](const uint8_t* tile, const uint8_t* tab, float x, float* out) { tile_dot(w, tile, tab, x, out); });
}

}  // namespace lutra
