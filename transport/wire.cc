#include "transport/wire.h"

#include <cstring>

namespace shardledger {

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kReader: return "reader";
    case Role::kWriter: return "writer";
    case Role::kAdmin: return "admin";
  }
  return "unknown";
}

std::optional<Role> ParseRole(std::string_view name) {
  if (name == "reader") return Role::kReader;
  if (name == "writer") return Role::kWriter;
  if (name == "admin") return Role::kAdmin;
  return std::nullopt;
}

Role RequiredRole(wire::Request::Which which) {
  using W = wire::Request::Which;
  switch (which) {
    // Commands a shard or an orchestrator sends in its normal work.
    case W::REGISTER_WORKFLOWS:
    case W::DEREGISTER_WORKFLOWS:
    case W::REPORT_TRIGGER_REGISTRATION:
    case W::CREATE_JOB:
    case W::CLAIM_JOB:
    case W::COMPLETE_PROCESSING:
    case W::RECORD_VERIFICATION:
    case W::FAIL_JOB:
    case W::TICK:
    case W::TICK_JOBS:
      return Role::kWriter;
    // Operator commands: they change the platform's shape or override a job's fate.
    case W::SET_SHARD_COUNT:
    case W::REPORT_SHARD_HEALTH:
    case W::APPLY_ROUTING_OUTCOME:
    case W::RETRY_JOB:
    case W::REQUEUE_VERIFICATION:
      return Role::kAdmin;
    default:
      return Role::kReader;
  }
}

std::string_view RequestName(wire::Request::Which which) {
  using W = wire::Request::Which;
  switch (which) {
    case W::REGISTER_WORKFLOWS: return "registerWorkflows";
    case W::DEREGISTER_WORKFLOWS: return "deregisterWorkflows";
    case W::SET_SHARD_COUNT: return "setShardCount";
    case W::REPORT_SHARD_HEALTH: return "reportShardHealth";
    case W::REPORT_TRIGGER_REGISTRATION: return "reportTriggerRegistration";
    case W::TICK: return "tick";
    case W::APPLY_ROUTING_OUTCOME: return "applyRoutingOutcome";
    case W::GET_WORKFLOW_SHARD_MAPPING: return "getWorkflowShardMapping";
    case W::ROUTING_STATE: return "routingState";
    case W::WORKFLOWS_ON_SHARD: return "workflowsOnShard";
    case W::COUNTS_PER_SHARD: return "countsPerShard";
    case W::CHANGES_SINCE: return "changesSince";
    case W::REGISTRATION_DRIFT: return "registrationDrift";
    case W::CREATE_JOB: return "createJob";
    case W::CLAIM_JOB: return "claimJob";
    case W::COMPLETE_PROCESSING: return "completeProcessing";
    case W::RECORD_VERIFICATION: return "recordVerification";
    case W::FAIL_JOB: return "failJob";
    case W::RETRY_JOB: return "retryJob";
    case W::REQUEUE_VERIFICATION: return "requeueVerification";
    case W::TICK_JOBS: return "tickJobs";
    case W::GET_JOB: return "getJob";
    case W::LIST_JOBS: return "listJobs";
    case W::ATTENTION: return "attention";
    case W::PIPELINE: return "pipeline";
    case W::JOB_COUNTS: return "jobCounts";
    case W::EXPIRED_LEASES: return "expiredLeases";
    case W::REPLAY: return "replay";
    case W::SNAPSHOT: return "snapshot";
    case W::HEAD: return "head";
    case W::VERIFY_CHAIN: return "verifyChain";
    case W::STREAM_HISTORY: return "streamHistory";
    case W::DIGEST: return "digest";
  }
  return "unknown";
}

capnp::ReaderOptions FrameReaderOptions(size_t frame_bytes) {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = 2 * (frame_bytes / sizeof(capnp::word)) + 64;
  options.nestingLimit = 16;
  return options;
}

Result<kj::Array<capnp::word>> AlignedWords(std::string_view bytes) {
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    return Status(ErrorCode::kBadRequest,
                  "a message frame must be a non-empty multiple of 8 bytes, got " +
                      std::to_string(bytes.size()));
  }
  if (bytes.size() > kMaxFrameBytes) {
    return Status(ErrorCode::kBadRequest, "frame of " + std::to_string(bytes.size()) +
                                              " bytes exceeds the limit");
  }
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  return words;
}

