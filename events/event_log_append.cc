// EventLog: the append path — the caller queue, the writer (validate, stage, write; in
// buffered mode also advance the head and publish) and the sync thread (fsync, advance the
// head and publish, acknowledge).
#include <rocksdb/perf_context.h>
#include <rocksdb/perf_level.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <ctime>
#include <deque>
#include <optional>
#include <unordered_set>

#include "events/chain.h"
#include "events/event_log.h"
#include "events/event_log_internal.h"
#include "events/keys.h"
#include "events/memory.h"
#include "events/parallel.h"

namespace shardledger {

namespace {

// CPU time the calling thread has used.
uint64_t ThreadCpuNs() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(now.tv_nsec);
}

// The answer to an append whose every event id is recorded, at `seqs` (one per event).
AppendResult Replayed(std::vector<uint64_t> seqs) {
  AppendResult result;
  result.replayed = true;
  result.first_seq = *std::min_element(seqs.begin(), seqs.end());
  result.last_seq = *std::max_element(seqs.begin(), seqs.end());
  result.seqs = std::move(seqs);
  return result;
}

Status BadBatch(std::string what) { return Status(ErrorCode::kBadRequest, std::move(what)); }

// Shape checks that need no state: done on the caller's thread, outside the writer.
Status CheckShape(const AppendBatch& batch, size_t max_events) {
  if (batch.events.empty()) return BadBatch("an append needs at least one event");
  if (batch.events.size() > max_events) {
    return BadBatch("an append of " + std::to_string(batch.events.size()) +
                    " events exceeds the limit of " + std::to_string(max_events));
  }
  auto check_stream = [](const std::string& stream) -> Status {
    if (stream.empty()) return BadBatch("a stream name is empty");
    if (stream.size() > kMaxStreamBytes) {
      return BadBatch("stream name of " + std::to_string(stream.size()) +
                      " bytes exceeds the limit of " + std::to_string(kMaxStreamBytes));
    }
    if (stream.find('\0') != std::string::npos) return BadBatch("a stream name holds a NUL byte");
    return Status::Ok();
  };
  for (const auto& event : batch.events) {
    SL_RETURN_IF_ERROR(check_stream(event.stream));
    if (IsZero(event.event_id)) return BadBatch("an event id is all zeros");
  }
  // Ids drawn from the CSPRNG just now cannot repeat (2^-128 a pair): checked only when the
  // caller supplied them (for a shard-count change, 200,000 set inserts saved).
  if (batch.events.size() > 1 && !batch.ids_minted) {
    std::unordered_set<Id128, Id128Hash> ids;
    ids.reserve(batch.events.size());
    for (const auto& event : batch.events) {
      if (!ids.insert(event.event_id).second) {
        return BadBatch("event id " + ToHex(event.event_id) + " appears twice in one append");
      }
    }
  }
  for (size_t i = 0; i < batch.expectations.size(); ++i) {
    SL_RETURN_IF_ERROR(check_stream(batch.expectations[i].stream));
    for (size_t j = 0; j < i; ++j) {
      if (batch.expectations[j].stream == batch.expectations[i].stream) {
        return BadBatch("stream " + batch.expectations[i].stream + " has two expected versions");
      }
    }
  }
  return Status::Ok();
}

// A large append's records as the writer places them, for the hooks to fold on a second core
// meanwhile (a shard-count change: 200,000 records, 0.3 s of its 1.0 s of staging in the
// shard map's fold). The writer fills `placed` in order and moves `ready` on; the folder
// follows, never past `ready`.
class PlacedRecords {
 public:
  struct Placed {
    uint64_t version = 0;
    Hash256 hash{};
  };

  explicit PlacedRecords(size_t n) : placed_(n) {}

  Placed& operator[](size_t i) { return placed_[i]; }
  // The writer: records 0..count-1 are placed.
  void MarkReady(size_t count) {
    ready_.store(count, std::memory_order_release);
    ready_.notify_one();
  }
  // The writer: no more records will be placed (it stopped on an error).
  void Abandon() {
    ready_.fetch_or(kAbandoned, std::memory_order_release);
    ready_.notify_one();
  }
  // The folder: waits until record i is placed; false when the writer abandoned it.
  bool WaitFor(size_t i) {
    for (;;) {
      const uint64_t now = ready_.load(std::memory_order_acquire);
      if (i < (now & ~kAbandoned)) return true;
      if ((now & kAbandoned) != 0) return false;
      ready_.wait(now, std::memory_order_acquire);
    }
  }

