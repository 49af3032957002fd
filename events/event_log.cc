// EventLog: opening (RocksDB's options, the column families) and recovery, closing, the head
// and the stats. Reads are in event_log_read.cc; appending in event_log_append.cc (the caller
// and the writer), event_log_stage.cc (staging a group) and event_log_sync.cc (the sync thread).
#include "events/event_log.h"

#include "events/event_log_internal.h"

#include <pthread.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>

#include <algorithm>
#include <chrono>

#include "events/chain.h"
#include "events/codec.h"
#include "events/keys.h"
#include "events/memtable_memory.h"
#include "events/prefix_bucket_memtable.h"

namespace shardledger {

namespace {

constexpr char kLogCf[] = "log";
constexpr char kStreamsCf[] = "streams";
constexpr char kIdsCf[] = "ids";
constexpr char kMetaCf[] = "meta";
constexpr char kHeadKey[] = "head";

// A `streams` key without its last byte: a stream's version rows go to one memtable bucket per
// 256 versions. On RocksDB's hash-linklist memtable (until 2026-12-07) inserting a version
// row walked its bucket's skiplist twice (to place it, and once more for Debian's librocksdb,
// which is built with assertions on and checks `!Contains(key)`); with one bucket per stream,
// a busy stream's skiplist grew to hundreds of thousands of rows and that second walk, from
// the top through nodes long out of cache, was a fifth of the writer's time. A bucket of 256
// rows stays a few levels high and in cache. Our own memtable (PrefixBucketMemtable) links a
// stream's next version at its bucket's tail without a walk; a bucket of 256 rows keeps the
// rest (an insert out of order, a read's seek) short. Reads of a stream seek once per bucket
// (ReadStream). (Until 2026-12 the prefix was the whole stream: ".2"; the name changed
// with it, so RocksDB ignores prefix filters built by the old one.)
class StreamOfKey : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "shardledger.StreamOfKey.3"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), key.size() - 1);
  }
  bool InDomain(const rocksdb::Slice& key) const override { return key.size() > 9; }
};

rocksdb::ColumnFamilyOptions CfOptions(std::string_view name) {
  rocksdb::ColumnFamilyOptions cf;
  rocksdb::BlockBasedTableOptions table;
  if (name == kIdsCf || name == kStreamsCf) {
    // Point lookups of keys that mostly do not exist (new event ids, new streams): a bloom
    // filter in SST files answers those without a disk read. The other families are not
    // probed that way (the log is read by seq, `meta` holds a few rows, a projection's rows
    // are read back whole when it loads): a filter there would cost an insert per row for
    // nothing. No memtable bloom filter: the hashed memtable's bucket array already answers
    // "absent" with one probe, and the filter cost two more random writes per row (prefix
    // and whole key) — ~0.2 s of a shard-count change's 0.7 s RocksDB write.
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  }
  if (name == kIdsCf) {
    // Event ids are only ever looked up whole: a memtable hashed by the whole id (16 bytes,
    // every key of the family) puts each in a slot of its own, seldom shared, and inserts it
    // without walking a skiplist. The hash takes all 16 bytes, not the first 8 as until
    // 2026-12-07: ids that share their leading bytes (a client's counter-based ids, UUIDv7s or
    // ULIDs of one instant) piled into one bucket. The memtable is our own since the evening
    // of 2026-12-07 (RocksDB's hash-linklist before): a flush sorts its ids on their bytes in
    // a flat array, where the hash-linklist built a skiplist of them: 1M ids flush in ~0.8 s
    // instead of 6–8 s (docs/event-log.md, "RocksDB settings").
    cf.prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(16));
    cf.memtable_factory = PrefixBucketMemtable(size_t{1} << 20);
  }
  if (name == kStreamsCf) {
    // Keys of new streams are as random as their names: hash the memtable by stream (256
    // versions a bucket), so a stream's rows share a bucket and reads within one stream stay
    // ordered. Its next version goes at its bucket's tail (events/prefix_bucket_memtable.h).
    cf.prefix_extractor = std::make_shared<StreamOfKey>();
    cf.memtable_factory = PrefixBucketMemtable(size_t{1} << 20);
  }
  if (name == kLogCf || name == kIdsCf || name == kStreamsCf) {
    // Every append writes a row to each of these three: their memtables take their memory in
    // huge pages (events/memtable_memory.h).
    cf.memtable_factory = HugePageMemtable(cf.memtable_factory);
  }
  table.block_cache = rocksdb::NewLRUCache(64 << 20);
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf.write_buffer_size = 64 << 20;
  return cf;
}

}  // namespace

