// Ternary x int8 GEMM, AVX-512BW, shared by two variants: maddubs (AVX-512BW) and vpdpbusd
// (AVX-512 VNNI), chosen by the template argument kVnni. Included only by the .cpp files of
// those variants, each compiled with its own ISA flags; the anonymous namespace gives each file
// its own copy, so the linker can never hand the BW path a copy built with VNNI instructions.
//
// Codes 0/1/2 are unsigned bytes, so _mm512_maddubs_epi16 (or vpdpbusd) multiplies them with
// the int8 activations; sum (code-1)*x = sum code*x - sum x, the last term once per token.
// maddubs: a lane is c0*x0 + c1*x1 with codes <= 3 (even invalid ones), so |lane| <= 768, and
// kGroup blocks of 4 maddubs (32 lanes, <= 24576) sum in int16 exactly before one madd widens
// them to int32. vpdpbusd adds 4 such products straight into int32 lanes: one instruction
// instead of maddubs + add (+ the madd per group), exact for any k this runtime accepts.
// 64 packed bytes hold codes 4q+t (q < 64, t < 4) at bits 2t of byte q, so the activations of
// each 256-wide block are permuted once per call to the order t*64 + q (shuffles, no VBMI): the
// weights then unpack with one shift and one mask per t.
// Register tile: 4 output rows x up to 4 tokens of int16 accumulators, so each unpacked weight
// vector feeds 4 tokens in prefill (fewer for the last tokens). The first token tile of each row
// tile reads the weights from memory with a software prefetch of each row stream whole tiles
// (at least kPrefetch bytes) ahead, so DRAM loads overlap the arithmetic in decode (measured:
// the hardware prefetchers alone left the kernel at half the machine's read bandwidth); the later
// token tiles find the rows in L1. (The file keeps its registered name, "1x4".)
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "kernels_common/t2-qs8-gemm-tiles.h"
#include "kernels_x86/avx512-masked.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

// Register tiles need their loops over rows, tokens and t unrolled.
#define LUTRA_UNROLL _Pragma("GCC unroll 16")

constexpr size_t kBlock = 256;     // codes per 64 packed bytes
constexpr size_t kGroup = 8;       // blocks summed in int16 (see above)
constexpr size_t kPrefetch = 8192;  // at least this many bytes ahead (decode)
constexpr int kRows = 4, kTokens = 4;  // register tile (m = 1: kRows x 1)

