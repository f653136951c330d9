// Ternary x int8 GEMM, AVX2: the AVX-512 kernel's scheme at half the width. Codes 0/1/2 are
// unsigned bytes, so _mm256_maddubs_epi16 multiplies them with the int8 activations;
// sum (code-1)*x = sum code*x - sum x, the last term once per token. A maddubs lane is
// c0*x0 + c1*x1 with codes <= 3 (even invalid ones), so |lane| <= 768, and kGroup blocks of 4
// maddubs (32 lanes, <= 24576) sum in int16 exactly before one madd widens them to int32.
// 32 packed bytes hold codes 4q+t (q < 32, t < 4) at bits 2t of byte q, so the activations of
// each 128-wide block are permuted once per call to the order t*32 + q (shuffles): the weights
// then unpack with one shift and one mask per t.
// Register tile: 4 output rows x up to 2 tokens of int16 accumulators (16 ymm registers: half
// the AVX-512 tile's tokens), so each unpacked weight vector feeds 2 tokens in prefill. The first
// token tile of each row tile reads the weights from memory with a software prefetch of each
// row stream whole tiles (at least kPrefetch bytes) ahead, so DRAM loads overlap the arithmetic
// in decode; the later token tiles find the rows in L1. (The file keeps its registered name.)
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels_common/t2-qs8-gemm-tiles.h"
#include "runtime/kernel_variants.h"

namespace lutra {
namespace {

// Register tiles need their loops over rows, tokens and t unrolled.
#define LUTRA_UNROLL _Pragma("GCC unroll 16")

constexpr size_t kBlock = 128;      // codes per 32 packed bytes
constexpr size_t kGroup = 8;        // blocks summed in int16 (see above)
constexpr size_t kPrefetch = 8192;  // at least this many bytes ahead (decode)
constexpr int kRows = 4, kTokens = 2;  // register tile (m = 1: kRows x 1)

inline int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

// Pins v in a register at this point: GCC 12 otherwise reorders a token tile's int16 sums (all
// the products of a block first, added later) and spills the accumulators; it schedules the
// one-token tile better unpinned (measured on the AVX-512 twin of this kernel).
inline void pin(__m256i& v) { asm("" : "+x"(v)); }

// The four sums of a, b, c, d in one vector.
inline __m128i hsum4(__m256i a, __m256i b, __m256i c, __m256i d) {
  __m256i ab = _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
  __m256i cd = _mm256_add_epi32(_mm256_unpacklo_epi32(c, d), _mm256_unpackhi_epi32(c, d));
  __m256i s = _mm256_add_epi32(_mm256_unpacklo_epi64(ab, cd), _mm256_unpackhi_epi64(ab, cd));
  return _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
}

// Writes one token's k activations in block order t*32 + q (zero padded to whole blocks) and
// returns their sum.
int32_t permute_token(const int8_t* x, size_t k, int8_t* dst) {
  // In each 16-byte lane: byte 4q+t -> 4t+q; then dwords 4L+t -> 2t+L within the vector.
  const __m256i bytes_t = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
                                           0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const __m256i dwords_t = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
  __m256i sum = _mm256_setzero_si256();
  const size_t full = k / kBlock;
  for (size_t b = 0; b < full; b++, x += kBlock, dst += kBlock) {
    __m256i w[4];
    __m256i s16 = _mm256_setzero_si256();
    for (int a = 0; a < 4; a++) {
      __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 32 * a));
      s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(ones8, v));  // |lane| <= 4 * 256
      // Qword t of w[a] now holds, for that t, the 8 bytes of codes q = 8a .. 8a + 7.
      w[a] = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(v, bytes_t), dwords_t);
    }
    sum = _mm256_add_epi32(sum, _mm256_madd_epi16(s16, ones16));
    // out t = qword t of w[0], w[1], w[2], w[3]: a 4x4 transpose of qwords.
    __m256i lo01 = _mm256_unpacklo_epi64(w[0], w[1]), hi01 = _mm256_unpackhi_epi64(w[0], w[1]);
    __m256i lo23 = _mm256_unpacklo_epi64(w[2], w[3]), hi23 = _mm256_unpackhi_epi64(w[2], w[3]);
    auto store = [&](int t, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 32 * t), v); };
    store(0, _mm256_permute2x128_si256(lo01, lo23, 0x20));
    store(1, _mm256_permute2x128_si256(hi01, hi23, 0x20));
    store(2, _mm256_permute2x128_si256(lo01, lo23, 0x31));
    store(3, _mm256_permute2x128_si256(hi01, hi23, 0x31));
  }
  int32_t total = hsum(sum);
  if (size_t rest = k - full * kBlock) {  // ragged k: the last block, zero padded
    std::memset(dst, 0, kBlock);
    for (size_t j = 0; j < rest; j++) {
      dst[(j % 4) * 32 + j / 4] = x[j];
      total += x[j];
    }
  }
  return total;
}

