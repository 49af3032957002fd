#include "events/memtable_memory.h"

#include <sys/mman.h>

#include <cstdint>
#include <fstream>
#include <new>
#include <string>

#include "events/huge_page_arena.h"
#include "events/memory.h"

namespace shardledger {

namespace {

// Transparent huge pages are on unless the kernel lacks them or has them set to `never`
// ("always [madvise] never": the bracket marks the setting). Read once per process.
bool TransparentHugePagesOn() {
  static const bool on = [] {
    std::ifstream setting("/sys/kernel/mm/transparent_hugepage/enabled");
    std::string line;
    if (!std::getline(setting, line)) return false;
    return line.find("[never]") == std::string::npos;
  }();
  return on;
}

}  // namespace

MappingPool& MappingPool::Process() {
  // Never destroyed: arenas of logs still open at exit give their mappings back to it.
  static MappingPool* const pool = new MappingPool(kProcessCapacity);
  return *pool;
}

MappingPool::~MappingPool() {
  for (const MappedRange& kept : kept_) munmap(kept.at, kept.bytes);
}

char* MappingPool::Take(size_t bytes) {
  std::lock_guard lock(mu_);
  for (auto it = kept_.begin(); it != kept_.end(); ++it) {
    if (it->bytes != bytes) continue;
    char* at = it->at;
    kept_bytes_ -= bytes;
    *it = kept_.back();
    kept_.pop_back();
    return at;
  }
  return nullptr;
}

void MappingPool::Give(char* at, size_t bytes) {
  {
    std::lock_guard lock(mu_);
    if (kept_bytes_ + bytes <= capacity_) {
      kept_.push_back(MappedRange{at, bytes});
      kept_bytes_ += bytes;
      return;
    }
  }
  munmap(at, bytes);
}

size_t MappingPool::KeptBytes() const {
  std::lock_guard lock(mu_);
  return kept_bytes_;
}

HugePageArena::HugePageArena(MappingPool& pool)
    : pool_(pool), huge_pages_(TransparentHugePagesOn()) {}

HugePageArena::~HugePageArena() {
  for (const MappedRange& mapping : mappings_) pool_.Give(mapping.at, mapping.bytes);
}

char* HugePageArena::Take(size_t bytes, size_t align) {
  if (bytes > kChunkBytes / 4) {
    return Map((bytes + kChunkBytes - 1) / kChunkBytes * kChunkBytes);
  }
  size_t pad = (align - reinterpret_cast<uintptr_t>(next_) % align) % align;
  if (bytes + pad > left_) {
    // The rest of the chunk (under a quarter of it at most, for a request this size) goes
    // unused; RocksDB's arena does the same with its blocks.
    next_ = Map(kChunkBytes);
    left_ = kChunkBytes;
    pad = 0;
  }
  next_ += pad;
  char* taken = next_;
  next_ += bytes;
  left_ -= bytes + pad;
  return taken;
}

// A mapping of `bytes` (a multiple of kChunkBytes) that starts on a kChunkBytes boundary, so
// the kernel can back each chunk with one huge page: one the pool kept, or a new one (map a
// chunk more than asked and unmap the ends).
char* HugePageArena::Map(size_t bytes) {
  char* chunk = pool_.Take(bytes);  // already advised (or faulted in) when first mapped
  if (chunk == nullptr) chunk = MapFresh(bytes);
  mappings_.push_back(MappedRange{chunk, bytes});
  mapped_.fetch_add(bytes, std::memory_order_relaxed);
  return chunk;
}

char* HugePageArena::MapFresh(size_t bytes) const {
  const size_t reserve = bytes + kChunkBytes;
  void* at = mmap(nullptr, reserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (at == MAP_FAILED) throw std::bad_alloc();
  const auto start = reinterpret_cast<uintptr_t>(at);
  const uintptr_t aligned = (start + kChunkBytes - 1) & ~(uintptr_t{kChunkBytes} - 1);
  if (aligned > start) munmap(at, aligned - start);
  const uintptr_t tail = aligned + bytes;
  if (start + reserve > tail) munmap(reinterpret_cast<void*>(tail), start + reserve - tail);
  char* chunk = reinterpret_cast<char*>(aligned);
  // Either only speeds things up; when the kernel refuses, the pages fault in one at a time
  // as any fresh memory does.
  if (huge_pages_) {
    madvise(chunk, bytes, MADV_HUGEPAGE);
  } else {
    PrefaultForWrite(chunk, bytes, /*min_bytes=*/0);
  }
  return chunk;
}

namespace {

// RocksDB's representation, built on a HugePageArena that this wrapper owns. Everything but
// the memory usage is the inner representation's.
class HugePageRep final : public rocksdb::MemTableRep {
 public:
  HugePageRep(std::unique_ptr<HugePageArena> arena, std::unique_ptr<rocksdb::MemTableRep> inner)
      : MemTableRep(arena.get()), arena_(std::move(arena)), inner_(std::move(inner)) {}

  rocksdb::KeyHandle Allocate(const size_t len, char** buf) override {
    return inner_->Allocate(len, buf);
  }
  void Insert(rocksdb::KeyHandle handle) override { inner_->Insert(handle); }
  bool InsertKey(rocksdb::KeyHandle handle) override { return inner_->InsertKey(handle); }
  void InsertWithHint(rocksdb::KeyHandle handle, void** hint) override {
    inner_->InsertWithHint(handle, hint);
  }
  bool InsertKeyWithHint(rocksdb::KeyHandle handle, void** hint) override {
    return inner_->InsertKeyWithHint(handle, hint);
  }
  bool Contains(const char* key) const override { return inner_->Contains(key); }
  void MarkReadOnly() override { inner_->MarkReadOnly(); }
  void MarkFlushed() override { inner_->MarkFlushed(); }
  void Get(const rocksdb::LookupKey& key, void* callback_args,
           bool (*callback_func)(void* arg, const char* entry)) override {
    inner_->Get(key, callback_args, callback_func);
  }
  uint64_t ApproximateNumEntries(const rocksdb::Slice& start_ikey,
                                 const rocksdb::Slice& end_key) override {
    return inner_->ApproximateNumEntries(start_ikey, end_key);
  }
  void UniqueRandomSample(const uint64_t num_entries, const uint64_t target_sample_size,
                          std::unordered_set<const char*>* entries) override {
    inner_->UniqueRandomSample(num_entries, target_sample_size, entries);
  }
  // The inner representation reports what it holds outside its allocator (RocksDB's own
  // report 0: all of theirs is in it); the arena's mappings are the rest.
  size_t ApproximateMemoryUsage() override {
    return inner_->ApproximateMemoryUsage() + arena_->MappedBytes();
  }
  Iterator* GetIterator(rocksdb::Arena* arena) override { return inner_->GetIterator(arena); }
  Iterator* GetDynamicPrefixIterator(rocksdb::Arena* arena) override {
    return inner_->GetDynamicPrefixIterator(arena);
  }
  bool IsMergeOperatorSupported() const override { return inner_->IsMergeOperatorSupported(); }
  bool IsSnapshotSupported() const override { return inner_->IsSnapshotSupported(); }

 private:
  // Declared first so that it outlives the representation built on it.
  std::unique_ptr<HugePageArena> arena_;
  std::unique_ptr<rocksdb::MemTableRep> inner_;
};

class HugePageFactory final : public rocksdb::MemTableRepFactory {
 public:
  explicit HugePageFactory(std::shared_ptr<rocksdb::MemTableRepFactory> inner)
      : inner_(std::move(inner)), name_(std::string("shardledger.HugePage.") + inner_->Name()) {}

  rocksdb::MemTableRep* CreateMemTableRep(const rocksdb::MemTableRep::KeyComparator& compare,
                                          rocksdb::Allocator* allocator,
                                          const rocksdb::SliceTransform* transform,
                                          rocksdb::Logger* logger) override {
    return CreateMemTableRep(compare, allocator, transform, logger, 0);
  }
  // `allocator` (the memtable's own arena) is left to RocksDB's other uses of it.
  rocksdb::MemTableRep* CreateMemTableRep(const rocksdb::MemTableRep::KeyComparator& compare,
                                          rocksdb::Allocator* /*allocator*/,
                                          const rocksdb::SliceTransform* transform,
                                          rocksdb::Logger* logger,
                                          uint32_t column_family_id) override {
    auto arena = std::make_unique<HugePageArena>();
    std::unique_ptr<rocksdb::MemTableRep> inner(
        inner_->CreateMemTableRep(compare, arena.get(), transform, logger, column_family_id));
    return std::make_unique<HugePageRep>(std::move(arena), std::move(inner)).release();
  }
  const char* Name() const override { return name_.c_str(); }
  // The arena takes one allocating thread at a time.
  bool IsInsertConcurrentlySupported() const override { return false; }
  bool CanHandleDuplicatedKey() const override { return inner_->CanHandleDuplicatedKey(); }

 private:
  std::shared_ptr<rocksdb::MemTableRepFactory> inner_;
  std::string name_;
};

}  // namespace

std::shared_ptr<rocksdb::MemTableRepFactory> HugePageMemtable(
    std::shared_ptr<rocksdb::MemTableRepFactory> inner) {
  return std::make_shared<HugePageFactory>(std::move(inner));
}

}  // namespace shardledger