std::string MessageBytes(capnp::MessageBuilder& message) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  kj::ArrayPtr<const kj::byte> bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

wire::ErrorCode ToWire(ErrorCode code) {
  switch (code) {
    case ErrorCode::kWrongExpectedVersion: return wire::ErrorCode::WRONG_EXPECTED_VERSION;
    case ErrorCode::kRejected: return wire::ErrorCode::REJECTED;
    case ErrorCode::kNotFound: return wire::ErrorCode::NOT_FOUND;
    case ErrorCode::kBadRequest: return wire::ErrorCode::BAD_REQUEST;
    case ErrorCode::kUnauthorized: return wire::ErrorCode::UNAUTHORIZED;
    case ErrorCode::kCorruption: return wire::ErrorCode::CORRUPTION;
    case ErrorCode::kIoError: return wire::ErrorCode::IO_ERROR;
    case ErrorCode::kOk:
    case ErrorCode::kUnavailable: return wire::ErrorCode::UNAVAILABLE;
  }
  return wire::ErrorCode::UNAVAILABLE;
}

ErrorCode FromWire(wire::ErrorCode code) {
  switch (code) {
    case wire::ErrorCode::WRONG_EXPECTED_VERSION: return ErrorCode::kWrongExpectedVersion;
    case wire::ErrorCode::REJECTED: return ErrorCode::kRejected;
    case wire::ErrorCode::NOT_FOUND: return ErrorCode::kNotFound;
    case wire::ErrorCode::BAD_REQUEST: return ErrorCode::kBadRequest;
    case wire::ErrorCode::UNAUTHORIZED: return ErrorCode::kUnauthorized;
    case wire::ErrorCode::UNAVAILABLE: return ErrorCode::kUnavailable;
    case wire::ErrorCode::CORRUPTION: return ErrorCode::kCorruption;
    case wire::ErrorCode::IO_ERROR: return ErrorCode::kIoError;
  }
  return ErrorCode::kUnavailable;  // a code from a newer daemon
}

Status FromWire(wire::Error::Reader error) {
  return Status(FromWire(error.getCode()), error.getMessage());
}

wire::JobType ToWire(JobType type) { return static_cast<wire::JobType>(static_cast<uint16_t>(type)); }

Result<JobType> FromWire(wire::JobType type) {
  const auto n = static_cast<uint16_t>(type);
  if (n >= kJobTypeCount) return Status(ErrorCode::kBadRequest, "unknown job type " + std::to_string(n));
  return static_cast<JobType>(n);
}

wire::JobStatus ToWire(JobStatus status) {
  return static_cast<wire::JobStatus>(static_cast<uint16_t>(status));
}

Result<JobStatus> FromWire(wire::JobStatus status) {
  const auto n = static_cast<uint16_t>(status);
  if (n >= kJobStatusCount) {
    return Status(ErrorCode::kBadRequest, "unknown job status " + std::to_string(n));
  }
  return static_cast<JobStatus>(n);
}

void ToWire(const JobRecord& job, wire::JobRecord::Builder out) {
  out.setId(job.id);
  out.setType(ToWire(job.type));
  out.setInternalId(job.internal_id);
  out.setStatus(ToWire(job.status));
  if (const auto* text = std::get_if<std::string>(&job.external_id)) {
    out.getExternalId().setText(*text);
  } else if (const auto* number = std::get_if<uint64_t>(&job.external_id)) {
    out.getExternalId().setNumber(*number);
  } else {
    out.getExternalId().setNone();
  }
  auto metadata = out.initMetadata(static_cast<unsigned>(job.metadata.size()));
  for (size_t i = 0; i < job.metadata.size(); ++i) {
    metadata[i].setKey(job.metadata[i].first);
    metadata[i].setValue(job.metadata[i].second);
  }
  out.setVersion(job.version);
  out.setProcessAttempts(job.process_attempts);
  out.setProcessRetries(job.process_retries);
  out.setVerificationAttempts(job.verification_attempts);
  out.setVerificationRetries(job.verification_retries);
  out.setCreatedAtNs(job.created_at_ns);
  out.setUpdatedAtNs(job.updated_at_ns);
  out.setProcessStartedAtNs(job.process_started_at_ns);
  out.setProcessCompletedAtNs(job.process_completed_at_ns);
  out.setVerificationStartedAtNs(job.verification_started_at_ns);
  out.setVerificationCompletedAtNs(job.verification_completed_at_ns);
  out.setNextVerificationAtNs(job.next_verification_at_ns);
  out.setFailureReason(job.failure_reason);
  SetTexts(job.failure_history, out.initFailureHistory(static_cast<unsigned>(job.failure_history.size())));
  out.setClaimOwner(job.claim.owner);
  out.setClaimLeaseExpiresAtNs(job.claim.lease_expires_at_ns);
  out.setClaimFencingToken(job.claim.fencing_token);
  out.setClaimActive(job.claim.active);
}

