// The event log's internal types and helpers, shared by its files (event_log.cc,
// event_log_read.cc, and the append path's event_log_append.cc, event_log_stage.cc and
// event_log_sync.cc). Not part of the EventLog interface.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/slice.h>
#include <rocksdb/status.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "events/codec.h"
#include "events/event_log.h"
#include "events/keys.h"

namespace shardledger {

// A RocksDB failure as the log reports it: Corruption stays Corruption, the rest is IoError.
inline Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  ErrorCode code = s.IsCorruption() ? ErrorCode::kCorruption : ErrorCode::kIoError;
  return Status(code, std::string(what) + ": " + s.ToString());
}

// What the `ids` family answered for one event id: the seq the id is stored at, 0 when it
// is not stored (seqs start at 1), or why the answer cannot be used.
inline Result<uint64_t> StoredSeqOf(const rocksdb::Status& status, std::string_view value) {
  if (status.IsNotFound()) return uint64_t{0};
  if (!status.ok()) return FromRocks(status, "reading event id");
  if (value.size() != 8) return Status(ErrorCode::kCorruption, "malformed event id entry");
  return ReadBigEndian64(value);
}

// A malformed append: the caller's error, typed kBadRequest.
inline Status BadBatch(std::string what) { return Status(ErrorCode::kBadRequest, std::move(what)); }

// CPU time the calling thread has used.
inline uint64_t ThreadCpuNs() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(now.tv_nsec);
}

// What the caller's thread works out about each event for the writer and the observer.
struct PendingEvent {
  EventType type = EventType::kWorkflowAssigned;  // kept for the commit observer: the
  std::optional<JobType> job_type;                // writer may move the payload out
  uint64_t stream_hash = 0;                       // StreamTable::Hash of the event's stream
};

// One caller's append on its way through the pipeline. Built in place and never moved (its
// first arena takes from its own bytes).
struct EventLog::Pending {
  Pending() = default;
  Pending(const Pending&) = delete;
  Pending& operator=(const Pending&) = delete;

  AppendBatch batch;
  // Each event encoded on the caller's thread, to be placed by the writer.
  std::vector<PreparedRecord> prepared;
  std::vector<PendingEvent> events;  // one per event, as `prepared`
  // Where `prepared` keeps its bytes: one arena per encoding part. The first starts in
  // `first_block`, where a one-event append's record fits (most are under 512 bytes): the
  // answered append's memory went in eight allocations, and freeing them was a sixth of the
  // sync thread's samples (it frees what it answers).
  alignas(16) char first_block[512];
  ByteArena arena{1024, {first_block, sizeof(first_block)}};
  std::vector<ByteArena> more_arenas;  // parts 1.. of a large batch
  ByteArena& arena_of(size_t part) { return part == 0 ? arena : more_arenas[part - 1]; }
  // The records the hooks folded (empty without hooks): they hold pointers to them until the
  // group is published or discarded, and the group outlives both.
  std::vector<Record> records;
  AppendCallback done;
  Result<AppendResult> result = NotProcessed();
  bool rejected = false;  // failed validation: its result says why, whatever the group does
  bool replayed = false;  // every event id was recorded: its result holds their seqs

  // Back to the state of a new Pending, keeping its vectors' capacity, for the next append
  // (EventLog::KeepSpare). The arena is set up again by AppendAsync.
  void Reset() {
    batch = AppendBatch{};
    prepared.clear();
    events.clear();
    records.clear();
    done = nullptr;
    result = NotProcessed();
    rejected = replayed = false;
  }

 private:
  static Status NotProcessed() { return Status(ErrorCode::kUnavailable, "not processed"); }
};

// The event ids a group has staged so far, with their seqs: RocksDB cannot answer for them
// until the group is written. The writer keeps one table for all its groups and empties it
// by moving to the next generation, so a group costs no allocation (a std::unordered_map per
// group took a node per append and a bucket array per group: ~4% of the writer's samples).
// Open addressing, linear probing, at most half full; the hash folds all 16 bytes, so ids
// that differ only in their last bytes spread too.
class GroupIds {
 public:
  // Forgets every id.
  void Clear() {
    ++generation_;
    size_ = 0;
  }
  // Records `id` at `seq` (non-zero); an id already recorded keeps its first seq.
  void Insert(const Id128& id, uint64_t seq) {
    if ((size_ + 1) * 2 > slots_.size()) Grow();
    Slot& slot = slots_[SlotOf(id)];
    if (slot.generation == generation_) return;
    slot = Slot{id, seq, generation_};
    ++size_;
  }
  // The seq `id` was recorded at, or 0.
  uint64_t Find(const Id128& id) const {
    if (size_ == 0) return 0;
    const Slot& slot = slots_[SlotOf(id)];
    return slot.generation == generation_ ? slot.seq : 0;
  }
  size_t size() const { return size_; }

