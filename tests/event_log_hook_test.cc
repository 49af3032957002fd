// EventLog: the projections' fold hook — folds in the same WriteBatch, catch-up, failures,
// large appends folded beside the writer, and what a hook may keep until it publishes.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <atomic>
#include <deque>
#include <thread>

#include "events/event_log.h"
#include "events/keys.h"
#include "tests/event_log_util.h"
#include "tests/test_util.h"

namespace shardledger::testing {
namespace {

// ---------------------------------------------------------------- projection hook

// A trivial projection: counts records in its own column family. Staged counts wait in
// `staged_` (seq -> count after that record) until the log publishes them.
class CountingProjection : public FoldHook {
 public:
  explicit CountingProjection(EventLog& log) : cf_(log.ColumnFamily("proj.count")) {
    std::string value;
    if (log.db()->Get(rocksdb::ReadOptions(), cf_, "count", &value).ok()) {
      count_ = ReadBigEndian64(value);
    }
    if (log.db()->Get(rocksdb::ReadOptions(), cf_, "applied", &value).ok()) {
      applied_ = ReadBigEndian64(value);
    }
  }
  Status Fold(const Record& record, rocksdb::WriteBatch& batch) override {
    std::lock_guard lock(mu_);
    if (fail_next_) return Status(ErrorCode::kCorruption, "asked to fail");
    const uint64_t count = (staged_.empty() ? count_ : staged_.back().second) + 1;
    staged_.emplace_back(record.seq, count);
    batch.Put(cf_, "count", BigEndian64(count));
    batch.Put(cf_, "applied", BigEndian64(record.seq));
    return Status::Ok();
  }
  void Publish(uint64_t through_seq) override {
    std::lock_guard lock(mu_);
    while (!staged_.empty() && staged_.front().first <= through_seq) {
      applied_ = staged_.front().first;
      count_ = staged_.front().second;
      staged_.pop_front();
    }
  }
  void Discard(uint64_t after_seq) override {
    std::lock_guard lock(mu_);
    while (!staged_.empty() && staged_.back().first > after_seq) staged_.pop_back();
  }

  uint64_t count() const {
    std::lock_guard lock(mu_);
    return count_;
  }
  uint64_t applied() const {
    std::lock_guard lock(mu_);
    return applied_;
  }
  void FailNext(bool fail) {
    std::lock_guard lock(mu_);
    fail_next_ = fail;
  }

 private:
  mutable std::mutex mu_;
  rocksdb::ColumnFamilyHandle* cf_;
  uint64_t count_ = 0, applied_ = 0;
  std::deque<std::pair<uint64_t, uint64_t>> staged_;
  bool fail_next_ = false;
};

EventLogOptions WithCountCf() {
  EventLogOptions options;
  options.projection_column_families = {"proj.count"};
  return options;
}

TEST(EventLog, HookFoldsInTheSameWriteBatchAndSurvivesRestart) {
  TempDir dir;
  {
    auto log = OpenLog(dir.path(), WithCountCf());
    CountingProjection counter(*log);
    ASSERT_OK(log->AddHook(&counter, counter.applied()));
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 250; ++i) ASSERT_OK(log->Append(OneEvent("s")));
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(counter.count(), 1000u);
    EXPECT_EQ(counter.applied(), log->Head().seq);
    log->RemoveHook(&counter);
  }
  auto log = OpenLog(dir.path(), WithCountCf());
  CountingProjection counter(*log);
  EXPECT_EQ(counter.count(), 1000u);
  EXPECT_EQ(counter.applied(), log->Head().seq);
}

TEST(EventLog, HookAddedLateCatchesUpToTheHead) {
  TempDir dir;
  auto log = OpenLog(dir.path(), WithCountCf());
  for (int i = 0; i < 30; ++i) ASSERT_OK(log->Append(OneEvent("s")));
  CountingProjection counter(*log);
  ASSERT_OK(log->AddHook(&counter, counter.applied()));
  EXPECT_EQ(counter.count(), 30u);
  ASSERT_OK(log->Append(OneEvent("s")));
  EXPECT_EQ(counter.count(), 31u);
  log->RemoveHook(&counter);
}

TEST(EventLog, HookFailureWritesNothingAndDiscardsTheStage) {
  TempDir dir;
  auto log = OpenLog(dir.path(), WithCountCf());
  CountingProjection counter(*log);
  ASSERT_OK(log->AddHook(&counter, counter.applied()));
  ASSERT_OK(log->Append(OneEvent("s")));
  counter.FailNext(true);
  auto failed = log->Append(OneEvent("s"));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), ErrorCode::kCorruption);
  EXPECT_EQ(log->Head().seq, 1u);
  EXPECT_EQ(counter.count(), 1u);
  counter.FailNext(false);
  ASSERT_OK(log->Append(OneEvent("s")));
  EXPECT_EQ(counter.count(), 2u);
  EXPECT_EQ(log->Head().seq, 2u);
  // The failed group's stream version went with it: the stream is at 2, gap-free.
  EXPECT_EQ(*log->StreamVersion("s"), 2u);
  auto stream = log->ReadStream("s");
  ASSERT_OK(stream);
  ASSERT_EQ(stream->size(), 2u);
  EXPECT_EQ((*stream)[0].stream_version, 1u);
  EXPECT_EQ((*stream)[1].stream_version, 2u);
  log->RemoveHook(&counter);
}

