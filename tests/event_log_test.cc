#include "events/event_log.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/table_properties.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <set>
#include <thread>

#include "events/codec.h"
#include "events/event_log_internal.h"
#include "events/keys.h"
#include "tests/test_util.h"

namespace shardledger {
namespace {

using testing::Assigned;
using testing::OneEvent;
using testing::TempDir;

std::unique_ptr<EventLog> OpenLog(const std::string& dir, EventLogOptions options = {}) {
  auto log = EventLog::Open(dir, std::move(options));
  EXPECT_TRUE(log.ok()) << log.status().ToString();
  return log.ok() ? std::move(log).value() : nullptr;
}

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
    const std::string actual =
        c.events_before == 0 ? "no stream" : std::to_string(c.events_before);
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
    ids.Insert(id(7, true), 999'999);  // already there: keeps its seq
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
    if (!testing::WaitFor([&] { return log->Head().seq >= before + 500; })) {
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
    ASSERT_TRUE(log->db()->Delete(rocksdb::WriteOptions(), log->ColumnFamily("log"),
                                  BigEndian64(3)).ok());
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
}  // namespace shardledger
