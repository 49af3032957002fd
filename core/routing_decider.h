// RoutingDecider: routing commands to events, or a typed rejection (DESIGN.md section 4).
//
// Pure: every function reads the shard map state and the command (time comes in as a
// value) and returns the events to append, in order, each with its stream. It writes
// nothing. Rejections: BadRequest for malformed input, Rejected for a command the state
// refuses; both name why.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "events/record.h"
#include "events/status.h"
#include "projections/shard_map_state.h"

namespace shardledger {

inline constexpr size_t kMaxWorkflowIdBytes = 256;
inline constexpr size_t kMaxIdsPerCommand = 100'000;
inline constexpr uint32_t kMaxShardCount = 65'536;
inline constexpr int64_t kDefaultTimeToSyncNs = int64_t{300} * 1'000'000'000;

inline constexpr char kRoutingStream[] = "routing";
inline std::string WorkflowStream(std::string_view id) { return "wf/" + std::string(id); }

struct RoutingConfig {
  int64_t time_to_sync_ns = kDefaultTimeToSyncNs;
};

// The events of one decided command (event ids unset: the ledger assigns them).
struct RoutingDecision {
  std::vector<NewEvent> events;
  std::vector<std::string> unknown_ids;         // DeregisterWorkflows: ids that were not mapped
  std::vector<std::string> already_registered;  // RegisterWorkflows: ids already mapped
};

// A whole routing outcome decided elsewhere (a consensus layer, as upstream's transmitter
// does): the routing state and every workflow's target shard.
struct RoutingOutcome {
  RoutingPhase phase = RoutingPhase::kSteady;
  uint32_t from_count = 0;    // transition: the count being left
  uint32_t target_count = 0;  // steady: the count; transition: the count moved to
  int64_t changes_safe_after_ns = 0;
  uint64_t epoch = 0;
  std::string reason;
  std::vector<std::pair<std::string, uint32_t>> routes;  // workflow id -> target shard
};

class RoutingDecider {
 public:
  explicit RoutingDecider(RoutingConfig config = {}) : config_(config) {}

  Result<RoutingDecision> RegisterWorkflows(const ShardMapState& state,
                                            const std::vector<std::string>& ids) const;
  Result<RoutingDecision> DeregisterWorkflows(const ShardMapState& state,
                                              const std::vector<std::string>& ids) const;
  Result<RoutingDecision> SetShardCount(const ShardMapState& state, uint32_t count,
                                        const std::string& reason, bool force,
                                        int64_t now_ns) const;
  Result<RoutingDecision> ReportShardHealth(const ShardMapState& state, uint32_t shard,
                                            bool healthy, int64_t now_ns) const;
  Result<RoutingDecision> ReportTriggerRegistration(const ShardMapState& state, uint32_t shard,
                                                    const std::vector<std::string>& ids,
                                                    uint64_t total_active) const;
  Result<RoutingDecision> Tick(const ShardMapState& state, int64_t now_ns) const;
  Result<RoutingDecision> ApplyRoutingOutcome(const ShardMapState& state,
                                              const RoutingOutcome& outcome) const;

  // The outcome SetShardCount would decide, in ApplyRoutingOutcome's shape.
  Result<RoutingOutcome> OutcomeOfShardCount(const ShardMapState& state, uint32_t count,
                                             const std::string& reason, bool force,
                                             int64_t now_ns) const;

 private:
  // TransitionStarted to `target_count` over `routable`, then a WorkflowMoving for every
  // workflow whose shard changes (in id order); completes at once when none moves.
  RoutingDecision StartTransition(const ShardMapState& state, uint32_t target_count,
                                  const std::vector<uint32_t>& routable, const std::string& reason,
                                  int64_t now_ns) const;

  RoutingConfig config_;
};

}  // namespace shardledger
