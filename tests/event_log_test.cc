// EventLog: expected versions, atomicity and the batch's shape, concurrency and the pipeline.
// Idempotency, reads and recovery, and the projection hook have suites of their own
// (event_log_*_test.cc).
#include "events/event_log.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <thread>

#include "events/codec.h"
#include "tests/event_log_util.h"
#include "tests/test_util.h"

namespace shardledger::testing {
namespace {

// ---------------------------------------------------------------- expected versions

struct ExpectedCase {
  const char* name;
  uint64_t events_before;  // the stream's version before the append
  ExpectedVersion expected;
  bool holds;
};

void PrintTo(const ExpectedCase& c, std::ostream* os) { *os << c.name; }

class EventLog_ExpectedVersion : public ::testing::TestWithParam<ExpectedCase> {};

TEST_P(EventLog_ExpectedVersion, AppendsOnlyWhenTheExpectationHolds) {
  const ExpectedCase& c = GetParam();
  TempDir dir;
  auto log = OpenLog(dir.path());
  for (uint64_t i = 0; i < c.events_before; ++i) ASSERT_OK(log->Append(OneEvent("s")));
  const LogHead before = log->Head();

  auto result = log->Append(OneEvent("s", c.expected));
  if (c.holds) {
    ASSERT_OK(result);
    EXPECT_EQ(result->first_seq, before.seq + 1);
    EXPECT_EQ(log->StreamVersion("s").value(), c.events_before + 1);
  } else {
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), ErrorCode::kWrongExpectedVersion);
    const std::string& message = result.status().message();
    EXPECT_NE(message.find("stream s"), std::string::npos) << message;
    EXPECT_NE(message.find("expected version " + c.expected.ToString()), std::string::npos)
        << message;
    const std::string actual = c.events_before == 0 ? "no stream" : std::to_string(c.events_before);
    EXPECT_NE(message.find("actual " + actual), std::string::npos) << message;
    EXPECT_EQ(log->Head().seq, before.seq) << "a rejected append wrote something";
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllKinds, EventLog_ExpectedVersion,
    ::testing::Values(ExpectedCase{"AnyOnNew", 0, ExpectedVersion::Any(), true},
                      ExpectedCase{"AnyOnExisting", 2, ExpectedVersion::Any(), true},
                      ExpectedCase{"NoStreamOnNew", 0, ExpectedVersion::NoStream(), true},
                      ExpectedCase{"NoStreamOnExisting", 1, ExpectedVersion::NoStream(), false},
                      ExpectedCase{"ExistsOnExisting", 1, ExpectedVersion::Exists(), true},
                      ExpectedCase{"ExistsOnNew", 0, ExpectedVersion::Exists(), false},
                      ExpectedCase{"ExactHit", 3, ExpectedVersion::Exact(3), true},
                      ExpectedCase{"ExactStale", 3, ExpectedVersion::Exact(2), false},
                      ExpectedCase{"ExactAhead", 3, ExpectedVersion::Exact(4), false},
                      ExpectedCase{"ExactOnNew", 0, ExpectedVersion::Exact(1), false}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(EventLog, ExpectationOnAStreamTheBatchDoesNotWriteIsACondition) {
  TempDir dir;
  auto log = OpenLog(dir.path());
  ASSERT_OK(log->Append(OneEvent("routing")));
  AppendBatch batch;
  batch.events.push_back(Assigned("wf/a", "a", 1));
  batch.expectations.push_back({"routing", ExpectedVersion::Exact(1)});
  ASSERT_OK(log->Append(batch));
  ASSERT_OK(log->Append(OneEvent("routing")));
  batch.events[0].event_id = RandomId128();
  auto stale = log->Append(batch);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().code(), ErrorCode::kWrongExpectedVersion);
}

// ---------------------------------------------------------------- atomicity and shape

TEST(EventLog, BatchOverThreeStreamsWithOneStaleExpectationWritesNothing) {
  TempDir dir;
  auto log = OpenLog(dir.path());
  for (const char* s : {"a", "b", "c"}) ASSERT_OK(log->Append(OneEvent(s)));
  const LogHead before = log->Head();

  AppendBatch batch;
  for (const char* s : {"a", "b", "c"}) batch.events.push_back(Assigned(s, s, 1));
  batch.expectations = {{"a", ExpectedVersion::Exact(1)},
                        {"b", ExpectedVersion::Exact(0)},  // stale: b is at 1
                        {"c", ExpectedVersion::Exact(1)}};
  auto result = log->Append(batch);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), ErrorCode::kWrongExpectedVersion);
  EXPECT_NE(result.status().message().find("stream b"), std::string::npos);