// Keeps every record it folds: what a hook sees, to compare with what the log stored.
class RecordingProjection : public FoldHook {
 public:
  Status Fold(const Record& record, rocksdb::WriteBatch&) override {
    if (record.seq == fail_at_) return Status(ErrorCode::kCorruption, "asked to fail");
    std::lock_guard lock(mu_);
    folded_.push_back(record);
    return Status::Ok();
  }
  void Publish(uint64_t) override {}
  void Discard(uint64_t after_seq) override {
    std::lock_guard lock(mu_);
    while (!folded_.empty() && folded_.back().seq > after_seq) folded_.pop_back();
  }
  std::vector<Record> folded() const {
    std::lock_guard lock(mu_);
    return folded_;
  }
  void FailAt(uint64_t seq) { fail_at_ = seq; }  // 0: never

 private:
  mutable std::mutex mu_;
  std::vector<Record> folded_;
  std::atomic<uint64_t> fail_at_{0};
};

// 30,000 events over 10,000 streams, three each: large enough that the hooks fold on a
// second core beside the writer (each stream's versions and the hash chain still in order).
AppendBatch LargeAppend() {
  AppendBatch batch;
  for (int i = 0; i < 30'000; ++i) {
    const std::string stream = "large-" + std::to_string(i % 10'000);
    batch.events.push_back(Assigned(stream, stream, static_cast<uint32_t>(i % 7)));
  }
  return batch;
}

// A log with both hooks joined; CountAfterRestart leaves them, reopens the log and returns
// the count the counting projection's rows hold (its applied seq must be the head).
struct LogWithHooks {
  explicit LogWithHooks(const std::string& dir_path)
      : dir(dir_path), log(OpenLog(dir, WithCountCf())), counter(*log) {
    EXPECT_OK(log->AddHook(&counter, counter.applied()));
    EXPECT_OK(log->AddHook(&recorder, 0));
  }
  uint64_t CountAfterRestart() {
    log->RemoveHook(&recorder);
    log->RemoveHook(&counter);
    log.reset();
    log = OpenLog(dir, WithCountCf());
    CountingProjection reopened(*log);
    EXPECT_EQ(reopened.applied(), log->Head().seq);
    return reopened.count();
  }
  std::string dir;
  std::unique_ptr<EventLog> log;
  CountingProjection counter;
  RecordingProjection recorder;
};

TEST(EventLog, LargeAppendHooksSeeEachRecordAsStoredInOrder) {
  TempDir dir;
  LogWithHooks hooked(dir.path());
  EventLog& log = *hooked.log;
  ASSERT_OK(log.Append(OneEvent("large-3")));  // a stream the large append continues
  ASSERT_OK(log.Append(LargeAppend()));
  ASSERT_OK(log.Append(OneEvent("after")));
  auto stored = log.ReadRange(1, log.Head().seq);
  ASSERT_OK(stored);
  ASSERT_EQ(stored->size(), 30'002u);
  const std::vector<Record> folded = hooked.recorder.folded();
  ASSERT_EQ(folded.size(), stored->size());
  for (size_t i = 0; i < folded.size(); ++i) {
    ASSERT_EQ(folded[i], (*stored)[i]) << "record " << i + 1;
  }
  EXPECT_EQ((*stored)[1 + 3].stream, "large-3");
  EXPECT_EQ((*stored)[1 + 3].stream_version, 2u);
  EXPECT_EQ(hooked.counter.count(), 30'002u);
  // The hooks' rows went into the append's own WriteBatch: they survive a restart with it.
  EXPECT_EQ(hooked.CountAfterRestart(), 30'002u);
}

TEST(EventLog, LargeAppendHookFailureWritesNothing) {
  TempDir dir;
  LogWithHooks hooked(dir.path());
  EventLog& log = *hooked.log;
  ASSERT_OK(log.Append(OneEvent("s")));
  hooked.recorder.FailAt(20'000);  // deep in the large append
  auto failed = log.Append(LargeAppend());
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), ErrorCode::kCorruption);
  EXPECT_EQ(log.Head().seq, 1u);
  EXPECT_EQ(hooked.recorder.folded().size(), 1u);
  EXPECT_EQ(hooked.counter.count(), 1u);
  EXPECT_EQ(*log.StreamVersion("large-5"), 0u);
  hooked.recorder.FailAt(0);
  ASSERT_OK(log.Append(LargeAppend()));
  EXPECT_EQ(log.Head().seq, 30'001u);
  EXPECT_EQ(*log.StreamVersion("large-5"), 3u);
  EXPECT_EQ(hooked.recorder.folded().size(), 30'001u);
  EXPECT_EQ(hooked.counter.count(), 30'001u);
  EXPECT_EQ(hooked.CountAfterRestart(), 30'001u);
}

// Keeps a pointer to each record it folds, as LiveProjection does, and copies a record only
// when the log publishes it: the log must keep every folded record alive until then.
class PointerProjection : public FoldHook {
 public:
  Status Fold(const Record& record, rocksdb::WriteBatch&) override {
    std::lock_guard lock(mu_);
    staged_.push_back(&record);
    return Status::Ok();
  }
  void Publish(uint64_t through_seq) override {
    std::lock_guard lock(mu_);
    while (!staged_.empty() && staged_.front()->seq <= through_seq) {
      published_.push_back(*staged_.front());
      staged_.pop_front();
    }
  }
  void Discard(uint64_t after_seq) override {
    std::lock_guard lock(mu_);
    while (!staged_.empty() && staged_.back()->seq > after_seq) staged_.pop_back();
  }
  std::vector<Record> published() const {
    std::lock_guard lock(mu_);
    return published_;
  }

 private:
  mutable std::mutex mu_;
  std::deque<const Record*> staged_;
  std::vector<Record> published_;
};

TEST(EventLog, RecordsGivenToFoldStayValidUntilPublished) {
  TempDir dir;
  auto log = OpenLog(dir.path());
  ASSERT_OK(log->Append(OneEvent("before")));
  PointerProjection hook;
  ASSERT_OK(log->AddHook(&hook, 0));  // caught up from the log: record 1
  // Four writers keep the pipeline full (a group folds while the one before it is synced),
  // and a large append folds on the helper thread.
  std::atomic<bool> failed{false};
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        if (!log->Append(OneEvent("writer-" + std::to_string(t))).ok()) failed = true;
      }
    });
  }
  ASSERT_OK(log->Append(LargeAppend()));
  for (auto& writer : writers) writer.join();
  EXPECT_FALSE(failed);
  auto stored = log->ReadRange(1, log->Head().seq);
  ASSERT_OK(stored);
  ASSERT_EQ(stored->size(), 1u + 4 * 300 + 30'000);
  const std::vector<Record> published = hook.published();
  ASSERT_EQ(published.size(), stored->size());
  for (size_t i = 0; i < published.size(); ++i) {
    ASSERT_EQ(published[i], (*stored)[i]) << "record " << i + 1;
  }
  log->RemoveHook(&hook);
}

}  // namespace
}  // namespace shardledger::testing
