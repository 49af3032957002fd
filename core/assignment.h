// Shard assignment: rendezvous (highest-random-weight) hashing of a workflow id over the
// routable shard set (DESIGN.md section 4).
//
// This function is part of the log's meaning: the same id and shard set give the same shard
// on every machine and in every version of the program. tests/data/rendezvous_vectors.txt
// pins it.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace shardledger {

// The weight of `shard` for `workflow_id`: XXH64 of the id's bytes, seeded with the shard id.
uint64_t RendezvousWeight(std::string_view workflow_id, uint32_t shard);

// The shard of highest weight among `routable` (ties, which need a 64-bit collision, go to
// the lower shard id); shard 0 when `routable` is empty.
uint32_t AssignShard(std::string_view workflow_id, const std::vector<uint32_t>& routable);

// The routable set: the shard ids below `shard_count` that are not in `unhealthy`, ascending.
std::vector<uint32_t> RoutableShards(uint32_t shard_count, const std::vector<uint32_t>& unhealthy);

}  // namespace shardledger
