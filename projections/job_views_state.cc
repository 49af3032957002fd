#include "projections/job_views_state.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <memory>

#include "projections/bytes.h"
#include "projections/digest.h"

namespace shardledger {

namespace {
constexpr std::array<std::string_view, kJobStatusCount> kStatusNames = {
    "Created",    "LockedForProcessing", "PendingVerification", "Completed",
    "VerificationTimeout", "VerificationFailed", "Failed", "PendingRetry"};
}  // namespace

std::string_view JobStatusName(JobStatus status) {
  auto index = static_cast<size_t>(status);
  return index < kStatusNames.size() ? kStatusNames[index] : std::string_view("Unknown");
}

std::optional<JobStatus> ParseJobStatus(std::string_view name) {
  for (size_t i = 0; i < kStatusNames.size(); ++i) {
    if (kStatusNames[i] == name) return static_cast<JobStatus>(i);
  }
  return std::nullopt;
}

void JobViewsState::Index(const JobRecord& job) {
  by_key_[{job.type, job.internal_id}] = job.id;
  by_status_[job.status].insert(job.id);
  by_type_status_[{job.type, job.status}].insert(job.id);
  if (job.claim.active) leases_.insert({job.claim.lease_expires_at_ns, job.id});
  pipeline_[job.internal_id].insert(job.id);
  if (job.status == JobStatus::kCompleted) {
    auto [it, inserted] = highest_completed_.try_emplace(job.type, job.internal_id);
    if (!inserted) it->second = std::max(it->second, job.internal_id);
  }
}

// Removes the indexes that change with a job's state (its key and pipeline never change;
// a completed job stays completed, so highest_completed_ only grows).
void JobViewsState::Unindex(const JobRecord& job) {
  by_status_[job.status].erase(job.id);
  by_type_status_[{job.type, job.status}].erase(job.id);
  if (job.claim.active) leases_.erase({job.claim.lease_expires_at_ns, job.id});
}

void JobViewsState::Apply(const Record& record, Touched* touched) {
  applied_seq_ = record.seq;
  const auto* created = std::get_if<JobCreated>(&record.payload);
  if (created != nullptr) {
    if (jobs_.count(created->job_id) > 0) return;
    JobRecord job;
    job.id = created->job_id;
    job.type = created->job_type;
    job.internal_id = created->internal_id;
    job.metadata = created->metadata;
    job.version = record.stream_version;
    job.created_at_ns = job.updated_at_ns = record.timestamp_ns;
    Index(job);
    jobs_.emplace(job.id, std::move(job));
    if (touched) touched->insert(created->job_id);
    return;
  }
  if (!IsJobEvent(TypeOf(record.payload))) return;
  const std::string& id = std::visit(
      [](const auto& e) -> const std::string& {
        if constexpr (requires { e.job_id; }) {
          return e.job_id;
        } else {
          static const std::string kNone;
          return kNone;
        }
      },
      record.payload);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;  // an event for a job never created: nothing to fold
  JobRecord& job = it->second;
  Unindex(job);
  const int64_t ts = record.timestamp_ns;
  std::visit(
      [&](const auto& e) {
        using E = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<E, JobClaimed>) {
          job.status = JobStatus::kLockedForProcessing;
          job.claim = JobClaim{e.worker, e.lease_expires_at_ns, e.fencing_token, true};
          job.process_attempts = e.process_attempt;
          job.process_started_at_ns = ts;
        } else if constexpr (std::is_same_v<E, JobProcessingCompleted>) {
          job.status = JobStatus::kPendingVerification;
          job.external_id = e.external_id;
          job.claim.active = false;
          job.process_completed_at_ns = ts;
          job.verification_started_at_ns = ts;
        } else if constexpr (std::is_same_v<E, JobVerified>) {
          job.status = JobStatus::kCompleted;
          job.verification_attempts = e.verification_attempt;
          job.verification_completed_at_ns = ts;
          job.failure_reason.clear();
        } else if constexpr (std::is_same_v<E, JobVerificationRejected>) {
          job.status = e.failed ? JobStatus::kFailed : JobStatus::kVerificationFailed;
          job.verification_attempts = e.verification_attempt;
          job.verification_completed_at_ns = ts;
          job.failure_reason = e.reason;
          job.failure_history.push_back(e.reason);
        } else if constexpr (std::is_same_v<E, JobVerificationPending>) {
          job.verification_attempts = e.verification_attempt;
          job.next_verification_at_ns = e.next_check_at_ns;
        } else if constexpr (std::is_same_v<E, JobVerificationTimedOut>) {
          job.status = JobStatus::kVerificationTimeout;
          job.verification_attempts = e.verification_attempt;
          job.verification_completed_at_ns = ts;
        } else if constexpr (std::is_same_v<E, JobFailed>) {
          job.status = JobStatus::kFailed;
          job.claim.active = false;
          job.failure_reason = e.reason;
          job.failure_history.push_back(e.reason);
        } else if constexpr (std::is_same_v<E, JobRetried>) {
          job.status = JobStatus::kPendingRetry;
          job.process_retries += 1;
          job.failure_reason.clear();
        } else if constexpr (std::is_same_v<E, JobVerificationRequeued>) {
          job.status = JobStatus::kPendingVerification;
          job.verification_retries += 1;
          job.verification_attempts = 0;
          job.verification_started_at_ns = ts;
        } else if constexpr (std::is_same_v<E, JobClaimExpired>) {
          job.claim.active = false;
        }
      },
      record.payload);
  job.version = record.stream_version;
  job.updated_at_ns = ts;
  Index(job);
  if (touched) touched->insert(id);
}

