#include "projections/shard_map_state.h"

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "events/keys.h"
#include "events/parallel.h"
#include "projections/bytes.h"
#include "projections/digest.h"

namespace shardledger {

void ShardMapState::Unplace(const std::string& id, uint32_t shard) {
  auto it = by_shard_.find(shard);
  if (it == by_shard_.end()) return;
  it->second.erase(id);
  if (it->second.empty()) by_shard_.erase(it);
}

void ShardMapState::SetShard(const std::string& id, WorkflowRoute& route, uint32_t shard) {
  if (route.shard == shard) return;
  Unplace(id, route.shard);
  route.shard = shard;
  by_shard_[shard].insert(id);
}

void ShardMapState::EnterPhase(RoutingPhase phase, uint32_t from, uint32_t to,
                               int64_t changes_safe_after_ns, uint64_t epoch) {
  status_.phase = phase;
  status_.shard_count = from;
  status_.target_count = to;
  status_.changes_safe_after_ns = changes_safe_after_ns;
  status_.epoch = epoch;
}

// Ends every move of the transition: unconfirmed workflows stay on their old shard, or,
// when the transition completes, go to their new one. Transition data is dropped.
void ShardMapState::ClearMoves(uint64_t seq, ShardMapTouched* touched,
                               bool move_unconfirmed_to_new) {
  if (carrying_ > 0) {
    for (auto& [id, route] : workflows_) {
      if (!route.in_transition) continue;
      if (move_unconfirmed_to_new && !route.confirmed) SetShard(id, route, route.new_shard);
      route.in_transition = false;
      route.old_shard = route.new_shard = 0;
      route.move_epoch = 0;
      route.confirmed = false;
      route.changed_at = seq;
      if (touched) touched->workflows.push_back(id);
    }
    status_.map_version = seq;
  }
  carrying_ = 0;
  status_.moving = 0;
}

void ShardMapState::Apply(const Record& record, ShardMapTouched* touched) {
  ApplyFound(record, touched, nullptr);
}

namespace {

// The workflow a move or a confirmation is about; nullptr for other records.
const std::string* MovedWorkflow(const Event& payload) {
  if (const auto* e = std::get_if<WorkflowMoving>(&payload)) return &e->workflow_id;
  if (const auto* e = std::get_if<WorkflowMoveConfirmed>(&payload)) return &e->workflow_id;
  return nullptr;
}

}  // namespace

void ShardMapState::ApplyAll(std::span<const Record* const> records) {
  const size_t parts = PartsFor(records.size(), 20'000);
  // A route looked up ahead stays right only while no record before it adds or removes one.
  // (A short batch, the usual one, folds record by record without that scan.)
  auto stable = [&] {
    return std::none_of(records.begin(), records.end(), [](const Record* record) {
      return std::holds_alternative<WorkflowAssigned>(record->payload) ||
             std::holds_alternative<WorkflowRemoved>(record->payload);
    });
  };
  if (parts == 1 || !stable()) {
    for (const Record* record : records) Apply(*record, nullptr);
    return;
  }
  std::vector<WorkflowRoute*> found(records.size());
  RunRanges(records.size(), parts, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      if (const std::string* id = MovedWorkflow(records[i]->payload)) {
        auto it = workflows_.find(*id);
        found[i] = it == workflows_.end() ? nullptr : &it->second;
      }
    }
  });
  for (size_t i = 0; i < records.size(); ++i) {
    if (i + 8 < records.size() && found[i + 8] != nullptr) __builtin_prefetch(found[i + 8]);
    ApplyFound(*records[i], nullptr, &found[i]);
  }
}

