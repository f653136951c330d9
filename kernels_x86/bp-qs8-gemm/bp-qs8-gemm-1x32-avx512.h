// Bit-serial table-lookup GEMM, 1 token x 32 rows per tile, AVX-512 (F/BW/VL): the tile dot of
// both modes, chosen by the template argument kFast (exact int16 tables or fast int8 tables).
// Included only by the two AVX-512 variants' .cpp files; the anonymous namespace gives each
// file its own copy.
//
// Per half quad (chunks A, B) the chunks' tables are broadcast to all four lanes; per plane
// pair, one 64-byte load holds both chunks' nibbles of 32 rows x 2 planes (byte 2q + d: row q,
// plane 2P + d). vpshufb looks up the entries and maddubs by (2^(2P), 2^(2P+1)) weighs the two
// planes and sums them per row into int16, flushed to int32 every 4 quads:
// - exact: each chunk has a low-byte and a high-byte table (128 bytes a quad); low-byte sums
//   (unsigned, wrapping) and high-byte sums run apart and flush as lo + 256 hi.
// - fast: one int8 table per chunk (64 bytes a quad); |entry| <= 127, so 16 chunks stay in int16.
// Rows stay in order, so per group the exact int32 acc_g of 16 rows per vector meets the f16
// scales (and zeros) in the reference's float steps: bit-identical to the scalar reference of
// the mode.
#pragma once

#include <immintrin.h>

#include <algorithm>

#include "kernels_x86/avx512-masked.h"
#include "kernels_common/bp-qs8-gemm-tiles.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

constexpr size_t kPrefetch = 8192;  // bytes ahead in the weight stream

