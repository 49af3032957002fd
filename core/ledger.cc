#include "core/ledger.h"

#include <chrono>

#include "events/memory.h"

namespace shardledger {

namespace {
constexpr int kMaxAttempts = 8;

// Fresh event ids for every event of the batch, drawn from the CSPRNG in one call.
void MintEventIds(AppendBatch& batch) {
  std::vector<Id128> ids(batch.events.size());
  FillRandomId128s(ids.data(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) batch.events[i].event_id = ids[i];
  batch.ids_minted = true;
}
}

Result<std::unique_ptr<Ledger>> Ledger::Open(const std::string& dir, LedgerOptions options) {
  std::unique_ptr<Ledger> ledger(new Ledger());
  ledger->clock_ = options.clock ? options.clock : [] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  ledger->routing_ = RoutingDecider(options.routing);
  ledger->jobs_ = JobDecider(options.jobs);
  EventLogOptions log_options;
  log_options.durability = options.durability;
  log_options.clock = ledger->clock_;
  log_options.queue_poll = options.queue_poll;
  log_options.projection_column_families = {ShardMap::kColumnFamily, JobViews::kColumnFamily};
  SL_ASSIGN_OR_RETURN(ledger->log_, EventLog::Open(dir, std::move(log_options)));
  SL_ASSIGN_OR_RETURN(ledger->shard_map_, ShardMap::Open(*ledger->log_));
  SL_ASSIGN_OR_RETURN(ledger->job_views_, JobViews::Open(*ledger->log_));
  return ledger;
}

Ledger::~Ledger() {
  // The projections leave the log before the log closes.
  job_views_.reset();
  shard_map_.reset();
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
    batch.events = std::move(decision.events);
    MintEventIds(batch);
    result.events.reserve(batch.events.size());
    PrefaultForWrite(result.events.data(), batch.events.size() * sizeof(Event));
    for (const auto& event : batch.events) result.events.push_back(event.payload);
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

Result<JobCommandResult> Ledger::RunJob(const DecideJob& decide, std::optional<int64_t> now_ns) {
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    const int64_t now = now_ns.value_or(clock_());
    SL_ASSIGN_OR_RETURN(JobDecision decision,
                        job_views_->Read([&](const JobViewsState& state) { return decide(state, now); }));
    JobCommandResult result;
    if (!decision.events.empty()) {
      AppendBatch batch;
      batch.correlation_id = RandomId128();
      batch.expectations = std::move(decision.expectations);
      batch.events = std::move(decision.events);
      MintEventIds(batch);
      for (const auto& event : batch.events) result.events.push_back(event.payload);
      auto appended = log_->Append(std::move(batch));
      if (!appended.ok() && appended.status().code() == ErrorCode::kWrongExpectedVersion) {
        ++job_retries_;
        continue;  // another command changed the job first: decide again on what it left
      }
      if (!appended.ok()) return appended.status();
      result.first_seq = appended->first_seq;
      result.last_seq = appended->last_seq;
    }
    if (!decision.job_id.empty()) {
      job_views_->Read([&](const JobViewsState& state) {
        if (const JobRecord* job = state.Find(decision.job_id)) result.job = *job;
        return 0;
      });
    }
    return result;
  }
  return Status(ErrorCode::kUnavailable, "the job kept changing under the command (" +
                                             std::to_string(kMaxAttempts) + " attempts)");
}

Result<JobCommandResult> Ledger::CreateJob(
    JobType type, uint64_t internal_id,
    const std::vector<std::pair<std::string, std::string>>& metadata) {
  return RunJob([&](const JobViewsState& s, int64_t) {
    return jobs_.CreateJob(s, type, internal_id, metadata);
  });
}

Result<JobCommandResult> Ledger::ClaimJob(const std::string& id, const std::string& worker,
                                          int64_t lease_ns) {
  return RunJob([&](const JobViewsState& s, int64_t now) {
    return jobs_.ClaimJob(s, id, worker, lease_ns, now);
  });
}

Result<JobCommandResult> Ledger::CompleteProcessing(const std::string& id, uint64_t token,
                                                    const ExternalId& external_id) {
  return RunJob([&](const JobViewsState& s, int64_t now) {
    return jobs_.CompleteProcessing(s, id, token, external_id, now);
  });
}

Result<JobCommandResult> Ledger::RecordVerification(const std::string& id, uint64_t token,
                                                    VerificationResult result,
                                                    const std::string& reason) {
  return RunJob([&](const JobViewsState& s, int64_t now) {
    return jobs_.RecordVerification(s, id, token, result, reason, now);
  });
}

Result<JobCommandResult> Ledger::FailJob(const std::string& id, uint64_t token,
                                         const std::string& reason) {
  return RunJob([&](const JobViewsState& s, int64_t now) {
    return jobs_.FailJob(s, id, token, reason, now);
  });
}

Result<JobCommandResult> Ledger::RetryJob(const std::string& id) {
  return RunJob([&](const JobViewsState& s, int64_t) { return jobs_.RetryJob(s, id); });
}

Result<JobCommandResult> Ledger::RequeueVerification(const std::string& id) {
  return RunJob([&](const JobViewsState& s, int64_t) { return jobs_.RequeueVerification(s, id); });
}

Result<JobCommandResult> Ledger::TickJobs(std::optional<int64_t> now_ns) {
  return RunJob([&](const JobViewsState& s, int64_t now) { return jobs_.Tick(s, now); }, now_ns);
}

}  // namespace shardledger