 private:
  static constexpr uint64_t kAbandoned = uint64_t{1} << 63;
  std::vector<Placed> placed_;
  std::atomic<uint64_t> ready_{0};
};

// Copies the Puts and Deletes of one WriteBatch into another, in order, by column family id.
class RowCopier : public rocksdb::WriteBatch::Handler {
 public:
  RowCopier(rocksdb::WriteBatch& to, std::vector<rocksdb::ColumnFamilyHandle*> handles)
      : to_(to), handles_(std::move(handles)) {}
  rocksdb::Status PutCF(uint32_t id, const rocksdb::Slice& key,
                        const rocksdb::Slice& value) override {
    rocksdb::ColumnFamilyHandle* cf = Find(id);
    if (cf == nullptr) return Unknown(id);
    return to_.Put(cf, key, value);
  }
  rocksdb::Status DeleteCF(uint32_t id, const rocksdb::Slice& key) override {
    rocksdb::ColumnFamilyHandle* cf = Find(id);
    if (cf == nullptr) return Unknown(id);
    return to_.Delete(cf, key);
  }

 private:
  rocksdb::ColumnFamilyHandle* Find(uint32_t id) const {
    for (rocksdb::ColumnFamilyHandle* cf : handles_) {
      if (cf->GetID() == id) return cf;
    }
    return nullptr;
  }
  static rocksdb::Status Unknown(uint32_t id) {
    return rocksdb::Status::InvalidArgument("a hook wrote to column family id " +
                                            std::to_string(id) + ", which the log does not hold");
  }
  rocksdb::WriteBatch& to_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

}  // namespace

bool ExpectedVersion::Holds(uint64_t actual) const {
  switch (kind) {
    case Kind::kAny: return true;
    case Kind::kNoStream: return actual == 0;
    case Kind::kExists: return actual > 0;
    case Kind::kExact: return actual == version;
  }
  return false;
}

std::string ExpectedVersion::ToString() const {
  switch (kind) {
    case Kind::kAny: return "any";
    case Kind::kNoStream: return "no stream";
    case Kind::kExists: return "exists";
    case Kind::kExact: return std::to_string(version);
  }
  return "?";
}

void EventLog::AppendAsync(AppendBatch batch, AppendCallback done) {
  Status shape = CheckShape(batch, options_.max_batch_events);
  if (!shape.ok()) {
    done(std::move(shape));
    return;
  }
  std::unique_ptr<Pending> pending = SparePending();
  pending->batch = std::move(batch);
  pending->done = std::move(done);
  // Encoding is the costly part of a record and needs nothing the writer owns: do it here,
  // on the caller's thread, and leave the writer only the position fields to patch.
  // A large batch (a shard-count change) is encoded on all cores.
  {
    auto& events = pending->batch.events;
    const size_t n = events.size();
    pending->prepared.reserve(n);
    PrefaultForWrite(pending->prepared.data(), n * sizeof(PreparedRecord));
    pending->prepared.resize(n);
    pending->events.resize(n);
    // Each part's records go into an arena of its own, sized for ~512 bytes a record: one
    // block, faulted in at once, for a large batch.
    const size_t parts = PartsFor(n, 20'000);
    pending->more_arenas.reserve(parts - 1);
    for (size_t part = 0; part < parts; ++part) {
      const size_t records = n * (part + 1) / parts - n * part / parts;
      const size_t block = std::clamp<size_t>(records * 512, 1024, size_t{64} << 20);
      if (part == 0) {
        pending->arena = ByteArena(block, {pending->first_block, sizeof(pending->first_block)});
      } else {
        pending->more_arenas.emplace_back(block);
      }
    }
    RunParts(parts, [&](size_t part) {
      const size_t begin = n * part / parts;
      const size_t end = n * (part + 1) / parts;
      const AppendBatch& batch = pending->batch;
      for (size_t i = begin; i < end; ++i) {
        const NewEvent& event = events[i];
        pending->events[i] = {TypeOf(event.payload), JobTypeOf(event.payload),
                              StreamTable::Hash(event.stream)};
        pending->prepared[i] =
            PrepareRecord(RecordToPrepare{event.stream, event.event_id, batch.actor,
                                          batch.correlation_id, batch.causation_id, event.payload},
                          pending->arena_of(part));
      }
    });
  }
  {
    std::unique_lock lock(queue_mu_);
    if (stopping_) {
      lock.unlock();
      pending->done(Status(ErrorCode::kUnavailable, "the log is closing"));
      return;
    }
    queue_.push_back(std::move(pending));
    writer_poll_.Signal();
  }
  queue_cv_.notify_one();
}

Result<AppendResult> EventLog::Append(AppendBatch batch) {
  // The wait is a condition variable, not a std::binary_semaphore: libstdc++'s semaphore
  // spins with sched_yield before it sleeps, and many spinning callers starve the writer.
  struct Waiter {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Result<AppendResult>> result;
  } waiter;
  AppendAsync(std::move(batch), [&waiter](Result<AppendResult> result) {
    std::lock_guard lock(waiter.mu);
    waiter.result.emplace(std::move(result));
    waiter.cv.notify_one();  // under the lock: the waiter may go once it sees the result
  });
  std::unique_lock lock(waiter.mu);
  waiter.cv.wait(lock, [&] { return waiter.result.has_value(); });
  return std::move(*waiter.result);
}

void EventLog::WriterLoop() {
  std::vector<std::unique_ptr<Pending>> group;
  for (uint64_t round = 0;; ++round) {
    writer_poll_.Poll();
    {
      std::unique_lock lock(queue_mu_);
      queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) break;  // stopping, and every queued append is taken
      // A swap, so the lock is held for no copy: a caller that finds it held sleeps on a
      // futex (a sync thread's callback did, behind the writer's moving 16 appends out).
      group.swap(queue_);
      writer_poll_.Took(group.size());
    }
    const auto stage_start = std::chrono::steady_clock::now();
    std::unique_ptr<StagedGroup> staged;
    {
      std::lock_guard write_lock(write_mu_);
      staged = StageGroup(group);
    }
    writer_stage_ns_.fetch_add(static_cast<uint64_t>(
                                   std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::steady_clock::now() - stage_start)
                                       .count()),
                               std::memory_order_relaxed);
    group.clear();
    CommitGroup(*staged);
    if (options_.durability == Durability::kBuffered) {
      // Written is as far as a buffered group goes: the writer publishes it at once (one
      // thread hand-off fewer between a record and its subscribers) and leaves the callbacks
      // to the sync thread.
      Advance(*staged, FailedStatus());
    }
    sync_queue_.Push(std::move(staged));
    if (round % kCpuClockEvery == 0) writer_cpu_ns_.store(ThreadCpuNs(), std::memory_order_relaxed);
  }
  writer_cpu_ns_.store(ThreadCpuNs(), std::memory_order_relaxed);
  sync_queue_.Close();
}