void ShardMapState::ApplyFound(const Record& record, ShardMapTouched* touched,
                               WorkflowRoute* const* found) {
  const uint64_t seq = record.seq;
  auto mark = [&](const std::string& id) {
    if (touched) touched->workflows.push_back(id);
  };
  auto route_of = [&](const std::string& id) -> WorkflowRoute* {
    if (found != nullptr) return *found;
    auto it = workflows_.find(id);
    return it == workflows_.end() ? nullptr : &it->second;
  };
  std::visit(
      [&](const auto& e) {
        using E = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<E, WorkflowAssigned>) {
          auto [it, inserted] = workflows_.try_emplace(e.workflow_id);
          WorkflowRoute& route = it->second;
          if (inserted) {
            route.shard = e.shard;
            by_shard_[e.shard].insert(e.workflow_id);
          } else {
            SetShard(e.workflow_id, route, e.shard);
          }
          route.changed_at = seq;
          if (removed_.erase(e.workflow_id) > 0 && touched) touched->tombstones.insert(e.workflow_id);
          status_.map_version = seq;
          mark(e.workflow_id);
        } else if constexpr (std::is_same_v<E, WorkflowRemoved>) {
          auto it = workflows_.find(e.workflow_id);
          if (it == workflows_.end()) return;
          Unplace(e.workflow_id, it->second.shard);
          if (it->second.in_transition && !it->second.confirmed && status_.moving > 0) {
            --status_.moving;
          }
          if (it->second.in_transition) --carrying_;
          workflows_.erase(it);
          removed_[e.workflow_id] = seq;
          if (touched) touched->tombstones.insert(e.workflow_id);
          status_.map_version = seq;
          mark(e.workflow_id);
        } else if constexpr (std::is_same_v<E, TransitionStarted>) {
          ClearMoves(seq, touched, /*move_unconfirmed_to_new=*/false);
          EnterPhase(RoutingPhase::kTransition, e.from_count, e.to_count, e.changes_safe_after_ns,
                     e.epoch);
        } else if constexpr (std::is_same_v<E, WorkflowMoving>) {
          WorkflowRoute* found_route = route_of(e.workflow_id);
          if (found_route == nullptr) return;
          WorkflowRoute& route = *found_route;
          if (!route.in_transition || route.confirmed) ++status_.moving;
          if (!route.in_transition) ++carrying_;
          SetShard(e.workflow_id, route, e.old_shard);
          route.in_transition = true;
          route.old_shard = e.old_shard;
          route.new_shard = e.new_shard;
          route.move_epoch = e.epoch;
          route.confirmed = false;
          route.changed_at = seq;
          status_.map_version = seq;
          mark(e.workflow_id);
        } else if constexpr (std::is_same_v<E, ShardHealthChanged>) {
          auto& bad = status_.unhealthy;
          auto pos = std::lower_bound(bad.begin(), bad.end(), e.shard);
          const bool listed = pos != bad.end() && *pos == e.shard;
          if (e.healthy && listed) bad.erase(pos);
          if (!e.healthy && !listed) bad.insert(pos, e.shard);
        } else if constexpr (std::is_same_v<E, TriggerRegistrationReported>) {
          ShardReport& report = reports_[e.shard];
          report.workflow_ids = e.workflow_ids;
          std::sort(report.workflow_ids.begin(), report.workflow_ids.end());
          report.workflow_ids.erase(
              std::unique(report.workflow_ids.begin(), report.workflow_ids.end()),
              report.workflow_ids.end());
          report.total_active_workflows = e.total_active_workflows;
          report.reported_at_ns = record.timestamp_ns;
          report.seq = seq;
          if (touched) touched->reports.insert(e.shard);
        } else if constexpr (std::is_same_v<E, WorkflowMoveConfirmed>) {
          WorkflowRoute* found_route = route_of(e.workflow_id);
          if (found_route == nullptr || !found_route->in_transition || found_route->confirmed) {
            return;
          }
          WorkflowRoute& route = *found_route;
          route.confirmed = true;
          SetShard(e.workflow_id, route, route.new_shard);
          route.changed_at = seq;
          if (status_.moving > 0) --status_.moving;
          status_.map_version = seq;
          mark(e.workflow_id);
        } else if constexpr (std::is_same_v<E, TransitionCompleted>) {
          ClearMoves(seq, touched, /*move_unconfirmed_to_new=*/true);
          EnterPhase(RoutingPhase::kSteady, e.shard_count, e.shard_count, 0, e.epoch);
        }
      },
      record.payload);
  status_.applied_seq = seq;
}