std::string_view DurabilityName(Durability durability) {
  return durability == Durability::kDurable ? "durable" : "buffered";
}

std::optional<Durability> ParseDurability(std::string_view name) {
  if (name == "durable") return Durability::kDurable;
  if (name == "buffered") return Durability::kBuffered;
  return std::nullopt;
}

EventLog::EventLog(std::string dir, EventLogOptions options)
    : dir_(std::move(dir)),
      options_(std::move(options)),
      group_ids_(std::make_unique<GroupIds>()),
      stored_ids_(std::make_unique<StoredIdLookup>()) {
  writer_poll_.set_limit(options_.queue_poll);
  // In a durable log the sync thread seldom waits under load (the writer has written the next
  // groups by the time an fsync returns), and its polling took a vCPU from a lone blocking
  // caller and the writer between them: durable_append_1 ran ~7% slower with it.
  sync_queue_.poll.set_limit(options_.durability == Durability::kBuffered
                                 ? options_.queue_poll
                                 : std::chrono::microseconds(0));
}

Result<std::unique_ptr<EventLog>> EventLog::Open(const std::string& dir, EventLogOptions options) {
  if (!options.clock) {
    options.clock = [] {
      return std::chrono::duration_cast<std::chrono::nanoseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
  std::unique_ptr<EventLog> log(new EventLog(dir, std::move(options)));
  SL_RETURN_IF_ERROR(log->OpenDb());
  SL_RETURN_IF_ERROR(log->RecoverHead());
  // Named threads, so `top -H` and profilers tell the pipeline's stages apart.
  log->writer_ = std::thread([raw = log.get()] {
    pthread_setname_np(pthread_self(), "sl-log-writer");
    raw->WriterLoop();
  });
  log->syncer_ = std::thread([raw = log.get()] {
    pthread_setname_np(pthread_self(), "sl-log-sync");
    raw->SyncLoop();
  });
  return log;
}

Status EventLog::OpenDb() {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  db_options.max_background_jobs = 2;
  db_options.bytes_per_sync = 1 << 20;
  // One thread writes; the hash memtable of `ids` does not take concurrent inserts anyway.
  db_options.allow_concurrent_memtable_write = false;
  // Only a durable log fsyncs its write-ahead log; a buffered one would pay for the zeros
  // and gain nothing.
  if (options_.durability == Durability::kDurable && options_.wal_prefill_bytes > 0) {
    file_system_ = std::make_shared<WalPrefillFileSystem>(
        rocksdb::FileSystem::Default(),
        WalPrefillOptions{options_.wal_prefill_bytes, options_.wal_prefill_bytes / 4});
    env_ = rocksdb::NewCompositeEnv(file_system_);
    db_options.env = env_.get();
  }

  // Open every column family the directory has (a tool may open a log whose projections it
  // does not know) plus the ones this process needs.
  std::vector<std::string> names;
  rocksdb::Status listed = rocksdb::DB::ListColumnFamilies(db_options, dir_, &names);
  if (!listed.ok()) names = {rocksdb::kDefaultColumnFamilyName};
  for (const char* core : {kLogCf, kStreamsCf, kIdsCf, kMetaCf}) names.emplace_back(core);
  for (const auto& extra : options_.projection_column_families) names.push_back(extra);
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& name : names) descriptors.emplace_back(name, CfOptions(name));
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, dir_, descriptors, &handles_, &raw);
  if (!s.ok()) return FromRocks(s, "opening the log at " + dir_);
  db_.reset(raw);
  for (size_t i = 0; i < names.size(); ++i) by_name_[names[i]] = handles_[i];
  log_cf_ = by_name_[kLogCf];
  streams_cf_ = by_name_[kStreamsCf];
  ids_cf_ = by_name_[kIdsCf];
  meta_cf_ = by_name_[kMetaCf];
  return Status::Ok();
}