inline int32_t hsum(__m512i v) {
  __m256i h = _mm256_add_epi32(lo256(v), hi256(v));
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

// Pins v in a register at this point: GCC 12 otherwise reorders a token tile's int16 sums (all
// the products of a block first, added later) and spills the 4x4 accumulators; it schedules the
// one-token tile better unpinned (measured).
inline void pin(__m512i& v) { asm("" : "+v"(v)); }

// The four sums of a, b, c, d in one vector.
inline __m128i hsum4(__m512i a, __m512i b, __m512i c, __m512i d) {
  __m512i ab = _mm512_add_epi32(unpacklo32(a, b), unpackhi32(a, b));
  __m512i cd = _mm512_add_epi32(unpacklo32(c, d), unpackhi32(c, d));
  __m512i s = _mm512_add_epi32(unpacklo64(ab, cd), unpackhi64(ab, cd));
  __m256i h = _mm256_add_epi32(lo256(s), hi256(s));
  return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

// Writes one token's k activations in block order t*64 + q (zero padded to whole blocks) and
// returns their sum.
int32_t permute_token(const int8_t* x, size_t k, int8_t* dst) {
  // In each 16-byte lane: byte 4q+t -> 4t+q; then dwords 4L+t -> 4t+L within the vector.
  const __m512i bytes_t = _mm512_set4_epi32(0x0f0b0703, 0x0e0a0602, 0x0d090501, 0x0c080400);
  const __m512i dwords_t = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const __m512i ones8 = _mm512_set1_epi8(1), ones16 = _mm512_set1_epi16(1);
  __m512i sum = _mm512_setzero_si512();
  const size_t full = k / kBlock;
  for (size_t b = 0; b < full; b++, x += kBlock, dst += kBlock) {
    __m512i w[4];
    __m512i s16 = _mm512_setzero_si512();
    for (int a = 0; a < 4; a++) {
      __m512i v = _mm512_loadu_si512(x + 64 * a);
      s16 = _mm512_add_epi16(s16, _mm512_maddubs_epi16(ones8, v));  // |lane| <= 4 * 256
      // Lane L of w[a] now holds, for t = L, the 16 bytes of codes q = 16a .. 16a + 15.
      w[a] = _mm512_maskz_permutexvar_epi32(kAll16, dwords_t, _mm512_shuffle_epi8(v, bytes_t));
    }
    sum = _mm512_add_epi32(sum, _mm512_madd_epi16(s16, ones16));
    // out t = lane t of w[0], w[1], w[2], w[3]: a 4x4 transpose of 128-bit lanes.
    __m512i u0 = shuffle128<_MM_SHUFFLE(1, 0, 1, 0)>(w[0], w[1]);
    __m512i u1 = shuffle128<_MM_SHUFFLE(3, 2, 3, 2)>(w[0], w[1]);
    __m512i u2 = shuffle128<_MM_SHUFFLE(1, 0, 1, 0)>(w[2], w[3]);
    __m512i u3 = shuffle128<_MM_SHUFFLE(3, 2, 3, 2)>(w[2], w[3]);
    _mm512_storeu_si512(dst + 0, shuffle128<_MM_SHUFFLE(2, 0, 2, 0)>(u0, u2));
    _mm512_storeu_si512(dst + 64, shuffle128<_MM_SHUFFLE(3, 1, 3, 1)>(u0, u2));
    _mm512_storeu_si512(dst + 128, shuffle128<_MM_SHUFFLE(2, 0, 2, 0)>(u1, u3));
    _mm512_storeu_si512(dst + 192, shuffle128<_MM_SHUFFLE(3, 1, 3, 1)>(u1, u3));
  }
  int32_t total = hsum(sum);
  if (size_t rest = k - full * kBlock) {  // ragged k: the last block, zero padded
    for (size_t j = 0; j < kBlock; j++) dst[j] = 0;
    for (size_t j = 0; j < rest; j++) {
      dst[(j % 4) * 64 + j / 4] = x[j];
      total += x[j];
    }
  }
  return total;
}

// acc[r][i] += the products of blocks [b, end) of R rows from w0 (each block's bytes masked to
// `live`: all of them but in the ragged last block) and M tokens from xp.
template <bool kVnni, int R, int M, bool kPrefetchW>
inline __attribute__((always_inline)) void accumulate(
    const uint8_t* w0, size_t row_bytes, const int8_t* xp, size_t stride, size_t b, size_t end,
    __mmask64 live, size_t prefetch, __m512i (&acc)[R][M]) {
  const __m512i mask = _mm512_set1_epi8(3);
  __m512i p[R][M];
  LUTRA_UNROLL for (int r = 0; r < R; r++)
    LUTRA_UNROLL for (int i = 0; i < M; i++) p[r][i] = _mm512_setzero_si512();
  for (; b < end; b++) {
    __m512i packed[R];
    LUTRA_UNROLL for (int r = 0; r < R; r++) {
      const uint8_t* src = w0 + r * row_bytes + 64 * b;
      if constexpr (kPrefetchW)
        _mm_prefetch(reinterpret_cast<const char*>(src + prefetch), _MM_HINT_T0);
      packed[r] = _mm512_maskz_loadu_epi8(live, src);
    }
    LUTRA_UNROLL for (int t = 0; t < 4; t++) {
      __m512i x[M];
      LUTRA_UNROLL for (int i = 0; i < M; i++)
        x[i] = _mm512_loadu_si512(xp + i * stride + b * kBlock + 64 * t);
      LUTRA_UNROLL for (int r = 0; r < R; r++) {
        __m512i c = _mm512_and_si512(t == 0 ? packed[r] : _mm512_srli_epi16(packed[r], 2 * t), mask);
        LUTRA_UNROLL for (int i = 0; i < M; i++) {
          if constexpr (kVnni) p[r][i] = _mm512_dpbusd_epi32(p[r][i], c, x[i]);
          else p[r][i] = _mm512_add_epi16(p[r][i], _mm512_maddubs_epi16(c, x[i]));
          if constexpr (M > 1) pin(p[r][i]);
        }
      }
    }
  }
  const __m512i ones = _mm512_set1_epi16(1);
  LUTRA_UNROLL for (int r = 0; r < R; r++)
    LUTRA_UNROLL for (int i = 0; i < M; i++)
      acc[r][i] = _mm512_add_epi32(acc[r][i], kVnni ? p[r][i] : _mm512_madd_epi16(p[r][i], ones));
}

// acc[i * n + r] for R rows from w0 and M tokens from xp (stride bytes apart).
template <bool kVnni, int R, int M, bool kPrefetchW>
void tile(const uint8_t* w0, size_t row_bytes, const int8_t* xp, size_t stride,
          const int32_t* x_sum, int32_t* out, size_t n) {
  const size_t full = row_bytes / 64;
  // Each row stream is prefetched at the same place whole tiles ahead, at least kPrefetch bytes.
  const size_t tile_bytes = R * row_bytes;
  const size_t prefetch = tile_bytes * ((kPrefetch + tile_bytes - 1) / tile_bytes);
  __m512i acc[R][M];
  LUTRA_UNROLL for (int r = 0; r < R; r++)
    LUTRA_UNROLL for (int i = 0; i < M; i++) acc[r][i] = _mm512_setzero_si512();
  for (size_t b = 0; b < full; b += kGroup) {
    accumulate<kVnni, R, M, kPrefetchW>(w0, row_bytes, xp, stride, b, std::min(full, b + kGroup),
                                 ~__mmask64(0), prefetch, acc);
  }
  if (full * 64 < row_bytes) {  // ragged k: masked load of the row's last bytes (their x are 0)
    const __mmask64 live = (__mmask64(1) << (row_bytes - 64 * full)) - 1;
    accumulate<kVnni, R, M, false>(w0, row_bytes, xp, stride, full, full + 1, live, 0, acc);
  }
  LUTRA_UNROLL for (int i = 0; i < M; i++) {
    int32_t* o = out + i * n;
    int r = 0;
    for (; r + 4 <= R; r += 4) {
      __m128i s = hsum4(acc[r][i], acc[r + 1][i], acc[r + 2][i], acc[r + 3][i]);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + r), _mm_sub_epi32(s, _mm_set1_epi32(x_sum[i])));
    }
    for (; r < R; r++) o[r] = hsum(acc[r][i]) - x_sum[i];
  }
}

