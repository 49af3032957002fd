// EventLog: an event id appended again is answered with its original seq and writes nothing.
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/table_properties.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>
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

// A hook whose first Fold waits until released: the appends queued meanwhile are staged
// together, in the next group.
class GateProjection : public FoldHook {
 public:
  Status Fold(const Record&, rocksdb::WriteBatch&) override {
    std::unique_lock lock(mu_);
    if (!entered_) {
      entered_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return open_; });
    }
    return Status::Ok();
  }
  void Publish(uint64_t) override {}
  void Discard(uint64_t) override {}
  void WaitEntered() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return entered_; });
  }
  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false;
  bool open_ = false;
};

// One group of one-event appends whose ids are looked up together: ids recorded in an SST
// file and in the memtable are answered with their seqs (one of them asked twice in the
// group), an id new to the log is written once and its repeat later in the same group is
// answered with the seq it got, and the other new ids get seqs in queue order; a batch of
// two events in the same group is looked up on its own.
TEST(EventLog, OneEventAppendsOfAGroupAreLookedUpTogether) {
  TempDir dir;
  GateProjection gate;  // outlives the log, which holds it
  auto log = OpenLog(dir.path());
  const AppendBatch in_file = OneEvent("s/file");
  const AppendBatch in_memtable = OneEvent("s/memtable");
  ASSERT_OK(log->Append(in_file));      // seq 1
  ASSERT_OK(log->SettleStorage());      // flushed: an SST file holds its id
  ASSERT_OK(log->Append(in_memtable));  // seq 2
  ASSERT_OK(log->AddHook(&gate, log->Head().seq));

  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::optional<Result<AppendResult>>> results;
  auto append = [&](AppendBatch batch) {
    size_t index = 0;
    {
      std::lock_guard lock(mu);
      index = results.size();
      results.emplace_back();
    }
    log->AppendAsync(std::move(batch), [&, index](Result<AppendResult> result) {
      std::lock_guard lock(mu);
      results[index].emplace(std::move(result));
      cv.notify_all();
    });
  };
  append(OneEvent("s/opens"));  // seq 3, held in its group by the gate
  gate.WaitEntered();
  const LogStats before = log->Stats();
  const AppendBatch fresh = OneEvent("s/fresh");
  AppendBatch two;
  two.events.push_back(Assigned("s/two", "a", 1));
  two.events.push_back(Assigned("s/two", "b", 1));
  append(in_file);              // 1: recorded in the file
  append(fresh);                // 2: new, seq 4
  append(in_memtable);          // 3: recorded in the memtable
  append(fresh);                // 4: the repeat of 2, in the same group
  append(OneEvent("s/other"));  // 5: new, seq 5
  append(in_file);              // 6: asked twice in one lookup
  append(two);                  // 7: seqs 6 and 7
  gate.Open();
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] {
      return std::all_of(results.begin(), results.end(),
                         [](const auto& r) { return r.has_value(); });
    }));
  }
  const LogStats after = log->Stats().Since(before);
  EXPECT_EQ(after.groups, 2u) << "the gate's group and the one queued behind it";
  struct Expected {
    uint64_t first_seq;
    uint64_t last_seq;
    bool replayed;
  };
  const std::vector<Expected> expected = {{3, 3, false}, {1, 1, true}, {4, 4, false},
                                          {2, 2, true},  {4, 4, true}, {5, 5, false},
                                          {1, 1, true},  {6, 7, false}};
  ASSERT_EQ(results.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE("append " + std::to_string(i));
    ASSERT_OK(*results[i]);
    EXPECT_EQ((*results[i])->first_seq, expected[i].first_seq);
    EXPECT_EQ((*results[i])->last_seq, expected[i].last_seq);
    EXPECT_EQ((*results[i])->replayed, expected[i].replayed);
  }
  EXPECT_EQ(log->Head().seq, 7u);
  EXPECT_EQ(log->ReadRange(1, 100).value().size(), 7u);
  log->RemoveHook(&gate);
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