  EXPECT_EQ(log->Head().seq, before.seq);
  EXPECT_EQ(log->Head().hash, before.hash);
  for (const char* s : {"a", "b", "c"}) EXPECT_EQ(log->StreamVersion(s).value(), 1u) << s;
  for (const auto& event : batch.events) {
    EXPECT_FALSE(log->FindEventId(event.event_id).value().has_value());
  }
}

TEST(EventLog, MalformedBatchesAreBadRequests) {
  TempDir dir;
  auto log = OpenLog(dir.path());
  auto code_of = [&](AppendBatch batch) { return log->Append(std::move(batch)).status().code(); };
  EXPECT_EQ(code_of(AppendBatch{}), ErrorCode::kBadRequest);
  AppendBatch empty_stream = OneEvent("");
  EXPECT_EQ(code_of(empty_stream), ErrorCode::kBadRequest);
  AppendBatch nul_stream = OneEvent(std::string("a\0b", 3));
  EXPECT_EQ(code_of(nul_stream), ErrorCode::kBadRequest);
  AppendBatch long_stream = OneEvent(std::string(kMaxStreamBytes + 1, 's'));
  EXPECT_EQ(code_of(long_stream), ErrorCode::kBadRequest);
  AppendBatch zero_id = OneEvent("s");
  zero_id.events[0].event_id = Id128{};
  EXPECT_EQ(code_of(zero_id), ErrorCode::kBadRequest);
  AppendBatch twice = OneEvent("s");
  twice.events.push_back(twice.events[0]);
  EXPECT_EQ(code_of(twice), ErrorCode::kBadRequest);
  EXPECT_EQ(log->Head().seq, 0u);
}

TEST(EventLog, FailingBatchFailsAloneInItsGroup) {
  TempDir dir;
  auto log = OpenLog(dir.path());
  ASSERT_OK(log->Append(OneEvent("contested")));
  std::atomic<int> ok{0}, rejected{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&, i] {
      // Half expect a version that is stale; the other half write their own stream.
      auto r = (i % 2 == 0) ? log->Append(OneEvent("contested", ExpectedVersion::NoStream()))
                            : log->Append(OneEvent("own-" + std::to_string(i)));
      (r.ok() ? ok : rejected)++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 8);
  EXPECT_EQ(rejected.load(), 8);
  EXPECT_EQ(log->Head().seq, 9u);
  EXPECT_FALSE(log->VerifyChain().value().first_bad_seq.has_value());
}

// The log keeps answered appends' memory for the next ones: what one append left (a rejection,
// a replay, many events, a payload) must never show in the answer or the records of the next.
TEST(EventLog, AppendsAfterRejectedReplayedAndLargeOnesAreAnsweredAsThemselves) {
  TempDir dir;
  auto log = OpenLog(dir.path());
  AppendBatch first = OneEvent("kept");
  ASSERT_OK(log->Append(first));
  uint64_t head = 1;
  for (int round = 0; round < 40; ++round) {
    auto rejected = log->Append(OneEvent("kept", ExpectedVersion::NoStream()));
    ASSERT_FALSE(rejected.ok());
    EXPECT_EQ(rejected.status().code(), ErrorCode::kWrongExpectedVersion);

    auto replayed = log->Append(first);
    ASSERT_OK(replayed);
    EXPECT_TRUE(replayed->replayed);
    EXPECT_EQ(replayed->seqs, (std::vector<uint64_t>{1}));

    AppendBatch large;
    for (int i = 0; i < 20; ++i) {
      large.events.push_back(Assigned("large", "w" + std::to_string(i), 4));
    }
    auto many = log->Append(large);
    ASSERT_OK(many);
    EXPECT_FALSE(many->replayed);
    EXPECT_EQ(many->first_seq, head + 1);
    EXPECT_EQ(many->last_seq, head + 20);
    head += 20;

    const std::string stream = "fresh/" + std::to_string(round);
    AppendBatch one;
    one.events.push_back(Assigned(stream, "wf-" + std::to_string(round), 9));
    auto next = log->Append(one);
    ASSERT_OK(next);
    EXPECT_FALSE(next->replayed);
    EXPECT_TRUE(next->seqs.empty());
    EXPECT_EQ(next->first_seq, head + 1);
    EXPECT_EQ(next->last_seq, head + 1);
    head += 1;
    auto stored = log->ReadRange(head, head);
    ASSERT_OK(stored);
    ASSERT_EQ(stored->size(), 1u);
    EXPECT_EQ((*stored)[0].stream, stream);
    EXPECT_EQ((*stored)[0].event_id, one.events[0].event_id);
    EXPECT_EQ((*stored)[0].payload, one.events[0].payload);
  }
  EXPECT_EQ(log->Head().seq, head);
  EXPECT_FALSE(log->VerifyChain().value().first_bad_seq.has_value());
}