// acc[r][i] += the products of blocks [b, end) of R rows from w0 and M tokens from xp.
// `load` reads a row's block b (the last, ragged block goes through a zero-padded copy).
template <int R, int M, bool kPrefetchW, class Load>
inline __attribute__((always_inline)) void accumulate(
    const uint8_t* w0, size_t row_bytes, const int8_t* xp, size_t stride, size_t b, size_t end,
    size_t prefetch, Load load, __m256i (&acc)[R][M]) {
  const __m256i mask = _mm256_set1_epi8(3);
  __m256i p[R][M];
  LUTRA_UNROLL for (int r = 0; r < R; r++)
    LUTRA_UNROLL for (int i = 0; i < M; i++) p[r][i] = _mm256_setzero_si256();
  for (; b < end; b++) {
    __m256i packed[R];
    LUTRA_UNROLL for (int r = 0; r < R; r++) {
      const uint8_t* src = w0 + r * row_bytes + 32 * b;
      if constexpr (kPrefetchW)
        if (b % 2 == 0) _mm_prefetch(reinterpret_cast<const char*>(src + prefetch), _MM_HINT_T0);
      packed[r] = load(src);
    }
    LUTRA_UNROLL for (int t = 0; t < 4; t++) {
      __m256i x[M];
      LUTRA_UNROLL for (int i = 0; i < M; i++)
        x[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp + i * stride + b * kBlock + 32 * t));
      LUTRA_UNROLL for (int r = 0; r < R; r++) {
        __m256i c = _mm256_and_si256(t == 0 ? packed[r] : _mm256_srli_epi16(packed[r], 2 * t), mask);
        LUTRA_UNROLL for (int i = 0; i < M; i++) {
          p[r][i] = _mm256_add_epi16(p[r][i], _mm256_maddubs_epi16(c, x[i]));
          if constexpr (M > 1) pin(p[r][i]);
        }
      }
    }
  }
  const __m256i ones = _mm256_set1_epi16(1);
  LUTRA_UNROLL for (int r = 0; r < R; r++)
    LUTRA_UNROLL for (int i = 0; i < M; i++)
      acc[r][i] = _mm256_add_epi32(acc[r][i], _mm256_madd_epi16(p[r][i], ones));
}

// acc[i * n + r] for R rows from w0 and M tokens from xp (stride bytes apart).
template <int R, int M, bool kPrefetchW>
void tile(const uint8_t* w0, size_t row_bytes, const int8_t* xp, size_t stride,
          const int32_t* x_sum, int32_t* out, size_t n) {
  const size_t full = row_bytes / 32;
  // Each row stream is prefetched at the same place whole tiles ahead, at least kPrefetch bytes.
  const size_t tile_bytes = R * row_bytes;
  const size_t prefetch = tile_bytes * ((kPrefetch + tile_bytes - 1) / tile_bytes);
  __m256i acc[R][M];
  LUTRA_UNROLL for (int r = 0; r < R; r++)
    LUTRA_UNROLL for (int i = 0; i < M; i++) acc[r][i] = _mm256_setzero_si256();
  auto load = [](const uint8_t* src) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src));
  };
  for (size_t b = 0; b < full; b += kGroup) {
    accumulate<R, M, kPrefetchW>(w0, row_bytes, xp, stride, b, std::min(full, b + kGroup),
                                 prefetch, load, acc);
  }
  // Ragged k: the row's last bytes, zero padded (their x are 0 too).
  if (const size_t rest = row_bytes - 32 * full) {
    auto load_tail = [rest](const uint8_t* src) {
      alignas(32) uint8_t tail[32] = {};
      std::memcpy(tail, src, rest);
      return _mm256_load_si256(reinterpret_cast<const __m256i*>(tail));
    };
    accumulate<R, M, false>(w0, row_bytes, xp, stride, full, full + 1, 0, load_tail, acc);
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
template <int R, int M>
void rows_all_tokens(const uint8_t* w0, size_t row_bytes, const int8_t* xp, size_t stride,
                     const int32_t* x_sum, int32_t* out, size_t n, size_t m) {
  size_t i = 0;
  for (; i + M <= m; i += M) {
    if (i == 0) tile<R, M, true>(w0, row_bytes, xp, stride, x_sum, out, n);
    else tile<R, M, false>(w0, row_bytes, xp + i * stride, stride, x_sum + i, out + i * n, n);
  }
  if constexpr (M > 1) {
    if (i < m)
      rows_all_tokens<R, M - 1>(w0, row_bytes, xp + i * stride, stride, x_sum + i, out + i * n, n, m - i);
  }
}

}  // namespace

void lutra_t2_qs8_gemm_1x4__avx2(const WeightView& w, const int8_t* xq, int32_t* acc,
                                 size_t m, size_t n_begin, size_t n_end) {
  t2_gemm_tiles<kBlock, kRows, kTokens>(w, xq, acc, m, n_begin, n_end, permute_token, [](auto rows, auto... a) {
    rows_all_tokens<decltype(rows)::value, kTokens>(a...);
  });
}

}  // namespace lutra
