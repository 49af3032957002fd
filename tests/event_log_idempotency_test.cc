// EventLog: an event id appended again is answered with its original seq and writes nothing.
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/table_properties.h>

#include <thread>

#include "events/event_log.h"
#include "events/event_log_internal.h"
#include "tests/event_log_util.h"
#include "tests/test_util.h"

namespace shardledger::testing {
namespace {

// ---------------------------------------------------------------- idempotency

TEST(EventLog, RepeatedEventIdReturnsTheOriginalSeqAndWritesNothing) {
  TempDir dir;
  AppendBatch batch;
  batch.events.push_back(Assigned("wf/x", "x", 2));
  batch.events.push_back(Assigned("wf/y", "y", 3));
  {
    auto log = OpenLog(dir.path());
    ASSERT_OK(log->Append(OneEvent("other")));
    auto first = log->Append(batch);
    ASSERT_OK(first);
    EXPECT_EQ(first->first_seq, 2u);
    EXPECT_EQ(first->last_seq, 3u);
    EXPECT_FALSE(first->replayed);

    auto again = log->Append(batch);
    ASSERT_OK(again);
    EXPECT_TRUE(again->replayed);
    EXPECT_EQ(again->seqs, (std::vector<uint64_t>{2, 3}));
    EXPECT_EQ(log->Head().seq, 3u);
    EXPECT_EQ(log->StreamVersion("wf/x").value(), 1u);
  }
  // The id index is permanent: after a restart the repeat is still recognised.
  auto log = OpenLog(dir.path());
  auto after_restart = log->Append(batch);
  ASSERT_OK(after_restart);
  EXPECT_TRUE(after_restart->replayed);
  EXPECT_EQ(after_restart->seqs, (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(log->Head().seq, 3u);
  EXPECT_EQ(log->ReadRange(1, 100).value().size(), 3u);
}

// Ids that share their first 8 bytes (a client's counter-based ids, UUIDv7s or ULIDs minted in
// the same instant) are each recognised, in the memtable, in SST files and after a reopen;
// the id index hashes the whole id, so they do not pile into one memtable bucket.
TEST(EventLog, IdsSharingTheirLeadingBytesAreEachRecognised) {
  TempDir dir;
  auto batch_of = [](int from, int count) {
    AppendBatch batch;
    for (int i = from; i < from + count; ++i) {
      NewEvent event = Assigned("wf/shared", "shared", 1);
      event.event_id.fill(0x5a);
      event.event_id[15] = static_cast<uint8_t>(i);
      event.event_id[14] = static_cast<uint8_t>(i >> 8);
      batch.events.push_back(std::move(event));
    }
    return batch;
  };
  auto expect_replayed = [&](EventLog& log, int from, int count) {
    for (int i = from; i < from + count; ++i) {
      auto again = log.Append(batch_of(i, 1));
      ASSERT_OK(again);
      EXPECT_TRUE(again->replayed) << i;
      EXPECT_EQ(again->seqs, std::vector<uint64_t>{static_cast<uint64_t>(i + 1)}) << i;
    }
  };
  {
    auto log = OpenLog(dir.path());
    rocksdb::ColumnFamilyHandle* ids = log->ColumnFamily("ids");
    const rocksdb::Options options = log->db()->GetOptions(ids);
    ASSERT_NE(options.prefix_extractor, nullptr);
    const Id128 id = batch_of(7, 1).events[0].event_id;
    const rocksdb::Slice key(reinterpret_cast<const char*>(id.data()), id.size());
    EXPECT_EQ(options.prefix_extractor->Transform(key).ToString(), key.ToString());

    ASSERT_OK(log->Append(batch_of(0, 300)));  // seqs 1..300
    expect_replayed(*log, 0, 300);
    ASSERT_OK(log->SettleStorage());             // the id rows in SST files
    ASSERT_OK(log->Append(batch_of(300, 100)));  // seqs 301..400, in the memtable
    expect_replayed(*log, 0, 400);
    EXPECT_EQ(log->Head().seq, 400u);
  }
  auto log = OpenLog(dir.path());
  expect_replayed(*log, 0, 400);
  EXPECT_EQ(log->Head().seq, 400u);
}

// The id index hashed the first 8 bytes of an id until 2026-12-07. SST files whose filters
// were built that way still answer for their ids: RocksDB leaves a prefix filter built by
// another prefix extractor unused, and the whole-key filter answers.
TEST(EventLog, IdsInFilesIndexedByTheEarlierEightBytePrefixAreStillRecognised) {
  TempDir dir;
  AppendBatch batch;
  for (int i = 0; i < 50; ++i) batch.events.push_back(Assigned("wf/old", "old", 1));
  {
    auto log = OpenLog(dir.path());
    ASSERT_OK(log->Append(batch));
  }
  {
    // Rewrite the id rows into an SST file the way the earlier build configured the family.
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir.path(), &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const std::string& name : names) {
      rocksdb::ColumnFamilyOptions cf;
      if (name == "ids") {
        rocksdb::BlockBasedTableOptions table;
        table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
        cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
        cf.prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(8));
      }
      families.emplace_back(name, cf);
    }
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), dir.path(), families, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    rocksdb::ColumnFamilyHandle* ids = nullptr;
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == "ids") ids = handles[i];
    }
    ASSERT_NE(ids, nullptr);
    rocksdb::CompactRangeOptions compact;
    compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    ASSERT_TRUE(db->CompactRange(compact, ids, nullptr, nullptr).ok());
    rocksdb::TablePropertiesCollection tables;
    ASSERT_TRUE(db->GetPropertiesOfAllTables(ids, &tables).ok());
    ASSERT_FALSE(tables.empty());
    for (const auto& [file, properties] : tables) {
      EXPECT_EQ(properties->prefix_extractor_name, "rocksdb.FixedPrefix.8") << file;
    }
    for (rocksdb::ColumnFamilyHandle* handle : handles) {
      ASSERT_TRUE(db->DestroyColumnFamilyHandle(handle).ok());
    }
  }
  auto log = OpenLog(dir.path());
  auto again = log->Append(batch);
  ASSERT_OK(again);
  EXPECT_TRUE(again->replayed);
  ASSERT_EQ(again->seqs.size(), 50u);
  EXPECT_EQ(again->seqs.front(), 1u);
  EXPECT_EQ(again->seqs.back(), 50u);
  EXPECT_EQ(log->Head().seq, 50u);
}