void EventLog::GroupQueue::Push(std::unique_ptr<StagedGroup> group) {
  {
    std::lock_guard lock(mu);
    groups.push_back(std::move(group));
    poll.Signal();
  }
  cv.notify_one();
}

void EventLog::GroupQueue::Close() {
  {
    std::lock_guard lock(mu);
    closed = true;
    poll.Signal();
  }
  cv.notify_one();
}

bool EventLog::GroupQueue::TakeAll(std::vector<std::unique_ptr<StagedGroup>>& out) {
  poll.Poll();
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return closed || !groups.empty(); });
  if (groups.empty()) return false;
  out.swap(groups);
  poll.Took(out.size());
  return true;
}

Result<StreamTable::Entry*> EventLog::CachedStream(std::string_view stream, uint64_t hash) {
  if (StreamTable::Entry* entry = stream_cache_.Find(stream, hash)) return entry;
  SL_ASSIGN_OR_RETURN(uint64_t version, StoredStreamVersion(stream));
  return stream_cache_.Insert(stream, hash, version);
}

Status EventLog::CheckExpectations(const AppendBatch& batch) {
  for (const auto& expectation : batch.expectations) {
    SL_ASSIGN_OR_RETURN(StreamTable::Entry * entry,
                        CachedStream(expectation.stream, StreamTable::Hash(expectation.stream)));
    const uint64_t actual = entry->version;
    if (!expectation.expected.Holds(actual)) {
      return Status(ErrorCode::kWrongExpectedVersion,
                    "stream " + expectation.stream + ": expected version " +
                        expectation.expected.ToString() + ", actual " +
                        (actual == 0 ? std::string("no stream") : std::to_string(actual)));
    }
  }
  return Status::Ok();
}

