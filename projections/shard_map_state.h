// ShardMapState: the shard map as a pure fold of the log (DESIGN.md sections 3 and 4).
//
// Apply(record) folds one record; everything else reads. The live ShardMap projection, a
// rebuild and an as-of view all use this one fold, so they agree by construction. Not
// thread-safe: the owner locks.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <rocksdb/write_batch.h>

#include "events/ids.h"
#include "events/record.h"
#include "events/status.h"

namespace shardledger {

enum class RoutingPhase : uint8_t { kSteady = 0, kTransition = 1 };

// The system-wide routing state.
struct RoutingStatus {
  RoutingPhase phase = RoutingPhase::kSteady;
  uint32_t shard_count = 1;   // steady: the count; in transition: the count being left
  uint32_t target_count = 1;  // in transition: the count being moved to; steady: shard_count
  int64_t changes_safe_after_ns = 0;
  uint64_t epoch = 0;              // +1 on every change of routing state
  std::vector<uint32_t> unhealthy; // ascending
  uint64_t map_version = 0;        // seq of the last event that changed a mapping
  uint64_t applied_seq = 0;        // the last seq folded in
  uint64_t moving = 0;             // workflows whose move is not confirmed yet
  bool operator==(const RoutingStatus&) const = default;
};

// One workflow's mapping. While the platform moves it: old and new shard, the epoch of the
// move, and whether the new shard has confirmed it.
struct WorkflowRoute {
  uint32_t shard = 0;  // where to route it now
  bool in_transition = false;
  uint32_t old_shard = 0;
  uint32_t new_shard = 0;
  uint64_t move_epoch = 0;
  bool confirmed = false;
  uint64_t changed_at = 0;  // seq of the last change to this mapping
  bool operator==(const WorkflowRoute&) const = default;
};

// A shard's last registration report: a fact beside the map, never an overwrite of it.
struct ShardReport {
  std::vector<std::string> workflow_ids;  // ascending
  uint64_t total_active_workflows = 0;
  int64_t reported_at_ns = 0;
  uint64_t seq = 0;
  bool operator==(const ShardReport&) const = default;
};

struct ShardDrift {
  uint32_t shard = 0;
  std::vector<std::string> registered_elsewhere;  // reported, but the map routes it elsewhere
  std::vector<std::string> not_registered;        // the map routes it here, not reported
};

// One workflow's mapping state in upstream's shape: old shard (explicitly absent when the
// workflow is not moving), new shard, and whether it is in transition.
struct MappingState {
  std::optional<uint32_t> old_shard;  // nullopt: "no old shard"
  uint32_t new_shard = 0;             // the target: where it routes once the move is done
  bool in_transition = false;
  bool confirmed = false;
  bool operator==(const MappingState&) const = default;
};

// The answer to GetWorkflowShardMapping(ids): for each known id, the shard to route to now
// and its mapping state; the map version; ids the map does not know, listed apart. `Text` is
// std::string for an answer that owns its ids, std::string_view for one whose ids point into
// the request (the RPC server's: a thousand ids then cost no allocation).
template <typename Text>
struct BasicWorkflowMapping {
  Text workflow_id;
  uint32_t shard = 0;  // where to route it now
  MappingState state;
  bool operator==(const BasicWorkflowMapping&) const = default;
};

template <typename Text>
struct BasicWorkflowShardMapping {
  std::vector<BasicWorkflowMapping<Text>> mappings;  // ascending by id, each id once
  uint64_t mapping_version = 0;
  std::vector<Text> unknown_ids;  // in request order, each once

  // The entry for `id`, or nullptr when the answer has none.
  const BasicWorkflowMapping<Text>* Find(std::string_view id) const {
    auto before = [](const auto& m, std::string_view key) { return m.workflow_id < key; };
    auto it = std::lower_bound(mappings.begin(), mappings.end(), id, before);
    return it != mappings.end() && it->workflow_id == id ? &*it : nullptr;
  }
};

using WorkflowMapping = BasicWorkflowMapping<std::string>;
using WorkflowShardMapping = BasicWorkflowShardMapping<std::string>;
using WorkflowShardMappingView = BasicWorkflowShardMapping<std::string_view>;

// What one Apply changed, for the projection's persisted rows.
struct ShardMapTouched {
  // Rows to rewrite (or delete, when no longer mapped). A vector, not a set: most records
  // touch one workflow; an id listed twice is written twice with the same row.
  std::vector<std::string> workflows;
  std::set<std::string> tombstones;  // tombstone rows written or cleared
  std::set<uint32_t> reports;
};

class ShardMapState {
 public:
  using Touched = ShardMapTouched;

  // Folds one record (records of other domains are ignored). `touched`, when given,
  // collects what changed.
  void Apply(const Record& record, ShardMapTouched* touched = nullptr);
  // Folds `records` in order, to the same state as Apply on each. In a long batch that adds
  // and removes no workflow (a shard-count change's 200,000 moves, a run of confirmations)
  // the workflows are looked up first, on all cores: each lookup is a few cache misses in a
  // map of a million entries, and the fold itself then waits on none.
  void ApplyAll(std::span<const Record* const> records);

