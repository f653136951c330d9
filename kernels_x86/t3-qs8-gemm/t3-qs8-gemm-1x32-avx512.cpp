// Ternary x int8 GEMM by table lookup (WeightFormat::t3), 1 token x 32 output rows per tile,
// AVX-512 F/BW. The AVX2 kernel's math, two blocks (4 groups, lane j = group 2p + j) per step:
// - the index nibbles of blocks p and p+1 go in one register (load + insert from memory);
// - the tables of the 4 groups are regathered by inserts from memory into TL = [lo(2p) ..
//   lo(2p+3)] and TH = [hi(2p) .. hi(2p+3)], so four 512-bit pshufb look up both bytes of T
//   for 128 row-groups;
// - each sign word pair (S[h] of blocks p and p+1, broadcast to its half) tests against the
//   bit constant into a 64-bit byte mask; masked 0xff - x turns the bytes of T into those of
//   ~T = -T - 1 for negative groups; the +1 per negative group is the tile's count neg[s];
// - unpacklo/hi_epi8 give int16 values of rows 0-7, 8-15, 16-23, 24-31 (lane = group), summed
//   in int16 for 64 steps (each lane: 64 groups, |sum| <= 64 * 385 < 2^15), then widened.
// An odd last block runs the same step with zeroed upper halves (lookups of 0 tables add 0).
// Prefetch as in the AVX2 kernel (software prefetch of the weight stream, into the next tiles),
// but 8 KiB ahead, as the t2 AVX-512 kernel: at 1 KiB, cold (DRAM) runs took twice the hot
// time; at 8 KiB they are within ~10% of it (measured, 2560x2560 and 6912x2560, m = 1).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels_common/t3-qs8-gemm-tiles.h"
#include "kernels_x86/avx512-masked.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

constexpr size_t kFlushSteps = 64;  // int16 sums of at most 64 groups per lane
constexpr size_t kPrefetch = 8192;  // bytes ahead in the weight stream (the next tiles too)

// One step: idx = index nibbles (lanes 0-1: block p, 2-3: block p+1), tl/th = tables,
// s0/s1 = broadcast sign words (lanes 0-1 from block p, 2-3 from block p+1).
inline __attribute__((always_inline)) void step(__m512i& a0, __m512i& a1, __m512i& a2,
                                                __m512i& a3, __m512i idx, __m512i tl, __m512i th,
                                                __m512i s0, __m512i s1, __m512i bits,
                                                __m512i nibble, __m512i ff) {
  const __m512i il = _mm512_and_si512(idx, nibble);
  const __m512i ih = _mm512_and_si512(_mm512_srli_epi16(idx, 4), nibble);
  const __mmask64 k0 = _mm512_test_epi8_mask(s0, bits);
  const __mmask64 k1 = _mm512_test_epi8_mask(s1, bits);
  __m512i l0 = _mm512_shuffle_epi8(tl, il);
  __m512i h0 = _mm512_shuffle_epi8(th, il);
  __m512i l1 = _mm512_shuffle_epi8(tl, ih);
  __m512i h1 = _mm512_shuffle_epi8(th, ih);
  l0 = _mm512_mask_sub_epi8(l0, k0, ff, l0);
  h0 = _mm512_mask_sub_epi8(h0, k0, ff, h0);
  l1 = _mm512_mask_sub_epi8(l1, k1, ff, l1);
  h1 = _mm512_mask_sub_epi8(h1, k1, ff, h1);
  a0 = _mm512_add_epi16(a0, _mm512_unpacklo_epi8(l0, h0));
  a1 = _mm512_add_epi16(a1, _mm512_unpackhi_epi8(l0, h0));
  a2 = _mm512_add_epi16(a2, _mm512_unpacklo_epi8(l1, h1));
  a3 = _mm512_add_epi16(a3, _mm512_unpackhi_epi8(l1, h1));
}

