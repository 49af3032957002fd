// ShardMap: the live, persisted shard map projection (DESIGN.md section 3), in column
// family "proj.shardmap". The fold is ShardMapState; LiveProjection does the rest.
#pragma once

#include <memory>

#include "projections/live_projection.h"
#include "projections/shard_map_state.h"

namespace shardledger {

class ShardMap : public LiveProjection<ShardMapState> {
 public:
  static constexpr const char* kColumnFamily = "proj.shardmap";

  // Loads the persisted state and joins `log` at its head. The log must have been opened
  // with kColumnFamily among its projection column families.
  static Result<std::unique_ptr<ShardMap>> Open(EventLog& log) {
    std::unique_ptr<ShardMap> map(new ShardMap(log));
    SL_RETURN_IF_ERROR(map->Join());
    return map;
  }

  RoutingStatus Routing() const {
    return Read([](const ShardMapState& s) { return s.status(); });
  }

 private:
  explicit ShardMap(EventLog& log) : LiveProjection(log, kColumnFamily) {}
};

// The shard map folded from records 1..to_seq (a rebuild, or an as-of view).
inline Result<ShardMapState> FoldShardMap(const EventLog& log, uint64_t to_seq = UINT64_MAX) {
  return FoldLog<ShardMapState>(log, to_seq);
}

// The last seq whose record was appended at or before `timestamp_ns` (0: none).
Result<uint64_t> SeqAtTime(const EventLog& log, int64_t timestamp_ns);

}  // namespace shardledger
