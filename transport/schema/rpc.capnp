# The request/reply protocol of shardledgerd (DESIGN.md section 6).
#
# ORDINALS ARE APPEND-ONLY: clients and daemons of different versions talk to each other, so
# never renumber, reuse, remove or retype a field, union member or enumerant. Add at the end.
#
# A request is one ZeroMQ frame holding one `Request` (standard unpacked serialization); the
# daemon answers it with one frame holding one `Response` carrying the same `id`.

@0xb8e14c27d95f3a60;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("shardledger::wire");

enum ErrorCode {
  wrongExpectedVersion @0;
  rejected @1;
  notFound @2;
  badRequest @3;
  unauthorized @4;
  unavailable @5;
  corruption @6;
  ioError @7;
}

struct Error {
  code @0 :ErrorCode;
  message @1 :Text;   # says what failed: the stream and versions, the rejected transition ...
}

enum JobType {
  snosRun @0;
  proofCreation @1;
  proofRegistration @2;
  dataSubmission @3;
  stateTransition @4;
  aggregator @5;
}

enum JobStatus {
  created @0;
  lockedForProcessing @1;
  pendingVerification @2;
  completed @3;
  verificationTimeout @4;
  verificationFailed @5;
  failed @6;
  pendingRetry @7;
}

enum Verification {
  verified @0;
  rejected @1;
  pending @2;
}

enum Projection {
  shardMap @0;
  jobViews @1;
}

struct KeyValue {
  key @0 :Text;
  value @1 :Text;
}

struct Row {
  key @0 :Data;
  value @1 :Data;
}

# ---------------------------------------------------------------- requests

struct Request {
  id @0 :UInt64;   # echoed in the response
  union {
    # Routing commands (section 4)
    registerWorkflows @1 :List(Text);
    deregisterWorkflows @2 :List(Text);
    setShardCount @3 :SetShardCount;
    reportShardHealth @4 :ReportShardHealth;
    reportTriggerRegistration @5 :ReportTriggerRegistration;
    tick @6 :Tick;
    applyRoutingOutcome @7 :RoutingOutcome;

    # Routing queries (section 3)
    getWorkflowShardMapping @8 :List(Text);
    routingState @9 :Void;
    workflowsOnShard @10 :WorkflowsOnShard;
    countsPerShard @11 :Void;
    changesSince @12 :UInt64;            # a map version
    registrationDrift @13 :Void;

    # Job commands (section 5)
    createJob @14 :CreateJob;
    claimJob @15 :ClaimJob;
    completeProcessing @16 :CompleteProcessing;
    recordVerification @17 :RecordVerification;
    failJob @18 :FailJob;
    retryJob @19 :Text;                  # job id
    requeueVerification @20 :Text;       # job id
    tickJobs @21 :Tick;

    # Job queries (section 3)
    getJob @22 :Text;
    listJobs @23 :ListJobs;
    attention @24 :Page;
    pipeline @25 :UInt64;                # internal id
    jobCounts @26 :Void;
    expiredLeases @27 :ExpiredLeases;

    # The log
    replay @28 :Replay;
    snapshot @29 :Projection;
    head @30 :Void;
    verifyChain @31 :SeqRange;
    streamHistory @32 :StreamHistory;
    digest @33 :Projection;
  }
}

struct SetShardCount {
  count @0 :UInt32;
  reason @1 :Text;
  force @2 :Bool;
}

struct ReportShardHealth {
  shard @0 :UInt32;
  healthy @1 :Bool;
}

struct ReportTriggerRegistration {
  shard @0 :UInt32;
  workflowIds @1 :List(Text);
  totalActiveWorkflows @2 :UInt64;
}

struct Tick {
  hasNow @0 :Bool;     # false: the daemon's clock
  nowNs @1 :Int64;
}

struct RoutingOutcome {
  transition @0 :Bool;         # false: steady
  fromCount @1 :UInt32;
  targetCount @2 :UInt32;
  changesSafeAfterNs @3 :Int64;
  epoch @4 :UInt64;
  reason @5 :Text;
  routes @6 :List(Route);
  struct Route {
    workflowId @0 :Text;
    shard @1 :UInt32;
  }
}

struct WorkflowsOnShard {
  shard @0 :UInt32;
  after @1 :Text;      # exclusive; "" from the start
  limit @2 :UInt32;
}

struct CreateJob {
  type @0 :JobType;
  internalId @1 :UInt64;
  metadata @2 :List(KeyValue);
}

struct ClaimJob {
  jobId @0 :Text;
  worker @1 :Text;
  leaseNs @2 :Int64;   # 0: the configured default
}

struct CompleteProcessing {
  jobId @0 :Text;
  fencingToken @1 :UInt64;
  externalId :union {
    none @2 :Void;
    text @3 :Text;
    number @4 :UInt64;
  }
}

struct RecordVerification {
  jobId @0 :Text;
  fencingToken @1 :UInt64;
  result @2 :Verification;
  reason @3 :Text;
}

struct FailJob {
  jobId @0 :Text;
  fencingToken @1 :UInt64;
  reason @2 :Text;
}

struct Page {
  after @0 :Text;      # exclusive
  limit @1 :UInt32;    # 0: 100
}

struct ListJobs {
  hasStatus @0 :Bool;
  status @1 :JobStatus;
  hasType @2 :Bool;
  type @3 :JobType;
  page @4 :Page;
}