// Appends issued from the log's own callbacks (a client sending its next append when the last
// is answered, as the bench's clients and a pipelining caller do) are each answered, in their
// client's order, and once the log closes, refused as closing rather than lost or left
// unanswered.
TEST(EventLog, AppendsIssuedFromCallbacksAreAnsweredInOrderOrRefusedAtClose) {
  TempDir dir;
  constexpr int kClients = 16;
  constexpr uint64_t kPerClient = 300;
  struct Client {
    std::string stream;
    uint64_t answered = 0;
    Status error;
  };
  std::vector<Client> clients(kClients);
  std::mutex mu;
  std::condition_variable cv;
  int finished = 0;
  {
    std::function<void(int)> issue;
    auto log = OpenLog(dir.path());
    issue = [&](int c) {
      Client& client = clients[c];
      // Each append expects the version the client's last answer left: out of order, it fails.
      log->AppendAsync(OneEvent(client.stream, ExpectedVersion::Exact(client.answered)),
                       [&, c](Result<AppendResult> r) {
                         Client& me = clients[c];
                         if (!r.ok()) me.error = r.status();
                         if (r.ok() && ++me.answered < kPerClient) return issue(c);
                         std::lock_guard lock(mu);
                         ++finished;
                         cv.notify_all();
                       });
    };
    for (int c = 0; c < kClients; ++c) {
      clients[c].stream = "client/" + std::to_string(c);
      AppendBatch first = OneEvent(clients[c].stream, ExpectedVersion::NoStream());
      ASSERT_OK(log->Append(std::move(first)));
      clients[c].answered = 1;
    }
    for (int c = 0; c < kClients; ++c) issue(c);
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return finished == kClients; });
    for (const Client& client : clients) {
      EXPECT_TRUE(client.error.ok()) << client.stream << ": " << client.error.ToString();
      EXPECT_EQ(client.answered, kPerClient);
      EXPECT_EQ(log->StreamVersion(client.stream).value(), kPerClient);
    }
    EXPECT_EQ(log->Head().seq, kClients * kPerClient);
  }

  // Clients that never stop, and a log that closes under them.
  std::atomic<uint64_t> acknowledged{0};
  std::atomic<int> refused{0}, other_errors{0};
  {
    std::function<void(int)> issue;  // outlives the log, whose closing runs the callbacks
    auto log = OpenLog(dir.path());
    issue = [&, raw = log.get()](int c) {
      raw->AppendAsync(OneEvent("endless/" + std::to_string(c)), [&, c](Result<AppendResult> r) {
        if (r.ok()) {
          acknowledged.fetch_add(1);
          return issue(c);
        }
        (r.status().code() == ErrorCode::kUnavailable ? refused : other_errors).fetch_add(1);
      });
    };
    for (int c = 0; c < kClients; ++c) issue(c);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    // Leaving the scope closes the log while its callbacks keep issuing.
  }
  EXPECT_EQ(refused.load(), kClients);  // each client's last append, and only that one
  EXPECT_EQ(other_errors.load(), 0);
  EXPECT_GT(acknowledged.load(), 0u);
  auto log = OpenLog(dir.path());
  EXPECT_EQ(log->Head().seq, kClients * kPerClient + acknowledged.load());
  EXPECT_FALSE(log->VerifyChain().value().first_bad_seq.has_value());
}

