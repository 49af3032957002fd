// Child process of the crash test: appends to a durable log from several threads and, after
// each acknowledged append, writes its seq and event id (24 bytes) to standard output. It
// runs until killed.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "events/event_log.h"

using namespace shardledger;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: crash_writer DIR THREADS\n");
    return 2;
  }
  auto log = EventLog::Open(argv[1], {});
  if (!log.ok()) {
    std::fprintf(stderr, "crash_writer: %s\n", log.status().ToString().c_str());
    return 1;
  }
  std::mutex out_mu;
  std::vector<std::thread> threads;
  const int thread_count = std::atoi(argv[2]);
  for (int t = 0; t < thread_count; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0;; ++i) {
        AppendBatch batch;
        const std::string stream = "crash/" + std::to_string(t);
        // Some appends carry several events, so groups mix batch sizes.
        const int events = 1 + static_cast<int>(i % 3);
        for (int e = 0; e < events; ++e) {
          batch.events.push_back(NewEvent{RandomId128(), stream,
                                          JobFailed{"job", JobType::kSnosRun,
                                                    std::string(150, 'p'), i}});
        }
        auto result = (*log)->Append(batch);
        if (!result.ok()) {
          std::fprintf(stderr, "crash_writer: %s\n", result.status().ToString().c_str());
          std::_Exit(1);
        }
        std::lock_guard lock(out_mu);
        for (int e = 0; e < events; ++e) {
          char line[24];
          const uint64_t seq = result->first_seq + static_cast<uint64_t>(e);
          std::memcpy(line, &seq, 8);
          std::memcpy(line + 8, batch.events[e].event_id.data(), 16);
          if (write(STDOUT_FILENO, line, sizeof(line)) != static_cast<ssize_t>(sizeof(line))) {
            std::_Exit(1);
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  return 0;
}
