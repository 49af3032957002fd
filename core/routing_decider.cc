#include "core/routing_decider.h"

#include <algorithm>
#include <unordered_set>

#include "core/assignment.h"
#include "events/memory.h"
#include "events/parallel.h"

namespace shardledger {

namespace {

Status BadRequest(std::string why) { return Status(ErrorCode::kBadRequest, std::move(why)); }
Status Rejected(std::string why) { return Status(ErrorCode::kRejected, std::move(why)); }

NewEvent On(std::string stream, Event event) {
  return NewEvent{Id128{}, std::move(stream), std::move(event)};
}

Status CheckIds(const std::vector<std::string>& ids, bool allow_empty_list) {
  if (ids.empty() && !allow_empty_list) return BadRequest("the list of workflow ids is empty");
  if (ids.size() > kMaxIdsPerCommand) {
    return BadRequest(std::to_string(ids.size()) + " workflow ids exceed the limit of " +
                      std::to_string(kMaxIdsPerCommand) + " per command");
  }
  std::unordered_set<std::string_view> seen;
  seen.reserve(ids.size());
  for (const std::string& id : ids) {
    if (id.empty()) return BadRequest("a workflow id is empty");
    if (id.size() > kMaxWorkflowIdBytes) {
      return BadRequest("workflow id of " + std::to_string(id.size()) +
                        " bytes exceeds the limit of " + std::to_string(kMaxWorkflowIdBytes));
    }
    if (!seen.insert(id).second) return BadRequest("workflow id " + id + " appears twice");
  }
  return Status::Ok();
}

// The shard count commands address: the larger of the counts in play.
uint32_t AddressableShards(const RoutingStatus& status) {
  return std::max(status.shard_count, status.target_count);
}

}  // namespace

Result<RoutingDecision> RoutingDecider::RegisterWorkflows(
    const ShardMapState& state, const std::vector<std::string>& ids) const {
  SL_RETURN_IF_ERROR(CheckIds(ids, false));
  // During a transition new workflows go straight to their shard under the target set.
  const std::vector<uint32_t> routable = state.TargetRoutable();
  RoutingDecision decision;
  for (const std::string& id : ids) {
    if (state.Find(id) != nullptr) {
      decision.already_registered.push_back(id);
      continue;
    }
    decision.events.push_back(On(WorkflowStream(id),
                                 WorkflowAssigned{id, AssignShard(id, routable), state.status().epoch}));
  }
  return decision;
}

Result<RoutingDecision> RoutingDecider::DeregisterWorkflows(
    const ShardMapState& state, const std::vector<std::string>& ids) const {
  SL_RETURN_IF_ERROR(CheckIds(ids, false));
  RoutingDecision decision;
  for (const std::string& id : ids) {
    const WorkflowRoute* route = state.Find(id);
    if (route == nullptr) {
      decision.unknown_ids.push_back(id);
      continue;
    }
    decision.events.push_back(On(WorkflowStream(id), WorkflowRemoved{id, route->shard}));
  }
  return decision;
}

RoutingDecision RoutingDecider::StartTransition(const ShardMapState& state, uint32_t target_count,
                                                const std::vector<uint32_t>& routable,
                                                const std::string& reason, int64_t now_ns) const {
  const RoutingStatus& status = state.status();
  const uint64_t epoch = status.epoch + 1;
  RoutingDecision decision;
  decision.events.push_back(On(kRoutingStream,
                               TransitionStarted{status.shard_count, target_count, epoch,
                                                 now_ns + config_.time_to_sync_ns, reason,
                                                 status.phase == RoutingPhase::kTransition,
                                                 routable}));
  // A workflow routes now to route.shard (a new transition leaves unconfirmed moves on
  // their old shard); it moves when its shard under the new routable set differs.
  // Over a million workflows this is the costly part of a shard-count change, so the walk,
  // the sort and the building of events are split over the cores. The events come out in
  // workflow id order whatever the split: the decision does not depend on the map's hash
  // order or on the machine.
  struct Move {
    uint64_t key;           // the id's first 8 bytes, big-endian, zero-padded: most
                            // comparisons end here, without reading the string
    const std::string* id;  // the map's own string, stable while the state is read
    uint32_t from;
    uint32_t to;
    bool operator<(const Move& other) const {
      return key != other.key ? key < other.key : *id < *other.id;
    }
  };
  const size_t parts = PartsFor(state.size());
  std::vector<std::vector<Move>> found(parts);
  RunParts(parts, [&](size_t part) {
    state.ForEachInShare(part, parts, [&](const std::string& id, const WorkflowRoute& route) {
      const uint32_t target = AssignShard(id, routable);
      if (target == route.shard) return;
      uint64_t key = 0;
      for (size_t i = 0; i < 8; ++i) key = (key << 8) | (i < id.size() ? static_cast<uint8_t>(id[i]) : 0);
      found[part].push_back(Move{key, &id, route.shard, target});
    });
    std::sort(found[part].begin(), found[part].end());
  });
  std::vector<Move> moves = std::move(found[0]);
  for (size_t part = 1; part < parts; ++part) {
    const auto middle = static_cast<std::ptrdiff_t>(moves.size());
    moves.insert(moves.end(), found[part].begin(), found[part].end());
    std::inplace_merge(moves.begin(), moves.begin() + middle, moves.end());
  }
  decision.events.reserve(1 + moves.size());
  PrefaultForWrite(decision.events.data(), decision.events.capacity() * sizeof(NewEvent));
  decision.events.resize(1 + moves.size());
  RunRanges(moves.size(), PartsFor(moves.size()), [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      const Move& move = moves[i];
      decision.events[1 + i] =
          On(WorkflowStream(*move.id), WorkflowMoving{*move.id, move.from, move.to, epoch});
    }
  });
  if (moves.empty()) {
    decision.events.push_back(
        On(kRoutingStream, TransitionCompleted{epoch + 1, target_count, false}));
  }
  return decision;
}

