// ShardMapCache: a local copy of the daemon's shard map, kept current by the subscription and
// answering lookups without a round trip (DESIGN.md section 6).
//
// It starts from a Snapshot of the shard map at seq S, subscribes to "routing." and replays
// from S + 1; from then on a thread of its own applies every routing record exactly once, in
// seq order, filling gaps by replay. Lookups read the local map under a shared lock.
#pragma once

#include <atomic>
#include <memory>
#include <shared_mutex>
#include <thread>

#include "projections/shard_map_state.h"
#include "transport/client.h"
#include "transport/subscriber.h"

namespace shardledger {

struct ShardMapCacheOptions {
  ClientOptions rpc;                                  // snapshot and replays
  std::string publisher = "tcp://127.0.0.1:7401";     // the daemon's PUB endpoint
  // Resume instead of taking a snapshot: a state the caller kept (for instance in a file),
  // at its applied seq.
  std::optional<ShardMapState> resume_from;
};

class ShardMapCache {
 public:
  static Result<std::unique_ptr<ShardMapCache>> Start(ShardMapCacheOptions options);
  ~ShardMapCache();

  // Where to route `workflow_id` now (nullopt: unknown to the map).
  std::optional<uint32_t> ShardOf(std::string_view workflow_id) const;
  Result<WorkflowShardMapping> GetWorkflowShardMapping(const std::vector<std::string>& ids) const;
  RoutingStatus Routing() const;
  Hash256 Digest() const;
  // The last seq the cache has applied (or seen pass, for records of other domains).
  uint64_t applied_seq() const { return applied_seq_.load(); }
  // Waits until the cache has applied `seq`; false on timeout.
  bool WaitFor(uint64_t seq, std::chrono::milliseconds timeout) const;
  // Ok, or why the cache stopped following (it then answers from what it has).
  Status status() const;
  ShardMapState Copy() const;
  SubscriberStats stats() const;

 private:
  explicit ShardMapCache(ShardMapCacheOptions options) : options_(std::move(options)) {}
  void Run();

  ShardMapCacheOptions options_;
  std::unique_ptr<RpcClient> client_;
  std::unique_ptr<RpcReplaySource> source_;
  std::unique_ptr<Subscriber> subscriber_;
  mutable std::shared_mutex mu_;
  ShardMapState state_;
  Status error_;
  SubscriberStats stats_;
  std::atomic<uint64_t> applied_seq_{0};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace shardledger