const WorkflowRoute* ShardMapState::Find(std::string_view workflow_id) const {
  auto it = workflows_.find(workflow_id);
  return it == workflows_.end() ? nullptr : &it->second;
}

Result<WorkflowShardMapping> ShardMapState::GetWorkflowShardMapping(
    const std::vector<std::string>& ids) const {
  SL_ASSIGN_OR_RETURN(auto view, GetWorkflowShardMappingOfViews(
                                     std::vector<std::string_view>(ids.begin(), ids.end())));
  WorkflowShardMapping out;
  out.mapping_version = view.mapping_version;
  out.mappings.reserve(view.mappings.size());
  for (const auto& m : view.mappings) {
    out.mappings.push_back({std::string(m.workflow_id), m.shard, m.state});
  }
  out.unknown_ids.assign(view.unknown_ids.begin(), view.unknown_ids.end());
  return out;
}

Result<WorkflowShardMappingView> ShardMapState::GetWorkflowShardMappingOfViews(
    const std::vector<std::string_view>& ids) const {
  if (ids.empty()) {
    return Status(ErrorCode::kBadRequest, "GetWorkflowShardMapping needs at least one workflow id");
  }
  WorkflowShardMappingView out;
  out.mapping_version = status_.map_version;
  out.mappings.reserve(ids.size());
  // Unknown ids are reported in request order, each once.
  std::unordered_set<std::string_view> unknown_seen;
  for (std::string_view id : ids) {
    if (const WorkflowRoute* route = Find(id)) {
      MappingState state;
      state.in_transition = route->in_transition;
      state.confirmed = route->confirmed;
      if (route->in_transition) {
        state.old_shard = route->old_shard;
        state.new_shard = route->new_shard;
      } else {
        state.new_shard = route->shard;
      }
      out.mappings.push_back({id, route->shard, state});
    } else if (unknown_seen.insert(id).second) {
      out.unknown_ids.push_back(id);
    }
  }
  auto by_id = [](const auto& a, const auto& b) { return a.workflow_id < b.workflow_id; };
  std::sort(out.mappings.begin(), out.mappings.end(), by_id);
  // A repeated id: its entries are equal, one stays.
  out.mappings.erase(std::unique(out.mappings.begin(), out.mappings.end()), out.mappings.end());
  return out;
}

void ShardMapState::ForEachRow(
    const std::function<void(const std::string& key, const std::string& value)>& visit) const {
  visit("status", StatusRow());
  for (const auto& [id, route] : workflows_) {
    if (auto row = WorkflowRow(id)) visit(WorkflowKey(id), *row);
  }
  for (const auto& [id, seq] : removed_) {
    if (auto row = TombstoneRow(id)) visit(TombstoneKey(id), *row);
  }
  for (const auto& [shard, report] : reports_) {
    if (auto row = ReportRow(shard)) visit(ReportKey(shard), *row);
  }
}

void ShardMapState::ForEach(
    const std::function<void(const std::string&, const WorkflowRoute&)>& visit) const {
  for (const auto& [id, route] : workflows_) visit(id, route);
}

std::vector<uint32_t> ShardMapState::TargetRoutable() const {
  std::vector<uint32_t> out;
  for (uint32_t shard = 0; shard < status_.target_count; ++shard) {
    if (!std::binary_search(status_.unhealthy.begin(), status_.unhealthy.end(), shard)) {
      out.push_back(shard);
    }
  }
  return out;
}

