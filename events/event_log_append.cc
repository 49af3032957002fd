// EventLog: the append path — the caller's queue, the single writer, and group commit.
#include <algorithm>
#include <unordered_set>

#include "events/chain.h"
#include "events/event_log.h"
#include "events/keys.h"

namespace shardledger {

// One caller's batch waiting for the writer. Lives on the caller's stack; the writer calls
// Finish() once `result` is final and never touches the Pending afterwards.
//
// The wait is a condition variable, not a std::binary_semaphore: libstdc++'s semaphore
// spins with sched_yield before it sleeps, and 64 spinning callers starve the writer.
struct EventLog::Pending {
  AppendBatch batch;
  Result<AppendResult> result = Status(ErrorCode::kUnavailable, "not processed");
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;

  void Wait() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done; });
  }
  void Finish() {
    std::lock_guard lock(mu);
    done = true;
    cv.notify_one();  // under the lock: the caller may destroy the Pending once it sees done
  }

  bool rejected = false;  // failed validation: its result says why, whatever the group does
  bool replayed = false;  // every event id was recorded: its result holds their seqs
};

// What the writer knows about the group it is building, beyond the committed state.
struct EventLog::GroupState {
  std::unordered_map<std::string, uint64_t> versions;  // stream -> version after the group
  std::unordered_map<Id128, uint64_t, Id128Hash> ids;  // event id -> seq, new in the group
  uint64_t seq = 0;                                    // last seq assigned
  Hash256 hash{};                                      // hash of that record
  int64_t timestamp_ns = 0;
};

namespace {

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
  std::unordered_set<Id128, Id128Hash> ids;
  ids.reserve(batch.events.size());
  for (const auto& event : batch.events) {
    SL_RETURN_IF_ERROR(check_stream(event.stream));
    if (IsZero(event.event_id)) return BadBatch("an event id is all zeros");
    if (!ids.insert(event.event_id).second) {
      return BadBatch("event id " + ToHex(event.event_id) + " appears twice in one append");
    }
  }
  std::unordered_set<std::string_view> conditioned;
  for (const auto& expectation : batch.expectations) {
    SL_RETURN_IF_ERROR(check_stream(expectation.stream));
    if (!conditioned.insert(expectation.stream).second) {
      return BadBatch("stream " + expectation.stream + " has two expected versions");
    }
  }
  return Status::Ok();
}

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

Result<AppendResult> EventLog::Append(AppendBatch batch) {
  SL_RETURN_IF_ERROR(CheckShape(batch, options_.max_batch_events));
  Pending pending;
  pending.batch = std::move(batch);
  {
    std::lock_guard lock(queue_mu_);
    if (stopping_) return Status(ErrorCode::kUnavailable, "the log is closing");
    queue_.push_back(&pending);
  }
  queue_cv_.notify_one();
  pending.Wait();
  return std::move(pending.result);
}

void EventLog::WriterLoop() {
  std::vector<Pending*> group;
  for (;;) {
    {
      std::unique_lock lock(queue_mu_);
      queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and every queued append is answered
      group.assign(queue_.begin(), queue_.end());
      queue_.clear();
    }
    {
      std::lock_guard write_lock(write_mu_);
      CommitGroup(group);
    }
    // Acknowledge only now: every staged record is durable, or the group failed.
    for (Pending* pending : group) pending->Finish();
    group.clear();
  }
}

rocksdb::WriteOptions EventLog::WriteOptionsFor() const {
  rocksdb::WriteOptions write_options;
  write_options.sync = options_.durability == Durability::kDurable;
  return write_options;
}

Result<uint64_t> EventLog::CurrentVersion(std::string_view stream, GroupState& group) {
  std::string key(stream);
  if (auto it = group.versions.find(key); it != group.versions.end()) return it->second;
  if (auto it = stream_cache_.find(key); it != stream_cache_.end()) return it->second;
  SL_ASSIGN_OR_RETURN(uint64_t version, StoredStreamVersion(stream));
  if (stream_cache_.size() >= options_.stream_cache_limit) stream_cache_.clear();
  stream_cache_.emplace(std::move(key), version);
  return version;
}

Status EventLog::Validate(Pending& pending, GroupState& group) {
  const AppendBatch& batch = pending.batch;
  // Idempotency: a batch whose event ids are all recorded is answered with their seqs.
  std::vector<uint64_t> seqs;
  size_t known = 0;
  for (const auto& event : batch.events) {
    std::optional<uint64_t> seq;
    if (auto it = group.ids.find(event.event_id); it != group.ids.end()) {
      seq = it->second;
    } else {
      SL_ASSIGN_OR_RETURN(seq, StoredEventSeq(event.event_id));
    }
    if (seq) ++known;
    seqs.push_back(seq.value_or(0));
  }
  if (known == batch.events.size()) {
    AppendResult result;
    result.replayed = true;
    result.first_seq = *std::min_element(seqs.begin(), seqs.end());
    result.last_seq = *std::max_element(seqs.begin(), seqs.end());
    result.seqs = std::move(seqs);
    pending.result = std::move(result);
    pending.replayed = true;
    return Status::Ok();
  }
  if (known > 0) {
    return BadBatch(std::to_string(known) + " of the " + std::to_string(batch.events.size()) +
                    " event ids of this append are already recorded; an append is repeated "
                    "whole or not at all");
  }
  for (const auto& expectation : batch.expectations) {
    SL_ASSIGN_OR_RETURN(uint64_t actual, CurrentVersion(expectation.stream, group));
    if (!expectation.expected.Holds(actual)) {
      return Status(ErrorCode::kWrongExpectedVersion,
                    "stream " + expectation.stream + ": expected version " +
                        expectation.expected.ToString() + ", actual " +
                        (actual == 0 ? std::string("no stream") : std::to_string(actual)));
    }
  }
  return Status::Ok();
}

