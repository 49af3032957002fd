// Ledger: runs a command end to end — read the current state from the projection, decide,
// append with the expected version, return the new events and map version (DESIGN.md
// section 1).
//
// Routing commands run one at a time (a mutex), each on the state its predecessor left:
// it is appended with the `routing` stream's version as its expected version, and a lost
// race (WrongExpectedVersion) is decided again on the new state, never applied twice.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/routing_decider.h"
#include "events/event_log.h"
#include "projections/shard_map.h"

namespace shardledger {

struct LedgerOptions {
  Durability durability = Durability::kDurable;
  RoutingConfig routing;
  // The ledger's one clock (ns since the Unix epoch) for decisions and record timestamps;
  // the system clock when empty.
  std::function<int64_t()> clock;
};

// What a command did.
struct CommandResult {
  uint64_t first_seq = 0;  // the appended records, first_seq..last_seq (0, 0: none)
  uint64_t last_seq = 0;
  std::vector<Event> events;
  uint64_t map_version = 0;  // after the command
  std::vector<std::string> unknown_ids;
  std::vector<std::string> already_registered;
};

class Ledger {
 public:
  static Result<std::unique_ptr<Ledger>> Open(const std::string& dir, LedgerOptions options = {});
  ~Ledger();

  EventLog& log() { return *log_; }
  const ShardMap& shard_map() const { return *shard_map_; }
  int64_t Now() const { return clock_(); }

  Result<CommandResult> RegisterWorkflows(const std::vector<std::string>& ids);
  Result<CommandResult> DeregisterWorkflows(const std::vector<std::string>& ids);
  Result<CommandResult> SetShardCount(uint32_t count, const std::string& reason, bool force = false);
  Result<CommandResult> ReportShardHealth(uint32_t shard, bool healthy);
  Result<CommandResult> ReportTriggerRegistration(uint32_t shard, const std::vector<std::string>& ids,
                                                  uint64_t total_active);
  // Ends a transition once `now_ns` (the ledger's clock when absent) reaches its deadline.
  Result<CommandResult> Tick(std::optional<int64_t> now_ns = std::nullopt);
  Result<CommandResult> ApplyRoutingOutcome(const RoutingOutcome& outcome);

  const RoutingDecider& routing_decider() const { return routing_; }
  // Routing commands decided again after losing a race to another writer.
  uint64_t routing_retries() const { return routing_retries_.load(); }

 private:
  using Decide = std::function<Result<RoutingDecision>(const ShardMapState&, int64_t now_ns)>;
  Ledger() = default;
  Result<CommandResult> RunRouting(const Decide& decide, std::optional<int64_t> now_ns = {});

  std::function<int64_t()> clock_;
  RoutingDecider routing_;
  std::unique_ptr<EventLog> log_;
  std::unique_ptr<ShardMap> shard_map_;
  std::mutex routing_mu_;
  std::atomic<uint64_t> routing_retries_{0};
};

}  // namespace shardledger