std::vector<std::string> ShardMapState::IdsOnShard(uint32_t shard, std::string_view after,
                                                   size_t limit) const {
  std::vector<std::string> out;
  auto it = by_shard_.find(shard);
  if (it == by_shard_.end()) return out;
  auto pos = after.empty() ? it->second.begin() : it->second.upper_bound(std::string(after));
  for (; pos != it->second.end() && out.size() < limit; ++pos) out.push_back(*pos);
  return out;
}

std::map<uint32_t, uint64_t> ShardMapState::CountsPerShard() const {
  std::map<uint32_t, uint64_t> out;
  for (const auto& [shard, ids] : by_shard_) out[shard] = ids.size();
  return out;
}

void ShardMapState::ChangedSince(uint64_t version, std::vector<std::string>& changed,
                                 std::vector<std::string>& removed) const {
  for (const auto& [id, route] : workflows_) {
    if (route.changed_at > version) changed.push_back(id);
  }
  std::sort(changed.begin(), changed.end());
  for (const auto& [id, seq] : removed_) {
    if (seq > version) removed.push_back(id);
  }
}

std::vector<ShardDrift> ShardMapState::RegistrationDrift() const {
  std::vector<ShardDrift> out;
  for (const auto& [shard, report] : reports_) {
    ShardDrift drift;
    drift.shard = shard;
    for (const std::string& id : report.workflow_ids) {
      const WorkflowRoute* route = Find(id);
      const bool expected = route != nullptr &&
                            (route->shard == shard || (route->in_transition && route->new_shard == shard));
      if (!expected) drift.registered_elsewhere.push_back(id);
    }
    if (auto on = by_shard_.find(shard); on != by_shard_.end()) {
      for (const std::string& id : on->second) {
        if (!std::binary_search(report.workflow_ids.begin(), report.workflow_ids.end(), id)) {
          drift.not_registered.push_back(id);
        }
      }
    }
    if (!drift.registered_elsewhere.empty() || !drift.not_registered.empty()) {
      out.push_back(std::move(drift));
    }
  }
  return out;
}

// ---------------------------------------------------------------- rows and digest

std::string ShardMapState::ReportKey(uint32_t shard) {
  std::string key = "r/";
  AppendBigEndian64(key, shard);
  return key;
}

std::string ShardMapState::StatusRow() const {
  ByteWriter w;
  w.U8(static_cast<uint8_t>(status_.phase))
      .U32(status_.shard_count)
      .U32(status_.target_count)
      .I64(status_.changes_safe_after_ns)
      .U64(status_.epoch)
      .U64(status_.map_version)
      .U64(status_.applied_seq)
      .U64(status_.moving)
      .U32(static_cast<uint32_t>(status_.unhealthy.size()));
  for (uint32_t shard : status_.unhealthy) w.U32(shard);
  return w.Take();
}

std::optional<std::string> ShardMapState::WorkflowRow(const std::string& id) const {
  const WorkflowRoute* route = Find(id);
  if (route == nullptr) return std::nullopt;
  ByteWriter w;
  w.U32(route->shard)
      .U8(static_cast<uint8_t>((route->in_transition ? 1 : 0) | (route->confirmed ? 2 : 0)))
      .U32(route->old_shard)
      .U32(route->new_shard)
      .U64(route->move_epoch)
      .U64(route->changed_at);
  return w.Take();
}

std::optional<std::string> ShardMapState::TombstoneRow(const std::string& id) const {
  auto it = removed_.find(id);
  if (it == removed_.end()) return std::nullopt;
  return ByteWriter().U64(it->second).Take();
}

std::optional<std::string> ShardMapState::ReportRow(uint32_t shard) const {
  auto it = reports_.find(shard);
  if (it == reports_.end()) return std::nullopt;
  ByteWriter w;
  w.U64(it->second.total_active_workflows)
      .I64(it->second.reported_at_ns)
      .U64(it->second.seq)
      .U32(static_cast<uint32_t>(it->second.workflow_ids.size()));
  for (const auto& id : it->second.workflow_ids) w.Str(id);
  return w.Take();
}