Result<JobRecord> FromWire(wire::JobRecord::Reader in) {
  JobRecord job;
  job.id = in.getId();
  SL_ASSIGN_OR_RETURN(job.type, FromWire(in.getType()));
  job.internal_id = in.getInternalId();
  SL_ASSIGN_OR_RETURN(job.status, FromWire(in.getStatus()));
  switch (in.getExternalId().which()) {
    case wire::JobRecord::ExternalId::TEXT: job.external_id = std::string(in.getExternalId().getText()); break;
    case wire::JobRecord::ExternalId::NUMBER: job.external_id = in.getExternalId().getNumber(); break;
    default: break;
  }
  for (auto kv : in.getMetadata()) job.metadata.emplace_back(kv.getKey(), kv.getValue());
  job.version = in.getVersion();
  job.process_attempts = in.getProcessAttempts();
  job.process_retries = in.getProcessRetries();
  job.verification_attempts = in.getVerificationAttempts();
  job.verification_retries = in.getVerificationRetries();
  job.created_at_ns = in.getCreatedAtNs();
  job.updated_at_ns = in.getUpdatedAtNs();
  job.process_started_at_ns = in.getProcessStartedAtNs();
  job.process_completed_at_ns = in.getProcessCompletedAtNs();
  job.verification_started_at_ns = in.getVerificationStartedAtNs();
  job.verification_completed_at_ns = in.getVerificationCompletedAtNs();
  job.next_verification_at_ns = in.getNextVerificationAtNs();
  job.failure_reason = in.getFailureReason();
  job.failure_history = Texts(in.getFailureHistory());
  job.claim.owner = in.getClaimOwner();
  job.claim.lease_expires_at_ns = in.getClaimLeaseExpiresAtNs();
  job.claim.fencing_token = in.getClaimFencingToken();
  job.claim.active = in.getClaimActive();
  return job;
}

void ToWire(const RoutingStatus& status, uint64_t workflows, wire::RoutingState::Builder out) {
  out.setTransition(status.phase == RoutingPhase::kTransition);
  out.setShardCount(status.shard_count);
  out.setTargetCount(status.target_count);
  out.setChangesSafeAfterNs(status.changes_safe_after_ns);
  out.setEpoch(status.epoch);
  auto unhealthy = out.initUnhealthy(static_cast<unsigned>(status.unhealthy.size()));
  for (size_t i = 0; i < status.unhealthy.size(); ++i) unhealthy.set(i, status.unhealthy[i]);
  out.setMapVersion(status.map_version);
  out.setAppliedSeq(status.applied_seq);
  out.setMoving(status.moving);
  out.setWorkflows(workflows);
}

RoutingStatus FromWire(wire::RoutingState::Reader in) {
  RoutingStatus status;
  status.phase = in.getTransition() ? RoutingPhase::kTransition : RoutingPhase::kSteady;
  status.shard_count = in.getShardCount();
  status.target_count = in.getTargetCount();
  status.changes_safe_after_ns = in.getChangesSafeAfterNs();
  status.epoch = in.getEpoch();
  for (uint32_t shard : in.getUnhealthy()) status.unhealthy.push_back(shard);
  status.map_version = in.getMapVersion();
  status.applied_seq = in.getAppliedSeq();
  status.moving = in.getMoving();
  return status;
}