Result<RoutingDecision> RoutingDecider::SetShardCount(const ShardMapState& state, uint32_t count,
                                                      const std::string& reason, bool force,
                                                      int64_t now_ns) const {
  const RoutingStatus& status = state.status();
  if (count == 0) return Rejected("a shard count of 0 routes nothing");
  if (count > kMaxShardCount) {
    return BadRequest("shard count " + std::to_string(count) + " exceeds the limit of " +
                      std::to_string(kMaxShardCount));
  }
  if (count == status.target_count) {
    return Rejected("the shard count is already " + std::to_string(count));
  }
  if (status.phase == RoutingPhase::kTransition && !force) {
    return Rejected("a transition " + std::to_string(status.shard_count) + " -> " +
                    std::to_string(status.target_count) +
                    " is in progress; pass force to start another");
  }
  return StartTransition(state, count, RoutableShards(count, status.unhealthy), reason, now_ns);
}

Result<RoutingDecision> RoutingDecider::ReportShardHealth(const ShardMapState& state,
                                                          uint32_t shard, bool healthy,
                                                          int64_t now_ns) const {
  const RoutingStatus& status = state.status();
  if (shard >= AddressableShards(status)) {
    return Rejected("shard " + std::to_string(shard) + " is not below the shard count " +
                    std::to_string(AddressableShards(status)));
  }
  const bool listed = std::binary_search(status.unhealthy.begin(), status.unhealthy.end(), shard);
  RoutingDecision decision;
  if (listed != healthy) return decision;  // no change: nothing to record
  std::vector<uint32_t> unhealthy = status.unhealthy;
  if (healthy) {
    unhealthy.erase(std::find(unhealthy.begin(), unhealthy.end(), shard));
  } else {
    unhealthy.insert(std::lower_bound(unhealthy.begin(), unhealthy.end(), shard), shard);
  }
  decision.events.push_back(On(kRoutingStream, ShardHealthChanged{shard, healthy}));
  // A change of the routable set is a transition like a count change; it is a fact, so it
  // is never refused, even during another transition.
  RoutingDecision transition =
      StartTransition(state, status.target_count, RoutableShards(status.target_count, unhealthy),
                      healthy ? "shard " + std::to_string(shard) + " healthy"
                              : "shard " + std::to_string(shard) + " unhealthy",
                      now_ns);
  for (auto& event : transition.events) decision.events.push_back(std::move(event));
  return decision;
}

Result<RoutingDecision> RoutingDecider::ReportTriggerRegistration(
    const ShardMapState& state, uint32_t shard, const std::vector<std::string>& ids,
    uint64_t total_active) const {
  const RoutingStatus& status = state.status();
  if (shard >= AddressableShards(status)) {
    return Rejected("shard " + std::to_string(shard) + " is not below the shard count " +
                    std::to_string(AddressableShards(status)));
  }
  SL_RETURN_IF_ERROR(CheckIds(ids, true));
  RoutingDecision decision;
  decision.events.push_back(
      On(kRoutingStream, TriggerRegistrationReported{shard, ids, total_active}));
  uint64_t confirmed = 0;
  std::vector<std::string> sorted = ids;
  std::sort(sorted.begin(), sorted.end());
  for (const std::string& id : sorted) {
    const WorkflowRoute* route = state.Find(id);
    if (route != nullptr && route->in_transition && !route->confirmed && route->new_shard == shard) {
      decision.events.push_back(
          On(WorkflowStream(id), WorkflowMoveConfirmed{id, shard, route->move_epoch}));
      ++confirmed;
    }
  }
  if (status.phase == RoutingPhase::kTransition && confirmed > 0 && confirmed == status.moving) {
    decision.events.push_back(
        On(kRoutingStream, TransitionCompleted{status.epoch + 1, status.target_count, false}));
  }
  return decision;
}

Result<RoutingDecision> RoutingDecider::Tick(const ShardMapState& state, int64_t now_ns) const {
  const RoutingStatus& status = state.status();
  RoutingDecision decision;
  if (status.phase == RoutingPhase::kTransition && now_ns >= status.changes_safe_after_ns) {
    decision.events.push_back(
        On(kRoutingStream, TransitionCompleted{status.epoch + 1, status.target_count, true}));
  }
  return decision;
}

