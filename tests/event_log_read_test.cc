// EventLog: reads by range, filter and stream; the chain's verification of tampered records;
// recovery, and the refusal to open a log whose head and records disagree.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include "events/event_log.h"
#include "events/keys.h"
#include "tests/event_log_util.h"
#include "tests/test_util.h"

namespace shardledger::testing {
namespace {

// ---------------------------------------------------------------- reads

TEST(EventLog, ReadsByRangeStreamAndFilter) {
  TempDir dir;
  auto log = OpenLog(dir.path());
  for (int i = 0; i < 10; ++i) ASSERT_OK(log->Append(OneEvent(i % 2 ? "wf/odd" : "wf/even")));
  AppendBatch job;
  job.events.push_back(NewEvent{RandomId128(), "job/j1",
                                JobCreated{"j1", JobType::kProofCreation, 7, {{"k", "v"}}}});
  ASSERT_OK(log->Append(job));

  auto range = log->ReadRange(3, 5);
  ASSERT_OK(range);
  ASSERT_EQ(range->size(), 3u);
  EXPECT_EQ(range->front().seq, 3u);
  EXPECT_EQ(log->ReadRange(1, 100, 4).value().size(), 4u);
  EXPECT_EQ(log->ReadRange(12, 20).value().size(), 0u);

  auto odd = log->ReadStream("wf/odd", 3);
  ASSERT_OK(odd);
  ASSERT_EQ(odd->size(), 3u);
  EXPECT_EQ(odd->front().stream_version, 3u);
  EXPECT_EQ(odd->back().stream_version, 5u);

  auto wf = log->ReadFiltered(ReadFilter{.stream_prefix = "wf/"});
  EXPECT_EQ(wf.value().size(), 10u);
  auto jobs = log->ReadFiltered(ReadFilter{.event_types = {EventType::kJobCreated}});
  ASSERT_EQ(jobs.value().size(), 1u);
  EXPECT_EQ(std::get<JobCreated>(jobs->front().payload).internal_id, 7u);
}

// A stream's index rows sit in one memtable bucket per 256 versions: a read crosses from one
// bucket to the next, whether the rows are in the memtable, in SST files or split between.
TEST(EventLog, StreamReadsCrossEvery256VersionBucket) {
  TempDir dir;
  auto log = OpenLog(dir.path());
  auto append_versions = [&](int count) {
    for (int i = 0; i < count; ++i) {
      AppendBatch batch;
      for (int k = 0; k < 10; ++k) batch.events.push_back(Assigned("wf/long", "wf/long", 1));
      ASSERT_OK(log->Append(batch));
      ASSERT_OK(log->Append(OneEvent("wf/other")));
    }
  };
  auto expect_versions = [&](uint64_t from, size_t limit, uint64_t first, uint64_t last) {
    SCOPED_TRACE("from " + std::to_string(from) + ", limit " + std::to_string(limit));
    auto read = log->ReadStream("wf/long", from, limit);
    ASSERT_OK(read);
    ASSERT_EQ(read->size(), last - first + 1);
    for (size_t i = 0; i < read->size(); ++i) {
      EXPECT_EQ((*read)[i].stream, "wf/long");
      EXPECT_EQ((*read)[i].stream_version, first + i);
    }
  };
  append_versions(30);  // versions 1..300, in the memtable
  expect_versions(0, SIZE_MAX, 1, 300);
  expect_versions(250, 10, 250, 259);
  expect_versions(255, 2, 255, 256);
  expect_versions(256, SIZE_MAX, 256, 300);
  EXPECT_EQ(log->ReadStream("wf/long", 301).value().size(), 0u);

  ASSERT_OK(log->SettleStorage());  // 1..300 in SST files
  append_versions(50);              // 301..800 in the memtable
  expect_versions(1, SIZE_MAX, 1, 800);
  expect_versions(200, 400, 200, 599);
  expect_versions(511, 3, 511, 513);
  expect_versions(768, SIZE_MAX, 768, 800);
  EXPECT_EQ(log->ReadStream("wf/other", 1).value().size(), 80u);
}

// A stream's version is found from its version rows alone (there is no head row): after a
// reopen, with rows in SST files, in the memtable and split between them, for versions on
// either side of the powers of two and of the 256-version buckets; and the writer, whose
// cache starts empty, checks exact expectations against the same versions.
TEST(EventLog, StreamVersionsAreFoundFromTheirRowsAfterReopen) {
  TempDir dir;
  const std::vector<uint64_t> versions = {1, 2, 3, 4, 5, 7, 8, 9, 255, 256, 257, 511, 512, 1000};
  auto name = [](uint64_t v) { return "wf/v" + std::to_string(v); };
  auto append = [&](EventLog& log, uint64_t from, uint64_t to) {
    for (uint64_t v : versions) {
      AppendBatch batch;
      for (uint64_t i = std::max<uint64_t>(from, 1); i <= std::min(v, to); ++i) {
        batch.events.push_back(Assigned(name(v), name(v), 1));
      }
      if (!batch.events.empty()) ASSERT_OK(log.Append(batch));
    }
  };
  auto expect_all = [&](EventLog& log) {
    for (uint64_t v : versions) EXPECT_EQ(log.StreamVersion(name(v)).value(), v) << name(v);
    EXPECT_EQ(log.StreamVersion("wf/never").value(), 0u);
    EXPECT_EQ(log.StreamVersion("wf/v").value(), 0u);  // a prefix of the others' names
  };
  {
    auto log = OpenLog(dir.path());
    append(*log, 1, 300);
    ASSERT_OK(log->SettleStorage());  // versions through 300 in SST files
    append(*log, 301, 2000);          // the rest in the memtable
    expect_all(*log);
  }
  auto log = OpenLog(dir.path());  // cold: nothing cached
  expect_all(*log);
  for (uint64_t v : versions) {
    auto stale = log->Append(OneEvent(name(v), ExpectedVersion::Exact(v - 1)));
    EXPECT_EQ(stale.status().code(), ErrorCode::kWrongExpectedVersion) << name(v);
    EXPECT_NE(stale.status().message().find("actual " + std::to_string(v)), std::string::npos)
        << stale.status().message();
    ASSERT_OK(log->Append(OneEvent(name(v), ExpectedVersion::Exact(v))));
    EXPECT_EQ(log->StreamVersion(name(v)).value(), v + 1);
  }
}

// ---------------------------------------------------------------- tamper and recovery

void FlipStoredByte(const std::string& dir, uint64_t seq, size_t offset) {
  rocksdb::Options options;
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(options, dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& n : names) descriptors.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(options, dir, descriptors, &handles, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::ColumnFamilyHandle* log_cf = nullptr;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == "log") log_cf = handles[i];
  }
  std::string value;
  ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), log_cf, BigEndian64(seq), &value).ok());
  value[offset % value.size()] ^= 0x01;
  ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), log_cf, BigEndian64(seq), value).ok());
  for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
}

