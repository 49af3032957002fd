// EventLog: the append-only, hash-chained event log over RocksDB (DESIGN.md section 2).
//
// One writer thread owns the head. Append() and AppendAsync() queue the caller's batch; the
// writer takes every queued batch, validates each against the current stream versions, and
// stages all that pass — seqs, encoding, hash chain, projection folds — into one WriteBatch.
// A batch that fails validation fails alone.
//
// The writer then writes the group into RocksDB without an fsync and hands it to the syncer
// thread, which fsyncs the write-ahead log once for every group written since its last
// fsync (durable mode), then advances the head, publishes the projections' staged changes
// and acknowledges the callers. So the next group is staged and written while the disk
// works. No caller is acknowledged before its records are durable, and readers never see
// records past the durable head.
//
// Reads may run on any thread concurrently with appends; they see records up to the head as
// it was when the read began.
#pragma once

#include <rocksdb/db.h>

#include <atomic>
#include <chrono>
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

#include "events/adaptive_poll.h"
#include "events/fold_hook.h"
#include "events/record.h"
#include "events/status.h"
#include "events/stream_table.h"
#include "events/wal_prefill.h"

namespace shardledger {

enum class Durability {
  kDurable,   // fsync before acknowledging (the default)
  kBuffered,  // write-ahead log without fsync: survives a process crash, not a power cut
};

// "durable" / "buffered"
std::string_view DurabilityName(Durability durability);
std::optional<Durability> ParseDurability(std::string_view name);

class GroupIds;        // events/event_log_internal.h
class StoredIdLookup;  // events/event_log_internal.h

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
  // Zeros kept written past the end of the write-ahead log, so its fsyncs need no journal
  // commit for a new size (events/wal_prefill.h); filled a quarter at a time. 0: none.
  // Durable logs only: a buffered log does not fsync.
  size_t wal_prefill_bytes = size_t{4} << 20;
  // How long the writer (and in a buffered log the sync thread) polls its queue before it
  // sleeps, while most of its waits have been shorter than this (events/adaptive_poll.h):
  // under a saturating load it spends its idle moments polling instead of being woken.
  // Zero: they always sleep.
  std::chrono::microseconds queue_poll = AdaptivePoll::kDefaultLimit;
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
  uint64_t syncs = 0;    // fsyncs of the write-ahead log
  uint64_t sync_ns = 0;  // time spent in them
  // CPU time of the writer thread and of the sync thread since the log opened (kernel time
  // included, waiting not): what each append costs the pipeline's two serial stages. Each
  // clock is read every 16th round of its thread, so these lag by up to 15 rounds.
  uint64_t writer_cpu_ns = 0;
  uint64_t sync_thread_cpu_ns = 0;
  // The writer's time (wall clock) staging groups, and inside RocksDB's write of them: the
  // write-ahead log and the memtables (RocksDB's perf context). Within one of this machine's
  // phases these hold still where CPU clocks and throughput do not, so a change is
  // measured by them first (docs/event-log.md, "The writer's time").
  uint64_t writer_stage_ns = 0;
  // RocksDB's write is timed in one group of every 16: these two sum the timed groups, which
  // held `write_timed_appends` appends. Per append: write_wal_ns / write_timed_appends.
  uint64_t write_wal_ns = 0;
  uint64_t write_memtable_ns = 0;
  uint64_t write_timed_appends = 0;
  // Waits in which the writer polled for the next append before sleeping (it polls while its
  // waits have been short), and those whose poll ran out, so that it slept; the same for the
  // sync thread waiting for written groups.
  uint64_t writer_polls = 0;
  uint64_t writer_polls_run_out = 0;
  uint64_t sync_polls = 0;
  uint64_t sync_polls_run_out = 0;
  WalPrefillReport wal_prefill;  // the zeros written ahead of the write-ahead log

  // What the log did between `earlier` (a snapshot of the same log's stats) and these: every
  // count less its earlier value. The prefill's failures and last failure are kept as they
  // are: they report the log's state, not an amount of work.
  LogStats Since(const LogStats& earlier) const;
};

