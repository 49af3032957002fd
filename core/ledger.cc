#include "core/ledger.h"

#include <chrono>

namespace shardledger {

namespace {
constexpr int kMaxAttempts = 8;
}

Result<std::unique_ptr<Ledger>> Ledger::Open(const std::string& dir, LedgerOptions options) {
  std::unique_ptr<Ledger> ledger(new Ledger());
  ledger->clock_ = options.clock ? options.clock : [] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  ledger->routing_ = RoutingDecider(options.routing);
  EventLogOptions log_options;
  log_options.durability = options.durability;
  log_options.clock = ledger->clock_;
  log_options.projection_column_families = {ShardMap::kColumnFamily};
  SL_ASSIGN_OR_RETURN(ledger->log_, EventLog::Open(dir, std::move(log_options)));
  SL_ASSIGN_OR_RETURN(ledger->shard_map_, ShardMap::Open(*ledger->log_));
  return ledger;
}

Ledger::~Ledger() {
  shard_map_.reset();  // leaves the log before the log closes
  log_.reset();
}

Result<CommandResult> Ledger::RunRouting(const Decide& decide, std::optional<int64_t> now_ns) {
  std::lock_guard lock(routing_mu_);
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    // The routing stream's version goes with the state the decision reads: every routing
    // command that changes the system state writes to that stream.
    SL_ASSIGN_OR_RETURN(uint64_t routing_version, log_->StreamVersion(kRoutingStream));
    const int64_t now = now_ns.value_or(clock_());
    SL_ASSIGN_OR_RETURN(RoutingDecision decision,
                        shard_map_->Read([&](const ShardMapState& state) { return decide(state, now); }));
    CommandResult result;
    result.unknown_ids = std::move(decision.unknown_ids);
    result.already_registered = std::move(decision.already_registered);
    if (decision.events.empty()) {
      result.map_version = shard_map_->Routing().map_version;
      return result;
    }
    AppendBatch batch;
    batch.correlation_id = RandomId128();
    batch.expectations.push_back(
        {kRoutingStream, routing_version == 0 ? ExpectedVersion::NoStream()
                                              : ExpectedVersion::Exact(routing_version)});
    for (auto& event : decision.events) {
      event.event_id = RandomId128();
      result.events.push_back(event.payload);
    }
    batch.events = std::move(decision.events);
    auto appended = log_->Append(std::move(batch));
    if (!appended.ok() && appended.status().code() == ErrorCode::kWrongExpectedVersion) {
      ++routing_retries_;
      continue;  // another writer moved the routing state: decide again on the new state
    }
    if (!appended.ok()) return appended.status();
    result.first_seq = appended->first_seq;
    result.last_seq = appended->last_seq;
    result.map_version = shard_map_->Routing().map_version;
    return result;
  }
  return Status(ErrorCode::kUnavailable, "the routing state kept changing under the command (" +
                                             std::to_string(kMaxAttempts) + " attempts)");
}

Result<CommandResult> Ledger::RegisterWorkflows(const std::vector<std::string>& ids) {
  return RunRouting([&](const ShardMapState& s, int64_t) { return routing_.RegisterWorkflows(s, ids); });
}

Result<CommandResult> Ledger::DeregisterWorkflows(const std::vector<std::string>& ids) {
  return RunRouting(
      [&](const ShardMapState& s, int64_t) { return routing_.DeregisterWorkflows(s, ids); });
}

Result<CommandResult> Ledger::SetShardCount(uint32_t count, const std::string& reason, bool force) {
  return RunRouting([&](const ShardMapState& s, int64_t now) {
    return routing_.SetShardCount(s, count, reason, force, now);
  });
}

Result<CommandResult> Ledger::ReportShardHealth(uint32_t shard, bool healthy) {
  return RunRouting([&](const ShardMapState& s, int64_t now) {
    return routing_.ReportShardHealth(s, shard, healthy, now);
  });
}

Result<CommandResult> Ledger::ReportTriggerRegistration(uint32_t shard,
                                                        const std::vector<std::string>& ids,
                                                        uint64_t total_active) {
  return RunRouting([&](const ShardMapState& s, int64_t) {
    return routing_.ReportTriggerRegistration(s, shard, ids, total_active);
  });
}

Result<CommandResult> Ledger::Tick(std::optional<int64_t> now_ns) {
  return RunRouting([&](const ShardMapState& s, int64_t now) { return routing_.Tick(s, now); },
                    now_ns);
}

Result<CommandResult> Ledger::ApplyRoutingOutcome(const RoutingOutcome& outcome) {
  return RunRouting(
      [&](const ShardMapState& s, int64_t) { return routing_.ApplyRoutingOutcome(s, outcome); });
}

}  // namespace shardledger
