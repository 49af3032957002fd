// JobDecider: job commands to events, or a typed rejection (DESIGN.md section 5).
//
// Pure: every function reads the job views and the command (time comes in as a value) and
// returns the events to append and the stream versions they assume. A command that the job's
// status does not allow is Rejected with a message naming both the command and the status;
// an unknown job is NotFound; malformed input is BadRequest.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/job_config.h"
#include "events/record.h"
#include "events/status.h"
#include "projections/job_views_state.h"

namespace shardledger {

enum class VerificationResult { kVerified, kRejected, kPending };

struct JobDecision {
  std::vector<NewEvent> events;                // event ids unset: the ledger assigns them
  std::vector<StreamExpectation> expectations;  // the job versions the decision read
  std::string job_id;                           // the job the command is about
};

inline std::string JobStream(std::string_view job_id) { return "job/" + std::string(job_id); }

class JobDecider {
 public:
  explicit JobDecider(JobConfig config = JobConfig::Defaults()) : config_(std::move(config)) {}
  const JobConfig& config() const { return config_; }

  // A job's id: its type and internal id, which identify it uniquely and forever.
  static std::string JobIdFor(JobType type, uint64_t internal_id);

  Result<JobDecision> CreateJob(const JobViewsState& state, JobType type, uint64_t internal_id,
                                const std::vector<std::pair<std::string, std::string>>& metadata) const;
  // `lease_ns` 0: the configured default lease.
  Result<JobDecision> ClaimJob(const JobViewsState& state, const std::string& id,
                               const std::string& worker, int64_t lease_ns, int64_t now_ns) const;
  Result<JobDecision> CompleteProcessing(const JobViewsState& state, const std::string& id,
                                         uint64_t token, const ExternalId& external_id,
                                         int64_t now_ns) const;
  Result<JobDecision> RecordVerification(const JobViewsState& state, const std::string& id,
                                         uint64_t token, VerificationResult result,
                                         const std::string& reason, int64_t now_ns) const;
  // `token` must match an active claim's; for a job no one holds, any token (0: an operator).
  Result<JobDecision> FailJob(const JobViewsState& state, const std::string& id, uint64_t token,
                              const std::string& reason, int64_t now_ns) const;
  Result<JobDecision> RetryJob(const JobViewsState& state, const std::string& id) const;
  Result<JobDecision> RequeueVerification(const JobViewsState& state, const std::string& id) const;
  // Expires every active claim whose lease has ended (at most `limit`).
  Result<JobDecision> Tick(const JobViewsState& state, int64_t now_ns, size_t limit = 10'000) const;

 private:
  JobConfig config_;
};

}  // namespace shardledger
