// One sample of every event type, with every field set to something other than its default,
// for round-trip and fuzz tests.
#pragma once

#include <vector>

#include "events/event.h"
#include "events/record.h"

namespace shardledger::testing {

inline std::vector<Event> SampleEvents() {
  return {
      WorkflowAssigned{"wf-1", 3, 7},
      WorkflowRemoved{"wf-2", 4},
      TransitionStarted{4, 5, 8, 1'700'000'000'000'000'000, "scale up", true, {0, 1, 2, 3, 4}},
      WorkflowMoving{"wf-3", 1, 4, 8},
      ShardHealthChanged{2, true},
      TriggerRegistrationReported{4, {"wf-3", "wf-9", std::string(300, 'x')}, 12},
      WorkflowMoveConfirmed{"wf-3", 4, 8},
      TransitionCompleted{9, 5, true},
      JobCreated{"job-1", JobType::kProofCreation, 42, {{"block", "42"}, {"note", ""}}},
      JobClaimed{"job-1", JobType::kProofCreation, "worker-a", 3, 1'000'000, 2},
      JobProcessingCompleted{"job-1", JobType::kProofCreation, 3, std::string("0xabc")},
      JobProcessingCompleted{"job-2", JobType::kDataSubmission, 4, uint64_t{991}},
      JobVerified{"job-1", JobType::kProofCreation, 5},
      JobVerificationRejected{"job-1", JobType::kStateTransition, "bad proof", 2, true},
      JobVerificationPending{"job-1", JobType::kAggregator, 3, 77},
      JobVerificationTimedOut{"job-1", JobType::kProofRegistration, 300},
      JobFailed{"job-1", JobType::kSnosRun, "prover down", 9},
      JobRetried{"job-1", JobType::kSnosRun},
      JobVerificationRequeued{"job-1", JobType::kProofCreation},
      JobClaimExpired{"job-1", JobType::kDataSubmission, "worker-b", 11},
  };
}

inline Record SampleRecord(Event payload, uint64_t seq = 17) {
  Record record;
  record.seq = seq;
  record.stream = "job/job-1";
  record.stream_version = 4;
  for (size_t i = 0; i < 16; ++i) record.event_id[i] = static_cast<uint8_t>(i + 1);
  record.timestamp_ns = 1'700'000'000'123'456'789;
  record.actor = "writer-key";
  record.correlation_id[0] = 9;
  record.prev_hash.fill(0x5a);
  record.payload = std::move(payload);
  return record;
}

}  // namespace shardledger::testing
