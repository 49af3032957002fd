// HugePageArena: the allocator behind `HugePageMemtable` (events/memtable_memory.h).
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <vector>

namespace rocksdb {

class Logger;

// A memtable representation takes its memory from a `rocksdb::Allocator`, declared in
// RocksDB's internal memory/allocator.h, which Debian's librocksdb-dev does not install. This
// is the same declaration: the layout librocksdb 7.8 was built with (ConcurrentArena's vtable
// in the shared library holds the two destructors, then Allocate, AllocateAligned and
// BlockSize), unchanged in RocksDB since 2014.
class Allocator {
 public:
  virtual ~Allocator() {}
  virtual char* Allocate(size_t bytes) = 0;
  virtual char* AllocateAligned(size_t bytes, size_t huge_page_size = 0,
                                Logger* logger = nullptr) = 0;
  virtual size_t BlockSize() const = 0;
};

}  // namespace rocksdb

namespace shardledger {

// An anonymous mapping an arena uses or a pool keeps.
struct MappedRange {
  char* at;
  size_t bytes;
};

// Mappings that arenas gave back, kept whole for the next arenas instead of unmapped. A
// memtable's memory is released when it has been flushed, and the next memtables fill the
// same amount again: kept, it is written again without a fault, where a fresh mapping has the
// kernel zero every huge page on its first write (8% of the log writer's time under load,
// measured: `clear_page_erms` in a perf profile). Keeps at most `capacity` bytes and unmaps
// what would go over. Any thread.
class MappingPool {
 public:
  // The capacity of the pool every HugePageArena uses unless given another: about what the
  // log's memtables release at a flush (a 64 MiB write buffer and the hashed families' 8 MiB
  // bucket arrays), with room for a second.
  static constexpr size_t kProcessCapacity = size_t{128} << 20;
  static MappingPool& Process();

  explicit MappingPool(size_t capacity) : capacity_(capacity) {}
  ~MappingPool();
  MappingPool(const MappingPool&) = delete;
  MappingPool& operator=(const MappingPool&) = delete;

  // A kept mapping of exactly `bytes`, no longer kept; nullptr if there is none.
  char* Take(size_t bytes);
  // Keeps [at, at + bytes) if that stays within the capacity, else unmaps it.
  void Give(char* at, size_t bytes);
  size_t KeptBytes() const;

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::vector<MappedRange> kept_;
  size_t kept_bytes_ = 0;
};

// Bytes handed out from 2 MiB-aligned anonymous mappings advised for transparent huge pages
// (or, where the kernel has them off, faulted in whole when mapped). What is handed out stays
// put until the arena is destroyed, which gives every mapping back to its pool. A mapping is
// taken from the pool when it holds one of the size needed. A request over a quarter of a
// chunk gets a mapping of its own, rounded up to whole chunks.
//
// Not thread-safe: one thread allocates at a time (RocksDB serialises a memtable's inserts
// when concurrent memtable writes are off). `MappedBytes` may be read from any thread.
// A mapping the kernel refuses throws std::bad_alloc, as RocksDB's own arena does.
class HugePageArena final : public rocksdb::Allocator {
 public:
  static constexpr size_t kChunkBytes = size_t{2} << 20;
  // Alignment of AllocateAligned: that of RocksDB's own arena (max_align_t).
  static constexpr size_t kAlign = alignof(std::max_align_t);

  explicit HugePageArena(MappingPool& pool = MappingPool::Process());
  ~HugePageArena() override;
  HugePageArena(const HugePageArena&) = delete;
  HugePageArena& operator=(const HugePageArena&) = delete;

  char* Allocate(size_t bytes) override { return Take(bytes, 1); }
  // `huge_page_size` (RocksDB's explicit hugetlbfs pages) is not used: every chunk already
  // asks for transparent huge pages.
  char* AllocateAligned(size_t bytes, size_t /*huge_page_size*/,
                        rocksdb::Logger* /*logger*/) override {
    return Take(bytes, kAlign);
  }
  size_t BlockSize() const override { return kChunkBytes; }

  // Bytes mapped so far: the memtable's memory as RocksDB should count it.
  size_t MappedBytes() const { return mapped_.load(std::memory_order_relaxed); }

 private:
  char* Take(size_t bytes, size_t align);
  char* Map(size_t bytes);
  char* MapFresh(size_t bytes) const;

  MappingPool& pool_;
  const bool huge_pages_;  // chunks advised for huge pages, else faulted in whole when mapped
  std::vector<MappedRange> mappings_;
  char* next_ = nullptr;
  size_t left_ = 0;
  std::atomic<size_t> mapped_{0};
};

}  // namespace shardledger
