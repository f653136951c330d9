// Ternary x int8 GEMM by table lookup (WeightFormat::t3), 1 token x 32 output rows per tile,
// AVX2. Per block of 2 groups (40 packed bytes, 32 rows):
// - one 32-byte load gives the index nibbles of groups 2p (lane 0) and 2p+1 (lane 1); the low
//   nibbles are rows 0..15, the high nibbles rows 16..31;
// - the tables of the two groups sit in the same lanes ([lo(2p) | lo(2p+1)], [hi(2p) |
//   hi(2p+1)]), so four pshufb look up the low and high bytes of T for 64 row-groups;
// - each sign word expands to byte masks (broadcast, and, cmpeq); xor with the mask turns both
//   bytes of T into those of ~T = -T - 1 for negative groups; the +1 per negative group is the
//   tile's stored count neg[s], the starting value of the int32 sums;
// - unpacklo/hi_epi8 of the low and high bytes give the int16 values of rows 0-7, 8-15, 16-23,
//   24-31 (lane = group parity), summed in int16 for 64 blocks (|sum| <= 64 * 385 < 2^15) and
//   then widened into int32.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels_common/t3-qs8-gemm-tiles.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

// Bytes ahead in the weight stream (the next tiles too): far enough to cover DRAM latency.
constexpr size_t kPrefetch = 8192;

constexpr size_t kFlushBlocks = 64;  // int16 sums of at most 64 groups per lane

// out[s] = sum over groups of row s of the tile, one token.
inline void tile_dot(const uint8_t* tile, size_t blocks, const uint8_t* tab, int32_t out[32]) {
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  // Byte 4d + b of a broadcast sign word holds its byte b; the mask tests bit d of it.
  const __m256i bits = _mm256_setr_epi8(1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 8, 8, 8, 8, 16, 16, 16,
                                        16, 32, 32, 32, 32, 64, 64, 64, 64, -128, -128, -128, -128);
  __m256i acc[4];
  for (int j = 0; j < 4; j++)
    acc[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tile) + j);  // neg[s]
  const uint8_t* blk = tile + 128;
  for (size_t p0 = 0; p0 < blocks; p0 += kFlushBlocks) {
    const size_t p1 = std::min(blocks, p0 + kFlushBlocks);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t p = p0; p < p1; p++) {
      const uint8_t* b = blk + 40 * p;
      _mm_prefetch(reinterpret_cast<const char*>(b) + kPrefetch, _MM_HINT_T0);
      const __m256i idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
      const __m256i il = _mm256_and_si256(idx, nibble);
      const __m256i ih = _mm256_and_si256(_mm256_srli_epi16(idx, 4), nibble);
      const __m256i tl = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tab + 64 * p));
      const __m256i th = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tab + 64 * p + 32));
      int32_t s0, s1;
      std::memcpy(&s0, b + 32, 4);
      std::memcpy(&s1, b + 36, 4);
      const __m256i m0 = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_set1_epi32(s0), bits), bits);
      const __m256i m1 = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_set1_epi32(s1), bits), bits);
      const __m256i l0 = _mm256_xor_si256(_mm256_shuffle_epi8(tl, il), m0);
      const __m256i h0 = _mm256_xor_si256(_mm256_shuffle_epi8(th, il), m0);
      const __m256i l1 = _mm256_xor_si256(_mm256_shuffle_epi8(tl, ih), m1);
      const __m256i h1 = _mm256_xor_si256(_mm256_shuffle_epi8(th, ih), m1);
      a0 = _mm256_add_epi16(a0, _mm256_unpacklo_epi8(l0, h0));
      a1 = _mm256_add_epi16(a1, _mm256_unpackhi_epi8(l0, h0));
      a2 = _mm256_add_epi16(a2, _mm256_unpacklo_epi8(l1, h1));
      a3 = _mm256_add_epi16(a3, _mm256_unpackhi_epi8(l1, h1));
    }
    const __m256i a[4] = {a0, a1, a2, a3};
    for (int j = 0; j < 4; j++) {  // lane 0 (even groups) + lane 1 (odd groups), widened
      acc[j] = _mm256_add_epi32(acc[j], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(a[j])));
      acc[j] = _mm256_add_epi32(acc[j], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(a[j], 1)));
    }
  }
  for (int j = 0; j < 4; j++) _mm256_storeu_si256(reinterpret_cast<__m256i*>(out) + j, acc[j]);
}

}  // namespace

void lutra_t3_qs8_gemm_1x32__avx2(const WeightView& w, const uint8_t* tables,
                                  size_t table_stride, int32_t* acc, size_t m, size_t n_begin,
                                  size_t n_end) {
  t3_gemm_tiles(w, tables, table_stride, acc, m, n_begin, n_end,
                [](const uint8_t* tile, size_t blocks, const uint8_t* tab, int32_t* out) {
                  tile_dot(tile, blocks, tab, out);
                });
}

}  // namespace lutra
