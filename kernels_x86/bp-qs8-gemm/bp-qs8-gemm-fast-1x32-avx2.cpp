// Bit-serial table-lookup GEMM, fast mode (int8 tables, GemmBpFn), 1 token x 32 rows per tile,
// AVX2. The exact kernel's loop with one table per chunk: per plane pair and half quad, two
// 32-byte loads of both chunks' nibbles (rows 0-15, 16-31), one pshufb per chunk gives the int8
// entries of 16 rows x 2 planes, and maddubs by (2^(2P), 2^(2P+1)) sums them per row into
// int16 (|entry| <= 127: 16 chunks stay in int16), flushed to int32 every 4 quads.
// Bit-identical to the fast scalar reference.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels_x86/bp-qs8-gemm/bp-qs8-gemm-tiles.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

constexpr size_t kPrefetch = 8192;  // bytes ahead in the weight stream

inline __m256i bcast16(const uint8_t* p) {
  return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

inline void tile_dot(const WeightView& w, const uint8_t* tile, const uint8_t* tab, float xs,
                     float out[32]) {
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  const size_t group = size_t(w.group), gpr = w.groups_per_row(), quads = group / 16;
  const size_t pairs = bp_plane_pairs(w.bits), gbytes = bp_group_bytes(w.bits, w.group, w.asymmetric);
  const int32_t* xsums = reinterpret_cast<const int32_t*>(tab + w.k / 16 * 64);
  const float* tscales = reinterpret_cast<const float*>(xsums + gpr);
  const __m256 zsym = _mm256_set1_ps(float(1u << (w.bits - 1)));
  __m256i weight[2];  // bytes (2^(2P), 2^(2P+1)) repeated
  for (size_t P = 0; P < 2; P++) weight[P] = _mm256_set1_epi16(int16_t((1 << (2 * P)) | (2 << (2 * P)) << 8));
  __m256 sum[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  const uint8_t* gp = tile;
  for (size_t g = 0; g < gpr; g++, gp += gbytes) {
    const uint8_t* blk = gp + (w.asymmetric ? 128 : 64);
    const uint8_t* gtab = tab + g * quads * 64;
    __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                      _mm256_setzero_si256()};  // rows 0-7, 8-15, 16-23, 24-31
    for (size_t u0 = 0; u0 < quads; u0 += 4) {
      __m256i a[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};  // rows 0-15, 16-31
      for (size_t u = u0; u < std::min(quads, u0 + 4); u++) {
        for (size_t h = 0; h < 2; h++) {
          const __m256i tA = bcast16(gtab + u * 64 + 32 * h), tB = bcast16(gtab + u * 64 + 32 * h + 16);
          for (size_t P = 0; P < pairs; P++, blk += 64) {
            _mm_prefetch(reinterpret_cast<const char*>(blk) + kPrefetch, _MM_HINT_T0);
            for (int r = 0; r < 2; r++) {
              const __m256i idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 * r));
              const __m256i ia = _mm256_and_si256(idx, nibble);
              const __m256i ib = _mm256_and_si256(_mm256_srli_epi16(idx, 4), nibble);
              a[r] = _mm256_add_epi16(a[r], _mm256_maddubs_epi16(weight[P], _mm256_shuffle_epi8(tA, ia)));
              a[r] = _mm256_add_epi16(a[r], _mm256_maddubs_epi16(weight[P], _mm256_shuffle_epi8(tB, ib)));
            }
          }
        }
      }
      for (int j = 0; j < 4; j++)
        acc[j] = _mm256_add_epi32(acc[j], _mm256_cvtepi16_epi32(j % 2 ? _mm256_extracti128_si256(a[j / 2], 1)
                                                                      : _mm256_castsi256_si128(a[j / 2])));
    }
    // sum += s * (ts * float(acc) - z * float(xsum)), the fast reference's operations (no FMA).
    const __m256 xsum = _mm256_set1_ps(float(xsums[g])), ts = _mm256_set1_ps(tscales[g]);
    for (int j = 0; j < 4; j++) {
      const __m256 s = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(gp + 16 * j)));
      const __m256 z = w.asymmetric ? _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(gp + 64 + 16 * j)))
                                    : zsym;
      __m256 zx = _mm256_mul_ps(z, xsum), ta = _mm256_mul_ps(ts, _mm256_cvtepi32_ps(acc[j]));
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
