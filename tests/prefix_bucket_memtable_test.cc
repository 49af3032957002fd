#include "events/prefix_bucket_memtable.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <cstdio>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "events/memtable_memory.h"
#include "tests/test_util.h"

namespace shardledger {
namespace {

using testing::TempDir;

// A database of two families on the prefix-bucket memtable, hashed on a key's first 4 bytes
// into 8 slots unless a test says otherwise (so prefixes share slots): `bare` takes RocksDB's own
// arena, `huge` the huge-page arena the log's families use.
class PrefixBucketMemtableTest : public ::testing::Test {
 protected:
  void Open(size_t write_buffer = 64 << 20, size_t slots = 8) {
    rocksdb::DBOptions options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    options.allow_concurrent_memtable_write = false;
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (bool huge : {false, true}) {
      rocksdb::ColumnFamilyOptions cf;
      cf.write_buffer_size = write_buffer;
      cf.prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(4));
      cf.memtable_factory =
          huge ? HugePageMemtable(PrefixBucketMemtable(slots)) : PrefixBucketMemtable(slots);
      families.emplace_back(huge ? "huge" : "bare", cf);
    }
    families.emplace_back(rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions());
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_.path(), families, &handles_, &raw).ok());
    db_.reset(raw);
  }
  void TearDown() override {
    for (auto* handle : handles_) {
      if (db_) {
        EXPECT_TRUE(db_->DestroyColumnFamilyHandle(handle).ok());
      }
    }
    handles_.clear();
    db_.reset();
  }
  std::vector<rocksdb::ColumnFamilyHandle*> Families() const { return {handles_[0], handles_[1]}; }

  static std::string Key(int prefix, uint32_t suffix) {
    char key[16];
    std::snprintf(key, sizeof key, "p%03d", prefix);
    std::string out(key, 4);
    for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>(suffix >> (8 * i)));
    return out;
  }

  // Every row of `model` reads back from `cf`: by Get, by prefix (forward and backward,
  // from the start and from the middle) and by a scan of the whole family (both ways).
  void Verify(rocksdb::ColumnFamilyHandle* cf, const std::map<std::string, std::string>& model,
              int prefixes) {
    SCOPED_TRACE(cf->GetName());
    for (const auto& [key, value] : model) {
      std::string got;
      ASSERT_TRUE(db_->Get(rocksdb::ReadOptions(), cf, key, &got).ok()) << key;
      ASSERT_EQ(got, value);
    }
    for (int p = 0; p < prefixes + 1; ++p) {  // one prefix past the written ones: none
      std::string got;
      EXPECT_TRUE(db_->Get(rocksdb::ReadOptions(), cf, Key(p, 0xfffffffe), &got).IsNotFound());
      std::vector<std::string> expected;
      const std::string prefix = Key(p, 0).substr(0, 4);
      for (auto it = model.lower_bound(prefix); it != model.end() && it->first.starts_with(prefix);
           ++it) {
        expected.push_back(it->first);
      }
      rocksdb::ReadOptions within;
      within.prefix_same_as_start = true;
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(within, cf));
      std::vector<std::string> forward;
      for (it->Seek(prefix); it->Valid(); it->Next()) forward.push_back(it->key().ToString());
      ASSERT_TRUE(it->status().ok());
      ASSERT_EQ(forward, expected) << "prefix " << p;
      std::vector<std::string> backward;
      for (it->SeekForPrev(Key(p, 0xffffffff)); it->Valid(); it->Prev()) {
        backward.push_back(it->key().ToString());
      }
      ASSERT_EQ(std::vector<std::string>(backward.rbegin(), backward.rend()), expected);
      if (!expected.empty()) {
        const std::string& middle = expected[expected.size() / 2];
        it->Seek(middle);
        ASSERT_TRUE(it->Valid());
        EXPECT_EQ(it->key().ToString(), middle);
        it->SeekForPrev(middle);
        ASSERT_TRUE(it->Valid());
        EXPECT_EQ(it->key().ToString(), middle);
        it->Prev();
        if (expected.size() / 2 > 0) {
          ASSERT_TRUE(it->Valid());
          EXPECT_EQ(it->key().ToString(), expected[expected.size() / 2 - 1]);
        } else {
          EXPECT_FALSE(it->Valid());
        }
      }
    }
    rocksdb::ReadOptions whole;
    whole.total_order_seek = true;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(whole, cf));
    auto row = model.begin();
    for (it->SeekToFirst(); it->Valid(); it->Next(), ++row) {
      ASSERT_NE(row, model.end());
      ASSERT_EQ(it->key().ToString(), row->first);
      ASSERT_EQ(it->value().ToString(), row->second);
    }
    ASSERT_EQ(row, model.end());
    auto back = model.rbegin();
    for (it->SeekToLast(); it->Valid(); it->Prev(), ++back) {
      ASSERT_NE(back, model.rend());
      ASSERT_EQ(it->key().ToString(), back->first);
    }
    ASSERT_EQ(back, model.rend());
  }

  TempDir dir_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::unique_ptr<rocksdb::DB> db_;
};

