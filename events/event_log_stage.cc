// EventLog: the writer's staging of a group — each append validated (idempotency, expected
// versions) against the stream versions as staged so far, its records placed (seq, version,
// timestamp, chain hash patched into the caller's encoding), folded into the projections'
// hooks, and written into the group's WriteBatch with the index rows.
#include <algorithm>
#include <atomic>
#include <cstring>
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

// The answer to an append whose every event id is recorded, at `seqs` (one per event).
AppendResult Replayed(std::vector<uint64_t> seqs) {
  AppendResult result;
  result.replayed = true;
  result.first_seq = *std::min_element(seqs.begin(), seqs.end());
  result.last_seq = *std::max_element(seqs.begin(), seqs.end());
  result.seqs = std::move(seqs);
  return result;
}

// Whether an append's event id is looked up with the other such ids of its group
// (StoredIdLookup) rather than on its own: a one-event append whose id the caller gave.
bool IdLookedUpWithGroup(const AppendBatch& batch) {
  return batch.events.size() == 1 && !batch.ids_minted;
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

void StoredIdLookup::Run(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf) {
  if (asked_.empty()) return;
  // Sorted, so that an id asked twice in the group (a client's retry queued behind the
  // first) is looked up once.
  std::sort(asked_.begin(), asked_.end(),
            [](const Asked& a, const Asked& b) { return *a.id < *b.id; });
  keys_.clear();
  for (size_t i = 0; i < asked_.size(); ++i) {
    if (i == 0 || *asked_[i].id != *asked_[i - 1].id) {
      keys_.emplace_back(reinterpret_cast<const char*>(asked_[i].id->data()), asked_[i].id->size());
    }
  }
  values_.clear();
  values_.resize(keys_.size());
  statuses_.assign(keys_.size(), rocksdb::Status());
  db.MultiGet(rocksdb::ReadOptions(), cf, keys_.size(), keys_.data(), values_.data(),
              statuses_.data(), /*sorted_input=*/true);
  size_t key = 0;
  for (size_t i = 0; i < asked_.size(); ++i) {
    if (i > 0 && *asked_[i].id != *asked_[i - 1].id) ++key;
    Answer& answer = answers_[asked_[i].index];
    Result<uint64_t> seq = StoredSeqOf(statuses_[key], values_[key].ToStringView());
    if (seq.ok()) {
      answer.seq = *seq;
    } else {
      answer.error = seq.status();
    }
  }
  // A value may pin a memtable or a cached block: released now, not at the next group's
  // lookup, by when a flush may have retired what it pins.
  for (rocksdb::PinnableSlice& value : values_) value.Reset();
}

Status EventLog::Validate(Pending& pending, GroupState& group, size_t index) {
  const AppendBatch& batch = pending.batch;
  // Idempotency: a batch whose event ids are all recorded is answered with their seqs. The
  // group's earlier appends are not in RocksDB yet; every earlier group is.
  const size_t n = batch.events.size();
  if (IdLookedUpWithGroup(batch)) {
    // Most appends carry one event: its id was looked up with the group's others
    // (StageGroup), and no vectors here.
    const Id128& id = batch.events[0].event_id;
    uint64_t seq = group.ids->Find(id);
    if (seq == 0) {
      const StoredIdLookup::Answer& stored = stored_ids_->For(index);
      if (!stored.error.ok()) return stored.error;
      seq = stored.seq;
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
      SL_ASSIGN_OR_RETURN(seqs[asked[k]], StoredSeqOf(statuses[k], values[k].ToStringView()));
    }
  }
  const size_t known = static_cast<size_t>(
      std::count_if(seqs.begin(), seqs.end(), [](uint64_t s) { return s != 0; }));
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

  // The one-event appends' ids, looked up together.
  stored_ids_->Reset(staged->pendings.size());
  for (size_t p = 0; p < staged->pendings.size(); ++p) {
    const AppendBatch& batch = staged->pendings[p]->batch;
    if (IdLookedUpWithGroup(batch)) stored_ids_->Ask(p, batch.events[0].event_id);
  }
  stored_ids_->Run(*db_, ids_cf_);

  for (size_t p = 0; p < staged->pendings.size(); ++p) {
    auto& pending = staged->pendings[p];
    Status valid = Validate(*pending, state, p);
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

}  // namespace shardledger