void ShardMapState::WriteRows(const ShardMapTouched& touched, rocksdb::WriteBatch& batch,
                              rocksdb::ColumnFamilyHandle* cf) const {
  for (const std::string& id : touched.workflows) {
    if (auto row = WorkflowRow(id)) {
      batch.Put(cf, WorkflowKey(id), *row);
    } else {
      batch.Delete(cf, WorkflowKey(id));
    }
  }
  for (const std::string& id : touched.tombstones) {
    if (auto tomb = TombstoneRow(id)) {
      batch.Put(cf, TombstoneKey(id), *tomb);
    } else {
      batch.Delete(cf, TombstoneKey(id));
    }
  }
  for (uint32_t shard : touched.reports) {
    if (auto row = ReportRow(shard)) batch.Put(cf, ReportKey(shard), *row);
  }
}

Status ShardMapState::LoadRow(std::string_view key, std::string_view value) {
  ByteReader r(value);
  auto bad = [&] {
    return Status(ErrorCode::kCorruption, "shard map row " + std::string(key) + " does not decode");
  };
  if (key == "status") {
    status_.phase = static_cast<RoutingPhase>(r.U8());
    status_.shard_count = r.U32();
    status_.target_count = r.U32();
    status_.changes_safe_after_ns = r.I64();
    status_.epoch = r.U64();
    status_.map_version = r.U64();
    status_.applied_seq = r.U64();
    status_.moving = r.U64();
    const uint32_t n = r.U32();
    status_.unhealthy.clear();
    for (uint32_t i = 0; i < n && r.ok(); ++i) status_.unhealthy.push_back(r.U32());
  } else if (key.starts_with("w/")) {
    std::string id(key.substr(2));
    WorkflowRoute route;
    route.shard = r.U32();
    const uint8_t flags = r.U8();
    route.in_transition = flags & 1;
    route.confirmed = flags & 2;
    route.old_shard = r.U32();
    route.new_shard = r.U32();
    route.move_epoch = r.U64();
    route.changed_at = r.U64();
    if (!r.done()) return bad();
    by_shard_[route.shard].insert(id);
    if (route.in_transition) ++carrying_;
    workflows_[std::move(id)] = route;
  } else if (key.starts_with("t/")) {
    removed_[std::string(key.substr(2))] = r.U64();
  } else if (key.starts_with("r/") && key.size() == 10) {
    const auto shard = static_cast<uint32_t>(ReadBigEndian64(key.substr(2)));
    ShardReport report;
    report.total_active_workflows = r.U64();
    report.reported_at_ns = r.I64();
    report.seq = r.U64();
    const uint32_t n = r.U32();
    for (uint32_t i = 0; i < n && r.ok(); ++i) report.workflow_ids.push_back(r.Str());
    reports_[shard] = std::move(report);
  } else {
    return Status(ErrorCode::kCorruption, "unknown shard map row " + std::string(key));
  }
  return r.done() ? Status::Ok() : bad();
}

Hash256 ShardMapState::Digest() const {
  ContentDigest digest;
  auto feed = [&](const std::string& bytes) { digest.Feed(bytes); };
  feed(StatusRow());
  std::vector<const std::string*> ids;
  ids.reserve(workflows_.size());
  for (const auto& entry : workflows_) ids.push_back(&entry.first);
  std::sort(ids.begin(), ids.end(), [](const auto* a, const auto* b) { return *a < *b; });
  for (const std::string* id : ids) {
    feed(WorkflowKey(*id));
    feed(*WorkflowRow(*id));
  }
  for (const auto& [id, seq] : removed_) {
    feed(TombstoneKey(id));
    feed(*TombstoneRow(id));
  }
  for (const auto& [shard, report] : reports_) {
    feed(ReportKey(shard));
    feed(*ReportRow(shard));
  }
  return digest.Finish();
}

}  // namespace shardledger
