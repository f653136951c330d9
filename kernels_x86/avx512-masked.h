// Zero-masked forms with full masks of the AVX-512 intrinsics the kernels use: the same
// instructions as the unmasked forms, but GCC 12's unmasked extract, unpack, shuffle, insert,
// broadcast and convert intrinsics start from _mm512_undefined_* inside its headers and trip
// -Wmaybe-uninitialized there. Intrinsics without a wrapper here take kAll8 / kAll16 directly.
//
// Included only by files compiled with AVX-512 flags; the anonymous namespace gives each its
// own copy.
#pragma once

#include <immintrin.h>

namespace lutra {
namespace {

constexpr __mmask8 kAll8 = 0xff;
constexpr __mmask16 kAll16 = 0xffff;

inline __m256i lo256(__m512i v) { return _mm512_maskz_extracti64x4_epi64(kAll8, v, 0); }
inline __m256i hi256(__m512i v) { return _mm512_maskz_extracti64x4_epi64(kAll8, v, 1); }
inline __m512i unpacklo32(__m512i a, __m512i b) { return _mm512_maskz_unpacklo_epi32(kAll16, a, b); }
inline __m512i unpackhi32(__m512i a, __m512i b) { return _mm512_maskz_unpackhi_epi32(kAll16, a, b); }
inline __m512i unpacklo64(__m512i a, __m512i b) { return _mm512_maskz_unpacklo_epi64(kAll8, a, b); }
inline __m512i unpackhi64(__m512i a, __m512i b) { return _mm512_maskz_unpackhi_epi64(kAll8, a, b); }
inline __m512i zext(__m256i v) { return _mm512_maskz_inserti64x4(kAll8, _mm512_setzero_si512(), v, 0); }
template <int kImm>
inline __m512i shuffle128(__m512i a, __m512i b) { return _mm512_maskz_shuffle_i64x2(kAll8, a, b, kImm); }

}  // namespace
}  // namespace lutra