void ToWire(const WorkflowShardMappingView& mapping, wire::WorkflowShardMapping::Builder out) {
  const auto n = static_cast<unsigned>(mapping.mappings.size());
  auto mappings = out.initMappings(n);
  auto states = out.initMappingStates(n);
  for (unsigned i = 0; i < n; ++i) {
    const auto& m = mapping.mappings[i];
    const capnp::Text::Reader id(m.workflow_id.data(), m.workflow_id.size());
    mappings[i].setWorkflowId(id);
    mappings[i].setShard(m.shard);
    states[i].setWorkflowId(id);
    states[i].setHasOldShard(m.state.old_shard.has_value());
    states[i].setOldShard(m.state.old_shard.value_or(0));
    states[i].setNewShard(m.state.new_shard);
    states[i].setInTransition(m.state.in_transition);
    states[i].setConfirmed(m.state.confirmed);
  }
  out.setMappingVersion(mapping.mapping_version);
  const auto unknown = static_cast<unsigned>(mapping.unknown_ids.size());
  SetTexts(mapping.unknown_ids, out.initUnknownIds(unknown));
}

Result<WorkflowShardMapping> FromWire(wire::WorkflowShardMapping::Reader in) {
  WorkflowShardMapping mapping;
  auto text = [](capnp::Text::Reader t) { return std::string_view(t.cStr(), t.size()); };
  auto list = in.getMappings();
  mapping.mappings.reserve(list.size());
  for (auto m : list) {
    mapping.mappings.push_back({std::string(text(m.getWorkflowId())), m.getShard(), {}});
  }
  // Our server sends both lists in id order, each id once, the states in the mappings'
  // positions. Any other order is put right here: sorted, a repeated id keeping its first
  // entry, each state matched to its mapping by id. A mapping without a state, or a state
  // without a mapping, is an answer that cannot be right.
  auto by_id = [](const auto& a, const auto& b) { return a.workflow_id < b.workflow_id; };
  auto same_id = [](const auto& a, const auto& b) { return a.workflow_id == b.workflow_id; };
  if (!std::is_sorted(mapping.mappings.begin(), mapping.mappings.end(), by_id)) {
    std::stable_sort(mapping.mappings.begin(), mapping.mappings.end(), by_id);
  }
  mapping.mappings.erase(std::unique(mapping.mappings.begin(), mapping.mappings.end(), same_id),
                         mapping.mappings.end());
  std::vector<bool> stated(mapping.mappings.size());
  auto states = in.getMappingStates();
  for (unsigned i = 0; i < states.size(); ++i) {
    auto s = states[i];
    const std::string_view id = text(s.getWorkflowId());
    size_t at = i;  // where our server puts it
    if (at >= mapping.mappings.size() || mapping.mappings[at].workflow_id != id) {
      const WorkflowMapping* found = mapping.Find(id);
      if (found == nullptr) {
        return Status(ErrorCode::kUnavailable, "the daemon's mapping answer has a state for " +
                                                   std::string(id) + " but no mapping");
      }
      at = static_cast<size_t>(found - mapping.mappings.data());
    }
    if (stated[at]) continue;  // a repeated id keeps its first state, as its first mapping
    stated[at] = true;
    WorkflowMapping* entry = &mapping.mappings[at];
    MappingState state;
    if (s.getHasOldShard()) state.old_shard = s.getOldShard();
    state.new_shard = s.getNewShard();
    state.in_transition = s.getInTransition();
    state.confirmed = s.getConfirmed();
    entry->state = state;
  }
  for (size_t i = 0; i < stated.size(); ++i) {
    if (!stated[i]) {
      return Status(ErrorCode::kUnavailable, "the daemon's mapping answer has a mapping for " +
                                                 mapping.mappings[i].workflow_id + " but no state");
    }
  }
  mapping.mapping_version = in.getMappingVersion();
  mapping.unknown_ids = Texts(in.getUnknownIds());
  return mapping;
}

std::vector<std::string> Texts(capnp::List<capnp::Text>::Reader list) {
  std::vector<std::string> out;
  out.reserve(list.size());
  for (auto text : list) out.emplace_back(text.cStr(), text.size());
  return out;
}

std::vector<std::string> EventTypeNames(const std::vector<Event>& events) {
  std::vector<std::string> names;
  names.reserve(events.size());
  for (const Event& event : events) names.emplace_back(EventTypeName(TypeOf(event)));
  return names;
}

}  // namespace shardledger