struct ExpiredLeases {
  hasNow @0 :Bool;
  nowNs @1 :Int64;
  limit @2 :UInt32;
}

struct Replay {
  fromSeq @0 :UInt64;
  toSeq @1 :UInt64;              # inclusive; capped at the head
  topics @2 :List(Text);         # topic prefixes; empty: every record
  maxRecords @3 :UInt32;         # the chunk size; 0: the daemon's default
}

struct SeqRange {
  fromSeq @0 :UInt64;
  toSeq @1 :UInt64;
}

struct StreamHistory {
  stream @0 :Text;
  fromVersion @1 :UInt64;
  limit @2 :UInt32;
}

# ---------------------------------------------------------------- responses

struct Response {
  id @0 :UInt64;
  union {
    error @1 :Error;
    command @2 :CommandResult;            # routing commands
    mapping @3 :WorkflowShardMapping;
    routingState @4 :RoutingState;
    workflowIds @5 :List(Text);
    counts @6 :List(ShardCount);
    changes @7 :Changes;
    drift @8 :List(ShardDrift);
    job @9 :JobCommandResult;             # job commands and getJob
    jobs @10 :List(JobRecord);
    jobCounts @11 :List(JobCount);
    records @12 :Records;                 # replay, streamHistory
    snapshot @13 :Snapshot;
    head @14 :Head;
    chain @15 :ChainReport;
    digest @16 :Digest;
  }
}

struct CommandResult {
  firstSeq @0 :UInt64;        # the appended records; 0, 0: none
  lastSeq @1 :UInt64;
  eventTypes @2 :List(Text);
  mapVersion @3 :UInt64;
  unknownIds @4 :List(Text);
  alreadyRegistered @5 :List(Text);
}

struct MappingState {
  workflowId @0 :Text;
  hasOldShard @1 :Bool;       # false: "no old shard"
  oldShard @2 :UInt32;
  newShard @3 :UInt32;
  inTransition @4 :Bool;
  confirmed @5 :Bool;
}

struct WorkflowShardMapping {
  mappings @0 :List(Mapping);
  mappingStates @1 :List(MappingState);
  mappingVersion @2 :UInt64;
  unknownIds @3 :List(Text);
  struct Mapping {
    workflowId @0 :Text;
    shard @1 :UInt32;
  }
}

struct RoutingState {
  transition @0 :Bool;
  shardCount @1 :UInt32;
  targetCount @2 :UInt32;
  changesSafeAfterNs @3 :Int64;
  epoch @4 :UInt64;
  unhealthy @5 :List(UInt32);
  mapVersion @6 :UInt64;
  appliedSeq @7 :UInt64;
  moving @8 :UInt64;
  workflows @9 :UInt64;
}

struct ShardCount {
  shard @0 :UInt32;
  workflows @1 :UInt64;
}

struct Changes {
  changed @0 :List(Text);
  removed @1 :List(Text);
  mapVersion @2 :UInt64;
}

struct ShardDrift {
  shard @0 :UInt32;
  registeredElsewhere @1 :List(Text);
  notRegistered @2 :List(Text);
}

struct JobRecord {
  id @0 :Text;
  type @1 :JobType;
  internalId @2 :UInt64;
  status @3 :JobStatus;
  externalId :union {
    none @4 :Void;
    text @5 :Text;
    number @6 :UInt64;
  }
  metadata @7 :List(KeyValue);
  version @8 :UInt64;
  processAttempts @9 :UInt32;
  processRetries @10 :UInt32;
  verificationAttempts @11 :UInt32;
  verificationRetries @12 :UInt32;
  createdAtNs @13 :Int64;
  updatedAtNs @14 :Int64;
  processStartedAtNs @15 :Int64;
  processCompletedAtNs @16 :Int64;
  verificationStartedAtNs @17 :Int64;
  verificationCompletedAtNs @18 :Int64;
  nextVerificationAtNs @19 :Int64;
  failureReason @20 :Text;
  failureHistory @21 :List(Text);
  claimOwner @22 :Text;
  claimLeaseExpiresAtNs @23 :Int64;
  claimFencingToken @24 :UInt64;
  claimActive @25 :Bool;
}

struct JobCommandResult {
  firstSeq @0 :UInt64;
  lastSeq @1 :UInt64;
  eventTypes @2 :List(Text);
  job @3 :JobRecord;
}

struct JobCount {
  type @0 :JobType;
  status @1 :JobStatus;
  count @2 :UInt64;
}

struct Records {
  records @0 :List(Record);
  nextSeq @1 :UInt64;         # replay: where the next chunk starts
  done @2 :Bool;              # replay: true when this chunk reached toSeq (or the head)
  head @3 :UInt64;            # the log's head when the chunk was read
  struct Record {
    seq @0 :UInt64;
    envelope @1 :Data;        # the stored envelope bytes (events/schema/ledger.capnp)
  }
}

struct Snapshot {
  projection @0 :Projection;
  seq @1 :UInt64;             # the projection's applied seq: replay from seq + 1
  rows @2 :List(Row);         # the projection's persisted rows
}

struct Head {
  seq @0 :UInt64;
  hash @1 :Data;
}

struct ChainReport {
  checked @0 :UInt64;
  ok @1 :Bool;
  firstBadSeq @2 :UInt64;
  problem @3 :Text;
}

struct Digest {
  projection @0 :Projection;
  seq @1 :UInt64;
  sha256 @2 :Data;
}