// ---------------------------------------------------------------- concurrency

TEST(EventLog, ConcurrentAppendsAreGapFreeAndChained) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20'000;
  TempDir dir;
  auto log = OpenLog(dir.path(), EventLogOptions{.durability = Durability::kBuffered});
  std::vector<std::vector<uint64_t>> seqs(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Each thread writes 4 streams of its own and one stream all threads share.
        std::string stream =
            i % 5 == 4 ? "shared" : "t" + std::to_string(t) + "/" + std::to_string(i % 4);
        auto r = log->Append(OneEvent(stream));
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        ASSERT_EQ(r->first_seq, r->last_seq);
        seqs[t].push_back(r->first_seq);
      }
    });
  }
  for (auto& t : threads) t.join();

  std::vector<uint64_t> all;
  for (const auto& s : seqs) {
    EXPECT_TRUE(std::is_sorted(s.begin(), s.end()));
    all.insert(all.end(), s.begin(), s.end());
  }
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), size_t{kThreads * kPerThread});
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], i + 1) << "gap or duplicate";
  EXPECT_EQ(log->Head().seq, uint64_t{kThreads * kPerThread});

  // Every stream's versions are 1..n with no gap, in seq order.
  std::map<std::string, uint64_t> last_version;
  ASSERT_OK(log->Scan(1, UINT64_MAX, [&](uint64_t seq, std::string_view bytes) {
    auto record = DecodeRecord(bytes);
    EXPECT_TRUE(record.ok());
    EXPECT_EQ(record->seq, seq);
    EXPECT_EQ(record->stream_version, ++last_version[record->stream]) << record->stream;
    return true;
  }));
  EXPECT_EQ(last_version["shared"], uint64_t{kThreads * kPerThread / 5});
  auto report = log->VerifyChain();
  ASSERT_OK(report);
  EXPECT_FALSE(report->first_bad_seq.has_value()) << report->problem;
  EXPECT_EQ(report->checked, uint64_t{kThreads * kPerThread});
}

TEST(EventLog, AppendAsyncAnswersOnceTheRecordsAreDurable) {
  TempDir dir;
  auto log = OpenLog(dir.path());
  constexpr int kAppends = 500;
  std::mutex mu;
  std::condition_variable cv;
  int answered = 0;
  bool head_covered_every_answer = true;
  for (int i = 0; i < kAppends; ++i) {
    log->AppendAsync(OneEvent("async/" + std::to_string(i % 7)), [&](Result<AppendResult> r) {
      std::lock_guard lock(mu);
      if (!r.ok() || log->Head().seq < r->last_seq) head_covered_every_answer = false;
      ++answered;
      cv.notify_one();
    });
  }
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return answered == kAppends; }));
  EXPECT_TRUE(head_covered_every_answer);
  EXPECT_EQ(log->Head().seq, uint64_t{kAppends});
}

// The commit observer sees every record exactly once, in seq order, also while it is swapped
// under load: SetCommitObserver waits for the groups in flight, so no group reaches an
// observer after it was replaced and none is skipped. In both modes (a buffered log's writer
// publishes its own groups; a durable log's sync thread does).
class EventLog_Observer : public ::testing::TestWithParam<Durability> {};

TEST_P(EventLog_Observer, SwappedUnderLoadEachRecordReachesExactlyOneObserverInOrder) {
  TempDir dir;
  auto log = OpenLog(dir.path(), EventLogOptions{.durability = GetParam()});
  constexpr int kObservers = 4;
  std::mutex mu;
  std::vector<std::vector<uint64_t>> seen(kObservers);
  auto observer = [&](int which) {
    return [&, which](std::vector<CommittedRecord>&& records) {
      std::lock_guard lock(mu);
      for (const auto& record : records) seen[which].push_back(record.seq);
    };
  };
  log->SetCommitObserver(observer(0));
  constexpr int kThreads = 4;
  constexpr int kPerThread = 1'500;
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        if (!log->Append(OneEvent("observed/" + std::to_string(t))).ok()) failed = true;
      }
    });
  }
  for (int which = 1; which < kObservers; ++which) {
    const uint64_t before = log->Head().seq;
    if (!WaitFor([&] { return log->Head().seq >= before + 500; })) {
      ADD_FAILURE() << "the appends stalled before observer " << which;
      break;
    }
    log->SetCommitObserver(observer(which));
  }
  for (auto& thread : threads) thread.join();
  ASSERT_FALSE(failed.load());
  const uint64_t total = uint64_t{kThreads} * kPerThread;
  ASSERT_EQ(log->Head().seq, total);
  log->SetCommitObserver(nullptr);  // drains: the last observer has seen everything
  std::lock_guard lock(mu);
  std::vector<uint64_t> all;
  for (int which = 0; which < kObservers; ++which) {
    EXPECT_FALSE(seen[which].empty()) << "observer " << which << " saw nothing";
    all.insert(all.end(), seen[which].begin(), seen[which].end());
  }
  ASSERT_EQ(all.size(), total);
  for (uint64_t i = 0; i < total; ++i) ASSERT_EQ(all[i], i + 1) << "at position " << i;
}