// Keys in and out of order (each prefix's suffixes rising, as a stream's versions do, and at
// random), overwrites and deletes: every read agrees with a map of what was written, in the
// memtable, after a flush, and with rows in both.
TEST_F(PrefixBucketMemtableTest, ReadsAgreeWithWhatWasWritten) {
  Open();
  constexpr int kPrefixes = 24;
  std::mt19937 random(7);
  std::map<std::string, std::string> model;
  std::vector<uint32_t> next(kPrefixes, 1);
  auto write = [&](int rounds) {
    for (int round = 0; round < rounds; ++round) {
      rocksdb::WriteBatch batch;
      const int p = static_cast<int>(random() % kPrefixes);
      const int kind = static_cast<int>(random() % 10);
      std::string key;
      if (kind < 6) {
        key = Key(p, next[p] += 1 + random() % 3);  // after every key of the prefix
      } else if (kind < 8) {
        key = Key(p, random() % (next[p] + 1));  // anywhere, maybe an existing key
      } else if (!model.empty()) {
        auto it = model.lower_bound(Key(p, random() % (next[p] + 1)));
        if (it == model.end()) it = model.begin();
        key = it->first;
        for (auto* cf : Families()) ASSERT_TRUE(batch.Delete(cf, key).ok());
        ASSERT_TRUE(db_->Write(rocksdb::WriteOptions(), &batch).ok());
        model.erase(it);
        continue;
      } else {
        continue;
      }
      const std::string value = key + "/" + std::to_string(round);
      for (auto* cf : Families()) ASSERT_TRUE(batch.Put(cf, key, value).ok());
      ASSERT_TRUE(db_->Write(rocksdb::WriteOptions(), &batch).ok());
      model[key] = value;
    }
  };
  write(3000);
  for (auto* cf : Families()) Verify(cf, model, kPrefixes);
  for (auto* cf : Families()) ASSERT_TRUE(db_->Flush(rocksdb::FlushOptions(), cf).ok());
  for (auto* cf : Families()) Verify(cf, model, kPrefixes);
  write(3000);
  for (auto* cf : Families()) Verify(cf, model, kPrefixes);
}

