// LiveProjection<State>: a projection folded into the log's own WriteBatches and served to
// readers, for any State that is a pure fold of records (DESIGN.md section 3).
//
// State provides:
//   void Apply(const Record&, typename State::Touched*);      the fold
//   void WriteRows(const Touched&, rocksdb::WriteBatch&, rocksdb::ColumnFamilyHandle*) const;
//   std::string StatusRow() const;                            written under "status" once a batch
//   Status LoadRow(std::string_view key, std::string_view value);
//   uint64_t applied_seq() const;
//   static bool Concerns(const Record&);     false: Apply would change nothing but the seq
//   void SkipTo(uint64_t seq);               advances the applied seq past such records
// and may provide
//   void ApplyAll(std::span<const Record* const>);  Apply on each, for a batch at once
//
// Two copies of the state: `working_`, which the log's writer folds into as it stages
// records, and `published_`, which readers see and which holds only durable records (the log
// calls Publish once they are). A record is folded twice, once into each: the price of
// readers never seeing a record that could still be lost.
#pragma once

#include <algorithm>
#include <deque>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

#include "events/event_log.h"
#include "events/fold_hook.h"

namespace shardledger {

template <typename State>
class LiveProjection : public FoldHook {
 public:
  ~LiveProjection() override {
    if (joined_) log_.RemoveHook(this);
  }

  Status Fold(const Record& record, rocksdb::WriteBatch& batch) override {
    std::lock_guard lock(working_mu_);
    if (!State::Concerns(record)) {
      working_.SkipTo(record.seq);  // nothing to stage: Publish advances the seq alone
      return Status::Ok();
    }
    typename State::Touched touched;
    working_.Apply(record, &touched);
    working_.WriteRows(touched, batch, cf_);
    staged_.push_back(&record);  // the log keeps it alive until Publish or Discard
    return Status::Ok();
  }

  void FinishBatch(rocksdb::WriteBatch& batch) override {
    std::lock_guard lock(working_mu_);
    batch.Put(cf_, "status", working_.StatusRow());  // once a batch, with the applied seq
  }

  void Publish(uint64_t through_seq) override {
    std::vector<const Record*> ready;
    {
      std::lock_guard lock(working_mu_);
      while (!staged_.empty() && staged_.front()->seq <= through_seq) {
        ready.push_back(staged_.front());
        staged_.pop_front();
      }
    }
    std::unique_lock lock(mu_);
    if constexpr (requires(State& state) { state.ApplyAll(std::span<const Record* const>()); }) {
      published_.ApplyAll(ready);
    } else {
      for (const Record* record : ready) published_.Apply(*record, nullptr);
    }
    published_.SkipTo(through_seq);
  }

  void Discard(uint64_t after_seq) override {
    std::lock_guard lock(working_mu_);
    while (!staged_.empty() && staged_.back()->seq > after_seq) staged_.pop_back();
    // The working state is the published one plus what is still staged.
    std::shared_lock read(mu_);
    working_ = published_;
    for (const Record* record : staged_) working_.Apply(*record, nullptr);
    working_.SkipTo(std::max(after_seq, working_.applied_seq()));
  }

  // Runs `read` on the published state under a shared lock and returns what it returns.
  template <typename F>
  auto Read(F&& read) const {
    std::shared_lock lock(mu_);
    return read(static_cast<const State&>(published_));
  }
  Hash256 Digest() const {
    return Read([](const State& s) { return s.Digest(); });
  }
  // Bytes of the persisted rows (keys and values, before compression).
  Result<uint64_t> PersistedBytes() const {
    uint64_t bytes = 0;
    std::unique_ptr<rocksdb::Iterator> it(log_.db()->NewIterator(rocksdb::ReadOptions(), cf_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) bytes += it->key().size() + it->value().size();
    if (!it->status().ok()) return Status(ErrorCode::kIoError, it->status().ToString());
    return bytes;
  }

 protected:
  LiveProjection(EventLog& log, const char* column_family)
      : log_(log), column_family_(column_family), cf_(log.ColumnFamily(column_family)) {}

  // Loads the persisted rows and joins the log at its head (folding what it missed).
  Status Join() {
    if (cf_ == nullptr) {
      return Status(ErrorCode::kBadRequest,
                    std::string("the log was opened without column family ") + column_family_);
    }
    std::unique_ptr<rocksdb::Iterator> it(log_.db()->NewIterator(rocksdb::ReadOptions(), cf_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      SL_RETURN_IF_ERROR(published_.LoadRow(it->key().ToStringView(), it->value().ToStringView()));
    }
    if (!it->status().ok()) {
      return Status(ErrorCode::kIoError,
                    "loading " + std::string(column_family_) + ": " + it->status().ToString());
    }
    working_ = published_;
    SL_RETURN_IF_ERROR(log_.AddHook(this, published_.applied_seq()));
    joined_ = true;
    return Status::Ok();
  }

 private:
  EventLog& log_;
  const char* column_family_;
  rocksdb::ColumnFamilyHandle* cf_;
  std::mutex working_mu_;         // Fold, FinishBatch, Discard
  State working_;                 // published_ plus every staged record
  std::deque<const Record*> staged_;  // folded, not yet published, in seq order (fold_hook.h)
  mutable std::shared_mutex mu_;  // readers and Publish
  State published_;
  bool joined_ = false;
};

// The State folded from the log's records 1..to_seq: a rebuild (to the head) or an as-of
// view. Compare its Digest() with the live one to verify a rebuild.
template <typename State>
Result<State> FoldLog(const EventLog& log, uint64_t to_seq = UINT64_MAX);

}  // namespace shardledger

#include "events/codec.h"

namespace shardledger {

template <typename State>
Result<State> FoldLog(const EventLog& log, uint64_t to_seq) {
  State state;
  Status error;
  SL_RETURN_IF_ERROR(log.Scan(1, to_seq, [&](uint64_t seq, std::string_view bytes) {
    auto record = DecodeRecord(bytes);
    if (!record.ok()) {
      error = Status(ErrorCode::kCorruption,
                     "record " + std::to_string(seq) + ": " + record.status().message());
      return false;
    }
    state.Apply(*record, nullptr);
    return true;
  }));
  SL_RETURN_IF_ERROR(error);
  return state;
}

}  // namespace shardledger