// A record as the log hands it to its commit observer: durable, in seq order.
struct CommittedRecord {
  uint64_t seq = 0;
  std::string_view bytes;  // the stored envelope; valid only during the observer's call
  EventType type = EventType::kWorkflowAssigned;
  std::optional<JobType> job_type;  // for job events
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

  // The same without blocking: `done` runs exactly once, on the log's sync thread, when the
  // records are durable (buffered: written) or the append has failed. `done` must not block;
  // it may call AppendAsync (never Append).
  using AppendCallback = std::function<void(Result<AppendResult>)>;
  void AppendAsync(AppendBatch batch, AppendCallback done);

  LogHead Head() const;
  LogStats Stats() const;
  // Flushes every memtable to disk and waits until RocksDB runs no flush or compaction: the
  // log at rest, as after a quiet spell. For benchmarks that measure one command alone.
  // (SettleRocksDb below, for this log's families.)
  Status SettleStorage();
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

  // Called on the sync thread (the writer thread in buffered mode) with each group's
  // records once they are durable, groups in seq order, before the group's callers are
  // answered. Must not block (hand the records to a thread of your own, copying the bytes:
  // they point into the group's buffers, which go when the group is answered). Set it
  // before the first append; nullptr removes it.
  using CommitObserver = std::function<void(std::vector<CommittedRecord>&&)>;
  void SetCommitObserver(CommitObserver observer);

  // Registers a projection's hook. `hook_applied_seq` is the last seq the projection has
  // folded; records after it are folded now so the hook joins at the head. Waits for the
  // appends in flight to become durable first.
  Status AddHook(FoldHook* hook, uint64_t hook_applied_seq);
  // Unregisters a hook; when it returns, the log no longer calls it.
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
  struct StagedGroup;

  EventLog(std::string dir, EventLogOptions options);
  Status OpenDb();
  Status RecoverHead();
  void WriterLoop();
  void SyncLoop();
  // Takes the appends out of `group` (which keeps an emptied vector's capacity).
  std::unique_ptr<StagedGroup> StageGroup(std::vector<std::unique_ptr<Pending>>& group);
  void CommitGroup(StagedGroup& group);
  // One fsync for the groups written so far; returns the log's write/sync failure, if any.
  Status Sync(const std::vector<std::unique_ptr<StagedGroup>>& groups);
  // Moves the head past a durable group, publishes it to the hooks and the observer (or
  // discards it from the hooks when it or the log (`failed`) failed); then Answer calls back
  // its appends.
  void Advance(StagedGroup& group, const Status& failed);
  void Answer(std::vector<std::unique_ptr<StagedGroup>>& groups);
  Status FailedStatus() const;
  static std::vector<CommittedRecord> CommittedRecordsOf(StagedGroup& group);
  // Waits until every staged group is durable and acknowledged. Caller holds write_mu_.
  void DrainPipeline();
  Status Validate(Pending& pending, GroupState& group, size_t index);
  Status CheckExpectations(const AppendBatch& batch);
  void Stage(Pending& pending, GroupState& group, rocksdb::WriteBatch& batch, Status& hook_error);
  Result<uint64_t> StoredStreamVersion(std::string_view stream) const;
  Result<std::optional<uint64_t>> StoredEventSeq(const Id128& id) const;
  rocksdb::WriteOptions WriteOptionsFor() const;

  const std::string dir_;
  const EventLogOptions options_;
  // The database's file system and environment, which must outlive it (declared before it).
  std::shared_ptr<WalPrefillFileSystem> file_system_;
  std::unique_ptr<rocksdb::Env> env_;
  std::unique_ptr<rocksdb::DB> db_;
  mutable std::mutex cf_mu_;  // guards the two below (a rebuild replaces a handle)
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::unordered_map<std::string, rocksdb::ColumnFamilyHandle*> by_name_;
  rocksdb::ColumnFamilyHandle* log_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* streams_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* ids_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_cf_ = nullptr;

  // Appends waiting for the writer.
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::vector<std::unique_ptr<Pending>> queue_;
  bool stopping_ = false;
  AdaptivePoll writer_poll_;  // how the writer waits on queue_cv_

