// RpcClient: typed calls to shardledgerd over its ROUTER endpoint (DESIGN.md section 6).
//
// One request at a time per client (not thread-safe: one client per thread). A call that gets
// no answer within the timeout returns Unavailable, and the socket is replaced so that the
// request can never be delivered later behind the caller's back; the outcome of a command that
// timed out is unknown — read the state (or retry a command that is idempotent) to learn it.
// The daemon's typed errors come back as the same ErrorCode with its message.
#pragma once

#include <zmq.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/ledger.h"
#include "transport/curve.h"
#include "transport/subscriber.h"
#include "transport/wire.h"

namespace shardledger {

struct ClientOptions {
  std::string endpoint = "tcp://127.0.0.1:7400";
  std::chrono::milliseconds timeout = std::chrono::seconds(30);
  // How long to wait for a connection to the daemon before a call gives up (within timeout).
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(5);
  // CURVE: the client's key pair and the server's public key (both Z85), when the daemon
  // runs with CURVE on.
  std::optional<CurveKeyPair> client_keys;
  std::string server_public_key;
};

struct RecordsChunk {
  std::vector<StoredRecord> records;
  uint64_t next_seq = 0;
  bool done = false;
  uint64_t head = 0;
};

struct ProjectionSnapshot {
  uint64_t seq = 0;
  std::vector<std::pair<std::string, std::string>> rows;
};

struct ProjectionDigest {
  uint64_t seq = 0;
  Hash256 sha256{};
};

class RpcClient {
 public:
  static Result<std::unique_ptr<RpcClient>> Connect(ClientOptions options);

  // Routing commands.
  Result<CommandResult> RegisterWorkflows(const std::vector<std::string>& ids);
  Result<CommandResult> DeregisterWorkflows(const std::vector<std::string>& ids);
  Result<CommandResult> SetShardCount(uint32_t count, const std::string& reason, bool force = false);
  Result<CommandResult> ReportShardHealth(uint32_t shard, bool healthy);
  Result<CommandResult> ReportTriggerRegistration(uint32_t shard, const std::vector<std::string>& ids,
                                                  uint64_t total_active);
  Result<CommandResult> Tick(std::optional<int64_t> now_ns = std::nullopt);
  Result<CommandResult> ApplyRoutingOutcome(const RoutingOutcome& outcome);

  // Routing queries.
  Result<WorkflowShardMapping> GetWorkflowShardMapping(const std::vector<std::string>& ids);
  Result<RoutingStatus> RoutingState(uint64_t* workflows = nullptr);
  Result<std::vector<std::string>> WorkflowsOnShard(uint32_t shard, const std::string& after, uint32_t limit);
  Result<std::map<uint32_t, uint64_t>> CountsPerShard();
  Result<std::vector<ShardDrift>> RegistrationDrift();

  // Job commands.
  Result<JobCommandResult> CreateJob(JobType type, uint64_t internal_id,
                                     const std::vector<std::pair<std::string, std::string>>& metadata = {});
  Result<JobCommandResult> ClaimJob(const std::string& id, const std::string& worker, int64_t lease_ns = 0);
  Result<JobCommandResult> CompleteProcessing(const std::string& id, uint64_t token, const ExternalId& external);
  Result<JobCommandResult> RecordVerification(const std::string& id, uint64_t token, VerificationResult result,
                                              const std::string& reason = {});
  Result<JobCommandResult> FailJob(const std::string& id, uint64_t token, const std::string& reason);
  Result<JobCommandResult> RetryJob(const std::string& id);
  Result<JobCommandResult> RequeueVerification(const std::string& id);
  Result<JobCommandResult> TickJobs(std::optional<int64_t> now_ns = std::nullopt);

  // Job queries.
  Result<JobRecord> GetJob(const std::string& id);
  Result<std::vector<JobRecord>> ListJobs(const JobQuery& query);
  Result<std::vector<JobRecord>> Attention(const std::string& after, uint32_t limit);
  Result<std::vector<JobRecord>> Pipeline(uint64_t internal_id);
  Result<std::map<std::pair<JobType, JobStatus>, uint64_t>> JobCounts();

  // The log.
  Result<RecordsChunk> Replay(uint64_t from, uint64_t to, const std::vector<std::string>& topics,
                              uint32_t max_records = 0);
  Result<ProjectionSnapshot> Snapshot(wire::Projection projection);
  Result<LogHead> Head();
  Result<ChainReport> VerifyChain(uint64_t from = 1, uint64_t to = 0);
  Result<std::vector<StoredRecord>> StreamHistory(const std::string& stream, uint64_t from_version = 1,
                                                  uint32_t limit = 100'000);
  Result<ProjectionDigest> Digest(wire::Projection projection);

  // Sends `frame` as is and returns the answer's bytes (tests of malformed requests).
  Result<std::string> SendRaw(std::string_view frame);

 private:
  explicit RpcClient(ClientOptions options);
  Status Reconnect();
  // Builds a request with `build`, sends it, and hands the answer to `read` — or returns the
  // daemon's error.
  Status Call(const std::function<void(wire::Request::Builder)>& build,
              const std::function<Status(wire::Response::Reader)>& read);
  Result<std::string> Exchange(std::string_view frame, uint64_t id);

  ClientOptions options_;
  zmq::context_t context_;
  std::unique_ptr<zmq::socket_t> socket_;
  uint64_t next_id_ = 1;
};

// A ReplaySource over RPC: fetches a range chunk by chunk.
class RpcReplaySource : public ReplaySource {
 public:
  explicit RpcReplaySource(RpcClient& client) : client_(client) {}
  Result<std::vector<StoredRecord>> Replay(uint64_t from, uint64_t to,
                                           const std::vector<std::string>& topics) override;
  Result<uint64_t> Head() override;

 private:
  RpcClient& client_;
};

}  // namespace shardledger