void EventLog::Stage(Pending& pending, GroupState& group, rocksdb::WriteBatch& batch,
                     Status& hook_error) {
  const AppendBatch& append = pending.batch;
  AppendResult result;
  result.first_seq = group.seq + 1;
  Record record;
  record.timestamp_ns = group.timestamp_ns;
  record.actor = append.actor;
  record.correlation_id = append.correlation_id;
  record.causation_id = append.causation_id;
  for (const auto& event : append.events) {
    // Validation looked every stream of the expectations up; streams written without an
    // expectation are looked up here. A lookup failure fails the group (see CommitGroup).
    auto current = CurrentVersion(event.stream, group);
    if (!current.ok()) {
      hook_error = current.status();
      return;
    }
    record.seq = ++group.seq;
    record.stream = event.stream;
    record.stream_version = *current + 1;
    record.event_id = event.event_id;
    record.prev_hash = group.hash;
    record.payload = event.payload;
    EncodedRecord encoded = SealRecord(record);
    group.hash = record.hash;
    group.versions[event.stream] = record.stream_version;
    group.ids.emplace(event.event_id, record.seq);

    const std::string seq_key = BigEndian64(record.seq);
    batch.Put(log_cf_, seq_key, encoded.bytes);
    batch.Put(streams_cf_, StreamKey(event.stream, record.stream_version), seq_key);
    batch.Put(ids_cf_,
              rocksdb::Slice(reinterpret_cast<const char*>(event.event_id.data()),
                             event.event_id.size()),
              seq_key);
    for (FoldHook* hook : hooks_) {
      Status folded = hook->Fold(record, batch);
      if (!folded.ok() && hook_error.ok()) hook_error = folded;
    }
  }
  result.last_seq = group.seq;
  pending.result = std::move(result);
}

void EventLog::CommitGroup(std::vector<Pending*>& group) {
  if (!failed_.ok()) {
    for (Pending* pending : group) {
      pending->result = Status(ErrorCode::kUnavailable,
                               "the log stopped after a write error: " + failed_.message());
    }
    return;
  }
  GroupState state;
  uint64_t appends = 0;
  const LogHead head = Head();
  state.seq = head.seq;
  state.hash = head.hash;
  // One timestamp per group, never behind an earlier record's.
  state.timestamp_ns = std::max(options_.clock(), last_timestamp_ns_);

  rocksdb::WriteBatch batch;
  Status group_error;  // a failure that is nobody's batch's fault fails the whole group
  bool any_staged = false;
  for (Pending* pending : group) {
    Status valid = Validate(*pending, state);
    if (!valid.ok()) {
      if (valid.code() == ErrorCode::kIoError || valid.code() == ErrorCode::kCorruption) {
        group_error = valid;
        break;
      }
      pending->result = valid;
      pending->rejected = true;
      continue;
    }
    if (pending->replayed) continue;
    Stage(*pending, state, batch, group_error);
    any_staged = true;
    ++appends;
    if (!group_error.ok()) break;
  }

  if (group_error.ok() && any_staged) {
    std::string head_value = BigEndian64(state.seq);
    head_value.append(reinterpret_cast<const char*>(state.hash.data()), state.hash.size());
    batch.Put(meta_cf_, "head", head_value);
    rocksdb::Status written = db_->Write(WriteOptionsFor(), &batch);
    if (!written.ok()) {
      group_error = Status(ErrorCode::kIoError, "writing the group: " + written.ToString());
      failed_ = group_error;
    }
  }

  if (!group_error.ok()) {
    for (FoldHook* hook : hooks_) hook->Discard();
    for (Pending* pending : group) {
      if (!pending->rejected && !pending->replayed) pending->result = group_error;
    }
    return;
  }
  if (!any_staged) return;

  for (auto& [stream, version] : state.versions) {
    if (stream_cache_.size() >= options_.stream_cache_limit) stream_cache_.clear();
    stream_cache_[stream] = version;
  }
  last_timestamp_ns_ = state.timestamp_ns;
  {
    std::lock_guard lock(head_mu_);
    stats_.groups += 1;
    stats_.appends += appends;
    stats_.records += state.seq - head.seq;
    head_ = LogHead{state.seq, state.hash};
  }
  for (FoldHook* hook : hooks_) hook->Publish();
}

Status EventLog::AddHook(FoldHook* hook, uint64_t hook_applied_seq) {
  std::lock_guard write_lock(write_mu_);
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
    SL_RETURN_IF_ERROR(Scan(next, last, [&](uint64_t seq, std::string_view bytes) {
      auto record = DecodeRecord(bytes);
      if (!record.ok()) {
        error = Status(ErrorCode::kCorruption,
                       "record " + std::to_string(seq) + ": " + record.status().message());
        return false;
      }
      error = hook->Fold(*record, batch);
      return error.ok();
    }));
    if (error.ok()) {
      rocksdb::Status written = db_->Write(WriteOptionsFor(), &batch);
      if (!written.ok()) error = Status(ErrorCode::kIoError, written.ToString());
    }
    if (!error.ok()) {
      hook->Discard();
      return error;
    }
    hook->Publish();
    next = last + 1;
  }
  hooks_.push_back(hook);
  return Status::Ok();
}

void EventLog::RemoveHook(FoldHook* hook) {
  std::lock_guard write_lock(write_mu_);
  hooks_.erase(std::remove(hooks_.begin(), hooks_.end(), hook), hooks_.end());
}

}  // namespace shardledger
