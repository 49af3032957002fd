// ShardMap: the live, persisted shard map projection (DESIGN.md section 3).
//
// It folds every appended record in the append's own WriteBatch (column family
// "proj.shardmap"), so after any crash it sits exactly at the log head. Two copies of the
// state: `working_`, which the log's writer folds into as it stages records, and
// `published_`, which readers see and which only ever holds durable records (the log calls
// Publish once they are).
#pragma once

#include <deque>
#include <memory>
#include <mutex>
#include <shared_mutex>

#include "events/event_log.h"
#include "events/fold_hook.h"
#include "projections/shard_map_state.h"

namespace shardledger {

class ShardMap : public FoldHook {
 public:
  static constexpr const char* kColumnFamily = "proj.shardmap";

  // Loads the persisted state and joins `log` at its head (folding what it missed). The log
  // must have been opened with kColumnFamily among its projection column families.
  static Result<std::unique_ptr<ShardMap>> Open(EventLog& log);
  ~ShardMap() override;  // leaves the log

  Status Fold(const Record& record, rocksdb::WriteBatch& batch) override;
  void FinishBatch(rocksdb::WriteBatch& batch) override;
  void Publish(uint64_t through_seq) override;
  void Discard(uint64_t after_seq) override;

  // Runs `read` on the published state under a shared lock and returns what it returns.
  template <typename F>
  auto Read(F&& read) const {
    std::shared_lock lock(mu_);
    return read(static_cast<const ShardMapState&>(published_));
  }
  RoutingStatus Routing() const {
    return Read([](const ShardMapState& s) { return s.status(); });
  }
  Hash256 Digest() const {
    return Read([](const ShardMapState& s) { return s.Digest(); });
  }
  // Approximate bytes the persisted rows take (keys and values, before compression).
  Result<uint64_t> PersistedBytes() const;

 private:
  explicit ShardMap(EventLog& log);
  void WriteRows(const ShardMapTouched& touched, rocksdb::WriteBatch& batch) const;

  EventLog& log_;
  rocksdb::ColumnFamilyHandle* cf_;
  std::mutex working_mu_;              // Fold and Discard
  ShardMapState working_;              // published_ plus every staged record
  std::deque<Record> staged_;          // folded, not yet published, in seq order
  mutable std::shared_mutex mu_;       // readers and Publish
  ShardMapState published_;
  bool joined_ = false;
};

// The shard map folded from the log's records 1..to_seq: a rebuild (to the head) or an
// as-of view. Compare Digest() with the live one to verify a rebuild.
Result<ShardMapState> FoldShardMap(const EventLog& log, uint64_t to_seq = UINT64_MAX);

// The last seq whose record was appended at or before `timestamp_ns` (0: none).
Result<uint64_t> SeqAtTime(const EventLog& log, int64_t timestamp_ns);

}  // namespace shardledger