Status EventLog::Validate(Pending& pending, GroupState& group) {
  const AppendBatch& batch = pending.batch;
  // Idempotency: a batch whose event ids are all recorded is answered with their seqs. The
  // group's earlier appends are not in RocksDB yet; every earlier group is.
  const size_t n = batch.events.size();
  if (n == 1 && !batch.ids_minted) {
    // Most appends carry one event: one Get, no MultiGet (whose setup — context, key
    // sorting, batching by file — cost more than the lookup) and no vectors.
    const Id128& id = batch.events[0].event_id;
    uint64_t seq = group.ids->Find(id);
    if (seq == 0) {
      SL_ASSIGN_OR_RETURN(std::optional<uint64_t> stored, StoredEventSeq(id));
      seq = stored.value_or(0);
    }
    if (seq == 0) return CheckExpectations(batch);
    pending.result = Replayed({seq});
    pending.replayed = true;
    return Status::Ok();
  }
  std::vector<uint64_t> seqs(n, 0);
  std::vector<rocksdb::Slice> keys;
  std::vector<size_t> asked;  // index in the batch of each key
  keys.reserve(n);
  asked.reserve(n);
  for (size_t i = 0; i < n && !batch.ids_minted; ++i) {
    const Id128& id = batch.events[i].event_id;
    if (const uint64_t seq = group.ids->Find(id); seq != 0) {
      seqs[i] = seq;
      continue;
    }
    keys.emplace_back(reinterpret_cast<const char*>(id.data()), id.size());
    asked.push_back(i);
  }
  if (!keys.empty()) {
    // One MultiGet for the whole batch: the filter and memtable probes go together.
    std::vector<rocksdb::PinnableSlice> values(keys.size());
    std::vector<rocksdb::Status> statuses(keys.size());
    db_->MultiGet(rocksdb::ReadOptions(), ids_cf_, keys.size(), keys.data(), values.data(),
                  statuses.data());
    for (size_t k = 0; k < keys.size(); ++k) {
      if (statuses[k].IsNotFound()) continue;
      if (!statuses[k].ok()) return FromRocks(statuses[k], "reading event id");
      if (values[k].size() != 8) return Status(ErrorCode::kCorruption, "malformed event id entry");
      seqs[asked[k]] = ReadBigEndian64(values[k].ToStringView());
    }
  }
  const size_t known =
      static_cast<size_t>(std::count_if(seqs.begin(), seqs.end(), [](uint64_t s) { return s != 0; }));
  if (known == n) {
    pending.result = Replayed(std::move(seqs));
    pending.replayed = true;
    return Status::Ok();
  }
  if (known > 0) {
    return BadBatch(std::to_string(known) + " of the " + std::to_string(n) +
                    " event ids of this append are already recorded; an append is repeated "
                    "whole or not at all");
  }
  return CheckExpectations(batch);
}

