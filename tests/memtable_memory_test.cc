#include "events/memtable_memory.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/slice_transform.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "events/huge_page_arena.h"
#include "events/prefix_bucket_memtable.h"
#include "tests/test_util.h"

namespace shardledger {
namespace {

using testing::TempDir;

bool Aligned(const void* at, size_t to) { return reinterpret_cast<uintptr_t>(at) % to == 0; }

TEST(HugePageArena, HandsOutAlignedDisjointBytesFromChunksOnHugePageBoundaries) {
  HugePageArena arena;
  struct Piece {
    char* at;
    size_t bytes;
  };
  std::vector<Piece> pieces;
  size_t asked = 0;
  for (size_t i = 0; i < 20'000; ++i) {
    const size_t bytes = 1 + (i * 7919) % 700;
    char* at = i % 3 == 0 ? arena.Allocate(bytes) : arena.AllocateAligned(bytes, 0, nullptr);
    if (i == 0) {
      EXPECT_TRUE(Aligned(at, HugePageArena::kChunkBytes));
    }
    if (i % 3 != 0) {
      EXPECT_TRUE(Aligned(at, HugePageArena::kAlign)) << i;
    }
    std::memset(at, static_cast<int>(i % 251), bytes);
    pieces.push_back({at, bytes});
    asked += bytes;
  }
  // Each piece still holds its own byte: no two overlap.
  for (size_t i = 0; i < pieces.size(); ++i) {
    for (size_t b = 0; b < pieces[i].bytes; ++b) {
      ASSERT_EQ(static_cast<unsigned char>(pieces[i].at[b]), i % 251) << i;
    }
  }
  EXPECT_EQ(arena.MappedBytes() % HugePageArena::kChunkBytes, 0u);
  EXPECT_GE(arena.MappedBytes(), asked);
  EXPECT_LE(arena.MappedBytes(), asked + 2 * HugePageArena::kChunkBytes);
}

TEST(HugePageArena, LargeRequestGetsAMappingOfItsOwn) {
  HugePageArena arena;
  char* small = arena.Allocate(100);
  EXPECT_EQ(arena.MappedBytes(), HugePageArena::kChunkBytes);
  constexpr size_t kLarge = (size_t{8} << 20) + 1;
  char* large = arena.AllocateAligned(kLarge, 0, nullptr);
  EXPECT_TRUE(Aligned(large, HugePageArena::kChunkBytes));
  EXPECT_EQ(arena.MappedBytes(), HugePageArena::kChunkBytes + (size_t{10} << 20));
  std::memset(large, 0x5a, kLarge);
  // Small requests go on filling the first chunk.
  char* next = arena.Allocate(100);
  EXPECT_EQ(next, small + 100);
  EXPECT_EQ(arena.MappedBytes(), HugePageArena::kChunkBytes + (size_t{10} << 20));
}

// An arena's mappings go back to its pool when it is destroyed, as far as the pool's capacity
// goes (the rest is unmapped), and the next arena takes them by size instead of mapping anew.
TEST(HugePageArena, GivesItsMappingsToThePoolAndTheNextArenaTakesThemBySize) {
  constexpr size_t kChunk = HugePageArena::kChunkBytes;
  MappingPool pool(3 * kChunk);
  char* first_chunk = nullptr;
  char* large = nullptr;
  {
    HugePageArena arena(pool);
    first_chunk = arena.Allocate(100);
    large = arena.AllocateAligned(2 * kChunk, 0, nullptr);   // a mapping of its own
    for (int i = 0; i < 4; ++i) arena.Allocate(kChunk / 4);  // fills the first chunk, maps a second
    EXPECT_EQ(arena.MappedBytes(), 4 * kChunk);
    std::memset(large, 0x5a, 2 * kChunk);
    EXPECT_EQ(pool.KeptBytes(), 0u);
  }
  // The first chunk and the large mapping fit in three chunks; the second chunk did not.
  EXPECT_EQ(pool.KeptBytes(), 3 * kChunk);

  HugePageArena next(pool);
  char* small = next.Allocate(100);
  EXPECT_EQ(small, first_chunk);
  EXPECT_EQ(pool.KeptBytes(), 2 * kChunk);
  char* again = next.AllocateAligned(2 * kChunk - 1, 0, nullptr);  // rounded up to 2 chunks
  EXPECT_EQ(again, large);
  EXPECT_EQ(pool.KeptBytes(), 0u);
  EXPECT_EQ(next.MappedBytes(), 3 * kChunk);
  // Kept memory is handed out as it was left, and is writable.
  EXPECT_EQ(static_cast<unsigned char>(again[kChunk]), 0x5au);
  std::memset(again, 0, 2 * kChunk - 1);
  // With nothing of the size kept, the arena maps a fresh one.
  char* fresh = next.AllocateAligned(4 * kChunk, 0, nullptr);
  EXPECT_TRUE(Aligned(fresh, kChunk));
  EXPECT_NE(fresh, large);
  EXPECT_EQ(next.MappedBytes(), 7 * kChunk);
}

class HugePageMemtableTest : public ::testing::Test {
 protected:
  static rocksdb::DBOptions DbOptions() {
    rocksdb::DBOptions options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    options.allow_concurrent_memtable_write = false;
    return options;
  }

