// Bit-serial table-lookup GEMM, 1 token x 32 rows per tile, AVX2: the tile dot of both modes,
// chosen by the template argument kFast (exact int16 tables or fast int8 tables). Included only
// by the two AVX2 variants' .cpp files; the anonymous namespace gives each file its own copy.
//
// Per half quad (chunks A, B) the chunks' tables are broadcast to both lanes; per plane pair,
// two 32-byte loads hold both chunks' nibbles of rows 0-15 and 16-31 x 2 planes (byte 2q + d:
// row q, plane 2P + d). pshufb looks up the entries and maddubs by (2^(2P), 2^(2P+1)) weighs the
// two planes and sums them per row into int16, flushed to int32 every 4 quads:
// - exact: each chunk has a low-byte and a high-byte table (128 bytes a quad); low-byte sums
//   (unsigned, wrapping) and high-byte sums run apart and flush as lo + 256 hi.
// - fast: one int8 table per chunk (64 bytes a quad); |entry| <= 127, so 16 chunks stay in int16.
// Per group the exact int32 acc_g meets the f16 scales (and zeros) in the reference's float
// steps, eight rows per vector: bit-identical to the scalar reference of the mode.
#pragma once

#include <immintrin.h>

#include <algorithm>

#include "kernels_common/bp-qs8-gemm-tiles.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

constexpr size_t kPrefetch = 8192;  // bytes ahead in the weight stream