INSTANTIATE_TEST_SUITE_P(BothModes, EventLog_Observer,
                         ::testing::Values(Durability::kBuffered, Durability::kDurable),
                         [](const auto& info) { return std::string(DurabilityName(info.param)); });

TEST(EventLog, AppendAsyncRejectsAMalformedBatchAtOnce) {
  TempDir dir;
  auto log = OpenLog(dir.path());
  std::optional<Status> seen;
  log->AppendAsync(AppendBatch{}, [&](Result<AppendResult> r) { seen = r.status(); });
  ASSERT_TRUE(seen.has_value());  // answered on the caller's thread, before returning
  EXPECT_EQ(seen->code(), ErrorCode::kBadRequest);
}

// ---------------------------------------------------------------- the pipeline

// Every count of a LogStats, in one order.
std::vector<uint64_t*> Counts(LogStats& s) {
  return {&s.groups,
          &s.appends,
          &s.records,
          &s.syncs,
          &s.sync_ns,
          &s.writer_cpu_ns,
          &s.sync_thread_cpu_ns,
          &s.writer_stage_ns,
          &s.write_wal_ns,
          &s.write_memtable_ns,
          &s.write_timed_appends,
          &s.writer_polls,
          &s.writer_polls_run_out,
          &s.sync_polls,
          &s.sync_polls_run_out,
          &s.wal_prefill.bytes_filled,
          &s.wal_prefill.writer_waits};
}

// Since() takes every count's earlier value off, and keeps the prefill's failures as they
// are. Each count gets a difference of its own, so a count left out, or paired with another
// count's earlier value, shows.
TEST(LogStatsTest, SinceTakesEachCountsEarlierValueOff) {
  LogStats earlier, now;
  std::vector<uint64_t*> earlier_counts = Counts(earlier), now_counts = Counts(now);
  for (size_t i = 0; i < now_counts.size(); ++i) {
    *earlier_counts[i] = 1000 * (i + 1);
    *now_counts[i] = 1000 * (i + 1) + 3 * i + 1;
  }
  earlier.wal_prefill.failures = 1;
  now.wal_prefill.failures = 2;
  now.wal_prefill.last_failure = "disk full";

  LogStats since = now.Since(earlier);
  std::vector<uint64_t*> differences = Counts(since);
  for (size_t i = 0; i < differences.size(); ++i) {
    EXPECT_EQ(*differences[i], 3 * i + 1) << "count " << i;
  }
  EXPECT_EQ(since.wal_prefill.failures, 2u);
  EXPECT_EQ(since.wal_prefill.last_failure, "disk full");
}

