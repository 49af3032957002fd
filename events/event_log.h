// EventLog: the append-only, hash-chained event log over RocksDB (DESIGN.md section 2).
//
// One writer thread owns the head. Append() queues the caller's batch and blocks; the writer
// takes every queued batch, validates each against the current stream versions, writes all
// that pass in one WriteBatch (one fsync in durable mode), and only then acknowledges each
// caller. A batch that fails validation fails alone.
//
// Reads may run on any thread concurrently with appends; they see records up to the head as
// it was when the read began.
#pragma once

#include <rocksdb/db.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "events/fold_hook.h"
#include "events/record.h"
#include "events/status.h"

namespace shardledger {

enum class Durability {
  kDurable,   // fsync before acknowledging (the default)
  kBuffered,  // write-ahead log without fsync: survives a process crash, not a power cut
};

// "durable" / "buffered"
std::string_view DurabilityName(Durability durability);
std::optional<Durability> ParseDurability(std::string_view name);

struct EventLogOptions {
  Durability durability = Durability::kDurable;
  // Column families owned by projections ("proj.shardmap", ...), created when missing.
  std::vector<std::string> projection_column_families;
  // The ledger's one clock, in ns since the Unix epoch; the system clock when empty.
  std::function<int64_t()> clock;
  // Streams whose version the writer keeps in memory before it starts over.
  size_t stream_cache_limit = size_t{1} << 22;
  // The most events one Append may carry.
  size_t max_batch_events = 4'000'000;
};

struct LogHead {
  uint64_t seq = 0;  // 0: the log is empty
  Hash256 hash{};
};

// A record as stored: its seq and its encoded envelope bytes.
struct StoredRecord {
  uint64_t seq = 0;
  std::string bytes;
};

// Server-side filter for replays: records in [from_seq, to_seq] whose stream starts with
// `stream_prefix` and whose type is one of `event_types` (empty: every type).
struct ReadFilter {
  uint64_t from_seq = 1;
  uint64_t to_seq = UINT64_MAX;
  size_t limit = SIZE_MAX;
  std::string stream_prefix;
  std::vector<EventType> event_types;
};

// Counters of the append path since the log was opened.
struct LogStats {
  uint64_t groups = 0;   // WriteBatches committed (one fsync each in durable mode)
  uint64_t appends = 0;  // Append calls written
  uint64_t records = 0;  // records written
};

struct ChainReport {
  uint64_t checked = 0;                  // records verified before stopping
  std::optional<uint64_t> first_bad_seq;  // the first record that does not verify
  std::string problem;                   // what is wrong with it
};

class EventLog {
 public:
  // Creates the log in `dir` or recovers it. Refuses, with a Corruption status that says
  // which, a log whose stored head and last record disagree.
  static Result<std::unique_ptr<EventLog>> Open(const std::string& dir, EventLogOptions options);

  // Stops the writer after the queued appends; later Append calls get Unavailable.
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // Appends every event of `batch` or none. Errors: WrongExpectedVersion (names stream,
  // expected, actual), BadRequest (malformed batch), IoError (the write failed; the log then
  // refuses further appends with Unavailable until reopened), Unavailable (stopping).
  Result<AppendResult> Append(AppendBatch batch);

  LogHead Head() const;
  LogStats Stats() const;
  Durability durability() const { return options_.durability; }
  const std::string& directory() const { return dir_; }

  // Records from..to (inclusive, capped at the head), at most `limit`, in seq order.
  Result<std::vector<Record>> ReadRange(uint64_t from, uint64_t to, size_t limit = SIZE_MAX) const;
  // The same records undecoded: what Replay sends and the publisher publishes.
  Result<std::vector<StoredRecord>> ReadRangeBytes(uint64_t from, uint64_t to,
                                                   size_t limit = SIZE_MAX) const;
  // Calls `visit(seq, bytes)` for each record in from..to; stops early when it returns false.
  Status Scan(uint64_t from, uint64_t to,
              const std::function<bool(uint64_t, std::string_view)>& visit) const;
  // The records of one stream from `from_version` on, at most `limit`.
  Result<std::vector<Record>> ReadStream(std::string_view stream, uint64_t from_version = 1,
                                         size_t limit = SIZE_MAX) const;
  // The current version of a stream (0 when it does not exist).
  Result<uint64_t> StreamVersion(std::string_view stream) const;
  // Records matching `filter`, in seq order.
  Result<std::vector<Record>> ReadFiltered(const ReadFilter& filter) const;
  // The seq an event id was recorded at, if it was.
  Result<std::optional<uint64_t>> FindEventId(const Id128& event_id) const;

  // Recomputes every hash in from..to (capped at the head) and reports the first bad seq.
  Result<ChainReport> VerifyChain(uint64_t from = 1, uint64_t to = UINT64_MAX) const;

  // Registers a projection's hook. `hook_applied_seq` is the last seq the projection has
  // folded; records after it are folded now (one WriteBatch) so the hook joins at the head.
  Status AddHook(FoldHook* hook, uint64_t hook_applied_seq);
  void RemoveHook(FoldHook* hook);

  // Raw access for projections: their column families and the database.
  rocksdb::DB* db() const { return db_.get(); }
  rocksdb::ColumnFamilyHandle* ColumnFamily(std::string_view name) const;
  // Drops and recreates a projection's column family (for a rebuild) and returns the new
  // handle; the old one is invalid afterwards. The owner's hook must not be registered.
  Result<rocksdb::ColumnFamilyHandle*> ResetColumnFamily(std::string_view name);

 private:
  struct Pending;
  struct GroupState;

  EventLog(std::string dir, EventLogOptions options);
  Status OpenDb();
  Status RecoverHead();
  void WriterLoop();
  void CommitGroup(std::vector<Pending*>& group);
  Status Validate(Pending& pending, GroupState& group);
  void Stage(Pending& pending, GroupState& group, rocksdb::WriteBatch& batch, Status& hook_error);
  Result<uint64_t> CurrentVersion(std::string_view stream, GroupState& group);
  Result<uint64_t> StoredStreamVersion(std::string_view stream) const;
  Result<std::optional<uint64_t>> StoredEventSeq(const Id128& id) const;
  rocksdb::WriteOptions WriteOptionsFor() const;

  const std::string dir_;
  const EventLogOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  mutable std::mutex cf_mu_;  // guards the two below (a rebuild replaces a handle)
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::unordered_map<std::string, rocksdb::ColumnFamilyHandle*> by_name_;
  rocksdb::ColumnFamilyHandle* log_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* streams_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* ids_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_cf_ = nullptr;

  // Queue of appends waiting for the writer.
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Pending*> queue_;
  bool stopping_ = false;

  // Held by the writer while it commits a group, and by AddHook/RemoveHook.
  std::mutex write_mu_;
  std::vector<FoldHook*> hooks_;
  std::unordered_map<std::string, uint64_t> stream_cache_;  // writer-only
  Status failed_;                                           // writer-only: sticky write error
  int64_t last_timestamp_ns_ = 0;                           // writer-only

  mutable std::mutex head_mu_;  // guards the two below
  LogHead head_;
  LogStats stats_;

  std::thread writer_;
};

}  // namespace shardledger