void EventLog::Stage(Pending& pending, GroupState& group, rocksdb::WriteBatch& batch,
                     Status& group_error) {
  AppendBatch& append = pending.batch;
  const size_t n = append.events.size();
  AppendResult result;
  result.first_seq = group.seq + 1;
  const Hash256 hash_before = group.hash;
  // A large append's hooks fold on a second core, into a batch of their own, while this
  // thread places the records; small ones fold here, record by record.
  const bool fold_aside = !hooks_.empty() && PartsFor(n, 10'000) > 1;
  std::optional<PlacedRecords> placed;
  if (fold_aside) placed.emplace(n);
  // The records the hooks see, one per event, kept with the append until its group is
  // published or discarded (fold_hook.h): a hook keeps a pointer, not a copy. Reserved by
  // the thread that folds, before its first fold, so the vector never moves; each record is
  // built in place as it is folded, in order (constructing all of them first was a second
  // pass over ~50 MB for a shard-count change, on the helper's critical path).
  auto size_records = [&] {
    pending.records.reserve(n);
    PrefaultForWrite(pending.records.data(), n * sizeof(Record));
  };
  // Builds record i for the hooks (its stream and payload moved out of the event: the
  // writer has placed it and reads it no more) and folds it into `into`, keeping the first
  // error in `error`.
  auto fold = [&](size_t i, uint64_t version, const Hash256& prev, const Hash256& hash,
                  rocksdb::WriteBatch& into, Status& error) {
    NewEvent& event = append.events[i];
    Record& record = pending.records.emplace_back();  // record i: folds come in order
    record.seq = result.first_seq + i;
    record.stream = std::move(event.stream);
    record.stream_version = version;
    record.event_id = event.event_id;
    record.timestamp_ns = group.timestamp_ns;
    record.actor = append.actor;
    record.correlation_id = append.correlation_id;
    record.causation_id = append.causation_id;
    record.prev_hash = prev;
    record.hash = hash;
    record.payload = std::move(event.payload);
    for (FoldHook* hook : hooks_) {
      Status folded = hook->Fold(record, into);
      if (!folded.ok() && error.ok()) error = folded;
    }
  };

  auto place_all = [&] {
    const std::vector<PendingEvent>& infos = pending.events;
    for (size_t i = 0; i < n; ++i) {
      NewEvent& event = append.events[i];
      PreparedRecord& prepared = pending.prepared[i];
      // Streams written without an expectation are looked up here, their slots and entries
      // fetched a few events ahead. A lookup failure is the storage's, not the batch's: it
      // fails the group.
      if (i + 16 < n) stream_cache_.PrefetchSlot(infos[i + 16].stream_hash);
      if (i + 8 < n) stream_cache_.PrefetchEntry(infos[i + 8].stream_hash);
      auto cached = CachedStream(event.stream, infos[i].stream_hash);
      if (!cached.ok()) {
        group_error = cached.status();
        if (placed) placed->Abandon();
        return;
      }
      StreamTable::Entry& stream = **cached;
      const uint64_t seq = ++group.seq;
      const uint64_t version = ++stream.version;
      PlaceRecord(prepared, seq, version, group.timestamp_ns, group.hash);
      const Hash256 hash = RecordHash(group.hash, prepared.view(), prepared.hash_offset);
      std::memcpy(prepared.bytes.data() + prepared.hash_offset, hash.data(), hash.size());

      const std::string seq_key = BigEndian64(seq);
      batch.Put(log_cf_, seq_key, rocksdb::Slice(prepared.bytes.data(), prepared.bytes.size()));
      batch.Put(streams_cf_, StreamKey(event.stream, version), seq_key);
      batch.Put(ids_cf_,
                rocksdb::Slice(reinterpret_cast<const char*>(event.event_id.data()),
                               event.event_id.size()),
                seq_key);
      if (placed) {
        (*placed)[i] = {version, hash};
        if ((i + 1) % 1024 == 0 || i + 1 == n) placed->MarkReady(i + 1);
      } else if (!hooks_.empty()) {
        fold(i, version, group.hash, hash, batch, group_error);
      }
      group.hash = hash;
    }
  };

  if (!fold_aside) {
    if (!hooks_.empty()) size_records();
    place_all();
  } else {
    // The folder takes each event's stream and payload once this thread has placed it (and
    // reads it no more). Its batch is sized for one projection row per record (a shard map
    // row is ~55 bytes).
    rocksdb::WriteBatch hook_batch(64 + 64 * n);
    PrefaultForWrite(hook_batch.Data().data(), hook_batch.Data().capacity());
    Status fold_error;
    RunParts(2, [&](size_t part) {
      if (part == 0) {
        place_all();
        return;
      }
      size_records();
      Hash256 prev = hash_before;
      for (size_t i = 0; i < n && placed->WaitFor(i); ++i) {
        fold(i, (*placed)[i].version, prev, (*placed)[i].hash, hook_batch, fold_error);
        prev = (*placed)[i].hash;
      }
    });
    if (group_error.ok()) group_error = fold_error;
    if (group_error.ok()) {
      std::vector<rocksdb::ColumnFamilyHandle*> handles;
      {
        std::lock_guard lock(cf_mu_);
        handles = handles_;
      }
      RowCopier copier(batch, std::move(handles));
      rocksdb::Status copied = hook_batch.Iterate(&copier);
      if (!copied.ok()) group_error = FromRocks(copied, "copying the hooks' rows");
    }
  }
  result.last_seq = group.seq;
  pending.result = std::move(result);
}

std::unique_ptr<EventLog::StagedGroup> EventLog::StageGroup(
    std::vector<std::unique_ptr<Pending>>& pendings) {
  // The batch's buffer is sized up front: grown by doubling, a 200,000-event append (a
  // shard-count change) copied its ~100 MB twice over and faulted in every fresh page.
  size_t reserve = 64;
  for (const auto& pending : pendings) {
    for (size_t i = 0; i < pending->prepared.size(); ++i) {
      const size_t stream = pending->batch.events[i].stream.size();
      // record, stream row, id row, and room for the projections' rows
      reserve += pending->prepared[i].bytes.size() + stream + 160;
    }
  }
  auto staged = SpareGroup(reserve);
  // A shard-count change fills ~130 MB here: faulted in at once, not page by page.
  PrefaultForWrite(staged->batch.Data().data(), staged->batch.Data().capacity());
  staged->pendings.swap(pendings);  // `pendings` leaves with the spare's emptied vector
  staged->hooks = hooks_;
  staged->before = staged->after = staged_head_;
  {
    std::lock_guard lock(failed_mu_);
    if (!failed_.ok()) {
      staged->error = Status(ErrorCode::kUnavailable,
                             "the log stopped after a write error: " + failed_.message());
      return staged;
    }
  }
  // The stream cache starts over when it is full.
  if (stream_cache_.size() >= options_.stream_cache_limit) stream_cache_.Clear();

  GroupState state;
  group_ids_->Clear();
  state.ids = group_ids_.get();
  state.seq = staged_head_.seq;
  state.hash = staged_head_.hash;
  // One timestamp per group, never behind an earlier record's.
  // Never zero either: a placed record's position fields must be non-zero.
  state.timestamp_ns = std::max({options_.clock(), last_timestamp_ns_, int64_t{1}});

  for (size_t p = 0; p < staged->pendings.size(); ++p) {
    auto& pending = staged->pendings[p];
    Status valid = Validate(*pending, state);
    if (!valid.ok()) {
      if (valid.code() == ErrorCode::kIoError || valid.code() == ErrorCode::kCorruption) {
        staged->error = valid;  // the storage failed, not the batch
        break;
      }
      pending->result = valid;
      pending->rejected = true;
      continue;
    }
    if (pending->replayed) continue;
    Stage(*pending, state, staged->batch, staged->error);
    ++staged->appends;
    if (!staged->error.ok()) break;
    if (p + 1 < staged->pendings.size()) {
      uint64_t seq = pending->result->first_seq;
      for (const auto& event : pending->batch.events) state.ids->Insert(event.event_id, seq++);
    }
  }

  if (!staged->error.ok()) {
    for (FoldHook* hook : hooks_) hook->Discard(staged_head_.seq);
    stream_cache_.Clear();  // it holds versions of the discarded group
    return staged;
  }
  if (state.seq == staged_head_.seq) return staged;  // nothing to write

  std::string head_value = BigEndian64(state.seq);
  head_value.append(reinterpret_cast<const char*>(state.hash.data()), state.hash.size());
  staged->batch.Put(meta_cf_, "head", head_value);
  // No row per stream besides its version rows: StoredStreamVersion finds a stream's version
  // from them (docs/event-log.md, "A stream's version").
  for (FoldHook* hook : hooks_) hook->FinishBatch(staged->batch);
  last_timestamp_ns_ = state.timestamp_ns;
  staged_head_ = LogHead{state.seq, state.hash};
  staged->after = staged_head_;
  return staged;
}

void EventLog::SyncLoop() {
  std::vector<std::unique_ptr<StagedGroup>> groups;
  const bool durable = options_.durability == Durability::kDurable;
  for (uint64_t round = 0; sync_queue_.TakeAll(groups); ++round) {
    if (durable) {
      const Status failed = Sync(groups);
      for (auto& group : groups) Advance(*group, failed);
    }  // buffered: the writer has advanced the head past them already
    // Answering here, not on a thread of its own: a completion thread measured slower (the
    // extra hand-off costs more than the callbacks it takes off this thread).
    Answer(groups);
    Recycle(groups);
    if (round % kCpuClockEvery == 0) sync_cpu_ns_.store(ThreadCpuNs(), std::memory_order_relaxed);
  }
  sync_cpu_ns_.store(ThreadCpuNs(), std::memory_order_relaxed);
}

// A group's batch is allocated by the writer and was freed here, on the sync thread, every
// group: a free into another thread's malloc arena, under that arena's lock, which merged the
// ~16 KB batch with its free neighbours and set off a consolidation of the arena's small
// free lists (`malloc_consolidate` was a tenth of this thread's samples). The writer now
// fills the same few batches again. Large ones (a shard-count change's 130 MB) are freed.
constexpr size_t kSpareGroups = 4;
constexpr size_t kSpareBatchBytes = size_t{4} << 20;

std::unique_ptr<EventLog::StagedGroup> EventLog::SpareGroup(size_t reserved_bytes) {
  {
    std::lock_guard lock(spare_mu_);
    for (auto it = spare_groups_.begin(); it != spare_groups_.end(); ++it) {
      if ((*it)->batch.Data().capacity() < reserved_bytes) continue;
      std::unique_ptr<StagedGroup> group = std::move(*it);
      spare_groups_.erase(it);
      return group;
    }
  }
  return std::make_unique<StagedGroup>(reserved_bytes);
}

// An answered append was freed here and the next one allocated in AppendAsync, most often on
// this thread (a client's callback issues its next append): three allocations and three
// frees per append. Small ones are emptied and kept for AppendAsync to fill again.
constexpr size_t kSparePendings = 256;
constexpr size_t kSparePendingEvents = 16;

std::unique_ptr<EventLog::Pending> EventLog::SparePending() {
  {
    std::lock_guard lock(spare_pending_mu_);
    if (!spare_pendings_.empty()) {
      std::unique_ptr<Pending> pending = std::move(spare_pendings_.back());
      spare_pendings_.pop_back();
      return pending;
    }
  }
  return std::make_unique<Pending>();
}

void EventLog::KeepSpare(std::unique_ptr<Pending> pending) {
  if (pending->prepared.capacity() > kSparePendingEvents || !pending->more_arenas.empty() ||
      pending->records.capacity() > kSparePendingEvents) {
    return;  // a large batch's memory goes now
  }
  pending->Reset();  // the hooks have published or discarded the group's records
  std::lock_guard lock(spare_pending_mu_);
  if (spare_pendings_.size() < kSparePendings) spare_pendings_.push_back(std::move(pending));
}

void EventLog::Recycle(std::vector<std::unique_ptr<StagedGroup>>& groups) {
  for (auto& group : groups) {
    if (group->batch.Data().capacity() > kSpareBatchBytes) continue;
    group->pendings.clear();  // emptied by Answer, which handed each append to KeepSpare
    group->hooks.clear();
    group->batch.Clear();
    group->before = group->after = LogHead{};
    group->appends = 0;
    group->error = group->outcome = Status::Ok();
    std::lock_guard lock(spare_mu_);
    if (spare_groups_.size() < kSpareGroups) spare_groups_.push_back(std::move(group));
  }
  groups.clear();
}

void EventLog::CommitGroup(StagedGroup& group) {
  if (!group.error.ok() || !group.has_records()) return;
  {
    std::lock_guard lock(failed_mu_);
    if (!failed_.ok()) return;  // nothing is written after a failure
  }
  // No fsync here: the syncer makes this write durable, while the writer stages the next.
  // RocksDB times the write's two parts for this thread while its perf level is raised, here
  // only (raised for the whole thread, it would time every lookup of the staging too), and
  // for one group in kTimedGroupEvery: the timers' clock reads cost the writer ~10% of its
  // CPU when every group was timed (docs/event-log.md, "The writer's time").
  const bool timed = groups_written_++ % kTimedGroupEvery == 0;
  if (timed) rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableTimeExceptForMutex);
  const rocksdb::PerfContext& perf = *rocksdb::get_perf_context();
  const uint64_t wal_before = perf.write_wal_time;
  const uint64_t memtable_before = perf.write_memtable_time;
  rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), &group.batch);
  if (timed) {
    write_wal_ns_.fetch_add(perf.write_wal_time - wal_before, std::memory_order_relaxed);
    write_memtable_ns_.fetch_add(perf.write_memtable_time - memtable_before,
                                 std::memory_order_relaxed);
    write_timed_appends_.fetch_add(group.appends, std::memory_order_relaxed);
    rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
  }
  if (!s.ok()) {
    std::lock_guard lock(failed_mu_);
    if (failed_.ok()) {
      failed_ = Status(ErrorCode::kIoError, "writing records " + std::to_string(group.before.seq + 1) +
                                                ".." + std::to_string(group.after.seq) + ": " +
                                                s.ToString());
    }
    return;
  }
}

