// Routing end to end: the Ledger deciding, appending and folding into the ShardMap.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "core/assignment.h"
#include "core/ledger.h"
#include "tests/test_util.h"

namespace shardledger {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

class Routing : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }
  void TearDown() override {
    if (ledger_) VerifyProjection();
  }

  void Open() {
    LedgerOptions options;
    options.durability = Durability::kBuffered;
    options.clock = [this] { return now_; };
    auto ledger = Ledger::Open(dir_.path(), options);
    ASSERT_OK(ledger);
    ledger_ = std::move(ledger).value();
  }
  void Reopen() {
    ledger_.reset();
    Open();
  }

  // Runs a command, expects it to succeed, and remembers the map at its last seq.
  CommandResult Ok(Result<CommandResult> result) {
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    if (!result.ok()) return {};
    seen_[ledger_->log().Head().seq] = ledger_->shard_map().Digest();
    return std::move(result).value();
  }

  WorkflowRoute Route(const std::string& id) {
    return ledger_->shard_map().Read([&](const ShardMapState& s) {
      const WorkflowRoute* r = s.Find(id);
      EXPECT_NE(r, nullptr) << id;
      return r ? *r : WorkflowRoute{};
    });
  }
  RoutingStatus Status() { return ledger_->shard_map().Routing(); }

  // The rebuilt projection equals the live one, and every as-of view equals the map the
  // test saw at that seq.
  void VerifyProjection() {
    auto rebuilt = FoldShardMap(ledger_->log());
    ASSERT_OK(rebuilt);
    EXPECT_EQ(rebuilt->Digest(), ledger_->shard_map().Digest()) << "rebuild differs from live";
    for (const auto& [seq, digest] : seen_) {
      auto as_of = FoldShardMap(ledger_->log(), seq);
      ASSERT_OK(as_of);
      EXPECT_EQ(as_of->Digest(), digest) << "as-of view at seq " << seq;
    }
  }

  std::vector<std::string> Ids(int n, const std::string& prefix = "wf-") {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) ids.push_back(prefix + std::to_string(i));
    return ids;
  }

  // Steady `count` shards holding `n` workflows.
  void Setup(uint32_t count, int n) {
    if (count != 1) Ok(ledger_->SetShardCount(count, "setup"));
    ASSERT_EQ(Status().phase, RoutingPhase::kSteady);
    for (int from = 0; from < n; from += 5000) {
      std::vector<std::string> chunk;
      for (int i = from; i < std::min(n, from + 5000); ++i) chunk.push_back("wf-" + std::to_string(i));
      Ok(ledger_->RegisterWorkflows(chunk));
    }
  }

  testing::TempDir dir_;
  int64_t now_ = 1'000 * kSecond;
  std::unique_ptr<Ledger> ledger_;
  std::map<uint64_t, Hash256> seen_;
};