const JobRecord* JobViewsState::Find(std::string_view id) const {
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : &it->second;
}

const JobRecord* JobViewsState::FindByKey(JobType type, uint64_t internal_id) const {
  auto it = by_key_.find({type, internal_id});
  return it == by_key_.end() ? nullptr : Find(it->second);
}

std::vector<JobRecord> JobViewsState::Page(const JobQuery& query) const {
  std::vector<JobRecord> out;
  auto take = [&](const std::set<std::string>& ids) {
    for (auto it = query.after.empty() ? ids.begin() : ids.upper_bound(query.after);
         it != ids.end() && out.size() < query.limit; ++it) {
      out.push_back(*Find(*it));
    }
  };
  if (query.status && query.type) {
    if (auto it = by_type_status_.find({*query.type, *query.status}); it != by_type_status_.end()) {
      take(it->second);
    }
  } else if (query.status) {
    if (auto it = by_status_.find(*query.status); it != by_status_.end()) take(it->second);
  } else {
    // Every job (of a type, if given), in id order.
    std::set<std::string> ids;
    for (const auto& [key, id] : by_key_) {
      if (!query.type || key.first == *query.type) ids.insert(id);
    }
    take(ids);
  }
  return out;
}

std::vector<JobRecord> JobViewsState::Attention(std::string_view after, size_t limit) const {
  std::set<std::string> ids;
  for (JobStatus s : {JobStatus::kFailed, JobStatus::kVerificationTimeout}) {
    if (auto it = by_status_.find(s); it != by_status_.end()) ids.insert(it->second.begin(), it->second.end());
  }
  std::vector<JobRecord> out;
  for (auto it = after.empty() ? ids.begin() : ids.upper_bound(std::string(after));
       it != ids.end() && out.size() < limit; ++it) {
    out.push_back(*Find(*it));
  }
  return out;
}

std::vector<JobRecord> JobViewsState::ExpiredLeases(int64_t now_ns, size_t limit) const {
  std::vector<JobRecord> out;
  for (auto it = leases_.begin(); it != leases_.end() && it->first <= now_ns && out.size() < limit;
       ++it) {
    out.push_back(*Find(it->second));
  }
  return out;
}

std::vector<JobRecord> JobViewsState::Pipeline(uint64_t internal_id) const {
  std::vector<JobRecord> out;
  if (auto it = pipeline_.find(internal_id); it != pipeline_.end()) {
    for (const auto& id : it->second) out.push_back(*Find(id));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.type < b.type; });
  return out;
}

std::optional<uint64_t> JobViewsState::HighestCompleted(JobType type) const {
  auto it = highest_completed_.find(type);
  return it == highest_completed_.end() ? std::nullopt : std::optional<uint64_t>(it->second);
}

uint64_t JobViewsState::Count(JobType type, JobStatus status) const {
  auto it = by_type_status_.find({type, status});
  return it == by_type_status_.end() ? 0 : it->second.size();
}

std::map<std::pair<JobType, JobStatus>, uint64_t> JobViewsState::Counts() const {
  std::map<std::pair<JobType, JobStatus>, uint64_t> out;
  for (const auto& [key, ids] : by_type_status_) {
    if (!ids.empty()) out[key] = ids.size();
  }
  return out;
}

// ---------------------------------------------------------------- rows and digest