Status EventLog::Sync(const std::vector<std::unique_ptr<StagedGroup>>& groups) {
  // One fsync makes every group written so far durable.
  const bool wrote = std::any_of(groups.begin(), groups.end(), [](const auto& g) {
    return g->error.ok() && g->has_records();
  });
  if (wrote && options_.durability == Durability::kDurable) {
    const auto sync_start = std::chrono::steady_clock::now();
    rocksdb::Status s = db_->SyncWAL();
    const auto sync_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::steady_clock::now() - sync_start)
                             .count();
    {
      std::lock_guard lock(head_mu_);
      stats_.syncs += 1;
      stats_.sync_ns += static_cast<uint64_t>(sync_ns);
    }
    if (!s.ok()) {
      std::lock_guard lock(failed_mu_);
      if (failed_.ok()) {
        failed_ = Status(ErrorCode::kIoError, "syncing the write-ahead log: " + s.ToString());
      }
    }
  }
  // After any write or sync error the head never moves again: later groups fail too, so no
  // projection publishes a change whose predecessor it discarded.
  return FailedStatus();
}

Status EventLog::FailedStatus() const {
  std::lock_guard lock(failed_mu_);
  return failed_;
}

void EventLog::Advance(StagedGroup& group, const Status& failed) {
  group.outcome = !group.error.ok() ? group.error : failed;
  if (group.outcome.ok() && group.has_records()) {
    {
      std::lock_guard lock(head_mu_);
      head_ = group.after;
      stats_.groups += 1;
      stats_.appends += group.appends;
      stats_.records += group.after.seq - group.before.seq;
    }
    for (FoldHook* hook : group.hooks) hook->Publish(group.after.seq);
    if (observer_) observer_(CommittedRecordsOf(group));
  } else if (!group.outcome.ok() && group.has_records()) {
    for (FoldHook* hook : group.hooks) hook->Discard(Head().seq);
  }
}