  // `default`: a skiplist memtable (the log's); `hashed`: our prefix-bucket memtable keyed on
  // the first 4 bytes (as `ids` and `streams` are, on their own prefixes). Both in huge
  // pages, 4 MiB write buffers.
  static std::vector<rocksdb::ColumnFamilyDescriptor> Families() {
    rocksdb::ColumnFamilyOptions plain;
    plain.write_buffer_size = 4 << 20;
    plain.memtable_factory = HugePageMemtable(std::make_shared<rocksdb::SkipListFactory>());
    rocksdb::ColumnFamilyOptions hashed = plain;
    hashed.prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(4));
    hashed.memtable_factory = HugePageMemtable(PrefixBucketMemtable(1024));
    return {{rocksdb::kDefaultColumnFamilyName, plain}, {"hashed", hashed}};
  }

  static std::string Key(int i) {
    char key[9];
    std::snprintf(key, sizeof key, "%08d", i);
    return key;
  }
  static std::string Value(int i) { return std::string(1000, static_cast<char>('a' + i % 26)); }

  TempDir dir_;
};

// The memtables' memory is the arena's, so RocksDB must count it to flush: 40 MiB written
// into 4 MiB write buffers leaves SST files and a small memtable, and every row reads back,
// in order, before and after a reopen. The flushed memtables' mappings go to the process's
// pool and later memtables are written in them again, as it left them.
TEST_F(HugePageMemtableTest, FlushesAtTheWriteBufferSizeAndKeepsEveryRow) {
  constexpr int kRows = 40'000;
  auto check = [&](rocksdb::DB* db, const std::vector<rocksdb::ColumnFamilyHandle*>& handles) {
    for (auto* handle : handles) {
      rocksdb::ReadOptions read;
      read.total_order_seek = true;  // a whole-family scan of the hashed family
      std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(read, handle));
      int i = 0;
      for (it->SeekToFirst(); it->Valid(); it->Next(), ++i) {
        ASSERT_EQ(it->key().ToString(), Key(i));
        ASSERT_EQ(it->value().ToString(), Value(i));
      }
      ASSERT_TRUE(it->status().ok());
      EXPECT_EQ(i, kRows) << handle->GetName();
      std::string value;
      ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), handle, Key(kRows / 2), &value).ok());
      EXPECT_EQ(value, Value(kRows / 2));
    }
  };
  {
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(DbOptions(), dir_.path(), Families(), &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    for (int i = 0; i < kRows; i += 100) {
      rocksdb::WriteBatch batch;
      for (int j = i; j < i + 100; ++j) {
        for (auto* handle : handles) ASSERT_TRUE(batch.Put(handle, Key(j), Value(j)).ok());
      }
      ASSERT_TRUE(db->Write(rocksdb::WriteOptions(), &batch).ok());
    }
    std::vector<rocksdb::LiveFileMetaData> files;
    db->GetLiveFilesMetaData(&files);
    for (auto* handle : handles) {
      const auto tables = std::count_if(files.begin(), files.end(), [&](const auto& file) {
        return file.column_family_name == handle->GetName();
      });
      uint64_t memtable = 0;
      ASSERT_TRUE(
          db->GetIntProperty(handle, rocksdb::DB::Properties::kCurSizeActiveMemTable, &memtable));
      EXPECT_GT(tables, 0) << handle->GetName();
      EXPECT_LE(memtable, uint64_t{8} << 20) << handle->GetName();
    }
    check(db.get(), handles);
    EXPECT_GT(MappingPool::Process().KeptBytes(), 0u);
    for (auto* handle : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(handle).ok());
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(DbOptions(), dir_.path(), Families(), &handles, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  check(db.get(), handles);
  for (auto* handle : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(handle).ok());
}

// The arena takes one allocating thread at a time, so RocksDB must refuse concurrent inserts.
TEST_F(HugePageMemtableTest, RefusesConcurrentMemtableWrites) {
  rocksdb::DBOptions options = DbOptions();
  options.allow_concurrent_memtable_write = true;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir_.path(), Families(), &handles, &raw);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_EQ(raw, nullptr);
}

}  // namespace
}  // namespace shardledger