  // Held by the writer while it stages a group, and by AddHook/RemoveHook. The writer's own
  // state below is touched only under it.
  std::mutex write_mu_;
  std::vector<FoldHook*> hooks_;
  CommitObserver observer_;  // read by the syncer; set under write_mu_ with the pipeline drained
  // Stream versions as staged: filled from the `streams` version rows on first use
  // (StoredStreamVersion) and moved by the writer as it stages. Each group is written into
  // RocksDB before the next is staged, so RocksDB answers for every earlier group's event ids
  // and this cache never holds a version RocksDB would not also give once the write lands.
  // Cleared when a group fails. `hash` is StreamTable::Hash(stream).
  Result<StreamTable::Entry*> CachedStream(std::string_view stream, uint64_t hash);
  StreamTable stream_cache_;
  std::unique_ptr<GroupIds> group_ids_;         // the staged group's event ids (GroupState::ids)
  std::unique_ptr<StoredIdLookup> stored_ids_;  // the staged group's ids as RocksDB holds them
  LogHead staged_head_;  // the last record staged, maybe not written or durable
  int64_t last_timestamp_ns_ = 0;

  // Groups written and waiting for the syncer; `closed` once the writer has ended.
  struct GroupQueue {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::unique_ptr<StagedGroup>> groups;
    bool closed = false;
    AdaptivePoll poll;  // how the sync thread waits on cv

    void Push(std::unique_ptr<StagedGroup> group);
    void Close();
    // Takes every queued group; false once closed and empty.
    bool TakeAll(std::vector<std::unique_ptr<StagedGroup>>& out);
  };
  GroupQueue sync_queue_;
  // Answered groups, emptied, for the writer to fill again (SpareGroup, Recycle).
  std::mutex spare_mu_;
  std::vector<std::unique_ptr<StagedGroup>> spare_groups_;
  std::unique_ptr<StagedGroup> SpareGroup(size_t reserved_bytes);
  // Answered appends, emptied, for AppendAsync to fill again (SparePending, KeepSpare).
  std::mutex spare_pending_mu_;
  std::vector<std::unique_ptr<Pending>> spare_pendings_;
  std::unique_ptr<Pending> SparePending();
  // Empties an answered append and keeps it for SparePending, unless it is large.
  void KeepSpare(std::unique_ptr<Pending> pending);
  void Recycle(std::vector<std::unique_ptr<StagedGroup>>& groups);

  // A write or fsync error: the log refuses appends from then on. Guarded by failed_mu_.
  mutable std::mutex failed_mu_;
  Status failed_;

  mutable std::mutex head_mu_;  // guards the four below
  std::condition_variable head_cv_;
  LogHead head_;                // the durable head
  uint64_t answered_seq_ = 0;   // every append through this seq has been called back
  LogStats stats_;
  // The threads' CPU clocks, read after the first of every kCpuClockEvery groups (writer) and
  // rounds (sync thread), and when the thread ends. A thread's CPU clock is a system call
  // (1.3 µs on the PVM machine of 2026-12-07, where the monotonic clock's vDSO read is 25 ns).
  static constexpr uint64_t kCpuClockEvery = 16;
  std::atomic<uint64_t> writer_cpu_ns_{0};
  std::atomic<uint64_t> sync_cpu_ns_{0};
  // Summed by the writer, one update per group (LogStats).
  std::atomic<uint64_t> writer_stage_ns_{0};
  std::atomic<uint64_t> write_wal_ns_{0};
  std::atomic<uint64_t> write_memtable_ns_{0};
  std::atomic<uint64_t> write_timed_appends_{0};
  static constexpr uint64_t kTimedGroupEvery = 16;
  uint64_t groups_written_ = 0;  // the writer's own count, which picks the groups it times

  std::thread writer_;
  std::thread syncer_;
};

// Flushes the memtables of `families` and waits until `db` runs no flush or compaction.
Status SettleRocksDb(rocksdb::DB& db, const std::vector<rocksdb::ColumnFamilyHandle*>& families);

}  // namespace shardledger