TEST(EventLog, RepeatInTheSameGroupIsRecognised) {
  TempDir dir;
  auto log = OpenLog(dir.path());
  AppendBatch batch = OneEvent("s");
  std::vector<Result<AppendResult>> results;
  std::vector<std::thread> threads;
  std::mutex mu;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto r = log->Append(batch);
      std::lock_guard lock(mu);
      results.push_back(std::move(r));
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    ASSERT_OK(r);
    EXPECT_EQ(r->first_seq, 1u);
  }
  EXPECT_EQ(log->Head().seq, 1u);
}

// The writer's table of a group's ids: found until cleared, gone after, the first seq kept;
// ids that differ only in their last byte, or only in their first, all stay apart.
TEST(GroupIds, FindsWhatTheGroupStagedUntilCleared) {
  GroupIds ids;
  EXPECT_EQ(ids.Find(Id128{}), 0u);
  auto id = [](int i, bool low) {
    Id128 out{};
    out[low ? 15 : 0] = static_cast<uint8_t>(i);
    out[low ? 14 : 1] = static_cast<uint8_t>(i >> 8);
    return out;
  };
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    constexpr int kCount = 5'000;  // past the first size: it grows
    for (int i = 0; i < kCount; ++i) {
      ids.Insert(id(i, true), 1 + i + 100'000 * round);
      ids.Insert(id(i, false), 50'000 + i);
    }
    ids.Insert(id(7, true), 999'999);        // already there: keeps its seq
    EXPECT_EQ(ids.size(), 2u * kCount - 1);  // id(0, true) == id(0, false)
    for (int i = 0; i < kCount; ++i) {
      EXPECT_EQ(ids.Find(id(i, true)), static_cast<uint64_t>(1 + i + 100'000 * round));
      if (i > 0) {
        EXPECT_EQ(ids.Find(id(i, false)), static_cast<uint64_t>(50'000 + i));
      }
    }
    EXPECT_EQ(ids.Find(id(kCount, true)), 0u);
    ids.Clear();
    EXPECT_EQ(ids.size(), 0u);
    for (int i = 0; i < kCount; i += 97) EXPECT_EQ(ids.Find(id(i, true)), 0u);
  }
}

TEST(EventLog, MintedIdsAreRecordedAndAnsweredForLikeAnyOther) {
  TempDir dir;
  auto log = OpenLog(dir.path());
  AppendBatch minted;
  for (int i = 0; i < 3; ++i) minted.events.push_back(Assigned("s", "w" + std::to_string(i), 1));
  std::vector<Id128> ids(3);
  FillRandomId128s(ids.data(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) minted.events[i].event_id = ids[i];
  EXPECT_NE(ids[0], ids[1]);
  minted.ids_minted = true;
  AppendBatch retry = minted;
  retry.ids_minted = false;  // a client repeating them: the log looks them up
  auto first = log->Append(std::move(minted));
  ASSERT_OK(first);
  EXPECT_EQ(first->first_seq, 1u);
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(*log->FindEventId(ids[i]), i + 1);
  auto again = log->Append(std::move(retry));
  ASSERT_OK(again);
  EXPECT_TRUE(again->replayed);
  EXPECT_EQ(again->seqs, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(log->Head().seq, 3u);
}

TEST(EventLog, BatchMixingRecordedAndNewIdsIsRejected) {
  TempDir dir;
  auto log = OpenLog(dir.path());
  AppendBatch first = OneEvent("s");
  ASSERT_OK(log->Append(first));
  AppendBatch mixed = first;
  mixed.events.push_back(Assigned("s", "s", 1));
  auto result = log->Append(mixed);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), ErrorCode::kBadRequest);
  EXPECT_EQ(log->Head().seq, 1u);
}

}  // namespace
}  // namespace shardledger::testing
