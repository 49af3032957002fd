// shardledgerd as a real process over TCP, with subscriber processes (tests/follower.cc):
// caches converge on the daemon's map, forced loss is recovered, a late joiner starts from a
// snapshot, a killed subscriber resumes, and a SIGTERM under load loses nothing acknowledged.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <signal.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/assignment.h"
#include "tests/process_util.h"
#include "tests/test_util.h"
#include "transport/client.h"

namespace shardledger {
namespace {

using testing::Child;
using testing::FreePort;
using testing::TempDir;

class Daemon : public ::testing::Test {
 protected:
  void SetUp() override {
    rpc_ = "tcp://127.0.0.1:" + std::to_string(FreePort());
    pub_ = "tcp://127.0.0.1:" + std::to_string(FreePort());
    StartDaemon();
  }

  void StartDaemon() {
    daemon_ = testing::StartDaemonProcess(SHARDLEDGERD_PATH, dir_.path(), rpc_, pub_, daemon_args_);
    ASSERT_NE(daemon_, nullptr) << "the daemon did not become ready";
  }

  std::unique_ptr<RpcClient> Client() {
    auto client = RpcClient::Connect({.endpoint = rpc_, .timeout = std::chrono::seconds(60)});
    EXPECT_TRUE(client.ok());
    return std::move(*client);
  }

  std::unique_ptr<Child> Cache() {
    auto child = std::make_unique<Child>(std::vector<std::string>{FOLLOWER_PATH, "cache", rpc_, pub_});
    EXPECT_TRUE(child->ReadLine().starts_with("ready"));
    return child;
  }

  std::unique_ptr<Child> Recorder(const std::string& file, int rcvhwm = 100'000, int slow_us = 0, int rcvbuf = 0) {
    auto child = std::make_unique<Child>(std::vector<std::string>{FOLLOWER_PATH, "record", rpc_, pub_, file,
                                                                  std::to_string(rcvhwm), std::to_string(slow_us),
                                                                  std::to_string(rcvbuf)});
    EXPECT_TRUE(child->ReadLine().starts_with("ready"));
    return child;
  }

  // The seqs a recorder applied, in order.
  static std::vector<uint64_t> Recorded(const std::string& file) {
    std::vector<uint64_t> seqs;
    std::ifstream in(file);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) seqs.push_back(std::stoull(line));
    }
    return seqs;
  }

  // Each seq 1..head exactly once, in order.
  static void ExpectEachSeqOnce(const std::vector<uint64_t>& seqs, uint64_t head) {
    ASSERT_EQ(seqs.size(), head);
    for (uint64_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], i + 1) << "at line " << i;
  }

  std::string DaemonDigest(RpcClient& client, uint64_t* seq) {
    auto digest = client.Digest(wire::Projection::SHARD_MAP);
    EXPECT_TRUE(digest.ok()) << digest.status().ToString();
    *seq = digest->seq;
    return ToHex(digest->sha256);
  }

  std::vector<std::string> Ids(int n, const std::string& prefix = "wf-") {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) ids.push_back(prefix + std::to_string(i));
    return ids;
  }

  void Register(RpcClient& client, const std::vector<std::string>& ids, size_t chunk = 1'000) {
    for (size_t i = 0; i < ids.size(); i += chunk) {
      std::vector<std::string> part(ids.begin() + i, ids.begin() + std::min(ids.size(), i + chunk));
      ASSERT_OK(client.RegisterWorkflows(part));
    }
  }

  TempDir dir_;
  std::vector<std::string> daemon_args_;  // beyond the endpoints and the data directory
  std::string rpc_, pub_;
  std::unique_ptr<Child> daemon_;
};

TEST_F(Daemon, ThreeSubscriberProcessesConvergeOnTheDaemonsMap) {
  auto client = Client();
  ASSERT_OK(client->SetShardCount(4, "setup"));
  std::vector<std::unique_ptr<Child>> caches;
  for (int i = 0; i < 3; ++i) caches.push_back(Cache());

  const auto ids = Ids(10'000);
  Register(*client, ids);
  ASSERT_OK(client->SetShardCount(5, "grow"));
  std::vector<std::string> moving;
  for (const auto& id : ids) {
    if (AssignShard(id, RoutableShards(5, {})) == 4) moving.push_back(id);
  }
  ASSERT_OK(client->ReportTriggerRegistration(4, moving, moving.size()));
  auto state = client->RoutingState();
  ASSERT_OK(state);
  ASSERT_EQ(state->phase, RoutingPhase::kSteady);
  ASSERT_EQ(state->shard_count, 5u);

  uint64_t seq = 0;
  const std::string digest = DaemonDigest(*client, &seq);
  for (auto& cache : caches) {
    cache->Send("wait " + std::to_string(seq));
    EXPECT_EQ(cache->ReadLine(), "digest " + digest + " " + std::to_string(seq));
  }
}

// Tiny queues on both ends: the publisher drops for a slow subscriber instead of queueing.
class DaemonWithTinyQueues : public Daemon {
 protected:
  DaemonWithTinyQueues() { daemon_args_ = {"--pub-hwm", "4"}; }
};

TEST_F(DaemonWithTinyQueues, ForcedLossOverTcpIsRecoveredEachSeqAppliedOnce) {
  const std::string file = dir_.Sub("slow.seqs");
  auto slow = Recorder(file, /*rcvhwm=*/2, /*slow_us=*/500, /*rcvbuf=*/4096);
  auto client = Client();
  // Appends in a burst from several connections, far faster than the subscriber applies them
  // (10 events per command; the subscriber takes 0.5 ms per record).
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      auto mine = Client();
      for (int i = 0; i < 150; ++i) {
        std::vector<std::string> ids;
        for (int k = 0; k < 10; ++k) ids.push_back(fmt::format("w{}-{}-{}", w, i, k));
        ASSERT_OK(mine->RegisterWorkflows(ids));
      }
    });
  }
  for (auto& writer : writers) writer.join();
  auto head = client->Head();
  ASSERT_OK(head);
  ASSERT_TRUE(testing::WaitFor([&] { return Recorded(file).size() >= head->seq; }, std::chrono::seconds(120)));
  slow->Signal(SIGTERM);
  ASSERT_EQ(slow->Wait(), 0);
  ExpectEachSeqOnce(Recorded(file), head->seq);
  std::ifstream stats(file + ".stats");
  uint64_t replays = 0, from_replay = 0, applied = 0;
  stats >> replays >> from_replay >> applied;
  EXPECT_GT(replays, 0u) << "no gap was forced";
  EXPECT_GT(from_replay, 0u);
}