Status EventLog::RecoverHead() {
  std::string head_value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_cf_, kHeadKey, &head_value);
  const bool has_head = s.ok();
  if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "reading the log head");
  if (has_head && head_value.size() != 8 + 32) {
    return Status(ErrorCode::kCorruption,
                  "stored head has " + std::to_string(head_value.size()) + " bytes, expected 40");
  }

  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), log_cf_));
  it->SeekToLast();
  if (!it->status().ok()) return FromRocks(it->status(), "reading the last record");
  const bool has_records = it->Valid();

  if (!has_head && !has_records) return Status::Ok();  // a new log
  if (!has_head) {
    return Status(ErrorCode::kCorruption, "the log holds records but no stored head");
  }
  LogHead stored;
  stored.seq = ReadBigEndian64(head_value);
  std::copy_n(head_value.begin() + 8, 32, stored.hash.begin());
  if (!has_records) {
    return Status(ErrorCode::kCorruption, "stored head is seq " + std::to_string(stored.seq) +
                                              " but the log holds no records");
  }
  if (it->key().size() != 8) {
    return Status(ErrorCode::kCorruption, "the last log key is not an 8-byte seq");
  }
  const uint64_t last_seq = ReadBigEndian64(it->key().ToStringView());
  if (last_seq != stored.seq) {
    return Status(ErrorCode::kCorruption, "stored head is seq " + std::to_string(stored.seq) +
                                              " but the last record is seq " +
                                              std::to_string(last_seq));
  }
  size_t hash_offset = 0;
  auto last = DecodeRecord(it->value().ToStringView(), &hash_offset);
  if (!last.ok()) {
    return Status(ErrorCode::kCorruption, "the last record, seq " + std::to_string(last_seq) +
                                              ", does not decode: " + last.status().message());
  }
  if (last->seq != last_seq ||
      RecordHash(last->prev_hash, it->value().ToStringView(), hash_offset) != last->hash) {
    return Status(ErrorCode::kCorruption,
                  "the last record, seq " + std::to_string(last_seq) + ", does not verify");
  }
  if (last->hash != stored.hash) {
    return Status(ErrorCode::kCorruption, "stored head hash " + ToHex(stored.hash) +
                                              " differs from the hash of the last record, seq " +
                                              std::to_string(last_seq) + ", " +
                                              ToHex(last->hash));
  }
  head_ = stored;
  answered_seq_ = stored.seq;
  staged_head_ = stored;
  last_timestamp_ns_ = last->timestamp_ns;
  return Status::Ok();
}

EventLog::~EventLog() {
  {
    std::lock_guard lock(queue_mu_);
    stopping_ = true;
    writer_poll_.Signal();  // a polling writer looks at once
  }
  queue_cv_.notify_all();
  // The writer drains its queue and then closes the syncer's, which drains in turn.
  if (writer_.joinable()) writer_.join();
  if (syncer_.joinable()) syncer_.join();
  if (db_) {
    for (auto* handle : handles_) db_->DestroyColumnFamilyHandle(handle);
    db_->Close().PermitUncheckedError();  // nothing left to report to: every append is acked
  }
}

LogHead EventLog::Head() const {
  std::lock_guard lock(head_mu_);
  return head_;
}

Status EventLog::SettleStorage() {
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  {
    std::lock_guard lock(cf_mu_);
    handles = handles_;
  }
  return SettleRocksDb(*db_, handles);
}