inline __m256i bcast16(const uint8_t* p) {
  return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// Half j (rows 8j .. 8j+7 of a 32-row pair of vectors) of v[j / 2].
inline __m128i half8(const __m256i v[2], int j) {
  return j % 2 ? _mm256_extracti128_si256(v[j / 2], 1) : _mm256_castsi256_si128(v[j / 2]);
}

template <bool kFast>
inline void tile_dot(const WeightView& w, const uint8_t* tile, const uint8_t* tab, float xs,
                     float out[32]) {
  constexpr size_t kQuadBytes = kFast ? 64 : 128;  // table bytes of 4 chunks
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  const size_t group = size_t(w.group), gpr = w.groups_per_row(), quads = group / 16;
  const size_t pairs = bp_plane_pairs(w.bits), gbytes = bp_group_bytes(w.bits, w.group, w.asymmetric);
  const int32_t* xsums = reinterpret_cast<const int32_t*>(tab + w.k / 16 * kQuadBytes);
  const float* tscales = reinterpret_cast<const float*>(xsums + gpr);  // fast mode only
  const __m256 zsym = _mm256_set1_ps(float(1u << (w.bits - 1)));
  __m256i weight[2];  // bytes (2^(2P), 2^(2P+1)) repeated
  for (size_t P = 0; P < 2; P++) weight[P] = _mm256_set1_epi16(int16_t((1 << (2 * P)) | (2 << (2 * P)) << 8));
  __m256 sum[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  const uint8_t* gp = tile;
  for (size_t g = 0; g < gpr; g++, gp += gbytes) {
    const uint8_t* blk = gp + (w.asymmetric ? 128 : 64);
    const uint8_t* gtab = tab + g * quads * kQuadBytes;
    __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                      _mm256_setzero_si256()};  // rows 0-7, 8-15, 16-23, 24-31
    for (size_t u0 = 0; u0 < quads; u0 += 4) {
      __m256i lo[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};  // rows 0-15, 16-31
      [[maybe_unused]] __m256i hi[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};  // exact
      for (size_t u = u0; u < std::min(quads, u0 + 4); u++) {
        for (size_t h = 0; h < 2; h++) {
          const uint8_t* qt = gtab + u * kQuadBytes + 32 * h;
          const __m256i loA = bcast16(qt), loB = bcast16(qt + 16);
          [[maybe_unused]] __m256i hiA, hiB;
          if constexpr (!kFast) hiA = bcast16(qt + 64), hiB = bcast16(qt + 80);
          for (size_t P = 0; P < pairs; P++, blk += 64) {
            _mm_prefetch(reinterpret_cast<const char*>(blk) + kPrefetch, _MM_HINT_T0);
            for (int r = 0; r < 2; r++) {
              const __m256i idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 * r));
              const __m256i ia = _mm256_and_si256(idx, nibble);
              const __m256i ib = _mm256_and_si256(_mm256_srli_epi16(idx, 4), nibble);
              if constexpr (kFast) {  // signed int8 entries x unsigned weights
                lo[r] = _mm256_add_epi16(lo[r], _mm256_maddubs_epi16(weight[P], _mm256_shuffle_epi8(loA, ia)));
                lo[r] = _mm256_add_epi16(lo[r], _mm256_maddubs_epi16(weight[P], _mm256_shuffle_epi8(loB, ib)));
              } else {  // unsigned low bytes x weights; signed high bytes x unsigned weights
                lo[r] = _mm256_add_epi16(lo[r], _mm256_maddubs_epi16(_mm256_shuffle_epi8(loA, ia), weight[P]));
                lo[r] = _mm256_add_epi16(lo[r], _mm256_maddubs_epi16(_mm256_shuffle_epi8(loB, ib), weight[P]));
                hi[r] = _mm256_add_epi16(hi[r], _mm256_maddubs_epi16(weight[P], _mm256_shuffle_epi8(hiA, ia)));
                hi[r] = _mm256_add_epi16(hi[r], _mm256_maddubs_epi16(weight[P], _mm256_shuffle_epi8(hiB, ib)));
              }
            }
          }
        }
      }
      for (int j = 0; j < 4; j++) {
        if constexpr (kFast) {
          acc[j] = _mm256_add_epi32(acc[j], _mm256_cvtepi16_epi32(half8(lo, j)));
        } else {  // lo sums are unsigned (< 2^16 for 4 quads: 16 chunks x 255 x 15); value = lo + 256 hi
          acc[j] = _mm256_add_epi32(acc[j], _mm256_cvtepu16_epi32(half8(lo, j)));
          acc[j] = _mm256_add_epi32(acc[j], _mm256_slli_epi32(_mm256_cvtepi16_epi32(half8(hi, j)), 8));
        }
      }
    }
    // sum += s * (ts * float(acc) - z * float(xsum)), the reference's operations (no FMA); the
    // exact mode has no ts.
    const __m256 xsum = _mm256_set1_ps(float(xsums[g]));
    for (int j = 0; j < 4; j++) {
      const __m256 s = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(gp + 16 * j)));
      const __m256 z = w.asymmetric ? _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(gp + 64 + 16 * j)))
                                    : zsym;
      __m256 zx = _mm256_mul_ps(z, xsum), a = _mm256_cvtepi32_ps(acc[j]);
      if constexpr (kFast) a = _mm256_mul_ps(_mm256_set1_ps(tscales[g]), a);
      asm("" : "+x"(zx), "+x"(a));  // each product rounded on its own, as in the reference
      __m256 t = _mm256_mul_ps(s, _mm256_sub_ps(a, zx));
      asm("" : "+x"(t));
      sum[j] = _mm256_add_ps(sum[j], t);
    }
  }
  const __m256 d = _mm256_set1_ps(xs);
  for (int j = 0; j < 4; j++) _mm256_storeu_ps(out + 8 * j, _mm256_div_ps(sum[j], d));
}

// The whole GEMM (GemmBpFn) of the mode.
template <bool kFast>
inline void bp_gemm_1x32_avx2(const WeightView& w, const uint8_t* tables, size_t table_stride,
                              const float* xs, float* y, size_t m, size_t n_begin, size_t n_end) {
  bp_gemm_tiles(w, tables, table_stride, xs, y, m, n_begin, n_end,
                [&w](const uint8_t* tile, const uint8_t* tab, float x, float* out) { tile_dot<kFast>(w, tile, tab, x, out); });
}

}  // namespace
}  // namespace lutra
