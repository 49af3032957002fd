// shardledger-bench: measures the ledger against raw baselines run in the same process.
// Each figure is one JSON object per line on standard output.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "tools/bench/bench.h"

namespace shardledger::bench {

void PrintFigure(const std::string& figure, const std::string& unit, double value,
                 double baseline) {
  if (baseline > 0) {
    fmt::print("{{\"figure\":\"{}\",\"unit\":\"{}\",\"value\":{:.6g},\"baseline\":{:.6g},"
               "\"ratio\":{:.4f}}}\n",
               figure, unit, value, baseline, value / baseline);
  } else {
    fmt::print("{{\"figure\":\"{}\",\"unit\":\"{}\",\"value\":{:.6g},\"baseline\":null,"
               "\"ratio\":null}}\n",
               figure, unit, value);
  }
  std::fflush(stdout);
}

double Percentile(std::vector<double>& samples, double p) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const double rank = p / 100.0 * static_cast<double>(samples.size() - 1);
  return samples[static_cast<size_t>(std::llround(rank))];
}

void Die(const std::string& what, const Status& status) {
  Fail(fmt::format("{}: {}", what, status.ToString()));
}

void Fail(const std::string& what) {
  fmt::print(stderr, "{}\n", what);
  std::exit(1);
}

std::string ScratchDir(const Settings& settings, const std::string& name) {
  std::filesystem::path path = std::filesystem::path(settings.dir) / name;
  std::filesystem::remove_all(path);
  std::filesystem::create_directories(path);
  return path.string();
}

}  // namespace shardledger::bench

int main(int argc, char** argv) {
  using namespace shardledger::bench;
  CLI::App app{"shardledger-bench: ledger figures against raw baselines, as JSON lines"};
  app.require_subcommand(1);
  Settings settings;
  settings.dir = "./var/bench";
  app.add_option("--dir", settings.dir, "scratch directory (on the disk under test)");
  app.add_option("--seconds", settings.seconds, "duration of each timed figure")
      ->check(CLI::PositiveNumber);
  app.add_option("--slice", settings.slice,
                 "append figures: seconds of one timed slice; sides alternate slice by slice")
      ->check(CLI::PositiveNumber);
  app.add_option("--only", settings.only, "run only this figure");
  app.add_flag("--cold", settings.cold,
               "append figures: time fresh databases, without the warm-up and run-in");
  int rc = 0;
  app.add_subcommand("append", "durable and buffered append throughput")->callback([&] {
    rc = RunAppendBench(settings);
  });
  app.add_subcommand("read", "range read throughput")->callback([&] {
    rc = RunReadBench(settings);
  });
  size_t workflows = 1'000'000;
  auto* routing = app.add_subcommand("routing", "routing: registration, shard-count change, lookups");
  routing->add_option("--workflows", workflows, "workflows to register")->check(CLI::PositiveNumber);
  routing->callback([&] { rc = RunRoutingBench(settings, workflows); });
  uint64_t internal_ids = 10'000;
  auto* jobs = app.add_subcommand("jobs", "jobs: durable transitions, attention and status queries");
  jobs->add_option("--internal-ids", internal_ids, "internal ids (blocks) to run")->check(CLI::PositiveNumber);
  jobs->callback([&] { rc = RunJobsBench(settings, internal_ids); });
  app.add_subcommand("pubsub", "publication: throughput and latency against raw ZeroMQ PUB/SUB")->callback([&] {
    rc = RunPubSubBench(settings);
  });
  size_t rpc_workflows = 100'000;
  auto* rpc = app.add_subcommand("rpc", "1,000-id GetWorkflowShardMapping over RPC");
  rpc->add_option("--workflows", rpc_workflows, "workflows in the map")->check(CLI::PositiveNumber);
  rpc->callback([&] { rc = RunRpcBench(settings, rpc_workflows); });
  CLI11_PARSE(app, argc, argv);
  std::filesystem::remove_all(settings.dir);
  return rc;
}