// Readers beside the writer: a reader walking a prefix sees its keys in order, each with its
// own value, and a key acknowledged before a read began is found; the memtables fill and
// flush meanwhile (4 MiB write buffers: the huge-page arena maps 2 MiB at a time).
TEST_F(PrefixBucketMemtableTest, ReadersBesideTheWriterSeeOrderedCompleteRows) {
  Open(4 << 20);
  constexpr int kPrefixes = 6;
  constexpr uint32_t kVersions = 6000;
  std::atomic<uint32_t> written{0};  // every prefix has versions 1..written
  std::atomic<bool> failed{false};
  std::atomic<uint64_t> rows_read{0};
  auto value_of = [](const std::string& key) { return key + std::string(200, 'v'); };
  std::thread writer([&] {
    std::mt19937 random(11);
    for (uint32_t v = 1; v <= kVersions; ++v) {
      for (int p = 0; p < kPrefixes; ++p) {
        rocksdb::WriteBatch batch;
        const std::string key = Key(p, 2 * v);
        for (auto* cf : Families()) batch.Put(cf, key, value_of(key));
        // An odd key below, out of order in its bucket.
        const std::string below = Key(p, 2 * (random() % v) + 1);
        for (auto* cf : Families()) batch.Put(cf, below, value_of(below));
        if (!db_->Write(rocksdb::WriteOptions(), &batch).ok()) failed = true;
      }
      written.store(v, std::memory_order_release);
    }
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&, r] {
      std::mt19937 random(100 + r);
      while (written.load(std::memory_order_acquire) < kVersions && !failed) {
        const uint32_t known = written.load(std::memory_order_acquire);
        const int p = static_cast<int>(random() % kPrefixes);
        auto* cf = Families()[random() % 2];
        if (known > 0) {
          std::string got;
          const std::string key = Key(p, 2 * (1 + random() % known));
          if (!db_->Get(rocksdb::ReadOptions(), cf, key, &got).ok() || got != value_of(key)) {
            ADD_FAILURE() << cf->GetName() << ": missing " << key;
            failed = true;
          }
        }
        rocksdb::ReadOptions within;
        within.prefix_same_as_start = true;
        std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(within, cf));
        std::string last;
        uint32_t evens = 0;
        const std::string prefix = Key(p, 0).substr(0, 4);
        for (it->Seek(prefix); it->Valid(); it->Next()) {
          const std::string key = it->key().ToString();
          if (!key.starts_with(prefix) || key <= last || it->value().ToString() != value_of(key)) {
            ADD_FAILURE() << "out of order or torn at " << key.size();
            failed = true;
            break;
          }
          if ((static_cast<uint8_t>(key.back()) & 1) == 0) ++evens;
          last = key;
          rows_read.fetch_add(1, std::memory_order_relaxed);
        }
        if (evens < known) {
          ADD_FAILURE() << cf->GetName() << ": saw " << evens << " even versions of " << known;
          failed = true;
        }
      }
    });
  }
  writer.join();
  for (auto& reader : readers) reader.join();
  EXPECT_FALSE(failed);
  EXPECT_GT(rows_read.load(), 0u);
  for (auto* cf : Families()) {
    std::string got;
    EXPECT_TRUE(db_->Get(rocksdb::ReadOptions(), cf, Key(3, 2 * kVersions), &got).ok());
    uint64_t flushed = 0;  // the memtables filled and flushed while the readers read
    ASSERT_TRUE(db_->GetIntProperty(cf, rocksdb::DB::Properties::kLiveSstFilesSize, &flushed));
    EXPECT_GT(flushed, 0u) << cf->GetName();
  }
}

