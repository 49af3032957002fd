// Ledger: runs a command end to end — read the current state from the projection, decide,
// append with the expected version, return the new events and map version (DESIGN.md
// section 1).
//
// Routing commands run one at a time (a mutex), each on the state its predecessor left:
// it is appended with the `routing` stream's version as its expected version, and a lost
// race (WrongExpectedVersion) is decided again on the new state, never applied twice.
// Job commands run concurrently: each is appended with the version of the job it read, and
// a lost race is decided again (usually into a rejection: the winner changed the job).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/job_decider.h"
#include "core/routing_decider.h"
#include "events/event_log.h"
#include "projections/job_views.h"
#include "projections/shard_map.h"

namespace shardledger {

struct LedgerOptions {
  Durability durability = Durability::kDurable;
  RoutingConfig routing;
  JobConfig jobs = JobConfig::Defaults();
  // The ledger's one clock (ns since the Unix epoch) for decisions and record timestamps;
  // the system clock when empty.
  std::function<int64_t()> clock;
  // The event log's queue poll (EventLogOptions::queue_poll); zero: its threads always sleep.
  std::chrono::microseconds queue_poll = AdaptivePoll::kDefaultLimit;
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

// What a job command did.
struct JobCommandResult {
  uint64_t first_seq = 0;  // the appended records (0, 0: none, e.g. an idempotent create)
  uint64_t last_seq = 0;
  std::vector<Event> events;
  JobRecord job;  // the job as the command left it
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

  const JobViews& job_views() const { return *job_views_; }
  const JobDecider& job_decider() const { return jobs_; }

  Result<JobCommandResult> CreateJob(JobType type, uint64_t internal_id,
                                     const std::vector<std::pair<std::string, std::string>>& metadata = {});
  Result<JobCommandResult> ClaimJob(const std::string& id, const std::string& worker,
                                    int64_t lease_ns = 0);
  Result<JobCommandResult> CompleteProcessing(const std::string& id, uint64_t token,
                                              const ExternalId& external_id);
  Result<JobCommandResult> RecordVerification(const std::string& id, uint64_t token,
                                              VerificationResult result,
                                              const std::string& reason = {});
  Result<JobCommandResult> FailJob(const std::string& id, uint64_t token, const std::string& reason);
  Result<JobCommandResult> RetryJob(const std::string& id);
  Result<JobCommandResult> RequeueVerification(const std::string& id);
  // Expires the claims whose lease ended by `now_ns` (the ledger's clock when absent).
  Result<JobCommandResult> TickJobs(std::optional<int64_t> now_ns = std::nullopt);
  uint64_t job_retries() const { return job_retries_.load(); }

  const RoutingDecider& routing_decider() const { return routing_; }
  // Routing commands decided again after losing a race to another writer.
  uint64_t routing_retries() const { return routing_retries_.load(); }

 private:
  using Decide = std::function<Result<RoutingDecision>(const ShardMapState&, int64_t now_ns)>;
  Ledger() = default;
  Result<CommandResult> RunRouting(const Decide& decide, std::optional<int64_t> now_ns = {});
  using DecideJob = std::function<Result<JobDecision>(const JobViewsState&, int64_t now_ns)>;
  Result<JobCommandResult> RunJob(const DecideJob& decide, std::optional<int64_t> now_ns = {});

  std::function<int64_t()> clock_;
  RoutingDecider routing_;
  JobDecider jobs_;
  std::unique_ptr<EventLog> log_;
  std::unique_ptr<ShardMap> shard_map_;
  std::unique_ptr<JobViews> job_views_;
  std::atomic<uint64_t> job_retries_{0};
  std::mutex routing_mu_;
  std::atomic<uint64_t> routing_retries_{0};
};

}  // namespace shardledger
