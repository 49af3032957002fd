#include "projections/shard_map.h"

#include "events/codec.h"

namespace shardledger {

ShardMap::ShardMap(EventLog& log) : log_(log), cf_(log.ColumnFamily(kColumnFamily)) {}

Result<std::unique_ptr<ShardMap>> ShardMap::Open(EventLog& log) {
  std::unique_ptr<ShardMap> map(new ShardMap(log));
  if (map->cf_ == nullptr) {
    return Status(ErrorCode::kBadRequest,
                  std::string("the log was opened without column family ") + kColumnFamily);
  }
  std::unique_ptr<rocksdb::Iterator> it(log.db()->NewIterator(rocksdb::ReadOptions(), map->cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    SL_RETURN_IF_ERROR(map->published_.LoadRow(it->key().ToStringView(), it->value().ToStringView()));
  }
  if (!it->status().ok()) {
    return Status(ErrorCode::kIoError, "loading the shard map: " + it->status().ToString());
  }
  map->working_ = map->published_;
  SL_RETURN_IF_ERROR(log.AddHook(map.get(), map->published_.status().applied_seq));
  map->joined_ = true;
  return map;
}

ShardMap::~ShardMap() {
  if (joined_) log_.RemoveHook(this);
}

void ShardMap::WriteRows(const ShardMapTouched& touched, rocksdb::WriteBatch& batch) const {
  for (const std::string& id : touched.workflows) {
    if (auto row = working_.WorkflowRow(id)) {
      batch.Put(cf_, ShardMapState::WorkflowKey(id), *row);
    } else {
      batch.Delete(cf_, ShardMapState::WorkflowKey(id));
    }
  }
  for (const std::string& id : touched.tombstones) {
    if (auto tomb = working_.TombstoneRow(id)) {
      batch.Put(cf_, ShardMapState::TombstoneKey(id), *tomb);
    } else {
      batch.Delete(cf_, ShardMapState::TombstoneKey(id));
    }
  }
  for (uint32_t shard : touched.reports) {
    if (auto row = working_.ReportRow(shard)) batch.Put(cf_, ShardMapState::ReportKey(shard), *row);
  }
}

void ShardMap::FinishBatch(rocksdb::WriteBatch& batch) {
  std::lock_guard lock(working_mu_);
  batch.Put(cf_, "status", *working_.StatusRow());  // once a batch, with the applied seq
}

Status ShardMap::Fold(const Record& record, rocksdb::WriteBatch& batch) {
  std::lock_guard lock(working_mu_);
  ShardMapTouched touched;
  working_.Apply(record, &touched);
  WriteRows(touched, batch);
  staged_.push_back(record);
  return Status::Ok();
}

void ShardMap::Publish(uint64_t through_seq) {
  std::deque<Record> ready;
  {
    std::lock_guard lock(working_mu_);
    while (!staged_.empty() && staged_.front().seq <= through_seq) {
      ready.push_back(std::move(staged_.front()));
      staged_.pop_front();
    }
  }
  std::unique_lock lock(mu_);
  for (const Record& record : ready) published_.Apply(record);
}

void ShardMap::Discard(uint64_t after_seq) {
  std::lock_guard lock(working_mu_);
  while (!staged_.empty() && staged_.back().seq > after_seq) staged_.pop_back();
  // The working state is the published one plus what is still staged.
  std::shared_lock read(mu_);
  working_ = published_;
  for (const Record& record : staged_) working_.Apply(record);
}

Result<uint64_t> ShardMap::PersistedBytes() const {
  uint64_t bytes = 0;
  std::unique_ptr<rocksdb::Iterator> it(log_.db()->NewIterator(rocksdb::ReadOptions(), cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) bytes += it->key().size() + it->value().size();
  if (!it->status().ok()) return Status(ErrorCode::kIoError, it->status().ToString());
  return bytes;
}

Result<ShardMapState> FoldShardMap(const EventLog& log, uint64_t to_seq) {
  ShardMapState state;
  Status error;
  SL_RETURN_IF_ERROR(log.Scan(1, to_seq, [&](uint64_t seq, std::string_view bytes) {
    auto record = DecodeRecord(bytes);
    if (!record.ok()) {
      error = Status(ErrorCode::kCorruption,
                     "record " + std::to_string(seq) + ": " + record.status().message());
      return false;
    }
    state.Apply(*record);
    return true;
  }));
  SL_RETURN_IF_ERROR(error);
  return state;
}

Result<uint64_t> SeqAtTime(const EventLog& log, int64_t timestamp_ns) {
  uint64_t last = 0;
  Status error;
  SL_RETURN_IF_ERROR(log.Scan(1, UINT64_MAX, [&](uint64_t seq, std::string_view bytes) {
    auto record = DecodeRecord(bytes);
    if (!record.ok()) {
      error = record.status();
      return false;
    }
    if (record->timestamp_ns > timestamp_ns) return false;  // timestamps never go back
    last = seq;
    return true;
  }));
  SL_RETURN_IF_ERROR(error);
  return last;
}

}  // namespace shardledger