// A search beside inserts that land right before what it looks for. One slot; the writer keeps
// adding keys of prefix 0, each the largest of its prefix, so each goes between prefix 0's last
// key and prefix 1's first. A Get of a prefix-1 key finds it, and a seek to prefix 1 starts at
// its first key, never at a key of prefix 0. (A search used to stop before the first key not
// below its target and then read that link again, so it could return a node inserted there in
// between: a transient miss of rows that had long been written.)
TEST_F(PrefixBucketMemtableTest, ASearchKeepsTheNodeItStoppedBeforeWhileKeysGoInAheadOfIt) {
  Open(64 << 20, /*slots=*/1);
  auto value_of = [](const std::string& key) { return key + std::string(8, 'v'); };
  constexpr uint32_t kTargets = 16;
  for (uint32_t v = 1; v <= kTargets; ++v) {
    rocksdb::WriteBatch batch;
    for (auto* cf : Families()) ASSERT_TRUE(batch.Put(cf, Key(1, v), value_of(Key(1, v))).ok());
    ASSERT_TRUE(db_->Write(rocksdb::WriteOptions(), &batch).ok());
  }
  std::atomic<bool> done{false};
  std::atomic<bool> failed{false};
  std::atomic<uint64_t> searches{0};
  std::thread writer([&] {
    for (uint32_t v = 1; v <= 100'000 && !failed; ++v) {
      rocksdb::WriteBatch batch;
      for (auto* cf : Families()) batch.Put(cf, Key(0, v), value_of(Key(0, v)));
      if (!db_->Write(rocksdb::WriteOptions(), &batch).ok()) failed = true;
    }
    done = true;
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&, r] {
      std::mt19937 random(7 + r);
      const std::string prefix = Key(1, 0).substr(0, 4);
      rocksdb::ReadOptions within;
      within.prefix_same_as_start = true;
      while (!done && !failed) {
        auto* cf = Families()[random() % 2];
        const std::string key = Key(1, 1 + random() % kTargets);
        std::string got;
        if (!db_->Get(rocksdb::ReadOptions(), cf, key, &got).ok() || got != value_of(key)) {
          ADD_FAILURE() << cf->GetName() << ": a Get missed a prefix-1 key";
          failed = true;
        }
        std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(within, cf));
        it->Seek(prefix);
        if (!it->Valid() || it->key().ToString() != Key(1, 1)) {
          ADD_FAILURE() << cf->GetName() << ": a seek to prefix 1 did not start at its first key";
          failed = true;
        }
        searches.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  writer.join();
  for (auto& reader : readers) reader.join();
  EXPECT_FALSE(failed);
  EXPECT_GT(searches.load(), 0u);
}

// Writes `operations` rows of keys from `some_key` into both families (overwrites among
// them), takes a snapshot, then deletes and writes as many again: every whole scan, with and
// without the snapshot, agrees with a map of what was written, in the memtable and after a
// flush. A memtable of 4,096 keys or more is sorted by groups of its keys' leading bits
// (SortByPrefix) before its groups are sorted; a smaller one by std::sort alone.
void CheckWholeScansAndFlushes(rocksdb::DB& db,
                               const std::vector<rocksdb::ColumnFamilyHandle*>& families,
                               std::mt19937& random, const std::function<std::string()>& some_key,
                               int operations) {
  std::map<std::string, std::string> model;
  auto put = [&](const std::string& key, const std::string& value) {
    rocksdb::WriteBatch batch;
    for (auto* cf : families) ASSERT_TRUE(batch.Put(cf, key, value).ok());
    ASSERT_TRUE(db.Write(rocksdb::WriteOptions(), &batch).ok());
    model[key] = value;
  };
  for (int i = 0; i < operations; ++i) put(some_key(), "first " + std::to_string(i));
  ASSERT_GT(model.size(), static_cast<size_t>(operations) / 6);
  const std::map<std::string, std::string> at_snapshot = model;
  const rocksdb::Snapshot* snapshot = db.GetSnapshot();
  for (int i = 0; i < operations; ++i) {
    if (random() % 4 == 0) {
      auto it = model.lower_bound(some_key());
      if (it == model.end()) continue;
      rocksdb::WriteBatch batch;
      for (auto* cf : families) ASSERT_TRUE(batch.Delete(cf, it->first).ok());
      ASSERT_TRUE(db.Write(rocksdb::WriteOptions(), &batch).ok());
      model.erase(it);
    } else {
      put(some_key(), "second " + std::to_string(i));
    }
  }
  auto scan = [&](rocksdb::ColumnFamilyHandle* cf, const rocksdb::Snapshot* at) {
    rocksdb::ReadOptions read;
    read.total_order_seek = true;
    read.snapshot = at;
    std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(read, cf));
    std::map<std::string, std::string> rows;
    std::string last;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      EXPECT_TRUE(rows.empty() || last < it->key().ToString()) << "out of order";
      last = it->key().ToString();
      rows[last] = it->value().ToString();
    }
    EXPECT_TRUE(it->status().ok());
    return rows;
  };
  for (const char* when : {"in the memtable", "after a flush"}) {
    SCOPED_TRACE(when);
    for (auto* cf : families) {
      SCOPED_TRACE(cf->GetName());
      EXPECT_TRUE(scan(cf, nullptr) == model);
      EXPECT_TRUE(scan(cf, snapshot) == at_snapshot);
      for (const auto& [key, value] : at_snapshot) {
        rocksdb::ReadOptions read;
        read.snapshot = snapshot;
        std::string got;
        ASSERT_TRUE(db.Get(read, cf, key, &got).ok());
        EXPECT_EQ(got, value);
      }
    }
    for (auto* cf : families) ASSERT_TRUE(db.Flush(rocksdb::FlushOptions(), cf).ok());
  }
  db.ReleaseSnapshot(snapshot);
}

