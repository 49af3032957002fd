// The event payloads' encoding: each event of events/event.h written into, and read back
// from, the schema's Payload union (events/schema/ledger.capnp). codec.cc builds the envelope
// around it.
#include "events/payload_codec.h"

#include <string>

namespace shardledger {

namespace {

namespace s = ::shardledger::schema;

// ---------------------------------------------------------------- encode

s::JobType ToSchema(JobType t) { return static_cast<s::JobType>(static_cast<uint16_t>(t)); }

void Write(const WorkflowAssigned& e, s::Payload::Builder p) {
  auto b = p.initWorkflowAssigned();
  b.setWorkflowId(AsText(e.workflow_id));
  b.setShard(e.shard);
  b.setEpoch(e.epoch);
}
void Write(const WorkflowRemoved& e, s::Payload::Builder p) {
  auto b = p.initWorkflowRemoved();
  b.setWorkflowId(AsText(e.workflow_id));
  b.setShard(e.shard);
}
void Write(const TransitionStarted& e, s::Payload::Builder p) {
  auto b = p.initTransitionStarted();
  b.setFromCount(e.from_count);
  b.setToCount(e.to_count);
  b.setEpoch(e.epoch);
  b.setChangesSafeAfterNs(e.changes_safe_after_ns);
  b.setReason(AsText(e.reason));
  b.setForced(e.forced);
  auto shards = b.initRoutableShards(static_cast<unsigned>(e.routable_shards.size()));
  for (unsigned i = 0; i < shards.size(); ++i) shards.set(i, e.routable_shards[i]);
}
void Write(const WorkflowMoving& e, s::Payload::Builder p) {
  auto b = p.initWorkflowMoving();
  b.setWorkflowId(AsText(e.workflow_id));
  b.setOldShard(e.old_shard);
  b.setNewShard(e.new_shard);
  b.setEpoch(e.epoch);
}
void Write(const ShardHealthChanged& e, s::Payload::Builder p) {
  auto b = p.initShardHealthChanged();
  b.setShard(e.shard);
  b.setHealthy(e.healthy);
}
void Write(const TriggerRegistrationReported& e, s::Payload::Builder p) {
  auto b = p.initTriggerRegistrationReported();
  b.setShard(e.shard);
  auto ids = b.initWorkflowIds(static_cast<unsigned>(e.workflow_ids.size()));
  for (unsigned i = 0; i < ids.size(); ++i) ids.set(i, AsText(e.workflow_ids[i]));
  b.setTotalActiveWorkflows(e.total_active_workflows);
}
void Write(const WorkflowMoveConfirmed& e, s::Payload::Builder p) {
  auto b = p.initWorkflowMoveConfirmed();
  b.setWorkflowId(AsText(e.workflow_id));
  b.setShard(e.shard);
  b.setEpoch(e.epoch);
}
void Write(const TransitionCompleted& e, s::Payload::Builder p) {
  auto b = p.initTransitionCompleted();
  b.setEpoch(e.epoch);
  b.setShardCount(e.shard_count);
  b.setTimedOut(e.timed_out);
}
// Every job event's builder starts with its job's id and type.
template <typename Builder, typename JobEvent>
Builder WithJob(Builder b, const JobEvent& e) {
  b.setJobId(AsText(e.job_id));
  b.setJobType(ToSchema(e.job_type));
  return b;
}
void Write(const JobCreated& e, s::Payload::Builder p) {
  auto b = WithJob(p.initJobCreated(), e);
  b.setInternalId(e.internal_id);
  auto md = b.initMetadata(static_cast<unsigned>(e.metadata.size()));
  for (unsigned i = 0; i < md.size(); ++i) {
    md[i].setKey(AsText(e.metadata[i].first));
    md[i].setValue(AsText(e.metadata[i].second));
  }
}
void Write(const JobClaimed& e, s::Payload::Builder p) {
  auto b = WithJob(p.initJobClaimed(), e);
  b.setWorker(AsText(e.worker));
  b.setFencingToken(e.fencing_token);
  b.setLeaseExpiresAtNs(e.lease_expires_at_ns);
  b.setProcessAttempt(e.process_attempt);
}
void Write(const JobProcessingCompleted& e, s::Payload::Builder p) {
  auto b = WithJob(p.initJobProcessingCompleted(), e);
  b.setFencingToken(e.fencing_token);
  auto x = b.initExternalId();
  if (const auto* text = std::get_if<std::string>(&e.external_id)) {
    x.setText(AsText(*text));
  } else if (const auto* number = std::get_if<uint64_t>(&e.external_id)) {
    x.setNumber(*number);
  } else {
    x.setNone();
  }
}
void Write(const JobVerified& e, s::Payload::Builder p) {
  auto b = WithJob(p.initJobVerified(), e);
  b.setVerificationAttempt(e.verification_attempt);
}
void Write(const JobVerificationRejected& e, s::Payload::Builder p) {
  auto b = WithJob(p.initJobVerificationRejected(), e);
  b.setReason(AsText(e.reason));
  b.setVerificationAttempt(e.verification_attempt);
  b.setFailed(e.failed);
}
void Write(const JobVerificationPending& e, s::Payload::Builder p) {
  auto b = WithJob(p.initJobVerificationPending(), e);
  b.setVerificationAttempt(e.verification_attempt);
  b.setNextCheckAtNs(e.next_check_at_ns);
}
void Write(const JobVerificationTimedOut& e, s::Payload::Builder p) {
  auto b = WithJob(p.initJobVerificationTimedOut(), e);
  b.setVerificationAttempt(e.verification_attempt);
}
void Write(const JobFailed& e, s::Payload::Builder p) {
  auto b = WithJob(p.initJobFailed(), e);
  b.setReason(AsText(e.reason));
  b.setFencingToken(e.fencing_token);
}
void Write(const JobRetried& e, s::Payload::Builder p) {
  WithJob(p.initJobRetried(), e);
}
void Write(const JobVerificationRequeued& e, s::Payload::Builder p) {
  WithJob(p.initJobVerificationRequeued(), e);
}
void Write(const JobClaimExpired& e, s::Payload::Builder p) {
  auto b = WithJob(p.initJobClaimExpired(), e);
  b.setWorker(AsText(e.worker));
  b.setFencingToken(e.fencing_token);
}

Result<JobType> FromSchema(s::JobType t) {
  auto raw = static_cast<uint16_t>(t);
  if (raw >= kJobTypeCount) return CorruptRecord("unknown job type " + std::to_string(raw));
  return static_cast<JobType>(raw);
}

// Each Read fills an event from its reader; a job event also checks its job type.
template <typename R>
Result<JobType> ReadJobType(R r) {
  return FromSchema(r.getJobType());
}

}  // namespace

Result<Event> ReadPayload(schema::Payload::Reader p) {
  switch (p.which()) {
    case s::Payload::WORKFLOW_ASSIGNED: {
      auto r = p.getWorkflowAssigned();
      return Event(WorkflowAssigned{FromText(r.getWorkflowId()), r.getShard(), r.getEpoch()});
    }
    case s::Payload::WORKFLOW_REMOVED: {
      auto r = p.getWorkflowRemoved();
      return Event(WorkflowRemoved{FromText(r.getWorkflowId()), r.getShard()});
    }
    case s::Payload::TRANSITION_STARTED: {
      auto r = p.getTransitionStarted();
      TransitionStarted e{r.getFromCount(),
                          r.getToCount(),
                          r.getEpoch(),
                          r.getChangesSafeAfterNs(),
                          FromText(r.getReason()),
                          r.getForced(),
                          {}};
      auto shards = r.getRoutableShards();
      e.routable_shards.reserve(shards.size());
      for (uint32_t shard : shards) e.routable_shards.push_back(shard);
      return Event(std::move(e));
    }
    case s::Payload::WORKFLOW_MOVING: {
      auto r = p.getWorkflowMoving();
      return Event(WorkflowMoving{FromText(r.getWorkflowId()), r.getOldShard(), r.getNewShard(),
                                  r.getEpoch()});
    }
    case s::Payload::SHARD_HEALTH_CHANGED: {
      auto r = p.getShardHealthChanged();
      return Event(ShardHealthChanged{r.getShard(), r.getHealthy()});
    }
    case s::Payload::TRIGGER_REGISTRATION_REPORTED: {
      auto r = p.getTriggerRegistrationReported();
      TriggerRegistrationReported e{r.getShard(), {}, r.getTotalActiveWorkflows()};
      auto ids = r.getWorkflowIds();
      e.workflow_ids.reserve(ids.size());
      for (auto id : ids) e.workflow_ids.push_back(FromText(id));
      return Event(std::move(e));
    }
    case s::Payload::WORKFLOW_MOVE_CONFIRMED: {
      auto r = p.getWorkflowMoveConfirmed();
      return Event(WorkflowMoveConfirmed{FromText(r.getWorkflowId()), r.getShard(), r.getEpoch()});
    }
    case s::Payload::TRANSITION_COMPLETED: {
      auto r = p.getTransitionCompleted();
      return Event(TransitionCompleted{r.getEpoch(), r.getShardCount(), r.getTimedOut()});
    }
    case s::Payload::JOB_CREATED: {
      auto r = p.getJobCreated();
      SL_ASSIGN_OR_RETURN(JobType type, ReadJobType(r));
      JobCreated e{FromText(r.getJobId()), type, r.getInternalId(), {}};
      auto md = r.getMetadata();
      e.metadata.reserve(md.size());
      for (auto kv : md) e.metadata.emplace_back(FromText(kv.getKey()), FromText(kv.getValue()));
      return Event(std::move(e));
    }
    case s::Payload::JOB_CLAIMED: {
      auto r = p.getJobClaimed();
      SL_ASSIGN_OR_RETURN(JobType type, ReadJobType(r));
      return Event(JobClaimed{FromText(r.getJobId()), type, FromText(r.getWorker()),
                              r.getFencingToken(), r.getLeaseExpiresAtNs(), r.getProcessAttempt()});
    }
    case s::Payload::JOB_PROCESSING_COMPLETED: {
      auto r = p.getJobProcessingCompleted();
      SL_ASSIGN_OR_RETURN(JobType type, ReadJobType(r));
      JobProcessingCompleted e{FromText(r.getJobId()), type, r.getFencingToken(), {}};
      auto x = r.getExternalId();
      switch (x.which()) {
        case s::ExternalId::NONE:
          break;
        case s::ExternalId::TEXT:
          e.external_id = FromText(x.getText());
          break;
        case s::ExternalId::NUMBER:
          e.external_id = x.getNumber();
          break;
        default:
          return CorruptRecord("unknown external id tag " +
                               std::to_string(static_cast<int>(x.which())));
      }
      return Event(std::move(e));
    }
    case s::Payload::JOB_VERIFIED: {
      auto r = p.getJobVerified();
      SL_ASSIGN_OR_RETURN(JobType type, ReadJobType(r));
      return Event(JobVerified{FromText(r.getJobId()), type, r.getVerificationAttempt()});
    }
    case s::Payload::JOB_VERIFICATION_REJECTED: {
      auto r = p.getJobVerificationRejected();
      SL_ASSIGN_OR_RETURN(JobType type, ReadJobType(r));
      return Event(JobVerificationRejected{FromText(r.getJobId()), type, FromText(r.getReason()),
                                           r.getVerificationAttempt(), r.getFailed()});
    }
    case s::Payload::JOB_VERIFICATION_PENDING: {
      auto r = p.getJobVerificationPending();
      SL_ASSIGN_OR_RETURN(JobType type, ReadJobType(r));
      return Event(JobVerificationPending{FromText(r.getJobId()), type, r.getVerificationAttempt(),
                                          r.getNextCheckAtNs()});
    }
    case s::Payload::JOB_VERIFICATION_TIMED_OUT: {
      auto r = p.getJobVerificationTimedOut();
      SL_ASSIGN_OR_RETURN(JobType type, ReadJobType(r));
      return Event(
          JobVerificationTimedOut{FromText(r.getJobId()), type, r.getVerificationAttempt()});
    }
    case s::Payload::JOB_FAILED: {
      auto r = p.getJobFailed();
      SL_ASSIGN_OR_RETURN(JobType type, ReadJobType(r));
      return Event(
          JobFailed{FromText(r.getJobId()), type, FromText(r.getReason()), r.getFencingToken()});
    }
    case s::Payload::JOB_RETRIED: {
      auto r = p.getJobRetried();
      SL_ASSIGN_OR_RETURN(JobType type, ReadJobType(r));
      return Event(JobRetried{FromText(r.getJobId()), type});
    }
    case s::Payload::JOB_VERIFICATION_REQUEUED: {
      auto r = p.getJobVerificationRequeued();
      SL_ASSIGN_OR_RETURN(JobType type, ReadJobType(r));
      return Event(JobVerificationRequeued{FromText(r.getJobId()), type});
    }
    case s::Payload::JOB_CLAIM_EXPIRED: {
      auto r = p.getJobClaimExpired();
      SL_ASSIGN_OR_RETURN(JobType type, ReadJobType(r));
      return Event(JobClaimExpired{FromText(r.getJobId()), type, FromText(r.getWorker()),
                                   r.getFencingToken()});
    }
  }
  return CorruptRecord("unknown payload tag " + std::to_string(static_cast<int>(p.which())));
}

void WritePayload(const Event& event, schema::Payload::Builder payload) {
  std::visit([&](const auto& e) { Write(e, payload); }, event);
}

}  // namespace shardledger