TEST_F(Routing, GrowingMovesExactlyTheChangedWorkflowsAndCompletesOnConfirmation) {
  Setup(4, 10'000);
  const auto ids = Ids(10'000);
  const uint64_t epoch_before = Status().epoch;
  Ok(ledger_->SetShardCount(5, "scale up"));
  const RoutingStatus transition = Status();
  ASSERT_EQ(transition.phase, RoutingPhase::kTransition);
  EXPECT_EQ(transition.shard_count, 4u);
  EXPECT_EQ(transition.target_count, 5u);
  EXPECT_EQ(transition.epoch, epoch_before + 1);

  std::vector<std::string> moving;
  for (const auto& id : ids) {
    const uint32_t before = AssignShard(id, RoutableShards(4, {}));
    const uint32_t after = AssignShard(id, RoutableShards(5, {}));
    const WorkflowRoute route = Route(id);
    ASSERT_EQ(route.in_transition, before != after) << id;
    ASSERT_EQ(route.shard, before) << id << " must route to its old shard until confirmed";
    if (before != after) {
      EXPECT_EQ(route.old_shard, before);
      EXPECT_EQ(route.new_shard, 4u);
      moving.push_back(id);
    }
  }
  ASSERT_EQ(transition.moving, moving.size());
  ASSERT_GT(moving.size(), 1000u);

  // Shard 4 confirms half: those route to 4, the rest still to their old shard.
  const size_t half = moving.size() / 2;
  std::vector<std::string> first(moving.begin(), moving.begin() + half);
  Ok(ledger_->ReportTriggerRegistration(4, first, first.size()));
  EXPECT_EQ(Route(moving.front()).shard, 4u);
  EXPECT_TRUE(Route(moving.front()).confirmed);
  EXPECT_NE(Route(moving.back()).shard, 4u);
  EXPECT_EQ(Status().phase, RoutingPhase::kTransition);

  Ok(ledger_->ReportTriggerRegistration(4, moving, moving.size()));
  const RoutingStatus done = Status();
  EXPECT_EQ(done.phase, RoutingPhase::kSteady);
  EXPECT_EQ(done.shard_count, 5u);
  EXPECT_EQ(done.epoch, transition.epoch + 1);
  for (const auto& id : ids) {
    const WorkflowRoute route = Route(id);
    ASSERT_FALSE(route.in_transition);
    ASSERT_EQ(route.shard, AssignShard(id, RoutableShards(5, {})));
  }
}

TEST_F(Routing, TickCompletesAtTheDeadlineAndNotOneNanosecondBefore) {
  Setup(4, 2'000);
  Ok(ledger_->SetShardCount(5, "scale up"));
  const RoutingStatus transition = Status();
  EXPECT_EQ(transition.changes_safe_after_ns, now_ + kDefaultTimeToSyncNs);
  const uint64_t version = transition.map_version;

  auto early = Ok(ledger_->Tick(transition.changes_safe_after_ns - 1));
  EXPECT_TRUE(early.events.empty());
  EXPECT_EQ(Status().phase, RoutingPhase::kTransition);
  EXPECT_EQ(Status().map_version, version) << "a Tick with nothing due moved the version";

  auto due = Ok(ledger_->Tick(transition.changes_safe_after_ns));
  ASSERT_EQ(due.events.size(), 1u);
  EXPECT_TRUE(std::get<TransitionCompleted>(due.events[0]).timed_out);
  EXPECT_EQ(Status().phase, RoutingPhase::kSteady);
  EXPECT_EQ(Status().epoch, transition.epoch + 1);
  EXPECT_GT(Status().map_version, version);
  for (const auto& id : Ids(2'000)) {
    ASSERT_EQ(Route(id).shard, AssignShard(id, RoutableShards(5, {}))) << id;
  }
}

TEST_F(Routing, WorkflowRegisteredMidTransitionGoesStraightToItsTarget) {
  Setup(4, 1'000);
  Ok(ledger_->SetShardCount(5, "scale up"));
  std::vector<std::string> late;
  for (int i = 0; i < 200; ++i) late.push_back("late-" + std::to_string(i));
  Ok(ledger_->RegisterWorkflows(late));
  for (const auto& id : late) {
    const WorkflowRoute route = Route(id);
    EXPECT_FALSE(route.in_transition);
    EXPECT_EQ(route.shard, AssignShard(id, RoutableShards(5, {}))) << id;
  }
}

TEST_F(Routing, ShrinkingMovesOnlyTheRemovedShardsWorkflows) {
  Setup(5, 3'000);
  Ok(ledger_->SetShardCount(3, "scale down"));
  for (const auto& id : Ids(3'000)) {
    const uint32_t before = AssignShard(id, RoutableShards(5, {}));
    const WorkflowRoute route = Route(id);
    EXPECT_EQ(route.in_transition, before >= 3) << id;
    if (route.in_transition) {
      EXPECT_EQ(route.new_shard, AssignShard(id, RoutableShards(3, {})));
    }
  }
  Ok(ledger_->Tick(Status().changes_safe_after_ns));
  EXPECT_EQ(Status().shard_count, 3u);
  for (const auto& id : Ids(3'000)) EXPECT_LT(Route(id).shard, 3u);
}

TEST_F(Routing, SecondShardCountDuringATransitionNeedsForce) {
  Setup(4, 500);
  Ok(ledger_->SetShardCount(5, "scale up"));
  const uint64_t head = ledger_->log().Head().seq;
  auto refused = ledger_->SetShardCount(6, "again");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kRejected);
  EXPECT_EQ(ledger_->log().Head().seq, head);
  Ok(ledger_->SetShardCount(6, "again", /*force=*/true));
  EXPECT_EQ(Status().target_count, 6u);
  // Unconfirmed moves of the abandoned transition stayed on their old shards; every move
  // now goes to the target under 6 shards.
  for (const auto& id : Ids(500)) {
    const WorkflowRoute route = Route(id);
    EXPECT_EQ(route.shard, AssignShard(id, RoutableShards(4, {}))) << id;
    if (route.in_transition) {
      EXPECT_EQ(route.new_shard, AssignShard(id, RoutableShards(6, {})));
    }
  }
}

TEST_F(Routing, UnhealthyShardMovesOnlyItsWorkflows) {
  Setup(5, 3'000);
  Ok(ledger_->ReportShardHealth(2, false));
  EXPECT_EQ(Status().phase, RoutingPhase::kTransition);
  for (const auto& id : Ids(3'000)) {
    const uint32_t before = AssignShard(id, RoutableShards(5, {}));
    const WorkflowRoute route = Route(id);
    EXPECT_EQ(route.in_transition, before == 2) << id;
    if (route.in_transition) {
      EXPECT_EQ(route.new_shard, AssignShard(id, {0, 1, 3, 4})) << id;
    }
  }
}

TEST_F(Routing, NoRoutableShardRoutesToShardZero) {
  Setup(3, 300);
  for (uint32_t shard = 0; shard < 3; ++shard) Ok(ledger_->ReportShardHealth(shard, false));
  Ok(ledger_->Tick(Status().changes_safe_after_ns));
  for (const auto& id : Ids(300)) EXPECT_EQ(Route(id).shard, 0u) << id;
  Ok(ledger_->RegisterWorkflows({"newcomer"}));
  EXPECT_EQ(Route("newcomer").shard, 0u);
}

TEST_F(Routing, MapVersionMovesOnlyWhenAMappingChanges) {
  Setup(4, 100);
  const uint64_t v0 = Status().map_version;
  Ok(ledger_->ReportTriggerRegistration(1, {"wf-1"}, 1));
  EXPECT_EQ(Status().map_version, v0) << "a report changed no mapping";
  Ok(ledger_->ReportTriggerRegistration(1, {"wf-1"}, 1));
  EXPECT_EQ(Status().map_version, v0) << "a repeated report changed no mapping";
  Ok(ledger_->Tick());
  EXPECT_EQ(Status().map_version, v0) << "a Tick with nothing due";
  Ok(ledger_->ReportShardHealth(1, true));  // already healthy: nothing
  EXPECT_EQ(Status().map_version, v0);
  auto again = Ok(ledger_->RegisterWorkflows({"wf-1"}));
  EXPECT_EQ(again.already_registered, std::vector<std::string>{"wf-1"});
  EXPECT_EQ(Status().map_version, v0);

  auto added = Ok(ledger_->RegisterWorkflows({"fresh"}));
  EXPECT_EQ(Status().map_version, added.last_seq);
  auto removed = Ok(ledger_->DeregisterWorkflows({"fresh", "never-was"}));
  EXPECT_EQ(removed.unknown_ids, std::vector<std::string>{"never-was"});
  EXPECT_EQ(Status().map_version, removed.last_seq);
  auto moved = Ok(ledger_->SetShardCount(5, "grow"));
  EXPECT_EQ(Status().map_version, moved.last_seq);
}

TEST_F(Routing, RegistrationDriftIsReportedAndTheMapIsUnchanged) {
  Setup(4, 200);
  std::string elsewhere;
  for (const auto& id : Ids(200)) {
    if (Route(id).shard != 3) {
      elsewhere = id;
      break;
    }
  }
  const uint64_t version = Status().map_version;
  const WorkflowRoute route_before = Route(elsewhere);
  Ok(ledger_->ReportTriggerRegistration(3, {elsewhere}, 1));
  EXPECT_EQ(Status().map_version, version);
  EXPECT_EQ(Route(elsewhere), route_before);
  auto drift = ledger_->shard_map().Read([](const ShardMapState& s) { return s.RegistrationDrift(); });
  ASSERT_EQ(drift.size(), 1u);
  EXPECT_EQ(drift[0].shard, 3u);
  EXPECT_EQ(drift[0].registered_elsewhere, std::vector<std::string>{elsewhere});
  EXPECT_FALSE(drift[0].not_registered.empty());  // shard 3's own workflows were not reported
}

TEST_F(Routing, ApplyingTheDecidersOwnOutcomeYieldsTheSameMap) {
  Setup(4, 3'000);
  auto outcome = ledger_->shard_map().Read([&](const ShardMapState& s) {
    return ledger_->routing_decider().OutcomeOfShardCount(s, 5, "scale up", false, now_);
  });
  ASSERT_OK(outcome);
  Ok(ledger_->SetShardCount(5, "scale up"));
  const Hash256 by_command = ledger_->shard_map().Digest();

  // A second ledger with the same history applies the outcome instead.
  testing::TempDir other_dir;
  LedgerOptions options;
  options.durability = Durability::kBuffered;
  options.clock = [this] { return now_; };
  auto other = Ledger::Open(other_dir.path(), options);
  ASSERT_OK(other);
  ASSERT_OK((*other)->SetShardCount(4, "setup"));
  ASSERT_OK((*other)->RegisterWorkflows(Ids(3'000)));
  ASSERT_OK((*other)->ApplyRoutingOutcome(*outcome));
  EXPECT_EQ((*other)->shard_map().Digest(), by_command);
}

TEST_F(Routing, ContradictoryOutcomesAreRejected) {
  Setup(4, 10);
  RoutingOutcome twice{RoutingPhase::kTransition, 4, 5, now_ + kSecond, Status().epoch + 1, "x",
                       {{"wf-1", 1}, {"wf-1", 2}}};
  EXPECT_EQ(ledger_->ApplyRoutingOutcome(twice).status().code(), ErrorCode::kRejected);
  RoutingOutcome out_of_range{RoutingPhase::kTransition, 4, 5, now_ + kSecond, Status().epoch + 1,
                              "x", {{"wf-1", 5}}};
  EXPECT_EQ(ledger_->ApplyRoutingOutcome(out_of_range).status().code(), ErrorCode::kRejected);
  RoutingOutcome steady_move{RoutingPhase::kSteady, 4, 4, 0, Status().epoch, "x",
                             {{"wf-1", (Route("wf-1").shard + 1) % 4}}};
  EXPECT_EQ(ledger_->ApplyRoutingOutcome(steady_move).status().code(), ErrorCode::kRejected);
}

TEST_F(Routing, RestartMidTransitionFinishesToTheSameMap) {
  // Run the same history twice, once with a restart in the middle of the transition.
  auto run = [&](bool restart) {
    Setup(4, 2'000);
    Ok(ledger_->SetShardCount(5, "scale up"));
    std::vector<std::string> moving;
    ledger_->shard_map().Read([&](const ShardMapState& s) {
      s.ForEach([&](const std::string& id, const WorkflowRoute& r) {
        if (r.in_transition) moving.push_back(id);
      });
      return 0;
    });
    std::sort(moving.begin(), moving.end());
    std::vector<std::string> first(moving.begin(), moving.begin() + moving.size() / 2);
    Ok(ledger_->ReportTriggerRegistration(4, first, first.size()));
    if (restart) Reopen();
    Ok(ledger_->ReportTriggerRegistration(4, moving, moving.size()));
    EXPECT_EQ(Status().phase, RoutingPhase::kSteady);
    return ledger_->shard_map().Digest();
  };
  const Hash256 with_restart = run(true);
  VerifyProjection();
  ledger_.reset();
  std::filesystem::remove_all(dir_.path());
  std::filesystem::create_directories(dir_.path());
  seen_.clear();
  Open();
  const Hash256 without = run(false);
  EXPECT_EQ(with_restart, without);
}

TEST_F(Routing, BadInputIsATypedRejectionAndAppendsNothing) {
  Setup(4, 10);
  const uint64_t head = ledger_->log().Head().seq;
  auto code = [](const Result<CommandResult>& r) { return r.status().code(); };
  EXPECT_EQ(code(ledger_->RegisterWorkflows({""})), ErrorCode::kBadRequest);
  EXPECT_EQ(code(ledger_->RegisterWorkflows({std::string(257, 'x')})), ErrorCode::kBadRequest);
  EXPECT_EQ(code(ledger_->RegisterWorkflows({"a", "b", "a"})), ErrorCode::kBadRequest);
  EXPECT_EQ(code(ledger_->RegisterWorkflows({})), ErrorCode::kBadRequest);
  EXPECT_EQ(code(ledger_->ReportShardHealth(4, false)), ErrorCode::kRejected);
  EXPECT_EQ(code(ledger_->ReportTriggerRegistration(9, {"wf-1"}, 1)), ErrorCode::kRejected);
  EXPECT_EQ(code(ledger_->SetShardCount(0, "none")), ErrorCode::kRejected);
  EXPECT_EQ(code(ledger_->SetShardCount(4, "same")), ErrorCode::kRejected);
  EXPECT_EQ(ledger_->log().Head().seq, head);
  // A 256-byte id is fine.
  Ok(ledger_->RegisterWorkflows({std::string(256, 'y')}));
}

// Concurrent commands: the same ids registered from many threads map once each, and a
// command whose expected routing version went stale (another writer appended to the routing
// stream meanwhile) is decided again rather than failed or applied twice.
TEST_F(Routing, ConcurrentCommandsApplyOnceAndRetryLostRaces) {
  Setup(4, 0);
  std::atomic<bool> stop{false};
  std::thread interloper([&] {
    // Facts appended straight to the routing stream, behind the ledger's back.
    while (!stop) {
      AppendBatch batch;
      batch.events.push_back(
          NewEvent{RandomId128(), kRoutingStream, TriggerRegistrationReported{0, {}, 0}});
      ASSERT_OK(ledger_->log().Append(std::move(batch)));
      // Paced: a writer appending back to back would starve any optimistic command.
      std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
  });
  // Whether the interloper lands between a decision and its append is up to the scheduler:
  // rounds of fresh ids go on until a race was lost (bounded, so a broken retry path fails).
  constexpr int kMaxRounds = 40;
  constexpr int kIdsPerRound = 50;
  int rounds = 0;
  while (rounds < kMaxRounds && (rounds == 0 || ledger_->routing_retries() == 0)) {
    const std::string prefix = "race-" + std::to_string(rounds) + "-";
    std::vector<std::thread> threads;
    std::atomic<uint64_t> assigned{0};
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < kIdsPerRound; ++i) {
          // Every thread registers the same ids: each must be assigned exactly once.
          auto result = ledger_->RegisterWorkflows({prefix + std::to_string(i), "race-x"});
          ASSERT_OK(result);
          assigned += result->events.size();
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(assigned.load(), kIdsPerRound + (rounds == 0 ? 1u : 0u)) << "round " << rounds;
    ++rounds;
  }
  stop = true;
  interloper.join();
  EXPECT_GT(ledger_->routing_retries(), 0u)
      << "no race was lost in " << rounds << " rounds: the test proved nothing";
  auto records = ledger_->log().ReadFiltered(ReadFilter{.event_types = {EventType::kWorkflowAssigned}});
  ASSERT_OK(records);
  std::set<std::string> ids;
  for (const auto& r : *records) {
    EXPECT_TRUE(ids.insert(std::get<WorkflowAssigned>(r.payload).workflow_id).second);
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(rounds * kIdsPerRound + 1));
}

TEST_F(Routing, GetWorkflowShardMappingAnswersUpstreamsShape) {
  Setup(4, 2'000);
  Ok(ledger_->SetShardCount(5, "scale up"));
  std::string moving, staying;
  for (const auto& id : Ids(2'000)) {
    const WorkflowRoute route = Route(id);
    (route.in_transition ? moving : staying) = id;
  }
  ASSERT_FALSE(moving.empty());
  ASSERT_FALSE(staying.empty());
  auto answer = ledger_->shard_map().Read([&](const ShardMapState& s) {
    return s.GetWorkflowShardMapping({moving, "nope", staying, "nope"});
  });
  ASSERT_OK(answer);
  EXPECT_EQ(answer->mapping_version, Status().map_version);
  EXPECT_EQ(answer->unknown_ids, std::vector<std::string>{"nope"});
  ASSERT_EQ(answer->mappings.size(), 2u);
  const WorkflowRoute moving_route = Route(moving);
  ASSERT_NE(answer->Find(moving), nullptr);
  ASSERT_NE(answer->Find(staying), nullptr);
  EXPECT_EQ(answer->Find(moving)->shard, moving_route.old_shard);
  const MappingState& m = answer->Find(moving)->state;
  EXPECT_TRUE(m.in_transition);
  EXPECT_EQ(m.old_shard, std::optional<uint32_t>(moving_route.old_shard));
  EXPECT_EQ(m.new_shard, 4u);
  const MappingState& s = answer->Find(staying)->state;
  EXPECT_FALSE(s.in_transition);
  EXPECT_EQ(s.old_shard, std::nullopt) << "a workflow not moving has no old shard";
  EXPECT_EQ(s.new_shard, Route(staying).shard);

  auto empty = ledger_->shard_map().Read(
      [&](const ShardMapState& st) { return st.GetWorkflowShardMapping({}); });
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), ErrorCode::kBadRequest);
}

TEST_F(Routing, SnapshotRowsLoadIntoAnEqualState) {
  Setup(4, 3'000);
  Ok(ledger_->SetShardCount(5, "scale up"));
  Ok(ledger_->DeregisterWorkflows({"wf-1", "wf-2"}));
  Ok(ledger_->ReportTriggerRegistration(4, {"wf-10", "wf-11"}, 2));
  ShardMapState copy;
  ledger_->shard_map().Read([&](const ShardMapState& state) {
    state.ForEachRow([&](const std::string& key, const std::string& value) {
      ASSERT_OK(copy.LoadRow(key, value));
    });
    return 0;
  });
  EXPECT_EQ(copy.Digest(), ledger_->shard_map().Digest());
  EXPECT_EQ(copy.status(), Status());
}

TEST_F(Routing, PagingAndCountsAndChangesSince) {
  Setup(4, 1'000);
  auto counts = ledger_->shard_map().Read([](const ShardMapState& s) { return s.CountsPerShard(); });
  uint64_t total = 0;
  for (const auto& [shard, n] : counts) total += n;
  EXPECT_EQ(total, 1'000u);
  std::vector<std::string> all;
  std::string cursor;
  for (;;) {
    auto page = ledger_->shard_map().Read(
        [&](const ShardMapState& s) { return s.IdsOnShard(2, cursor, 37); });
    if (page.empty()) break;
    all.insert(all.end(), page.begin(), page.end());
    cursor = page.back();
  }
  EXPECT_EQ(all.size(), counts[2]);
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end()));
  const uint64_t version = Status().map_version;
  Ok(ledger_->RegisterWorkflows({"x1"}));
  Ok(ledger_->DeregisterWorkflows({"wf-5"}));
  std::vector<std::string> changed, removed;
  ledger_->shard_map().Read([&](const ShardMapState& s) {
    s.ChangedSince(version, changed, removed);
    return 0;
  });
  EXPECT_EQ(changed, std::vector<std::string>{"x1"});
  EXPECT_EQ(removed, std::vector<std::string>{"wf-5"});
}

// The decider splits a large shard-count change over threads (walk, sort, build): the events
// must be exactly the changed workflows, in id order, whatever the split.
TEST(RoutingDecider, LargeShardCountChangeIsTheChangedWorkflowsInIdOrder) {
  ShardMapState state;
  uint64_t seq = 0;
  auto apply = [&](Event payload, const std::string& stream) {
    Record record;
    record.seq = ++seq;
    record.stream = stream;
    record.payload = std::move(payload);
    state.Apply(record);
  };
  RoutingDecider decider;
  const std::vector<uint32_t> four = RoutableShards(4, {});
  const std::vector<uint32_t> five = RoutableShards(5, {});
  auto grown = decider.SetShardCount(state, 4, "setup", false, 0);
  ASSERT_OK(grown);
  for (auto& event : grown->events) apply(event.payload, event.stream);  // no workflows: done at once
  ASSERT_EQ(state.status().phase, RoutingPhase::kSteady);
  ASSERT_EQ(state.status().target_count, 4u);

  constexpr int kWorkflows = 150'000;  // enough for the decider to split the work
  std::vector<std::string> expected;
  for (int i = 0; i < kWorkflows; ++i) {
    const std::string id = "wf-" + std::to_string(i * 7919 % kWorkflows);
    apply(WorkflowAssigned{id, AssignShard(id, four), state.status().epoch}, "wf/" + id);
    if (AssignShard(id, four) != AssignShard(id, five)) expected.push_back(id);
  }
  std::sort(expected.begin(), expected.end());

  auto decision = decider.SetShardCount(state, 5, "scale up", false, 2'000 * kSecond);
  ASSERT_OK(decision);
  ASSERT_EQ(decision->events.size(), expected.size() + 1);
  ASSERT_TRUE(std::holds_alternative<TransitionStarted>(decision->events[0].payload));
  for (size_t i = 0; i < expected.size(); ++i) {
    const NewEvent& event = decision->events[i + 1];
    const auto* moving = std::get_if<WorkflowMoving>(&event.payload);
    ASSERT_NE(moving, nullptr) << "event " << i + 1;
    ASSERT_EQ(moving->workflow_id, expected[i]) << "event " << i + 1;
    ASSERT_EQ(event.stream, "wf/" + expected[i]);
    ASSERT_EQ(moving->old_shard, AssignShard(expected[i], four));
    ASSERT_EQ(moving->new_shard, 4u);
  }
}

// ApplyAll must fold a batch to the same state as Apply record by record, including when it
// looks the workflows up ahead on several cores (a long batch that adds and removes none) and
// when a record of the batch adds or removes one (then it may not).
TEST(ShardMapState, ApplyAllFoldsABatchAsApplyDoes) {
  ShardMapState base;
  uint64_t seq = 0;
  auto record = [&](Event payload) {
    Record r;
    r.seq = ++seq;
    r.stream = "wf";
    r.payload = std::move(payload);
    return r;
  };
  constexpr uint32_t kWorkflows = 100'000;
  auto id = [](uint32_t i) { return "wf-" + std::to_string(i); };
  for (uint32_t i = 0; i < kWorkflows; ++i) base.Apply(record(WorkflowAssigned{id(i), i % 4, 1}));

  auto fold_both_ways = [&](const std::vector<Record>& batch) {
    std::vector<const Record*> pointers;
    for (const Record& r : batch) pointers.push_back(&r);
    ShardMapState batched = base;
    batched.ApplyAll(pointers);
    ShardMapState one_by_one = base;
    for (const Record& r : batch) one_by_one.Apply(r);
    EXPECT_EQ(batched.status(), one_by_one.status());
    EXPECT_EQ(batched.Digest(), one_by_one.Digest());
    return batched;
  };

  // Moves of 60,000 workflows, some from a shard they are not on, one twice, one unknown;
  // then confirmations, one of an unknown workflow and one of a workflow not moving.
  std::vector<Record> moves;
  for (uint32_t i = 0; i < 60'000; ++i) {
    const uint32_t old_shard = i % 100 == 0 ? (i + 1) % 4 : i % 4;
    moves.push_back(record(WorkflowMoving{id(i), old_shard, 4, 2}));
  }
  moves.push_back(record(WorkflowMoving{id(7'007), 0, 4, 2}));
  moves.push_back(record(WorkflowMoving{"unknown", 0, 4, 2}));
  for (uint32_t i = 0; i < 1'000; ++i) moves.push_back(record(WorkflowMoveConfirmed{id(i), 4, 2}));
  moves.push_back(record(WorkflowMoveConfirmed{"unknown", 4, 2}));
  moves.push_back(record(WorkflowMoveConfirmed{id(kWorkflows - 1), 4, 2}));
  const ShardMapState moved = fold_both_ways(moves);
  EXPECT_EQ(moved.status().moving, 60'000u - 1'000u);
  ASSERT_NE(moved.Find(id(7'007)), nullptr);
  EXPECT_EQ(moved.Find(id(7'007))->old_shard, 0u);
  EXPECT_EQ(moved.Find(id(7'007))->shard, 0u);

  // The same with a workflow removed and one added in the batch.
  std::vector<Record> mixed = moves;
  mixed.insert(mixed.begin() + 10, record(WorkflowRemoved{id(5), 1}));
  mixed.insert(mixed.begin() + 20, record(WorkflowAssigned{"unknown", 2, 1}));
  for (size_t i = 0; i < mixed.size(); ++i) mixed[i].seq = seq + 1 + i;
  fold_both_ways(mixed);
}

}  // namespace
}  // namespace shardledger
