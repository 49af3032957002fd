// Publisher and Subscriber in one process over loopback TCP: records arrive in seq order,
// exactly once, also when the high-water marks drop them or the subscriber joins late.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "events/codec.h"
#include "events/event_log.h"
#include "events/keys.h"
#include "tests/test_util.h"
#include "transport/publisher.h"
#include "transport/subscriber.h"
#include "transport/topics.h"

namespace shardledger {
namespace {

using testing::TempDir;

std::unique_ptr<EventLog> OpenLog(const TempDir& dir) {
  auto log = EventLog::Open(dir.Sub("log"), {});
  EXPECT_TRUE(log.ok()) << log.status().ToString();
  return std::move(*log);
}

NewEvent JobEvent(uint64_t internal_id) {
  return NewEvent{RandomId128(), "job/ProofCreation-" + std::to_string(internal_id),
                  JobCreated{"ProofCreation-" + std::to_string(internal_id),
                             JobType::kProofCreation, internal_id, {}}};
}

// Appends `count` records, `per_batch` to an append, alternating routing and job records.
void AppendMany(EventLog& log, int count, int per_batch = 10) {
  for (int i = 0; i < count; i += per_batch) {
    AppendBatch batch;
    for (int j = i; j < std::min(count, i + per_batch); ++j) {
      batch.events.push_back(j % 2 == 0 ? testing::Assigned("routing", "wf-" + std::to_string(j), 1)
                                        : JobEvent(static_cast<uint64_t>(j)));
    }
    ASSERT_OK(log.Append(std::move(batch)));
  }
}

// What a subscriber applied: each seq with how often, and the order.
struct Applied {
  std::mutex mu;
  std::map<uint64_t, int> times;
  std::vector<uint64_t> order;
  std::vector<std::string> topics;
  bool bytes_match_seq = true;