 private:
  struct Slot {
    Id128 id{};
    uint64_t seq = 0;
    uint64_t generation = 0;  // the slot is in use when it equals generation_
  };
  // MurmurHash3's 64-bit finalizer: every input bit reaches the low bits the mask keeps.
  static uint64_t Mix(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
  }
  static uint64_t Hash(const Id128& id) {
    uint64_t a = 0;
    uint64_t b = 0;
    std::memcpy(&a, id.data(), 8);
    std::memcpy(&b, id.data() + 8, 8);
    return Mix(a ^ Mix(b));
  }
  // The index of the slot holding `id`, or of the free slot where it would go.
  size_t SlotOf(const Id128& id) const {
    const size_t mask = slots_.size() - 1;
    for (size_t i = Hash(id) & mask;; i = (i + 1) & mask) {
      const Slot& slot = slots_[i];
      if (slot.generation != generation_ || slot.id == id) return i;
    }
  }
  void Grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(std::max<size_t>(1024, old.size() * 2), Slot{});
    for (const Slot& slot : old) {
      if (slot.generation == generation_) slots_[SlotOf(slot.id)] = slot;
    }
  }

  std::vector<Slot> slots_;
  size_t size_ = 0;
  uint64_t generation_ = 1;
};

// The event ids of a group's one-event appends (the usual append) as RocksDB holds them,
// looked up in one MultiGet before the group is validated. RocksDB then probes each SST
// file's filter for all of them together, fetching ahead, where a Get per append waited on
// each probe in turn (and its memtable probe too). Valid for the whole group: RocksDB holds
// every earlier group, and the group's own ids are in GroupIds. The writer's own, reused
// group after group.
class StoredIdLookup {
 public:
  struct Answer {
    uint64_t seq = 0;  // where RocksDB holds the id; 0: it does not (or it was not asked)
    Status error;      // the lookup failed: the storage's failure, not the append's
  };

  // Starts a lookup for a group of `appends` appends.
  void Reset(size_t appends) {
    asked_.clear();
    answers_.assign(appends, Answer{});
  }
  // Asks for `id` on behalf of append `index`. The id must outlive Run.
  void Ask(size_t index, const Id128& id) { asked_.push_back(Asked{&id, index}); }
  // Looks every asked id up in `cf`, each distinct id once.
  void Run(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf);
  const Answer& For(size_t index) const { return answers_[index]; }

 private:
  struct Asked {
    const Id128* id;
    size_t index;
  };
  std::vector<Asked> asked_;
  std::vector<Answer> answers_;
  std::vector<rocksdb::Slice> keys_;
  std::vector<rocksdb::PinnableSlice> values_;
  std::vector<rocksdb::Status> statuses_;
};

// What the writer knows about the group it is building, beyond what is already staged.
// Stream versions move in the log's stream cache itself (undone by clearing it when the
// group fails).
struct EventLog::GroupState {
  // Event ids of the group's earlier appends: RocksDB cannot answer for them yet. Filled only
  // when another append follows in the group (an append's own ids are distinct, checked on
  // the caller's thread). The writer's table, emptied for the group.
  GroupIds* ids = nullptr;
  uint64_t seq = 0;                                    // last seq assigned
  Hash256 hash{};                                      // hash of that record
  int64_t timestamp_ns = 0;
};

// A group on its way from the writer to the sync thread: its records encoded, chained and
// folded into `batch`, which the writer writes (CommitGroup) and the sync thread makes
// durable.
struct EventLog::StagedGroup {
  explicit StagedGroup(size_t reserved_bytes) : batch(reserved_bytes) {}

  std::vector<std::unique_ptr<Pending>> pendings;
  std::vector<FoldHook*> hooks;  // the hooks that folded it
  rocksdb::WriteBatch batch;
  LogHead before;                // the staged head before the group
  LogHead after;                 // the staged head after it (== before: nothing to write)
  uint64_t appends = 0;
  Status error;                  // set when the group failed while it was staged
  Status outcome;                // what the group's appends are answered (set by Advance)

  bool has_records() const { return after.seq != before.seq; }
};

}  // namespace shardledger
