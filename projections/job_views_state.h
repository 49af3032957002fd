// JobViewsState: the job views as a pure fold of the log (DESIGN.md sections 3 and 5): every
// job's record and the indexes the orchestrators query. Not thread-safe: the owner locks.
#pragma once

#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "events/event.h"
#include "events/ids.h"
#include "events/record.h"
#include "events/status.h"

namespace shardledger {

enum class JobStatus : uint8_t {
  kCreated = 0,
  kLockedForProcessing,
  kPendingVerification,
  kCompleted,
  kVerificationTimeout,
  kVerificationFailed,
  kFailed,
  kPendingRetry,
};
inline constexpr int kJobStatusCount = 8;
std::string_view JobStatusName(JobStatus status);
std::optional<JobStatus> ParseJobStatus(std::string_view name);

// Who holds a job for processing. The token survives the claim: the next claim's token is
// one more, so a late write with an old token is recognised.
struct JobClaim {
  std::string owner;
  int64_t lease_expires_at_ns = 0;
  uint64_t fencing_token = 0;
  bool active = false;  // false once processing completed, the job failed, or the lease expired
  bool operator==(const JobClaim&) const = default;
};

struct JobRecord {
  std::string id;
  JobType type = JobType::kSnosRun;
  uint64_t internal_id = 0;
  JobStatus status = JobStatus::kCreated;
  ExternalId external_id;
  std::vector<std::pair<std::string, std::string>> metadata;
  uint64_t version = 0;  // its stream version
  uint32_t process_attempts = 0;
  uint32_t process_retries = 0;
  uint32_t verification_attempts = 0;
  uint32_t verification_retries = 0;
  int64_t created_at_ns = 0;
  int64_t updated_at_ns = 0;
  int64_t process_started_at_ns = 0;
  int64_t process_completed_at_ns = 0;
  int64_t verification_started_at_ns = 0;
  int64_t verification_completed_at_ns = 0;
  int64_t next_verification_at_ns = 0;
  std::string failure_reason;                // the current one
  std::vector<std::string> failure_history;  // every failure reason, oldest first
  JobClaim claim;
  bool operator==(const JobRecord&) const = default;
};

// A page of jobs from one index, in id order after `after`.
struct JobQuery {
  std::optional<JobStatus> status;
  std::optional<JobType> type;
  std::string after;
  size_t limit = 100;
};

class JobViewsState {
 public:
  using Touched = std::set<std::string>;  // job ids whose rows changed

  void Apply(const Record& record, Touched* touched = nullptr);

  const JobRecord* Find(std::string_view id) const;
  const JobRecord* FindByKey(JobType type, uint64_t internal_id) const;
  std::vector<JobRecord> Page(const JobQuery& query) const;
  // Jobs in Failed or VerificationTimeout, in id order after `after`.
  std::vector<JobRecord> Attention(std::string_view after, size_t limit) const;
  // Jobs whose active claim's lease ended at or before `now_ns`, oldest lease first.
  std::vector<JobRecord> ExpiredLeases(int64_t now_ns, size_t limit) const;
  // Every job of one internal id, across types.
  std::vector<JobRecord> Pipeline(uint64_t internal_id) const;
  std::optional<uint64_t> HighestCompleted(JobType type) const;
  uint64_t Count(JobType type, JobStatus status) const;
  std::map<std::pair<JobType, JobStatus>, uint64_t> Counts() const;
  size_t size() const { return jobs_.size(); }
  uint64_t applied_seq() const { return applied_seq_; }
  static bool Concerns(const Record& record) { return IsJobEvent(TypeOf(record.payload)); }
  void SkipTo(uint64_t seq) { applied_seq_ = std::max(applied_seq_, seq); }
  Hash256 Digest() const;

  // Persistence: rows "j/<id>" and "status" (the applied seq).
  void WriteRows(const Touched& touched, rocksdb::WriteBatch& batch,
                 rocksdb::ColumnFamilyHandle* cf) const;
  std::string StatusRow() const;
  // Every persisted row: a snapshot that LoadRow reads back into an equal state.
  void ForEachRow(const std::function<void(const std::string& key, const std::string& value)>& visit) const;
  Status LoadRow(std::string_view key, std::string_view value);

 private:
  void Index(const JobRecord& job);
  void Unindex(const JobRecord& job);
  std::string Row(const JobRecord& job) const;

  struct IdHash {
    using is_transparent = void;
    size_t operator()(std::string_view id) const { return std::hash<std::string_view>{}(id); }
  };
  std::unordered_map<std::string, JobRecord, IdHash, std::equal_to<>> jobs_;
  std::map<std::pair<JobType, uint64_t>, std::string> by_key_;
  std::map<JobStatus, std::set<std::string>> by_status_;
  std::map<std::pair<JobType, JobStatus>, std::set<std::string>> by_type_status_;
  std::set<std::pair<int64_t, std::string>> leases_;  // active claims by lease expiry
  std::map<uint64_t, std::set<std::string>> pipeline_;
  std::map<JobType, uint64_t> highest_completed_;
  uint64_t applied_seq_ = 0;
};

}  // namespace shardledger
