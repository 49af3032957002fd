#include "core/job_decider.h"

namespace shardledger {

namespace {

constexpr size_t kMaxMetadataEntries = 64;
constexpr size_t kMaxMetadataKey = 128;
constexpr size_t kMaxMetadataValue = 4096;
constexpr size_t kMaxText = 4096;

Status NotAllowed(std::string_view command, const JobRecord& job, std::string detail = {}) {
  std::string message = std::string(command) + " is not allowed in status " +
                        std::string(JobStatusName(job.status)) + " (job " + job.id + ")";
  if (!detail.empty()) message += ": " + detail;
  return Status(ErrorCode::kRejected, std::move(message));
}

Result<const JobRecord*> Existing(const JobViewsState& state, const std::string& id) {
  const JobRecord* job = state.Find(id);
  if (job == nullptr) return Status(ErrorCode::kNotFound, "no job " + id);
  return job;
}

// The decision's one event on the job's stream, assuming the version the decision read.
JobDecision On(const JobRecord& job, Event event) {
  JobDecision decision;
  decision.job_id = job.id;
  decision.events.push_back(NewEvent{Id128{}, JobStream(job.id), std::move(event)});
  decision.expectations.push_back({JobStream(job.id), ExpectedVersion::Exact(job.version)});
  return decision;
}

bool LeaseHolds(const JobRecord& job, int64_t now_ns) {
  return job.claim.active && now_ns < job.claim.lease_expires_at_ns;
}

}  // namespace

std::string JobDecider::JobIdFor(JobType type, uint64_t internal_id) {
  return std::string(JobTypeName(type)) + "-" + std::to_string(internal_id);
}

Result<JobDecision> JobDecider::CreateJob(
    const JobViewsState& state, JobType type, uint64_t internal_id,
    const std::vector<std::pair<std::string, std::string>>& metadata) const {
  if (metadata.size() > kMaxMetadataEntries) {
    return Status(ErrorCode::kBadRequest, "job metadata holds more than 64 entries");
  }
  for (const auto& [key, value] : metadata) {
    if (key.empty() || key.size() > kMaxMetadataKey || value.size() > kMaxMetadataValue) {
      return Status(ErrorCode::kBadRequest,
                    "job metadata keys are 1..128 bytes and values at most 4096");
    }
  }
  JobDecision decision;
  decision.job_id = JobIdFor(type, internal_id);
  if (state.FindByKey(type, internal_id) != nullptr) return decision;  // idempotent

  const std::string name = decision.job_id;
  if (const auto parent = config_.For(type).parent) {
    const JobRecord* parent_job = state.FindByKey(*parent, internal_id);
    if (parent_job == nullptr || parent_job->status != JobStatus::kCompleted) {
      return Status(ErrorCode::kRejected,
                    "cannot create " + name + ": its parent " + JobIdFor(*parent, internal_id) +
                        (parent_job == nullptr ? " does not exist"
                                               : " is " + std::string(JobStatusName(parent_job->status))) +
                        ", not Completed");
    }
  }
  if (type == JobType::kStateTransition) {
    // In internal-id order and one at a time.
    for (int s = 0; s < kJobStatusCount; ++s) {
      const auto status = static_cast<JobStatus>(s);
      if (status != JobStatus::kCompleted && state.Count(type, status) > 0) {
        return Status(ErrorCode::kRejected, "cannot create " + name +
                                                ": another StateTransition is " +
                                                std::string(JobStatusName(status)));
      }
    }
    const auto highest = state.HighestCompleted(type);
    if (highest && internal_id != *highest + 1) {
      return Status(ErrorCode::kRejected, "cannot create " + name + ": StateTransition runs in order, and the next is " +
                                              JobIdFor(type, *highest + 1));
    }
  }
  decision.events.push_back(
      NewEvent{Id128{}, JobStream(name), JobCreated{name, type, internal_id, metadata}});
  decision.expectations.push_back({JobStream(name), ExpectedVersion::NoStream()});
  return decision;
}

Result<JobDecision> JobDecider::ClaimJob(const JobViewsState& state, const std::string& id,
                                         const std::string& worker, int64_t lease_ns,
                                         int64_t now_ns) const {
  if (worker.empty() || worker.size() > kMaxText) {
    return Status(ErrorCode::kBadRequest, "a worker name is 1..4096 bytes");
  }
  if (lease_ns < 0) return Status(ErrorCode::kBadRequest, "a lease cannot be negative");
  SL_ASSIGN_OR_RETURN(const JobRecord* job, Existing(state, id));
  switch (job->status) {
    case JobStatus::kCreated:
    case JobStatus::kVerificationFailed:
    case JobStatus::kPendingRetry:
      break;
    case JobStatus::kLockedForProcessing:
      if (LeaseHolds(*job, now_ns)) {
        return NotAllowed("ClaimJob", *job, job->claim.owner + " holds it until its lease ends");
      }
      break;
    default:
      return NotAllowed("ClaimJob", *job);
  }
  const int64_t lease = lease_ns > 0 ? lease_ns : config_.default_lease_ns;
  return On(*job, JobClaimed{job->id, job->type, worker, job->claim.fencing_token + 1,
                             now_ns + lease, job->process_attempts + 1});
}

Result<JobDecision> JobDecider::CompleteProcessing(const JobViewsState& state,
                                                   const std::string& id, uint64_t token,
                                                   const ExternalId& external_id,
                                                   int64_t now_ns) const {
  SL_ASSIGN_OR_RETURN(const JobRecord* job, Existing(state, id));
  if (job->status != JobStatus::kLockedForProcessing) return NotAllowed("CompleteProcessing", *job);
  if (token != job->claim.fencing_token) {
    return NotAllowed("CompleteProcessing", *job,
                      "fencing token " + std::to_string(token) + " is stale; the claim holds " +
                          std::to_string(job->claim.fencing_token));
  }
  if (!LeaseHolds(*job, now_ns)) {
    return NotAllowed("CompleteProcessing", *job, "the claim's lease has ended");
  }
  return On(*job, JobProcessingCompleted{job->id, job->type, token, external_id});
}

Result<JobDecision> JobDecider::RecordVerification(const JobViewsState& state,
                                                   const std::string& id, uint64_t token,
                                                   VerificationResult result,
                                                   const std::string& reason,
                                                   int64_t now_ns) const {
  SL_ASSIGN_OR_RETURN(const JobRecord* job, Existing(state, id));
  if (job->status != JobStatus::kPendingVerification) {
    return NotAllowed("RecordVerification", *job);
  }
  if (token != job->claim.fencing_token) {
    return NotAllowed("RecordVerification", *job,
                      "fencing token " + std::to_string(token) + " is not the processing token " +
                          std::to_string(job->claim.fencing_token));
  }
  const JobTypeConfig& limits = config_.For(job->type);
  const uint32_t attempt = job->verification_attempts + 1;
  switch (result) {
    case VerificationResult::kVerified:
      return On(*job, JobVerified{job->id, job->type, attempt});
    case VerificationResult::kRejected:
      return On(*job, JobVerificationRejected{job->id, job->type,
                                              reason.empty() ? "verification rejected" : reason,
                                              attempt,
                                              job->process_attempts >= limits.max_process_attempts});
    case VerificationResult::kPending:
      if (attempt >= limits.max_verification_attempts) {
        return On(*job, JobVerificationTimedOut{job->id, job->type, attempt});
      }
      return On(*job, JobVerificationPending{job->id, job->type, attempt,
                                             now_ns + limits.verification_delay_ns});
  }
  return Status(ErrorCode::kBadRequest, "unknown verification result");
}

Result<JobDecision> JobDecider::FailJob(const JobViewsState& state, const std::string& id,
                                        uint64_t token, const std::string& reason,
                                        int64_t now_ns) const {
  if (reason.empty() || reason.size() > kMaxText) {
    return Status(ErrorCode::kBadRequest, "a failure reason is 1..4096 bytes");
  }
  SL_ASSIGN_OR_RETURN(const JobRecord* job, Existing(state, id));
  if (job->status == JobStatus::kCompleted || job->status == JobStatus::kFailed) {
    return NotAllowed("FailJob", *job);
  }
  if (job->status == JobStatus::kLockedForProcessing && LeaseHolds(*job, now_ns) &&
      token != job->claim.fencing_token) {
    return NotAllowed("FailJob", *job,
                      "fencing token " + std::to_string(token) + " is stale; the claim holds " +
                          std::to_string(job->claim.fencing_token));
  }
  return On(*job, JobFailed{job->id, job->type, reason, token});
}

Result<JobDecision> JobDecider::RetryJob(const JobViewsState& state, const std::string& id) const {
  SL_ASSIGN_OR_RETURN(const JobRecord* job, Existing(state, id));
  if (job->status != JobStatus::kFailed) return NotAllowed("RetryJob", *job);
  return On(*job, JobRetried{job->id, job->type});
}

Result<JobDecision> JobDecider::RequeueVerification(const JobViewsState& state,
                                                    const std::string& id) const {
  SL_ASSIGN_OR_RETURN(const JobRecord* job, Existing(state, id));
  if (job->status != JobStatus::kVerificationTimeout) return NotAllowed("RequeueVerification", *job);
  return On(*job, JobVerificationRequeued{job->id, job->type});
}

Result<JobDecision> JobDecider::Tick(const JobViewsState& state, int64_t now_ns,
                                     size_t limit) const {
  JobDecision decision;
  for (const JobRecord& job : state.ExpiredLeases(now_ns, limit)) {
    JobDecision one = On(job, JobClaimExpired{job.id, job.type, job.claim.owner,
                                              job.claim.fencing_token});
    decision.events.push_back(std::move(one.events.front()));
    decision.expectations.push_back(std::move(one.expectations.front()));
  }
  return decision;
}

}  // namespace shardledger
