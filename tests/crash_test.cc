// Kill -9 a durable writer at random moments: every acknowledged seq must survive intact,
// the chain must verify, and appends must continue from the head.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <map>
#include <random>

#include "events/event_log.h"
#include "tests/test_util.h"

extern char** environ;

namespace shardledger {
namespace {

int Rounds() {
  const char* env = std::getenv("SHARDLEDGER_CRASH_ROUNDS");
  return env ? std::max(1, std::atoi(env)) : 20;
}

struct Ack {
  uint64_t seq;
  Id128 event_id;
};

// Starts the writer, lets it run for `run_for`, kills it with SIGKILL, and returns every
// acknowledgement it wrote.
std::vector<Ack> RunAndKill(const std::string& dir, std::chrono::milliseconds run_for) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  posix_spawn_file_actions_addclose(&actions, fds[1]);
  std::string path = CRASH_WRITER_PATH;
  std::string threads = "4";
  char* argv[] = {path.data(), const_cast<char*>(dir.c_str()), threads.data(), nullptr};
  pid_t pid = 0;
  EXPECT_EQ(posix_spawn(&pid, path.c_str(), &actions, nullptr, argv, environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);

  std::string buffer;
  char chunk[4096];
  bool killed = false;
  std::chrono::steady_clock::time_point kill_at{};
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (!killed && kill_at != std::chrono::steady_clock::time_point{} && now >= kill_at) {
      kill(pid, SIGKILL);
      killed = true;
    }
    if (!killed && now > give_up) {  // the writer never acknowledged anything
      kill(pid, SIGKILL);
      killed = true;
      ADD_FAILURE() << "the writer acknowledged nothing within 60 s";
    }
    pollfd pfd{fds[0], POLLIN, 0};
    poll(&pfd, 1, 5);
    if (pfd.revents & (POLLIN | POLLHUP)) {
      ssize_t n = read(fds[0], chunk, sizeof(chunk));
      if (n <= 0) break;  // the writer is gone and the pipe is drained
      buffer.append(chunk, static_cast<size_t>(n));
      // Start the clock at the first acknowledgement, once the log is open and writing.
      if (kill_at == std::chrono::steady_clock::time_point{}) kill_at = now + run_for;
    }
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the writer ended on its own (status " << status << ")";

  std::vector<Ack> acks(buffer.size() / 24);
  for (size_t i = 0; i < acks.size(); ++i) {
    std::memcpy(&acks[i].seq, buffer.data() + 24 * i, 8);
    std::memcpy(acks[i].event_id.data(), buffer.data() + 24 * i + 8, 16);
  }
  return acks;
}

TEST(Crash, KilledDurableWriterLosesNoAcknowledgedRecord) {
  testing::TempDir dir;
  std::mt19937 rng(std::random_device{}());
  std::map<uint64_t, Id128> acknowledged;
  const int rounds = Rounds();
  for (int round = 0; round < rounds; ++round) {
    const auto run_for = std::chrono::milliseconds(5 + rng() % 150);
    for (const Ack& ack : RunAndKill(dir.path(), run_for)) {
      auto [it, inserted] = acknowledged.emplace(ack.seq, ack.event_id);
      ASSERT_TRUE(inserted) << "seq " << ack.seq << " acknowledged twice";
    }
    auto log = EventLog::Open(dir.path(), {});
    ASSERT_OK(log);
    const LogHead head = (*log)->Head();
    ASSERT_FALSE(acknowledged.empty());
    ASSERT_GE(head.seq, acknowledged.rbegin()->first) << "round " << round;
    // Every acknowledged seq is present with the event the writer acknowledged.
    auto records = (*log)->ReadRange(1, head.seq);
    ASSERT_OK(records);
    ASSERT_EQ(records->size(), head.seq);
    for (const auto& [seq, event_id] : acknowledged) {
      ASSERT_EQ((*records)[seq - 1].seq, seq);
      ASSERT_EQ((*records)[seq - 1].event_id, event_id) << "seq " << seq << " round " << round;
    }
    auto report = (*log)->VerifyChain();
    ASSERT_OK(report);
    ASSERT_FALSE(report->first_bad_seq.has_value())
        << "round " << round << ": seq " << *report->first_bad_seq << " " << report->problem;
    // Appends continue from the head.
    AppendBatch after = testing::OneEvent("after-crash");
    auto next = (*log)->Append(after);
    ASSERT_OK(next);
    ASSERT_EQ(next->first_seq, head.seq + 1);
    acknowledged.emplace(next->first_seq, after.events[0].event_id);
  }
}

}  // namespace
}  // namespace shardledger