Status SettleRocksDb(rocksdb::DB& db, const std::vector<rocksdb::ColumnFamilyHandle*>& families) {
  rocksdb::FlushOptions flush;
  flush.wait = true;
  rocksdb::Status s = db.Flush(flush, families);
  if (!s.ok()) return FromRocks(s, "flushing memtables");
  for (;;) {
    uint64_t flushes = 0, compactions = 0, pending = 0;
    if (!db.GetIntProperty(rocksdb::DB::Properties::kNumRunningFlushes, &flushes) ||
        !db.GetIntProperty(rocksdb::DB::Properties::kNumRunningCompactions, &compactions) ||
        !db.GetAggregatedIntProperty(rocksdb::DB::Properties::kCompactionPending, &pending)) {
      return Status(ErrorCode::kIoError, "RocksDB does not report its background work");
    }
    if (flushes == 0 && compactions == 0 && pending == 0) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

LogStats EventLog::Stats() const {
  LogStats stats;
  {
    std::lock_guard lock(head_mu_);
    stats = stats_;
  }
  stats.writer_cpu_ns = writer_cpu_ns_.load(std::memory_order_relaxed);
  stats.sync_thread_cpu_ns = sync_cpu_ns_.load(std::memory_order_relaxed);
  stats.writer_stage_ns = writer_stage_ns_.load(std::memory_order_relaxed);
  stats.write_wal_ns = write_wal_ns_.load(std::memory_order_relaxed);
  stats.write_memtable_ns = write_memtable_ns_.load(std::memory_order_relaxed);
  stats.write_timed_appends = write_timed_appends_.load(std::memory_order_relaxed);
  stats.writer_polls = writer_poll_.polls();
  stats.writer_polls_run_out = writer_poll_.run_out();
  stats.sync_polls = sync_queue_.poll.polls();
  stats.sync_polls_run_out = sync_queue_.poll.run_out();
  if (file_system_) stats.wal_prefill = file_system_->Report();
  return stats;
}

LogStats LogStats::Since(const LogStats& earlier) const {
  // A counter added to LogStats or WalPrefillReport changes these sizes: add it below too.
  static_assert(sizeof(WalPrefillReport) == 3 * sizeof(uint64_t) + sizeof(std::string));
  static_assert(sizeof(LogStats) == 15 * sizeof(uint64_t) + sizeof(WalPrefillReport));
  LogStats d = *this;
  d.groups -= earlier.groups;
  d.appends -= earlier.appends;
  d.records -= earlier.records;
  d.syncs -= earlier.syncs;
  d.sync_ns -= earlier.sync_ns;
  d.writer_cpu_ns -= earlier.writer_cpu_ns;
  d.sync_thread_cpu_ns -= earlier.sync_thread_cpu_ns;
  d.writer_stage_ns -= earlier.writer_stage_ns;
  d.write_wal_ns -= earlier.write_wal_ns;
  d.write_memtable_ns -= earlier.write_memtable_ns;
  d.write_timed_appends -= earlier.write_timed_appends;
  d.writer_polls -= earlier.writer_polls;
  d.writer_polls_run_out -= earlier.writer_polls_run_out;
  d.sync_polls -= earlier.sync_polls;
  d.sync_polls_run_out -= earlier.sync_polls_run_out;
  d.wal_prefill.bytes_filled -= earlier.wal_prefill.bytes_filled;
  d.wal_prefill.writer_waits -= earlier.wal_prefill.writer_waits;
  return d;
}

rocksdb::ColumnFamilyHandle* EventLog::ColumnFamily(std::string_view name) const {
  std::lock_guard lock(cf_mu_);
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : it->second;
}

Result<rocksdb::ColumnFamilyHandle*> EventLog::ResetColumnFamily(std::string_view name) {
  if (name.substr(0, 5) != "proj.") {
    return Status(ErrorCode::kBadRequest, "only projection column families can be reset");
  }
  std::lock_guard write_lock(write_mu_);
  DrainPipeline();
  std::lock_guard lock(cf_mu_);
  auto it = by_name_.find(std::string(name));
  if (it == by_name_.end()) {
    return Status(ErrorCode::kNotFound, "no column family " + std::string(name));
  }
  rocksdb::Status s = db_->DropColumnFamily(it->second);
  if (!s.ok()) return FromRocks(s, "dropping " + std::string(name));
  auto pos = std::find(handles_.begin(), handles_.end(), it->second);
  db_->DestroyColumnFamilyHandle(it->second).PermitUncheckedError();
  rocksdb::ColumnFamilyHandle* fresh = nullptr;
  s = db_->CreateColumnFamily(CfOptions(name), std::string(name), &fresh);
  if (!s.ok()) {
    handles_.erase(pos);
    by_name_.erase(it);
    return FromRocks(s, "recreating " + std::string(name));
  }
  *pos = fresh;
  it->second = fresh;
  return fresh;
}

}  // namespace shardledger
