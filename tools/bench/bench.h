// Shared pieces of shardledger-bench: figure output and timing.
#pragma once

#include <fmt/core.h>

#include <chrono>
#include <cstring>
#include <cstdint>
#include <string>
#include <vector>

#include "events/event_log.h"
#include "events/ids.h"

namespace shardledger::bench {

struct Settings {
  std::string dir;      // scratch directory on the disk under test
  double seconds = 3;   // how long each timed figure runs
  // Append figures: the length of one timed slice of one side; `seconds` is split into
  // rounds of a raw slice and a ledger slice of about this length.
  double slice = 0.5;
  std::string only;     // run only the figure of this name (and its baseline); empty: all
  // Append figures: skip the warm-up that brings each database (ours and the raw baseline's)
  // to its steady state before it is timed. For comparison with figures measured before
  // 2026-12-07's stop 35, which timed fresh databases.
  bool cold = false;

  bool Wants(const std::string& figure) const { return only.empty() || only == figure; }
};

// Prints {"figure":…, "unit":…, "value":…, "baseline":…, "ratio":…} on one line; a figure
// without a baseline prints null for baseline and ratio.
void PrintFigure(const std::string& figure, const std::string& unit, double value,
                 double baseline = 0);

class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double Seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

// An event whose payload carries 200 bytes of content.
Event Payload200(uint64_t i);

// A client's requests, built cheaply: a remote client builds them on its own machine, so the
// bench keeps that work off the ledger's two cores. Ids are a random base plus a counter.
class BenchClient {
 public:
  explicit BenchClient(int writer)
      : stream_(fmt::format("bench/{:02}", writer)), base_(RandomId128()), payload_(Payload200(0)) {}
  // A batch of `events` events on the client's stream (no expected version).
  AppendBatch Next(size_t events = 1) {
    AppendBatch batch;
    for (size_t i = 0; i < events; ++i) {
      // The client's random base with a mixed counter in its first 8 bytes: unique ids
      // without a CSPRNG call per append. Every client counts from 1, so the clients' ids
      // of one count share their first 8 bytes; the id index hashes the whole id, which
      // spreads them (it hashed the first 8 bytes until 2026-12-07, and 64 clients' ids
      // shared one memtable bucket).
      Id128 id = base_;
      const uint64_t n = (++count_) * 0x9e3779b97f4a7c15ULL;
      std::memcpy(id.data(), &n, sizeof(n));
      batch.events.push_back(NewEvent{id, stream_, payload_});
    }
    return batch;
  }

 private:
  std::string stream_;
  Id128 base_;
  Event payload_;
  uint64_t count_ = 0;
};

// Prints `what` and the error on stderr and exits 1: a bench cannot go on past a failed step.
[[noreturn]] void Die(const std::string& what, const Status& status);
// The same for a step that went wrong without a Status (a count that does not add up).
[[noreturn]] void Fail(const std::string& what);
inline void Must(const std::string& what, const Status& status) {
  if (!status.ok()) Die(what, status);
}
template <typename T>
T Must(const std::string& what, Result<T> result) {
  if (!result.ok()) Die(what, result.status());
  return std::move(result).value();
}

// The p-th percentile (0..100) of `samples`, which it sorts.
double Percentile(std::vector<double>& samples, double p);

// A fresh empty directory `settings.dir/name`.
std::string ScratchDir(const Settings& settings, const std::string& name);

int RunAppendBench(const Settings& settings);
int RunReadBench(const Settings& settings);
int RunRoutingBench(const Settings& settings, size_t workflows);
int RunJobsBench(const Settings& settings, uint64_t internal_ids);
int RunPubSubBench(const Settings& settings);
int RunRpcBench(const Settings& settings, size_t workflows);

}  // namespace shardledger::bench
