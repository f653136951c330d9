// Software prefetch for the attention kernels' streams over a KV head's cached rows. At depth the
// cache is far larger than the caches (2B4T at 4096 positions: 2 MiB of f16 keys and values per
// KV head and layer), and the hardware prefetchers of the machines measured did not stay ahead of
// these streams: decode at depth 4096 ran at a quarter of the bandwidth floor, stalled on the
// loads of the q·k loop. ISA-neutral; included by files compiled with different ISA flags.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "runtime/kernels.h"

namespace lutra {
namespace {

// Rows this far ahead of the one being read: 16 rows are 4 KiB of f16 keys at head_dim 128,
// about what a core must have in flight to stream from DRAM at full speed.
constexpr size_t kKvPrefetchRows = 16;

// Every cache line of row t + kKvPrefetchRows, when that row exists.
template <class T>
inline void prefetch_kv_ahead(const T* rows, size_t t, size_t n_pos, size_t kv_stride, size_t head_dim) {
  if (t + kKvPrefetchRows >= n_pos) return;
  const char* p = reinterpret_cast<const char*>(rows + (t + kKvPrefetchRows) * kv_stride);
  const KvType type = std::is_same_v<T, int8_t> ? KvType::q8 : sizeof(T) == 2 ? KvType::f16 : KvType::f32;
  for (size_t b = 0; b < kv_row_bytes(type, head_dim); b += 64) __builtin_prefetch(p + b, 0, 3);
}

}  // namespace
}  // namespace lutra