TEST(EventLog, StatsCountTheGroupsAndThePipelineThreadsCpu) {
  TempDir dir;
  auto log = OpenLog(dir.path());
  const LogStats before = log->Stats();
  EXPECT_EQ(before.appends, 0u);
  for (int i = 0; i < 50; ++i) ASSERT_OK(log->Append(OneEvent("wf/stats")));
  const LogStats after = log->Stats();
  EXPECT_EQ(after.appends, 50u);
  EXPECT_EQ(after.records, 50u);
  EXPECT_GE(after.syncs, 1u);
  EXPECT_LE(after.syncs, after.groups);
  // Each thread's clock is read after its first round and every 16th: 50 appends (a round
  // each here) cost both some CPU.
  EXPECT_GT(after.writer_cpu_ns, before.writer_cpu_ns);
  EXPECT_GT(after.sync_thread_cpu_ns, before.sync_thread_cpu_ns);
  // And the writer's time splits into staging and RocksDB's write-ahead log and memtables,
  // each a part of the whole the writer spent. RocksDB's write is timed in some groups, not
  // all: each blocking append here is a group of its own, and only a few were timed.
  EXPECT_GT(after.writer_stage_ns, 0u);
  EXPECT_GT(after.write_wal_ns, 0u);
  EXPECT_GT(after.write_memtable_ns, 0u);
  EXPECT_GT(after.write_timed_appends, 0u);
  EXPECT_LT(after.write_timed_appends, after.appends / 4);
  for (int i = 0; i < 50; ++i) ASSERT_OK(log->Append(OneEvent("wf/stats")));
  const LogStats later = log->Stats();
  EXPECT_GT(later.writer_stage_ns, after.writer_stage_ns);
  EXPECT_GT(later.write_wal_ns, after.write_wal_ns);
  EXPECT_GT(later.write_memtable_ns, after.write_memtable_ns);
  EXPECT_GT(later.write_timed_appends, after.write_timed_appends);
}

// The pipeline's threads poll their queues only while most of their waits have been short
// (AdaptivePoll, tested on its own in adaptive_poll_test): under a saturating stream of
// appends they poll, and between appends that come now and then they sleep rather than spend
// a poll after every group.
TEST(EventLog, PipelinePollsUnderLoadAndSleepsBetweenSparseAppends) {
  TempDir dir;
  // A limit of 20 ms, so that every wait under the load below counts as short on any machine
  // (under the sanitizers a wait of the default 100 µs limit may not), and appends 40 ms
  // apart count as long.
  auto log = OpenLog(dir.path(), EventLogOptions{.durability = Durability::kBuffered,
                                                 .queue_poll = std::chrono::milliseconds(20)});
  // 32 clients that issue their next append from each answer: the writer's queue refills
  // while it writes, so its waits are short.
  constexpr int kClients = 32;
  std::atomic<bool> stop{false};
  std::atomic<int> running{kClients};
  std::function<void(int)> issue = [&](int c) {
    log->AppendAsync(OneEvent("steady/" + std::to_string(c)), [&, c](Result<AppendResult> r) {
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (r.ok() && !stop.load()) return issue(c);
      running.fetch_sub(1);
    });
  };
  for (int c = 0; c < kClients; ++c) issue(c);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stop = true;
  while (running.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const LogStats loaded = log->Stats();
  EXPECT_GT(loaded.writer_polls, 0u);
  EXPECT_GT(loaded.sync_polls, 0u);
  EXPECT_LE(loaded.writer_polls_run_out, loaded.writer_polls);
  EXPECT_LE(loaded.sync_polls_run_out, loaded.sync_polls);

  // Appends 40 ms apart: the first waits after the load still poll and run out, until the
  // long waits bring the share of short ones under 3/4 (at most five of them from a share of
  // one); after that each thread sleeps through its waits without polling.
  constexpr int kSparse = 12;
  for (int i = 0; i < kSparse; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(40));
    ASSERT_OK(log->Append(OneEvent("sparse")));
  }
  const LogStats sparse = log->Stats();
  EXPECT_LE(sparse.writer_polls - loaded.writer_polls, 5u);
  EXPECT_LE(sparse.writer_polls_run_out - loaded.writer_polls_run_out, 5u);
  EXPECT_LE(sparse.sync_polls - loaded.sync_polls, 5u);
  EXPECT_LE(sparse.sync_polls_run_out - loaded.sync_polls_run_out, 5u);
}

TEST(EventLog, TimestampsComeFromTheClockAndNeverGoBack) {
  TempDir dir;
  int64_t now = 1000;
  auto log = OpenLog(dir.path(), EventLogOptions{.clock = [&] { return now; }});
  ASSERT_OK(log->Append(OneEvent("s")));
  now = 500;  // the wall clock stepped back
  ASSERT_OK(log->Append(OneEvent("s")));
  auto records = log->ReadRange(1, 2).value();
  EXPECT_EQ(records[0].timestamp_ns, 1000);
  EXPECT_EQ(records[1].timestamp_ns, 1000);
}

}  // namespace
}  // namespace shardledger::testing