void EventLog::Answer(std::vector<std::unique_ptr<StagedGroup>>& groups) {
  uint64_t answered = 0;
  for (auto& staged : groups) {
    StagedGroup& group = *staged;
    for (auto& pending : group.pendings) {
      if (!group.outcome.ok() && !pending->rejected) pending->result = group.outcome;
      // Kept for the next append before its callback runs: the callback's own next append
      // (a client issuing from it) fills it again while its memory is in this core's cache.
      AppendCallback done = std::move(pending->done);
      Result<AppendResult> result = std::move(pending->result);
      KeepSpare(std::move(pending));
      done(std::move(result));
    }
    if (group.outcome.ok()) answered = std::max(answered, group.after.seq);
  }
  {
    std::lock_guard lock(head_mu_);
    answered_seq_ = std::max(answered_seq_, answered);
  }
  head_cv_.notify_all();
}

std::vector<CommittedRecord> EventLog::CommittedRecordsOf(StagedGroup& group) {
  std::vector<CommittedRecord> out;
  out.reserve(group.after.seq - group.before.seq);
  for (auto& pending : group.pendings) {
    if (pending->rejected || pending->replayed || !pending->result.ok()) continue;
    uint64_t seq = pending->result->first_seq;
    for (size_t i = 0; i < pending->prepared.size(); ++i) {
      out.push_back(CommittedRecord{seq++, pending->prepared[i].view(),
                                    pending->events[i].type, pending->events[i].job_type});
    }
  }
  return out;
}