// Rows [r, r + R) for all m tokens, M at a time; the weights come from memory in the first
// token tile (prefetched) and from L1 after it.
template <bool kVnni, int R, int M>
void rows_all_tokens(const uint8_t* w0, size_t row_bytes, const int8_t* xp, size_t stride,
                     const int32_t* x_sum, int32_t* out, size_t n, size_t m) {
  size_t i = 0;
  for (; i + M <= m; i += M) {
    if (i == 0) tile<kVnni, R, M, true>(w0, row_bytes, xp, stride, x_sum, out, n);
    else tile<kVnni, R, M, false>(w0, row_bytes, xp + i * stride, stride, x_sum + i, out + i * n, n);
  }
  if constexpr (M > 1) {
    if (i < m)
      rows_all_tokens<kVnni, R, M - 1>(w0, row_bytes, xp + i * stride, stride, x_sum + i, out + i * n, n, m - i);
  }
}

// The whole GEMM (GemmTernaryFn): tiles of kRows rows x kTokens tokens (m = 1: kRows x 1).
template <bool kVnni>
void t2_gemm_avx512(const WeightView& w, const int8_t* xq, int32_t* acc, size_t m, size_t n_begin,
                    size_t n_end) {
  t2_gemm_tiles<kBlock, kRows, kTokens>(w, xq, acc, m, n_begin, n_end, permute_token, [](auto rows, auto... a) {
    rows_all_tokens<kVnni, decltype(rows)::value, kTokens>(a...);
  });
}

}  // namespace
}  // namespace lutra