TEST_F(Daemon, LateJoinerStartsFromASnapshotAndAKilledSubscriberResumes) {
  auto client = Client();
  ASSERT_OK(client->SetShardCount(3, "setup"));
  const std::string file = dir_.Sub("resume.seqs");
  auto recorder = Recorder(file);
  Register(*client, Ids(50'000), 5'000);  // 50,000 events
  auto head = client->Head();
  ASSERT_OK(head);
  ASSERT_GE(head->seq, 50'000u);

  // The late joiner: a cache started now takes the snapshot and converges.
  auto late = Cache();
  ASSERT_OK(client->RegisterWorkflows(Ids(100, "late-")));
  uint64_t seq = 0;
  const std::string digest = DaemonDigest(*client, &seq);
  late->Send("wait " + std::to_string(seq));
  EXPECT_EQ(late->ReadLine(), "digest " + digest + " " + std::to_string(seq));

  // Kill the recorder mid-stream, append more, restart it: it resumes after its last seq.
  ASSERT_TRUE(testing::WaitFor([&] { return Recorded(file).size() >= seq / 2; }, std::chrono::seconds(60)));
  recorder->Signal(SIGKILL);
  recorder->Wait();
  Register(*client, Ids(2'000, "after-kill-"), 100);
  recorder = Recorder(file);
  auto final_head = client->Head();
  ASSERT_OK(final_head);
  ASSERT_TRUE(testing::WaitFor([&] { return Recorded(file).size() >= final_head->seq; }, std::chrono::seconds(120)));
  recorder->Signal(SIGTERM);
  ASSERT_EQ(recorder->Wait(), 0);
  ExpectEachSeqOnce(Recorded(file), final_head->seq);
}

TEST_F(Daemon, SigtermUnderLoadLosesNothingAcknowledgedAndSubscribersResume) {
  const std::string file = dir_.Sub("load.seqs");
  auto recorder = Recorder(file);
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::set<uint64_t> acknowledged;  // last seqs of acknowledged commands
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      auto mine = RpcClient::Connect({.endpoint = rpc_, .timeout = std::chrono::seconds(2),
                                      .connect_timeout = std::chrono::milliseconds(200)});
      ASSERT_OK(mine);
      for (int i = 0; !stop; ++i) {
        auto result = (*mine)->RegisterWorkflows({"load-" + std::to_string(w) + "-" + std::to_string(i)});
        if (result.ok()) {
          std::lock_guard lock(mu);
          acknowledged.insert(result->last_seq);
        } else {
          ASSERT_EQ(result.status().code(), ErrorCode::kUnavailable) << result.status().ToString();
        }
      }
    });
  }
  ASSERT_TRUE(testing::WaitFor([&] {
    std::lock_guard lock(mu);
    return acknowledged.size() > 300;
  }));
  daemon_->Signal(SIGTERM);
  EXPECT_EQ(daemon_->Wait(), 0) << "the daemon must stop cleanly on SIGTERM";
  const size_t before_restart = [&] {
    std::lock_guard lock(mu);
    return acknowledged.size();
  }();
  StartDaemon();
  ASSERT_TRUE(testing::WaitFor([&] {
    std::lock_guard lock(mu);
    return acknowledged.size() > before_restart + 100;
  }, std::chrono::seconds(30)));
  stop = true;
  for (auto& writer : writers) writer.join();

  auto client = Client();
  auto head = client->Head();
  ASSERT_OK(head);
  EXPECT_GE(head->seq, *acknowledged.rbegin());
  for (uint64_t seq : acknowledged) {
    auto chunk = client->Replay(seq, seq, {});
    ASSERT_OK(chunk);
    ASSERT_EQ(chunk->records.size(), 1u) << "acknowledged seq " << seq << " is missing";
  }
  auto chain = client->VerifyChain();
  ASSERT_OK(chain);
  EXPECT_FALSE(chain->first_bad_seq.has_value()) << chain->problem;
  EXPECT_EQ(chain->checked, head->seq);

  // The subscriber rode through the restart and has every seq once.
  ASSERT_TRUE(testing::WaitFor([&] { return Recorded(file).size() >= head->seq; }, std::chrono::seconds(60)));
  recorder->Signal(SIGTERM);
  ASSERT_EQ(recorder->Wait(), 0);
  ExpectEachSeqOnce(Recorded(file), head->seq);
}

}  // namespace
}  // namespace shardledger