  Subscriber::Apply Recorder() {
    return [this](uint64_t seq, std::string_view topic, std::string_view bytes) {
      std::lock_guard lock(mu);
      ++times[seq];
      order.push_back(seq);
      topics.emplace_back(topic);
      auto record = DecodeRecord(bytes);
      if (!record.ok() || record->seq != seq || TopicOf(record->payload) != topic) {
        bytes_match_seq = false;
      }
    };
  }
};

void PollUntil(Subscriber& sub, uint64_t seq) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (sub.last_seq() < seq && std::chrono::steady_clock::now() < until) {
    auto polled = sub.Poll(std::chrono::milliseconds(50));
    ASSERT_OK(polled);
  }
  ASSERT_GE(sub.last_seq(), seq);
}

TEST(PubSub, EveryRecordOnceInSeqOrderWithItsTopic) {
  TempDir dir;
  auto log = OpenLog(dir);
  auto publisher = Publisher::Start(*log, {.endpoint = "tcp://127.0.0.1:*"});
  ASSERT_OK(publisher);
  LogReplaySource source(*log);
  Applied applied;
  auto sub = Subscriber::Connect({.endpoint = (*publisher)->endpoint()}, source, applied.Recorder());
  ASSERT_OK(sub);
  ASSERT_OK((*sub)->Start());

  AppendMany(*log, 2000);
  PollUntil(**sub, 2000);

  ASSERT_EQ(applied.order.size(), 2000u);
  for (size_t i = 0; i < applied.order.size(); ++i) EXPECT_EQ(applied.order[i], i + 1);
  EXPECT_TRUE(applied.bytes_match_seq);
  EXPECT_EQ(applied.topics[0], "routing.WorkflowAssigned");
  EXPECT_EQ(applied.topics[1], "job.ProofCreation.JobCreated");
  EXPECT_OK((*publisher)->status());
}

TEST(PubSub, ForcedLossIsRecoveredByReplayEachSeqAppliedOnce) {
  TempDir dir;
  auto log = OpenLog(dir);
  // Tiny high-water marks on both ends and a consumer that sleeps on every record: the
  // publisher drops most of what it sends.
  auto publisher = Publisher::Start(*log, {.endpoint = "tcp://127.0.0.1:*",
                                           .send_high_water_mark = 4});
  ASSERT_OK(publisher);
  LogReplaySource source(*log);
  Applied applied;
  auto slow = [&applied, inner = applied.Recorder()](uint64_t seq, std::string_view topic,
                                                       std::string_view bytes) {
    inner(seq, topic, bytes);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  };
  auto sub = Subscriber::Connect({.endpoint = (*publisher)->endpoint(), .receive_high_water_mark = 4},
                                 source, slow);
  ASSERT_OK(sub);
  ASSERT_OK((*sub)->Start());

  constexpr int kRecords = 6000;
  std::thread writer([&] { AppendMany(*log, kRecords, 3); });
  PollUntil(**sub, kRecords);
  writer.join();

  const SubscriberStats& stats = (*sub)->stats();
  EXPECT_GT(stats.replays, 0u) << "the test did not force any loss";
  EXPECT_GT(stats.from_replay, 0u);
  ASSERT_EQ(applied.times.size(), static_cast<size_t>(kRecords));
  for (const auto& [seq, times] : applied.times) ASSERT_EQ(times, 1) << "seq " << seq;
  for (size_t i = 0; i < applied.order.size(); ++i) ASSERT_EQ(applied.order[i], i + 1);
  EXPECT_TRUE(applied.bytes_match_seq);
}

TEST(PubSub, TopicFilterDeliversOnlyMatchingRecords) {
  TempDir dir;
  auto log = OpenLog(dir);
  auto publisher = Publisher::Start(*log, {.endpoint = "tcp://127.0.0.1:*"});
  ASSERT_OK(publisher);
  LogReplaySource source(*log);
  Applied applied;
  auto sub = Subscriber::Connect({.endpoint = (*publisher)->endpoint(), .topics = {"job."}}, source,
                                 applied.Recorder());
  ASSERT_OK(sub);
  AppendMany(*log, 100);  // before Start: these come from the replay
  ASSERT_OK((*sub)->Start());
  AppendMany(*log, 100);  // live
  PollUntil(**sub, 200);

  ASSERT_EQ(applied.order.size(), 100u);
  for (size_t i = 0; i < applied.order.size(); ++i) {
    EXPECT_EQ(applied.order[i], 2 * i + 2);
    EXPECT_TRUE(applied.topics[i].starts_with("job.ProofCreation."));
  }
}

TEST(PubSub, HeartbeatRevealsRecordsMissedBeforeConnecting) {
  TempDir dir;
  auto log = OpenLog(dir);
  auto publisher = Publisher::Start(*log, {.endpoint = "tcp://127.0.0.1:*",
                                           .heartbeat = std::chrono::milliseconds(20)});
  ASSERT_OK(publisher);
  AppendMany(*log, 50);
  LogReplaySource source(*log);
  Applied applied;
  auto sub = Subscriber::Connect({.endpoint = (*publisher)->endpoint()}, source, applied.Recorder());
  ASSERT_OK(sub);
  // No Start and no new records: only the heartbeat can tell the subscriber it is behind.
  PollUntil(**sub, 50);
  EXPECT_EQ(applied.order.size(), 50u);
  EXPECT_GE((*sub)->stats().replays, 1u);
}

TEST(PubSub, ResumesAfterItsLastSeq) {
  TempDir dir;
  auto log = OpenLog(dir);
  auto publisher = Publisher::Start(*log, {.endpoint = "tcp://127.0.0.1:*"});
  ASSERT_OK(publisher);
  AppendMany(*log, 300);
  LogReplaySource source(*log);
  Applied applied;
  auto sub = Subscriber::Connect({.endpoint = (*publisher)->endpoint(), .after_seq = 120}, source,
                                 applied.Recorder());
  ASSERT_OK(sub);
  ASSERT_OK((*sub)->Start());
  AppendMany(*log, 10);
  PollUntil(**sub, 310);
  ASSERT_EQ(applied.order.size(), 190u);
  EXPECT_EQ(applied.order.front(), 121u);
  EXPECT_EQ(applied.order.back(), 310u);
}

}  // namespace
}  // namespace shardledger
