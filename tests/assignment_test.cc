#include "core/assignment.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

namespace shardledger {
namespace {

TEST(Assignment, ReproducesThePinnedVectors) {
  std::ifstream in(std::string(TEST_DATA_DIR) + "/rendezvous_vectors.txt");
  ASSERT_TRUE(in) << "missing tests/data/rendezvous_vectors.txt";
  std::string line;
  int rows = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream row(line);
    std::string id;
    uint32_t count = 0, shard = 0;
    ASSERT_TRUE(row >> id >> count >> shard) << line;
    EXPECT_EQ(AssignShard(id, RoutableShards(count, {})), shard) << line;
    ++rows;
  }
  EXPECT_GE(rows, 50);
}

TEST(Assignment, NoRoutableShardMeansShardZero) {
  EXPECT_EQ(AssignShard("anything", {}), 0u);
  EXPECT_EQ(AssignShard("anything", RoutableShards(3, {0, 1, 2})), 0u);
}

TEST(Assignment, RoutableShardsExcludeUnhealthyAndOutOfRange) {
  EXPECT_EQ(RoutableShards(5, {2, 7}), (std::vector<uint32_t>{0, 1, 3, 4}));
  EXPECT_TRUE(RoutableShards(0, {}).empty());
}

std::vector<std::string> RandomIds(size_t n) {
  std::mt19937_64 rng(42);
  std::vector<std::string> ids(n);
  for (auto& id : ids) id = "wf-" + std::to_string(rng());
  return ids;
}

size_t Ids() {
  const char* env = std::getenv("SHARDLEDGER_MOVEMENT_IDS");
  return env ? std::strtoull(env, nullptr, 10) : 1'000'000;
}

// Adding shard N to N shards moves ~1/(N+1) of the workflows, all to the new shard.
TEST(Assignment, GrowingMovesAnIdealShareOnlyToTheNewShard) {
  const auto ids = RandomIds(Ids());
  std::vector<uint32_t> current(ids.size(), 0);  // N = 1: everything on shard 0
  for (uint32_t n = 1; n <= 16; ++n) {
    const auto routable = RoutableShards(n + 1, {});
    size_t moved = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      const uint32_t next = AssignShard(ids[i], routable);
      if (next != current[i]) {
        ++moved;
        ASSERT_EQ(next, n) << ids[i] << " moved to an old shard going " << n << " -> " << n + 1;
        current[i] = next;
      }
    }
    const double fraction = static_cast<double>(moved) / static_cast<double>(ids.size());
    const double ideal = 1.0 / (n + 1);
    EXPECT_NEAR(fraction, ideal, 0.01 * ideal) << n << " -> " << n + 1;
  }
}

// Removing a shard moves only the workflows that were on it.
TEST(Assignment, ShrinkingMovesOnlyTheRemovedShardsWorkflows) {
  const auto ids = RandomIds(Ids() / 4);
  for (uint32_t n = 2; n <= 16; ++n) {
    const auto before = RoutableShards(n, {});
    const auto after = RoutableShards(n - 1, {});
    for (const auto& id : ids) {
      const uint32_t old_shard = AssignShard(id, before);
      const uint32_t new_shard = AssignShard(id, after);
      if (old_shard != n - 1) {
        ASSERT_EQ(new_shard, old_shard) << id;
      }
    }
  }
}

}  // namespace
}  // namespace shardledger