inline __m256i load256(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
inline __m512i join(const uint8_t* lo, const uint8_t* hi) {
  return _mm512_maskz_inserti64x4(kAll8, zext(load256(lo)), load256(hi), 1);
}
inline int32_t load32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// out[s] = sum over groups of row s of the tile, one token.
inline void tile_dot(const uint8_t* tile, size_t blocks, const uint8_t* tab, int32_t out[32]) {
  const __m512i nibble = _mm512_set1_epi8(0x0f);
  const __m512i ff = _mm512_set1_epi8(-1);
  // Byte 4d + b of a broadcast sign word holds its byte b; the mask tests bit 4L + d of it
  // (L = lane parity: the group's place in its block).
  const __m512i bits = _mm512_maskz_broadcast_i64x4(kAll8,
      _mm256_setr_epi8(1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 8, 8, 8, 8, 16, 16, 16, 16, 32, 32,
                       32, 32, 64, 64, 64, 64, -128, -128, -128, -128));
  __m512i acc[4];  // int32: [rows 8j..8j+7 of lanes 0,2 | of lanes 1,3]
  for (int j = 0; j < 4; j++) acc[j] = _mm512_setzero_si512();
  const uint8_t* blk = tile + 128;
  const size_t pairs = blocks / 2;
  // Adds int16 sums (lanes 0-3) into acc, widened.
  auto widen = [&acc](__m512i a0, __m512i a1, __m512i a2, __m512i a3) {
    const __m512i v[4] = {a0, a1, a2, a3};
    for (int j = 0; j < 4; j++) {
      acc[j] = _mm512_add_epi32(acc[j], _mm512_maskz_cvtepi16_epi32(kAll16, lo256(v[j])));
      acc[j] = _mm512_add_epi32(acc[j], _mm512_maskz_cvtepi16_epi32(kAll16, hi256(v[j])));
    }
  };
  for (size_t q0 = 0; q0 < pairs; q0 += kFlushSteps) {
    const size_t q1 = std::min(pairs, q0 + kFlushSteps);
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t q = q0; q < q1; q++) {
      const uint8_t* b = blk + 80 * q;
      const uint8_t* t = tab + 128 * q;
      _mm_prefetch(reinterpret_cast<const char*>(b) + kPrefetch, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(b) + kPrefetch + 40, _MM_HINT_T0);
      const __m512i idx = join(b, b + 40);
      const __m512i tl = join(t, t + 64);
      const __m512i th = join(t + 32, t + 96);
      const __m512i s0 = _mm512_mask_set1_epi32(_mm512_set1_epi32(load32(b + 32)), 0xff00,
                                                load32(b + 72));
      const __m512i s1 = _mm512_mask_set1_epi32(_mm512_set1_epi32(load32(b + 36)), 0xff00,
                                                load32(b + 76));
      step(a0, a1, a2, a3, idx, tl, th, s0, s1, bits, nibble, ff);
    }
    widen(a0, a1, a2, a3);
  }
  if (blocks & 1) {  // the odd last block: upper halves zero (lookups in zero tables add 0)
    const uint8_t* b = blk + 80 * pairs;
    const uint8_t* t = tab + 128 * pairs;
    const __m512i idx = zext(load256(b));
    const __m512i tl = zext(load256(t));
    const __m512i th = zext(load256(t + 32));
    const __m512i s0 = _mm512_maskz_set1_epi32(0x00ff, load32(b + 32));
    const __m512i s1 = _mm512_maskz_set1_epi32(0x00ff, load32(b + 36));
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    step(a0, a1, a2, a3, idx, tl, th, s0, s1, bits, nibble, ff);
    widen(a0, a1, a2, a3);
  }
  for (int j = 0; j < 4; j++) {
    __m256i r = _mm256_add_epi32(lo256(acc[j]), hi256(acc[j]));
    r = _mm256_add_epi32(r, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tile) + j));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out) + j, r);
  }
}

}  // namespace

void lutra_t3_qs8_gemm_1x32__avx512(const WeightView& w, const uint8_t* tables,
                                    size_t table_stride, int32_t* acc, size_t m,
                                    size_t n_begin, size_t n_end) {
  t3_gemm_tiles(w, tables, table_stride, acc, m, n_begin, n_end,
                [](const uint8_t* tile, size_t blocks, const uint8_t* tab, int32_t* out) {
                  tile_dot(tile, blocks, tab, out);
                });
}

}  // namespace lutra
