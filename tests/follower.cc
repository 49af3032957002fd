// A subscriber process for the multi-process tests.
//
//   follower cache <rpc> <pub>
//     Runs a ShardMapCache. Reads commands on stdin: "wait <seq>" answers
//     "digest <hex> <applied seq>" once the cache has applied seq; "quit" exits.
//   follower record <rpc> <pub> <file> [rcvhwm] [slow-us] [rcvbuf-bytes]
//     Applies every record by appending its seq as a line to <file> (the file is its state:
//     on start it resumes after the last complete line). Tiny rcvhwm, rcvbuf and slow-us force loss.
//     On SIGTERM it writes "<replays> <from_replay> <applied>" to <file>.stats and exits.
#include <signal.h>
#include <unistd.h>
#include <fcntl.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "events/ids.h"
#include "transport/client.h"
#include "transport/shard_map_cache.h"
#include "transport/subscriber.h"

namespace shardledger {
namespace {

std::atomic<bool> g_stop{false};

int RunCache(const std::string& rpc, const std::string& pub) {
  ShardMapCacheOptions options;
  options.rpc.endpoint = rpc;
  options.publisher = pub;
  auto cache = ShardMapCache::Start(options);
  if (!cache.ok()) {
    std::cerr << "follower: " << cache.status().ToString() << "\n";
    return 3;
  }
  std::cout << "ready " << (*cache)->applied_seq() << std::endl;
  std::string command;
  while (std::cin >> command) {
    if (command == "quit") return 0;
    if (command == "wait") {
      uint64_t seq = 0;
      std::cin >> seq;
      if (!(*cache)->WaitFor(seq, std::chrono::seconds(120))) {
        std::cout << "timeout " << (*cache)->applied_seq() << " " << (*cache)->status().ToString() << std::endl;
        continue;
      }
      std::cout << "digest " << ToHex((*cache)->Digest()) << " " << (*cache)->applied_seq() << std::endl;
    }
  }
  return 0;
}

// The last complete line's seq; truncates a partial last line (a kill mid-write).
uint64_t Resume(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t complete = content.rfind('\n') == std::string::npos ? 0 : content.rfind('\n') + 1;
  if (complete != content.size() && truncate(file.c_str(), static_cast<off_t>(complete)) != 0) {
    std::perror("truncate");
  }
  content.resize(complete);
  if (content.empty()) return 0;
  const size_t start = content.rfind('\n', content.size() - 2);
  return std::stoull(content.substr(start == std::string::npos ? 0 : start + 1));
}

int RunRecorder(const std::string& rpc, const std::string& pub, const std::string& file, int rcvhwm, int slow_us,
                int rcvbuf) {
  const uint64_t after = Resume(file);
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) {
    std::perror("open");
    return 3;
  }
  auto client = RpcClient::Connect({.endpoint = rpc, .timeout = std::chrono::seconds(5)});
  if (!client.ok()) return 3;
  RpcReplaySource source(**client);
  auto apply = [&](uint64_t seq, std::string_view, std::string_view) {
    const std::string line = std::to_string(seq) + "\n";
    if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) std::abort();
    if (slow_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(slow_us));
  };
  auto sub = Subscriber::Connect({.endpoint = pub, .after_seq = after, .receive_high_water_mark = rcvhwm,
                                  .receive_buffer_bytes = rcvbuf},
                                 source, apply);
  if (!sub.ok()) return 3;
  // The daemon may be restarting: keep trying until the replay gets through.
  while (!g_stop) {
    Status started = (*sub)->Start();
    if (started.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::cout << "ready " << after << std::endl;
  while (!g_stop) {
    auto polled = (*sub)->Poll(std::chrono::milliseconds(50));
    if (!polled.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(100));  // daemon away
  }
  const SubscriberStats& stats = (*sub)->stats();
  std::ofstream(file + ".stats") << stats.replays << " " << stats.from_replay << " " << stats.applied << "\n";
  ::close(fd);
  return 0;
}

}  // namespace
}  // namespace shardledger

int main(int argc, char** argv) {
  struct sigaction action {};
  action.sa_handler = [](int) { shardledger::g_stop = true; };
  sigaction(SIGTERM, &action, nullptr);
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "cache" && argc == 4) return shardledger::RunCache(argv[2], argv[3]);
  if (mode == "record" && argc >= 5) {
    return shardledger::RunRecorder(argv[2], argv[3], argv[4], argc > 5 ? std::atoi(argv[5]) : 100'000,
                               argc > 6 ? std::atoi(argv[6]) : 0,
                                    argc > 7 ? std::atoi(argv[7]) : 0);
  }
  std::cerr << "usage: follower cache <rpc> <pub> | follower record <rpc> <pub> <file> [rcvhwm] [slow-us] [rcvbuf]\n";
  return 2;
}
