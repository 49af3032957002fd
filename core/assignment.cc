#include "core/assignment.h"

#include <xxhash.h>

#include <algorithm>

namespace shardledger {

uint64_t RendezvousWeight(std::string_view workflow_id, uint32_t shard) {
  return XXH64(workflow_id.data(), workflow_id.size(), shard);
}

uint32_t AssignShard(std::string_view workflow_id, const std::vector<uint32_t>& routable) {
  if (routable.empty()) return 0;
  uint32_t best = routable.front();
  uint64_t best_weight = RendezvousWeight(workflow_id, best);
  for (size_t i = 1; i < routable.size(); ++i) {
    const uint64_t weight = RendezvousWeight(workflow_id, routable[i]);
    if (weight > best_weight || (weight == best_weight && routable[i] < best)) {
      best = routable[i];
      best_weight = weight;
    }
  }
  return best;
}

std::vector<uint32_t> RoutableShards(uint32_t shard_count, const std::vector<uint32_t>& unhealthy) {
  std::vector<uint32_t> out;
  out.reserve(shard_count);
  for (uint32_t shard = 0; shard < shard_count; ++shard) {
    if (std::find(unhealthy.begin(), unhealthy.end(), shard) == unhealthy.end()) {
      out.push_back(shard);
    }
  }
  return out;
}

}  // namespace shardledger
