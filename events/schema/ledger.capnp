# The record format of the shardledger event log.
#
# ORDINALS ARE APPEND-ONLY. Stored records are decoded by every future version of the
# program, so: never renumber a field or union member, never reuse an ordinal, never remove
# or retype a field. Add new fields and new events at the end, with the next free ordinal.
# Enumerants follow the same rule.

@0xd5a3c1e6f0b27a41;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("shardledger::schema");

# ---------------------------------------------------------------- the record

struct Envelope {
  seq @0 :UInt64;             # global position, 1, 2, 3 ... gap-free
  stream @1 :Text;            # "routing", "wf/<workflow-id>", "job/<job-id>"
  streamVersion @2 :UInt64;   # position inside the stream, 1, 2, 3 ...
  eventId @3 :Data;           # 16 bytes chosen by the writer; idempotency key
  timestampNs @4 :Int64;      # wall-clock time of the append (ns since the Unix epoch)
  actor @5 :Text;             # authenticated client identity, or "local"
  correlationId @6 :Data;     # 16 bytes, or empty
  causationId @7 :Data;       # 16 bytes, or empty
  prevHash @8 :Data;          # 32 bytes: the hash of record seq-1 (zeros for seq 1)
  hash @9 :Data;              # 32 bytes: SHA-256(prevHash || this record with hash zeroed)
  payload @10 :Payload;
}

struct Payload {
  union {
    # routing (DESIGN.md section 4)
    workflowAssigned @0 :WorkflowAssigned;
    workflowRemoved @1 :WorkflowRemoved;
    transitionStarted @2 :TransitionStarted;
    workflowMoving @3 :WorkflowMoving;
    shardHealthChanged @4 :ShardHealthChanged;
    triggerRegistrationReported @5 :TriggerRegistrationReported;
    workflowMoveConfirmed @6 :WorkflowMoveConfirmed;
    transitionCompleted @7 :TransitionCompleted;
    # jobs (DESIGN.md section 5)
    jobCreated @8 :JobCreated;
    jobClaimed @9 :JobClaimed;
    jobProcessingCompleted @10 :JobProcessingCompleted;
    jobVerified @11 :JobVerified;
    jobVerificationRejected @12 :JobVerificationRejected;
    jobVerificationPending @13 :JobVerificationPending;
    jobVerificationTimedOut @14 :JobVerificationTimedOut;
    jobFailed @15 :JobFailed;
    jobRetried @16 :JobRetried;
    jobVerificationRequeued @17 :JobVerificationRequeued;
    jobClaimExpired @18 :JobClaimExpired;
  }
}

# ---------------------------------------------------------------- routing

struct WorkflowAssigned {
  workflowId @0 :Text;
  shard @1 :UInt32;
  epoch @2 :UInt64;           # routing epoch the assignment was decided in
}

struct WorkflowRemoved {
  workflowId @0 :Text;
  shard @1 :UInt32;           # the shard it was routed to when removed
}

struct TransitionStarted {
  fromCount @0 :UInt32;
  toCount @1 :UInt32;
  epoch @2 :UInt64;           # the new routing epoch
  changesSafeAfterNs @3 :Int64;
  reason @4 :Text;
  forced @5 :Bool;            # started while another transition was in progress
  routableShards @6 :List(UInt32);   # the target routable set, ascending
}

struct WorkflowMoving {
  workflowId @0 :Text;
  oldShard @1 :UInt32;
  newShard @2 :UInt32;
  epoch @3 :UInt64;
}

struct ShardHealthChanged {
  shard @0 :UInt32;
  healthy @1 :Bool;
}

struct TriggerRegistrationReported {
  shard @0 :UInt32;
  workflowIds @1 :List(Text);
  totalActiveWorkflows @2 :UInt64;
}

struct WorkflowMoveConfirmed {
  workflowId @0 :Text;
  shard @1 :UInt32;
  epoch @2 :UInt64;
}

struct TransitionCompleted {
  epoch @0 :UInt64;           # the new routing epoch (steady state)
  shardCount @1 :UInt32;
  timedOut @2 :Bool;          # ended by Tick at changesSafeAfter, not by confirmations
}

# ---------------------------------------------------------------- jobs

enum JobType {
  snosRun @0;
  proofCreation @1;
  proofRegistration @2;
  dataSubmission @3;
  stateTransition @4;
  aggregator @5;
}

struct KeyValue {
  key @0 :Text;
  value @1 :Text;
}

struct ExternalId {
  union {
    none @0 :Void;
    text @1 :Text;
    number @2 :UInt64;
  }
}

struct JobCreated {
  jobId @0 :Text;
  jobType @1 :JobType;
  internalId @2 :UInt64;
  metadata @3 :List(KeyValue);
}

struct JobClaimed {
  jobId @0 :Text;
  jobType @1 :JobType;
  worker @2 :Text;
  fencingToken @3 :UInt64;
  leaseExpiresAtNs @4 :Int64;
  processAttempt @5 :UInt32;  # processAttempts after this claim
}

struct JobProcessingCompleted {
  jobId @0 :Text;
  jobType @1 :JobType;
  fencingToken @2 :UInt64;
  externalId @3 :ExternalId;
}

struct JobVerified {
  jobId @0 :Text;
  jobType @1 :JobType;
  verificationAttempt @2 :UInt32;
}

struct JobVerificationRejected {
  jobId @0 :Text;
  jobType @1 :JobType;
  reason @2 :Text;
  verificationAttempt @3 :UInt32;
  failed @4 :Bool;            # process attempts are exhausted: the job is Failed
}

struct JobVerificationPending {
  jobId @0 :Text;
  jobType @1 :JobType;
  verificationAttempt @2 :UInt32;
  nextCheckAtNs @3 :Int64;
}

struct JobVerificationTimedOut {
  jobId @0 :Text;
  jobType @1 :JobType;
  verificationAttempt @2 :UInt32;
}

struct JobFailed {
  jobId @0 :Text;
  jobType @1 :JobType;
  reason @2 :Text;
  fencingToken @3 :UInt64;    # 0 when an operator or the ledger failed it
}

struct JobRetried {
  jobId @0 :Text;
  jobType @1 :JobType;
}

struct JobVerificationRequeued {
  jobId @0 :Text;
  jobType @1 :JobType;
}

struct JobClaimExpired {
  jobId @0 :Text;
  jobType @1 :JobType;
  worker @2 :Text;
  fencingToken @3 :UInt64;
}
