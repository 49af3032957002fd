// EventLog: the append path's first half — the caller's side (shape checks, encoding, the
// queue to the writer) and the writer's loop: it takes every queued append, stages them
// (event_log_stage.cc) and writes each group to RocksDB without an fsync; in buffered mode it
// also advances the head and publishes. The sync thread's half is in event_log_sync.cc.
#include <rocksdb/perf_context.h>
#include <rocksdb/perf_level.h>

#include <chrono>
#include <optional>
#include <unordered_set>

#include "events/event_log.h"
#include "events/event_log_internal.h"
#include "events/memory.h"
#include "events/parallel.h"

namespace shardledger {

namespace {

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

}  // namespace

bool ExpectedVersion::Holds(uint64_t actual) const {
  switch (kind) {
    case Kind::kAny:
      return true;
    case Kind::kNoStream:
      return actual == 0;
    case Kind::kExists:
      return actual > 0;
    case Kind::kExact:
      return actual == version;
  }
  return false;
}

std::string ExpectedVersion::ToString() const {
  switch (kind) {
    case Kind::kAny:
      return "any";
    case Kind::kNoStream:
      return "no stream";
    case Kind::kExists:
      return "exists";
    case Kind::kExact:
      return std::to_string(version);
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
    writer_stage_ns_.fetch_add(
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
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
      failed_ = Status(ErrorCode::kIoError,
                       "writing records " + std::to_string(group.before.seq + 1) + ".." +
                           std::to_string(group.after.seq) + ": " + s.ToString());
    }
    return;
  }
}

}  // namespace shardledger