TEST(EventLog, VerifyChainNamesTheTamperedSeqWhereverTheByteIs) {
  TempDir dir;
  {
    auto log = OpenLog(dir.path());
    for (int i = 0; i < 50; ++i) ASSERT_OK(log->Append(OneEvent("s" + std::to_string(i % 3))));
  }
  // Flip a different byte each round: header, payload, hash field, padding alike.
  size_t size = 0;
  {
    auto log = OpenLog(dir.path());
    size = log->ReadRangeBytes(20, 20).value()[0].bytes.size();
  }
  for (size_t offset = 0; offset < size; offset += 7) {
    FlipStoredByte(dir.path(), 20, offset);
    {
      auto log = OpenLog(dir.path());
      auto report = log->VerifyChain();
      ASSERT_OK(report);
      ASSERT_TRUE(report->first_bad_seq.has_value()) << "offset " << offset;
      EXPECT_EQ(*report->first_bad_seq, 20u) << "offset " << offset << ": " << report->problem;
      EXPECT_EQ(report->checked, 19u);
    }
    FlipStoredByte(dir.path(), 20, offset);  // restore
  }
  auto log = OpenLog(dir.path());
  EXPECT_FALSE(log->VerifyChain().value().first_bad_seq.has_value());
}

TEST(EventLog, RefusesToOpenWhenHeadAndLastRecordDisagree) {
  TempDir dir;
  {
    auto log = OpenLog(dir.path());
    for (int i = 0; i < 5; ++i) ASSERT_OK(log->Append(OneEvent("s")));
  }
  FlipStoredByte(dir.path(), 5, 40);
  auto reopened = EventLog::Open(dir.path(), {});
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), ErrorCode::kCorruption);
  EXPECT_NE(reopened.status().message().find("seq 5"), std::string::npos)
      << reopened.status().message();
}

TEST(EventLog, RefusesToOpenWhenTheHeadIsAheadOfTheRecords) {
  TempDir dir;
  {
    auto log = OpenLog(dir.path());
    for (int i = 0; i < 3; ++i) ASSERT_OK(log->Append(OneEvent("s")));
    // Remove the last record behind the log's back.
    ASSERT_TRUE(
        log->db()->Delete(rocksdb::WriteOptions(), log->ColumnFamily("log"), BigEndian64(3)).ok());
  }
  auto reopened = EventLog::Open(dir.path(), {});
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), ErrorCode::kCorruption);
  EXPECT_NE(reopened.status().message().find("head is seq 3 but the last record is seq 2"),
            std::string::npos)
      << reopened.status().message();
}

TEST(EventLog, ReopenedLogContinuesFromItsHead) {
  TempDir dir;
  LogHead head;
  {
    auto log = OpenLog(dir.path());
    for (int i = 0; i < 7; ++i) ASSERT_OK(log->Append(OneEvent("s")));
    head = log->Head();
  }
  auto log = OpenLog(dir.path());
  EXPECT_EQ(log->Head().seq, head.seq);
  EXPECT_EQ(log->Head().hash, head.hash);
  auto next = log->Append(OneEvent("s", ExpectedVersion::Exact(7)));
  ASSERT_OK(next);
  EXPECT_EQ(next->first_seq, 8u);
  EXPECT_EQ(log->ReadRange(8, 8).value()[0].prev_hash, head.hash);
}

}  // namespace
}  // namespace shardledger::testing