void EventLog::SetCommitObserver(CommitObserver observer) {
  std::lock_guard write_lock(write_mu_);
  DrainPipeline();  // no group in flight sees half a change
  observer_ = std::move(observer);
}

void EventLog::DrainPipeline() {
  std::unique_lock lock(head_mu_);
  head_cv_.wait(lock, [&] {
    if (answered_seq_ == staged_head_.seq) return true;
    std::lock_guard failed_lock(failed_mu_);
    return !failed_.ok();
  });
}

Status EventLog::AddHook(FoldHook* hook, uint64_t hook_applied_seq) {
  std::lock_guard write_lock(write_mu_);
  DrainPipeline();
  const LogHead head = Head();
  if (hook_applied_seq > head.seq) {
    return Status(ErrorCode::kCorruption, "a projection is at seq " +
                                              std::to_string(hook_applied_seq) +
                                              ", past the log head " + std::to_string(head.seq));
  }
  // Catch the hook up in bounded batches, each made durable before the next.
  constexpr uint64_t kCatchUpBatch = 50'000;
  uint64_t next = hook_applied_seq + 1;
  while (next <= head.seq) {
    const uint64_t last = std::min(head.seq, next + kCatchUpBatch - 1);
    rocksdb::WriteBatch batch;
    Status error;
    std::deque<Record> records;  // alive until the hook has published or discarded them
    Status scanned = Scan(next, last, [&](uint64_t seq, std::string_view bytes) {
      auto record = DecodeRecord(bytes);
      if (!record.ok()) {
        error = Status(ErrorCode::kCorruption,
                       "record " + std::to_string(seq) + ": " + record.status().message());
        return false;
      }
      records.push_back(std::move(*record));
      error = hook->Fold(records.back(), batch);
      return error.ok();
    });
    if (error.ok()) error = scanned;
    if (error.ok()) {
      hook->FinishBatch(batch);
      rocksdb::WriteOptions write_options;
      write_options.sync = options_.durability == Durability::kDurable;
      rocksdb::Status written = db_->Write(write_options, &batch);
      if (!written.ok()) error = Status(ErrorCode::kIoError, written.ToString());
    }
    if (!error.ok()) {
      hook->Discard(next - 1);
      return error;
    }
    hook->Publish(last);
    next = last + 1;
  }
  hooks_.push_back(hook);
  return Status::Ok();
}

void EventLog::RemoveHook(FoldHook* hook) {
  std::lock_guard write_lock(write_mu_);
  DrainPipeline();  // no group in flight still names the hook
  hooks_.erase(std::remove(hooks_.begin(), hooks_.end(), hook), hooks_.end());
}

}  // namespace shardledger