inline __m512i bcast16(const uint8_t* p) {
  return _mm512_maskz_broadcast_i32x4(kAll16, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

template <bool kFast>
inline void tile_dot(const WeightView& w, const uint8_t* tile, const uint8_t* tab, float xs,
                     float out[32]) {
  constexpr size_t kQuadBytes = kFast ? 64 : 128;  // table bytes of 4 chunks
  const __m512i nibble = _mm512_set1_epi8(0x0f);
  const size_t group = size_t(w.group), gpr = w.groups_per_row(), quads = group / 16;
  const size_t pairs = bp_plane_pairs(w.bits), gbytes = bp_group_bytes(w.bits, w.group, w.asymmetric);
  const int32_t* xsums = reinterpret_cast<const int32_t*>(tab + w.k / 16 * kQuadBytes);
  const float* tscales = reinterpret_cast<const float*>(xsums + gpr);  // fast mode only
  const __m512 zsym = _mm512_set1_ps(float(1u << (w.bits - 1)));
  __m512i weight[2];  // bytes (2^(2P), 2^(2P+1)) repeated
  for (size_t P = 0; P < 2; P++) weight[P] = _mm512_set1_epi16(int16_t((1 << (2 * P)) | (2 << (2 * P)) << 8));
  __m512 sum[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  const uint8_t* gp = tile;
  for (size_t g = 0; g < gpr; g++, gp += gbytes) {
    const uint8_t* blk = gp + (w.asymmetric ? 128 : 64);
    const uint8_t* gtab = tab + g * quads * kQuadBytes;
    __m512i acc[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};  // rows 0-15, 16-31
    for (size_t u0 = 0; u0 < quads; u0 += 4) {
      __m512i lo = _mm512_setzero_si512();
      [[maybe_unused]] __m512i hi = _mm512_setzero_si512();  // exact mode
      for (size_t u = u0; u < std::min(quads, u0 + 4); u++) {
        for (size_t h = 0; h < 2; h++) {
          const uint8_t* qt = gtab + u * kQuadBytes + 32 * h;
          const __m512i loA = bcast16(qt), loB = bcast16(qt + 16);
          [[maybe_unused]] __m512i hiA, hiB;
          if constexpr (!kFast) hiA = bcast16(qt + 64), hiB = bcast16(qt + 80);
          for (size_t P = 0; P < pairs; P++, blk += 64) {
            _mm_prefetch(reinterpret_cast<const char*>(blk) + kPrefetch, _MM_HINT_T0);
            const __m512i idx = _mm512_loadu_si512(blk);
            const __m512i ia = _mm512_and_si512(idx, nibble);
            const __m512i ib = _mm512_and_si512(_mm512_srli_epi16(idx, 4), nibble);
            if constexpr (kFast) {  // signed int8 entries x unsigned weights
              lo = _mm512_add_epi16(lo, _mm512_maddubs_epi16(weight[P], _mm512_shuffle_epi8(loA, ia)));
              lo = _mm512_add_epi16(lo, _mm512_maddubs_epi16(weight[P], _mm512_shuffle_epi8(loB, ib)));
            } else {  // unsigned low bytes x weights; signed high bytes x unsigned weights
              lo = _mm512_add_epi16(lo, _mm512_maddubs_epi16(_mm512_shuffle_epi8(loA, ia), weight[P]));
              lo = _mm512_add_epi16(lo, _mm512_maddubs_epi16(_mm512_shuffle_epi8(loB, ib), weight[P]));
              hi = _mm512_add_epi16(hi, _mm512_maddubs_epi16(weight[P], _mm512_shuffle_epi8(hiA, ia)));
              hi = _mm512_add_epi16(hi, _mm512_maddubs_epi16(weight[P], _mm512_shuffle_epi8(hiB, ib)));
            }
          }
        }
      }
      for (int r = 0; r < 2; r++) {
        const __m256i l = r ? hi256(lo) : lo256(lo);
        if constexpr (kFast) {
          acc[r] = _mm512_add_epi32(acc[r], _mm512_maskz_cvtepi16_epi32(kAll16, l));
        } else {  // lo sums are unsigned (< 2^16 for 4 quads: 16 chunks x 255 x 15); value = lo + 256 hi
          const __m256i hh = r ? hi256(hi) : lo256(hi);
          acc[r] = _mm512_add_epi32(acc[r], _mm512_maskz_cvtepu16_epi32(kAll16, l));
          acc[r] = _mm512_add_epi32(acc[r], _mm512_maskz_slli_epi32(kAll16, _mm512_maskz_cvtepi16_epi32(kAll16, hh), 8));
        }
      }
    }
    // sum += s * (ts * float(acc) - z * float(xsum)), the reference's operations (no FMA); the
    // exact mode has no ts.
    const __m512 xsum = _mm512_set1_ps(float(xsums[g]));
    for (int r = 0; r < 2; r++) {
      const __m512 s = _mm512_maskz_cvtph_ps(kAll16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(gp + 32 * r)));
      const __m512 z = w.asymmetric ? _mm512_maskz_cvtph_ps(kAll16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(gp + 64 + 32 * r)))
                                    : zsym;
      __m512 zx = _mm512_mul_ps(z, xsum), a = _mm512_maskz_cvtepi32_ps(kAll16, acc[r]);
      if constexpr (kFast) a = _mm512_mul_ps(_mm512_set1_ps(tscales[g]), a);
      asm("" : "+v"(zx), "+v"(a));  // each product rounded on its own, as in the reference
      __m512 t = _mm512_mul_ps(s, _mm512_sub_ps(a, zx));
      asm("" : "+v"(t));
      sum[r] = _mm512_add_ps(sum[r], t);
    }
  }
  const __m512 d = _mm512_set1_ps(xs);
  for (int r = 0; r < 2; r++) _mm512_storeu_ps(out + 16 * r, _mm512_div_ps(sum[r], d));
}

// The whole GEMM (GemmBpFn) of the mode.
template <bool kFast>
inline void bp_gemm_1x32_avx512(const WeightView& w, const uint8_t* tables, size_t table_stride,
                                const float* xs, float* y, size_t m, size_t n_begin, size_t n_end) {
  bp_gemm_tiles(w, tables, table_stride, xs, y, m, n_begin, n_end,
                [&w](const uint8_t* tile, const uint8_t* tab, float x, float* out) { tile_dot<kFast>(w, tile, tab, x, out); });
}

}  // namespace
}  // namespace lutra
