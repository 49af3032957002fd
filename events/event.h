// The events of the ledger as plain C++ values: what deciders produce, projections fold,
// and the codec turns into Cap'n Proto (events/schema/ledger.capnp) and back.
//
// The order of Event's alternatives is the order of the schema's Payload union: the
// EventType of an event is its variant index.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace shardledger {

// ---------------------------------------------------------------- routing

struct WorkflowAssigned {
  std::string workflow_id;
  uint32_t shard = 0;
  uint64_t epoch = 0;
  bool operator==(const WorkflowAssigned&) const = default;
};

struct WorkflowRemoved {
  std::string workflow_id;
  uint32_t shard = 0;
  bool operator==(const WorkflowRemoved&) const = default;
};

struct TransitionStarted {
  uint32_t from_count = 0;
  uint32_t to_count = 0;
  uint64_t epoch = 0;
  int64_t changes_safe_after_ns = 0;
  std::string reason;
  bool forced = false;
  std::vector<uint32_t> routable_shards;
  bool operator==(const TransitionStarted&) const = default;
};

struct WorkflowMoving {
  std::string workflow_id;
  uint32_t old_shard = 0;
  uint32_t new_shard = 0;
  uint64_t epoch = 0;
  bool operator==(const WorkflowMoving&) const = default;
};

struct ShardHealthChanged {
  uint32_t shard = 0;
  bool healthy = false;
  bool operator==(const ShardHealthChanged&) const = default;
};

struct TriggerRegistrationReported {
  uint32_t shard = 0;
  std::vector<std::string> workflow_ids;
  uint64_t total_active_workflows = 0;
  bool operator==(const TriggerRegistrationReported&) const = default;
};

struct WorkflowMoveConfirmed {
  std::string workflow_id;
  uint32_t shard = 0;
  uint64_t epoch = 0;
  bool operator==(const WorkflowMoveConfirmed&) const = default;
};

struct TransitionCompleted {
  uint64_t epoch = 0;
  uint32_t shard_count = 0;
  bool timed_out = false;
  bool operator==(const TransitionCompleted&) const = default;
};

// ---------------------------------------------------------------- jobs

enum class JobType : uint8_t {
  kSnosRun = 0,
  kProofCreation = 1,
  kProofRegistration = 2,
  kDataSubmission = 3,
  kStateTransition = 4,
  kAggregator = 5,
};
inline constexpr int kJobTypeCount = 6;

// "SnosRun", "ProofCreation", ... (the names of DESIGN.md section 5 and of topics).
std::string_view JobTypeName(JobType type);
std::optional<JobType> ParseJobType(std::string_view name);

// The prover's job id or a transaction hash: text, a number, or nothing yet.
using ExternalId = std::variant<std::monostate, std::string, uint64_t>;

struct JobCreated {
  std::string job_id;
  JobType job_type = JobType::kSnosRun;
  uint64_t internal_id = 0;
  std::vector<std::pair<std::string, std::string>> metadata;
  bool operator==(const JobCreated&) const = default;
};

struct JobClaimed {
  std::string job_id;
  JobType job_type = JobType::kSnosRun;
  std::string worker;
  uint64_t fencing_token = 0;
  int64_t lease_expires_at_ns = 0;
  uint32_t process_attempt = 0;
  bool operator==(const JobClaimed&) const = default;
};

struct JobProcessingCompleted {
  std::string job_id;
  JobType job_type = JobType::kSnosRun;
  uint64_t fencing_token = 0;
  ExternalId external_id;
  bool operator==(const JobProcessingCompleted&) const = default;
};

struct JobVerified {
  std::string job_id;
  JobType job_type = JobType::kSnosRun;
  uint32_t verification_attempt = 0;
  bool operator==(const JobVerified&) const = default;
};

struct JobVerificationRejected {
  std::string job_id;
  JobType job_type = JobType::kSnosRun;
  std::string reason;
  uint32_t verification_attempt = 0;
  bool failed = false;
  bool operator==(const JobVerificationRejected&) const = default;
};

struct JobVerificationPending {
  std::string job_id;
  JobType job_type = JobType::kSnosRun;
  uint32_t verification_attempt = 0;
  int64_t next_check_at_ns = 0;
  bool operator==(const JobVerificationPending&) const = default;
};

struct JobVerificationTimedOut {
  std::string job_id;
  JobType job_type = JobType::kSnosRun;
  uint32_t verification_attempt = 0;
  bool operator==(const JobVerificationTimedOut&) const = default;
};

struct JobFailed {
  std::string job_id;
  JobType job_type = JobType::kSnosRun;
  std::string reason;
  uint64_t fencing_token = 0;
  bool operator==(const JobFailed&) const = default;
};

struct JobRetried {
  std::string job_id;
  JobType job_type = JobType::kSnosRun;
  bool operator==(const JobRetried&) const = default;
};

struct JobVerificationRequeued {
  std::string job_id;
  JobType job_type = JobType::kSnosRun;
  bool operator==(const JobVerificationRequeued&) const = default;
};

struct JobClaimExpired {
  std::string job_id;
  JobType job_type = JobType::kSnosRun;
  std::string worker;
  uint64_t fencing_token = 0;
  bool operator==(const JobClaimExpired&) const = default;
};

// ---------------------------------------------------------------- the union

using Event =
    std::variant<WorkflowAssigned, WorkflowRemoved, TransitionStarted, WorkflowMoving,
                 ShardHealthChanged, TriggerRegistrationReported, WorkflowMoveConfirmed,
                 TransitionCompleted, JobCreated, JobClaimed, JobProcessingCompleted,
                 JobVerified, JobVerificationRejected, JobVerificationPending,
                 JobVerificationTimedOut, JobFailed, JobRetried, JobVerificationRequeued,
                 JobClaimExpired>;

enum class EventType : uint16_t {
  kWorkflowAssigned = 0,
  kWorkflowRemoved,
  kTransitionStarted,
  kWorkflowMoving,
  kShardHealthChanged,
  kTriggerRegistrationReported,
  kWorkflowMoveConfirmed,
  kTransitionCompleted,
  kJobCreated,
  kJobClaimed,
  kJobProcessingCompleted,
  kJobVerified,
  kJobVerificationRejected,
  kJobVerificationPending,
  kJobVerificationTimedOut,
  kJobFailed,
  kJobRetried,
  kJobVerificationRequeued,
  kJobClaimExpired,
};
inline constexpr int kEventTypeCount = static_cast<int>(std::variant_size_v<Event>);
static_assert(static_cast<int>(EventType::kJobClaimExpired) + 1 == kEventTypeCount);

inline EventType TypeOf(const Event& event) { return static_cast<EventType>(event.index()); }
// "WorkflowAssigned", "JobClaimed", ... (the names used in topics and filters).
std::string_view EventTypeName(EventType type);
std::optional<EventType> ParseEventType(std::string_view name);
bool IsJobEvent(EventType type);
// The job type of a job event; nullopt for a routing event.
std::optional<JobType> JobTypeOf(const Event& event);

}  // namespace shardledger
