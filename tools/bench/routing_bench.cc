// Figures of routing: register_workflows, set_shard_count, moved_fraction, lookup_1000_p50/
// p99, bytes_per_workflow — over a durable ledger of `workflows` workflows.
#include <fmt/core.h>

#include <random>

#include "core/ledger.h"
#include "tools/bench/bench.h"

namespace shardledger::bench {

int RunRoutingBench(const Settings& settings, size_t workflows) {
  constexpr uint32_t kFrom = 4;
  auto opened = Must("open", Ledger::Open(ScratchDir(settings, "routing"), LedgerOptions{}));
  Ledger& ledger = *opened;
  Must("set-up shard count", ledger.SetShardCount(kFrom, "bench setup"));

  std::mt19937_64 rng(7);
  std::vector<std::string> ids(workflows);
  for (auto& id : ids) id = fmt::format("wf-{:016x}", rng());

  // Registration in commands of 10,000 ids, each one durable append.
  constexpr size_t kChunk = 10'000;
  Stopwatch registering;
  for (size_t from = 0; from < ids.size(); from += kChunk) {
    std::vector<std::string> chunk(ids.begin() + from,
                                   ids.begin() + std::min(ids.size(), from + kChunk));
    Must("register", ledger.RegisterWorkflows(chunk));
  }
  PrintFigure("register_workflows", "events/s",
              static_cast<double>(ids.size()) / registering.Seconds());

  // N -> N+1: decided, appended and durable (the call returns after the fsync), on a ledger
  // at rest: registration's memtables flushed and no compaction running, as a platform that
  // registered its workflows over hours would be when the scaler decides.
  Must("settling storage", ledger.log().SettleStorage());
  Stopwatch growing;
  auto grown = ledger.SetShardCount(kFrom + 1, "bench scale up");
  const double grow_seconds = growing.Seconds();
  if (!grown.ok()) Die("set shard count", grown.status());
  PrintFigure("set_shard_count", "s", grow_seconds);
  const double moved = static_cast<double>(ledger.shard_map().Routing().moving);
  PrintFigure("moved_fraction", "fraction", moved / static_cast<double>(ids.size()),
              1.0 / (kFrom + 1));

  // In-process batch lookup of 1,000 random ids against the published map.
  std::vector<double> micros;
  std::uniform_int_distribution<size_t> pick(0, ids.size() - 1);
  for (int round = 0; round < 2'000; ++round) {
    std::vector<const std::string*> batch;
    for (int i = 0; i < 1'000; ++i) batch.push_back(&ids[pick(rng)]);
    Stopwatch lookup;
    size_t found = ledger.shard_map().Read([&](const ShardMapState& state) {
      size_t n = 0;
      for (const std::string* id : batch) n += state.Find(*id) != nullptr;
      return n;
    });
    micros.push_back(lookup.Seconds() * 1e6);
    if (found != batch.size()) {
      Fail(fmt::format("lookup found {} of {} registered ids", found, batch.size()));
    }
  }
  PrintFigure("lookup_1000_p50", "us", Percentile(micros, 50));
  PrintFigure("lookup_1000_p99", "us", Percentile(micros, 99));

  const auto bytes = Must("persisted bytes", ledger.shard_map().PersistedBytes());
  PrintFigure("bytes_per_workflow", "bytes",
              static_cast<double>(bytes) / static_cast<double>(ids.size()));
  return 0;
}

}  // namespace shardledger::bench
