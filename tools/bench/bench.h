// Shared pieces of shardledger-bench: figure output and timing.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace shardledger::bench {

struct Settings {
  std::string dir;      // scratch directory on the disk under test
  double seconds = 3;   // how long each timed figure runs
  std::string only;     // run only the figure of this name (and its baseline); empty: all

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

// The p-th percentile (0..100) of `samples`, which it sorts.
double Percentile(std::vector<double>& samples, double p);

// A fresh empty directory `settings.dir/name`.
std::string ScratchDir(const Settings& settings, const std::string& name);

int RunAppendBench(const Settings& settings);
int RunReadBench(const Settings& settings);
int RunRoutingBench(const Settings& settings, size_t workflows);
int RunJobsBench(const Settings& settings, uint64_t internal_ids);

}  // namespace shardledger::bench
