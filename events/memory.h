// Faulting in a large buffer before it is filled.
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace shardledger {

// Fresh memory costs a page fault per 4 KiB page on its first write, and on a virtual machine
// a fault is a trip through the hypervisor: the 130 MB WriteBatch of a shard-count change
// took 0.3 s of faults while it was filled. PrefaultForWrite maps the whole pages of
// [data, data + bytes) in one call (MADV_POPULATE_WRITE, Linux 5.14), contents unchanged.
// Buffers under `min_bytes` (4 MiB unless given) are left alone. An optimisation only, so it
// returns nothing: when the kernel refuses (an older kernel: EINVAL), the pages fault in one
// by one as they would have.
inline void PrefaultForWrite(const void* data, size_t bytes, size_t min_bytes = size_t{4} << 20) {
  constexpr uintptr_t kPage = 4096;
  if (bytes < min_bytes) return;
  const auto start = reinterpret_cast<uintptr_t>(data);
  const uintptr_t begin = (start + kPage - 1) & ~(kPage - 1);
  const uintptr_t end = (start + bytes) & ~(kPage - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
}

// Bytes taken from blocks that never move: what Take returns stays put while more is taken,
// until the arena is destroyed. A block is `block_bytes` long (a larger request gets a block
// of its own) and faulted in whole when it is taken. For the many small buffers of one large
// piece of work that live as long as it does: a shard-count change's 200,000 encoded records
// went into as many heap strings, and faulting in their ~80 MB page by page cost half of the
// encoding's time. Not thread-safe: one arena per thread.
class ByteArena {
 public:
  explicit ByteArena(size_t block_bytes = 4096) : block_bytes_(block_bytes) {}
  // Takes from `first` (which the caller keeps alive as long as what is taken from it) before
  // it allocates a block: a small piece of work whose bytes fit there allocates nothing.
  ByteArena(size_t block_bytes, std::span<char> first)
      : block_bytes_(block_bytes), next_(first.data()), left_(first.size()) {}

  // `align` (a power of two, at most 16: a block starts at operator new's alignment) places
  // the bytes at a multiple of it.
  char* Take(size_t bytes, size_t align = 1) {
    size_t pad = (align - reinterpret_cast<uintptr_t>(next_) % align) % align;
    if (bytes + pad > left_) {
      const size_t size = std::max(bytes, block_bytes_);
      blocks_.push_back(std::make_unique_for_overwrite<char[]>(size));
      next_ = blocks_.back().get();
      left_ = size;
      pad = 0;
      PrefaultForWrite(next_, size);
    }
    next_ += pad;
    left_ -= pad;
    char* taken = next_;
    next_ += bytes;
    left_ -= bytes;
    return taken;
  }

 private:
  size_t block_bytes_;
  std::vector<std::unique_ptr<char[]>> blocks_;
  char* next_ = nullptr;
  size_t left_ = 0;
};

}  // namespace shardledger