Result<RoutingOutcome> RoutingDecider::OutcomeOfShardCount(const ShardMapState& state,
                                                           uint32_t count,
                                                           const std::string& reason, bool force,
                                                           int64_t now_ns) const {
  SL_ASSIGN_OR_RETURN(RoutingDecision decision, SetShardCount(state, count, reason, force, now_ns));
  const RoutingStatus& status = state.status();
  const auto& started = std::get<TransitionStarted>(decision.events.front().payload);
  RoutingOutcome outcome;
  outcome.phase = RoutingPhase::kTransition;
  outcome.from_count = status.shard_count;
  outcome.target_count = count;
  outcome.changes_safe_after_ns = started.changes_safe_after_ns;
  outcome.epoch = started.epoch;
  outcome.reason = reason;
  state.ForEach([&](const std::string& id, const WorkflowRoute&) {
    outcome.routes.emplace_back(id, AssignShard(id, started.routable_shards));
  });
  return outcome;
}

Result<RoutingDecision> RoutingDecider::ApplyRoutingOutcome(const ShardMapState& state,
                                                            const RoutingOutcome& outcome) const {
  const RoutingStatus& status = state.status();
  // Validate the outcome against itself, then against the state it is meant to follow.
  if (outcome.target_count == 0 || outcome.target_count > kMaxShardCount) {
    return Rejected("the outcome's shard count " + std::to_string(outcome.target_count) +
                    " is out of range");
  }
  if (outcome.phase == RoutingPhase::kTransition && outcome.changes_safe_after_ns == 0) {
    return Rejected("the outcome is a transition without a safety deadline");
  }
  std::vector<std::pair<std::string, uint32_t>> routes = outcome.routes;
  std::sort(routes.begin(), routes.end());
  for (size_t i = 0; i < routes.size(); ++i) {
    if (routes[i].first.empty() || routes[i].first.size() > kMaxWorkflowIdBytes) {
      return BadRequest("the outcome holds an empty or oversized workflow id");
    }
    if (i > 0 && routes[i].first == routes[i - 1].first) {
      return Rejected("the outcome routes workflow " + routes[i].first + " twice");
    }
    if (routes[i].second >= outcome.target_count) {
      return Rejected("the outcome routes workflow " + routes[i].first + " to shard " +
                      std::to_string(routes[i].second) + ", not below its shard count " +
                      std::to_string(outcome.target_count));
    }
  }
  const bool new_state = outcome.epoch != status.epoch;
  if (new_state && outcome.epoch != status.epoch + 1) {
    return Rejected("the outcome's epoch " + std::to_string(outcome.epoch) +
                    " does not follow the current epoch " + std::to_string(status.epoch));
  }
  RoutingDecision decision;
  if (new_state && outcome.phase == RoutingPhase::kTransition) {
    if (outcome.from_count != status.shard_count) {
      return Rejected("the outcome's transition leaves " + std::to_string(outcome.from_count) +
                      " shards, but the map has " + std::to_string(status.shard_count));
    }
    decision.events.push_back(
        On(kRoutingStream, TransitionStarted{outcome.from_count, outcome.target_count,
                                             outcome.epoch, outcome.changes_safe_after_ns,
                                             outcome.reason,
                                             status.phase == RoutingPhase::kTransition,
                                             RoutableShards(outcome.target_count, status.unhealthy)}));
  } else if (new_state) {
    if (status.phase != RoutingPhase::kTransition || outcome.target_count != status.target_count) {
      return Rejected("a steady outcome with a new epoch must complete the transition to " +
                      std::to_string(status.target_count) + " shards");
    }
  } else if (outcome.phase != status.phase || outcome.target_count != status.target_count) {
    return Rejected("the outcome changes the routing state without a new epoch");
  }
  const bool moving = outcome.phase == RoutingPhase::kTransition;
  size_t moves = 0;
  for (const auto& [id, target] : routes) {
    const WorkflowRoute* route = state.Find(id);
    if (route == nullptr) {
      decision.events.push_back(On(WorkflowStream(id), WorkflowAssigned{id, target, outcome.epoch}));
      continue;
    }
    // After a completed transition a moving workflow ends on its new shard.
    const uint32_t current = (new_state && !moving && route->in_transition) ? route->new_shard
                                                                            : route->shard;
    if (target == current) continue;
    if (!moving) {
      return Rejected("a steady outcome moves workflow " + id + " from shard " +
                      std::to_string(current) + " to " + std::to_string(target));
    }
    decision.events.push_back(
        On(WorkflowStream(id), WorkflowMoving{id, current, target, outcome.epoch}));
    ++moves;
  }
  if (new_state && !moving) {
    decision.events.push_back(
        On(kRoutingStream, TransitionCompleted{outcome.epoch, outcome.target_count, false}));
  } else if (new_state && moves == 0) {
    decision.events.push_back(
        On(kRoutingStream, TransitionCompleted{outcome.epoch + 1, outcome.target_count, false}));
  }
  return decision;
}

}  // namespace shardledger