std::string JobViewsState::Row(const JobRecord& job) const {
  ByteWriter w;
  w.Str(job.id).U8(static_cast<uint8_t>(job.type)).U64(job.internal_id)
      .U8(static_cast<uint8_t>(job.status)).U8(static_cast<uint8_t>(job.external_id.index()));
  if (const auto* text = std::get_if<std::string>(&job.external_id)) w.Str(*text);
  if (const auto* number = std::get_if<uint64_t>(&job.external_id)) w.U64(*number);
  w.U32(static_cast<uint32_t>(job.metadata.size()));
  for (const auto& [k, v] : job.metadata) w.Str(k).Str(v);
  w.U64(job.version).U32(job.process_attempts).U32(job.process_retries)
      .U32(job.verification_attempts).U32(job.verification_retries)
      .I64(job.created_at_ns).I64(job.updated_at_ns).I64(job.process_started_at_ns)
      .I64(job.process_completed_at_ns).I64(job.verification_started_at_ns)
      .I64(job.verification_completed_at_ns).I64(job.next_verification_at_ns)
      .Str(job.failure_reason).U32(static_cast<uint32_t>(job.failure_history.size()));
  for (const auto& reason : job.failure_history) w.Str(reason);
  w.Str(job.claim.owner).I64(job.claim.lease_expires_at_ns).U64(job.claim.fencing_token)
      .U8(job.claim.active ? 1 : 0);
  return w.Take();
}

void JobViewsState::WriteRows(const Touched& touched, rocksdb::WriteBatch& batch,
                              rocksdb::ColumnFamilyHandle* cf) const {
  for (const std::string& id : touched) {
    if (const JobRecord* job = Find(id)) batch.Put(cf, "j/" + id, Row(*job));
  }
}

void JobViewsState::ForEachRow(
    const std::function<void(const std::string& key, const std::string& value)>& visit) const {
  visit("status", StatusRow());
  for (const auto& [id, job] : jobs_) visit("j/" + id, Row(job));
}

std::string JobViewsState::StatusRow() const { return ByteWriter().U64(applied_seq_).Take(); }

Status JobViewsState::LoadRow(std::string_view key, std::string_view value) {
  ByteReader r(value);
  if (key == "status") {
    applied_seq_ = r.U64();
    return r.done() ? Status::Ok() : Status(ErrorCode::kCorruption, "job views status row");
  }
  if (!key.starts_with("j/")) {
    return Status(ErrorCode::kCorruption, "unknown job views row " + std::string(key));
  }
  JobRecord job;
  job.id = r.Str();
  const uint8_t type = r.U8();
  job.internal_id = r.U64();
  const uint8_t status = r.U8();
  const uint8_t external = r.U8();
  if (external == 1) job.external_id = r.Str();
  if (external == 2) job.external_id = r.U64();
  const uint32_t metadata = r.U32();
  for (uint32_t i = 0; i < metadata && r.ok(); ++i) {
    std::string k = r.Str();
    job.metadata.emplace_back(std::move(k), r.Str());
  }
  job.version = r.U64();
  job.process_attempts = r.U32();
  job.process_retries = r.U32();
  job.verification_attempts = r.U32();
  job.verification_retries = r.U32();
  job.created_at_ns = r.I64();
  job.updated_at_ns = r.I64();
  job.process_started_at_ns = r.I64();
  job.process_completed_at_ns = r.I64();
  job.verification_started_at_ns = r.I64();
  job.verification_completed_at_ns = r.I64();
  job.next_verification_at_ns = r.I64();
  job.failure_reason = r.Str();
  const uint32_t failures = r.U32();
  for (uint32_t i = 0; i < failures && r.ok(); ++i) job.failure_history.push_back(r.Str());
  job.claim.owner = r.Str();
  job.claim.lease_expires_at_ns = r.I64();
  job.claim.fencing_token = r.U64();
  job.claim.active = r.U8() != 0;
  if (!r.done() || type >= kJobTypeCount || status >= kJobStatusCount || external > 2 ||
      "j/" + job.id != key) {
    return Status(ErrorCode::kCorruption, "job views row " + std::string(key) + " does not decode");
  }
  job.type = static_cast<JobType>(type);
  job.status = static_cast<JobStatus>(status);
  Index(job);
  jobs_.emplace(job.id, std::move(job));
  return Status::Ok();
}

Hash256 JobViewsState::Digest() const {
  ContentDigest digest;
  auto feed = [&](const std::string& bytes) { digest.Feed(bytes); };
  feed(StatusRow());
  std::vector<const JobRecord*> jobs;
  for (const auto& [id, job] : jobs_) jobs.push_back(&job);
  std::sort(jobs.begin(), jobs.end(), [](const auto* a, const auto* b) { return a->id < b->id; });
  for (const JobRecord* job : jobs) feed(Row(*job));
  return digest.Finish();
}

}  // namespace shardledger