// Bytes from a small alphabet that holds the extremes: keys that share long beginnings.
std::string SomeBytes(std::mt19937& random, size_t n) {
  const std::string alphabet("\x00\x01\x7f\x80\xff", 5);
  std::string out;
  for (size_t i = 0; i < n; ++i) out.push_back(alphabet[random() % alphabet.size()]);
  return out;
}

// A flush (and a whole-family scan) sorts the memtable on the keys' first 16 bytes before it
// reads the keys themselves. Keys that tell those apart only past byte 16, keys shorter than
// 16 bytes that begin longer ones, zero and high bytes, and a key's older version kept for a
// snapshot all come out in the comparator's order: a scan agrees with a map of what was
// written, now and at the snapshot, in the memtable and after a flush.
TEST_F(PrefixBucketMemtableTest, WholeScansAndFlushesOrderKeysByEveryByte) {
  Open();
  std::mt19937 random(23);
  std::vector<std::string> bases;  // 16 bytes each, so many keys share their first 16
  for (int i = 0; i < 3; ++i) bases.push_back(SomeBytes(random, 16));
  CheckWholeScansAndFlushes(
      *db_, Families(), random,
      [&] {
        const std::string& base = bases[random() % bases.size()];
        if (random() % 3 == 0) return base.substr(0, 1 + random() % 16);  // begins longer keys
        return base + SomeBytes(random, random() % 9);
      },
      3000);
}

// The same with 20,000 rows and as many changes after the snapshot (~40,000 memtable
// entries, sorted by groups first): random 16-byte ids, in slots of their own mostly, among
// keys of the shapes above. The groups are the keys' first 16 bits.
TEST_F(PrefixBucketMemtableTest, LargeMemtablesOfRandomAndSharedKeysScanInOrder) {
  Open(64 << 20, 1 << 16);
  std::mt19937 random(29);
  std::vector<std::string> bases;
  for (int i = 0; i < 3; ++i) bases.push_back(SomeBytes(random, 16));
  CheckWholeScansAndFlushes(
      *db_, Families(), random,
      [&]() -> std::string {
        const int kind = static_cast<int>(random() % 4);
        if (kind < 2) {
          std::string id;
          for (int i = 0; i < 16; ++i) id.push_back(static_cast<char>(random()));
          return id;
        }
        const std::string& base = bases[random() % bases.size()];
        if (kind == 2) return base.substr(0, 1 + random() % 16);
        return base + SomeBytes(random, random() % 9);
      },
      20'000);
}

// Keys that begin with one of `beginnings` and go on with a few bytes (as a stream's version
// rows do) or end there, ~40,000 memtable entries.
void CheckSharedBeginnings(rocksdb::DB& db,
                           const std::vector<rocksdb::ColumnFamilyHandle*>& families,
                           const std::vector<std::string>& beginnings, unsigned seed) {
  std::mt19937 random(seed);
  CheckWholeScansAndFlushes(
      db, families, random,
      [&] {
        std::string key =
            beginnings[random() % beginnings.size()] + SomeBytes(random, random() % 8);
        if (random() % 2 == 0) {
          for (int i = 0; i < 2; ++i) key.push_back(static_cast<char>(random()));
        }
        return key;
      },
      20'000);
}

// One 12-byte beginning: the groups are bits of the 13th and 14th bytes, and of the zeros
// past the end of a key that ends there.
TEST_F(PrefixBucketMemtableTest, LargeMemtablesOfKeysThatShareTwelveBytesScanInOrder) {
  Open();
  CheckSharedBeginnings(*db_, Families(), {"stream/00042"}, 31);
}

// Two 8-byte beginnings that part in their 7th byte ('/' and ':' part at its fourth bit): the
// groups' bits run from there into the 9th byte, across the two numbers a key's first 16
// bytes are held in.
TEST_F(PrefixBucketMemtableTest, LargeMemtablesOfKeysThatPartInTheirSeventhByteScanInOrder) {
  Open();
  CheckSharedBeginnings(*db_, Families(), {"stream/0", "stream:0"}, 37);
}

}  // namespace
}  // namespace shardledger