  const RoutingStatus& status() const { return status_; }
  // A batch lookup; BadRequest on an empty id list.
  Result<WorkflowShardMapping> GetWorkflowShardMapping(const std::vector<std::string>& ids) const;
  // The same, answered with views of `ids` (which must outlive the answer): the routes are
  // copied, the ids are not.
  Result<WorkflowShardMappingView> GetWorkflowShardMappingOfViews(
      const std::vector<std::string_view>& ids) const;
  // Every persisted row (status, workflows, tombstones, reports): a snapshot that LoadRow
  // reads back into an equal state.
  void ForEachRow(const std::function<void(const std::string& key, const std::string& value)>& visit) const;
  const WorkflowRoute* Find(std::string_view workflow_id) const;
  size_t size() const { return workflows_.size(); }
  void ForEach(const std::function<void(const std::string&, const WorkflowRoute&)>& visit) const;
  // Calls visit(id, route) for the workflows in share `part` of `parts` (by hash bucket): the
  // shares together visit each workflow once, so threads can split a walk of the map.
  template <typename F>
  void ForEachInShare(size_t part, size_t parts, F&& visit) const {
    const size_t buckets = workflows_.bucket_count();
    const size_t end = buckets * (part + 1) / parts;
    for (size_t b = buckets * part / parts; b < end; ++b) {
      // A walk of a million entries waits on memory: the entry eight buckets ahead is fetched,
      // and the id of the one four ahead (read by `visit` to hash it). 0.30–0.35 s → 0.23–0.26
      // s for the shard-count change's walk on two cores.
      if (b + 8 < end) {
        auto ahead = workflows_.begin(b + 8);
        if (ahead != workflows_.end(b + 8)) __builtin_prefetch(&*ahead);
      }
      if (b + 4 < end) {
        auto near = workflows_.begin(b + 4);
        if (near != workflows_.end(b + 4)) __builtin_prefetch(near->first.data());
      }
      for (auto it = workflows_.begin(b); it != workflows_.end(b); ++it) visit(it->first, it->second);
    }
  }
  // The healthy shards below the target count: where workflows go now.
  std::vector<uint32_t> TargetRoutable() const;
  // Ids routed to `shard`, ascending, after `after` (exclusive), at most `limit`.
  std::vector<std::string> IdsOnShard(uint32_t shard, std::string_view after, size_t limit) const;
  std::map<uint32_t, uint64_t> CountsPerShard() const;
  // Ids whose mapping changed, and ids removed, after map version `version`.
  void ChangedSince(uint64_t version, std::vector<std::string>& changed,
                    std::vector<std::string>& removed) const;
  const std::map<uint32_t, ShardReport>& reports() const { return reports_; }
  std::vector<ShardDrift> RegistrationDrift() const;
  // SHA-256 over the ordered contents: equal states have equal digests.
  Hash256 Digest() const;

  // Persistence: the rows that hold this state. Keys: "status", "w/<id>", "t/<id>"
  // (removed, with its seq), "r/<shard>". Row(key) is nullopt when the row is to be deleted.
  std::string StatusRow() const;
  uint64_t applied_seq() const { return status_.applied_seq; }
  static bool Concerns(const Record& record) { return !IsJobEvent(TypeOf(record.payload)); }
  void SkipTo(uint64_t seq) { status_.applied_seq = std::max(status_.applied_seq, seq); }
  // Adds the rows `touched` names to `batch`, in column family `cf`.
  void WriteRows(const ShardMapTouched& touched, rocksdb::WriteBatch& batch,
                 rocksdb::ColumnFamilyHandle* cf) const;
  std::optional<std::string> WorkflowRow(const std::string& id) const;
  std::optional<std::string> TombstoneRow(const std::string& id) const;
  std::optional<std::string> ReportRow(uint32_t shard) const;
  static std::string WorkflowKey(std::string_view id) { return "w/" + std::string(id); }
  static std::string TombstoneKey(std::string_view id) { return "t/" + std::string(id); }
  static std::string ReportKey(uint32_t shard);
  // Loads one persisted row; Corruption when it does not decode.
  Status LoadRow(std::string_view key, std::string_view value);

 private:
  // Apply, with the route of the record's workflow already looked up when `found` is given
  // (nullptr in it: no such workflow). Only moves and confirmations use it.
  void ApplyFound(const Record& record, ShardMapTouched* touched, WorkflowRoute* const* found);
  void Unplace(const std::string& id, uint32_t shard);
  void SetShard(const std::string& id, WorkflowRoute& route, uint32_t shard);
  void EnterPhase(RoutingPhase phase, uint32_t from, uint32_t to, int64_t changes_safe_after_ns,
                  uint64_t epoch);
  void ClearMoves(uint64_t seq, ShardMapTouched* touched, bool move_unconfirmed_to_new);

  RoutingStatus status_;
  // Transparent hashing: lookups by string_view need no temporary std::string.
  struct IdHash {
    using is_transparent = void;
    size_t operator()(std::string_view id) const { return std::hash<std::string_view>{}(id); }
  };
  std::unordered_map<std::string, WorkflowRoute, IdHash, std::equal_to<>> workflows_;
  std::map<uint32_t, std::set<std::string>> by_shard_;
  // Workflows carrying transition data (in_transition). ClearMoves walks the map only when
  // there are any: keeping their ids in a set cost two hash inserts per moving workflow on
  // every shard-count change, against one walk when the transition ends.
  uint64_t carrying_ = 0;
  std::map<std::string, uint64_t> removed_;  // id -> seq it was removed at
  std::map<uint32_t, ShardReport> reports_;
};

}  // namespace shardledger
