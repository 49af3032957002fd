// The append pipeline's internal types, shared by event_log.cc and event_log_append.cc.
// Not part of the EventLog interface.
#pragma once

#include <rocksdb/status.h>
#include <rocksdb/write_batch.h>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "events/codec.h"
#include "events/event_log.h"

namespace shardledger {

// A RocksDB failure as the log reports it: Corruption stays Corruption, the rest is IoError.
inline Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  ErrorCode code = s.IsCorruption() ? ErrorCode::kCorruption : ErrorCode::kIoError;
  return Status(code, std::string(what) + ": " + s.ToString());
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
  Result<AppendResult> result = Status(ErrorCode::kUnavailable, "not processed");
  bool rejected = false;  // failed validation: its result says why, whatever the group does
  bool replayed = false;  // every event id was recorded: its result holds their seqs
};

// What the writer knows about the group it is building, beyond what is already staged.
// Stream versions move in the log's stream cache itself (undone by clearing it when the
// group fails).
struct EventLog::GroupState {
  // Event ids of the group's earlier appends: RocksDB cannot answer for them yet. Filled only
  // when another append follows in the group (an append's own ids are distinct, checked on
  // the caller's thread).
  std::unordered_map<Id128, uint64_t, Id128Hash> ids;
  uint64_t seq = 0;                                    // last seq assigned
  Hash256 hash{};                                      // hash of that record
  int64_t timestamp_ns = 0;
};

// A group on its way from the writer to the sync thread: its records encoded, chained and
// folded into `batch`, which the sync thread writes.
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
