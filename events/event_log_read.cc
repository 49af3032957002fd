// EventLog: reads — by seq range, filtered, one stream from a version, an event id — and
// the chain's verification. Every read stops at the durable head as it was when it began.
#include <algorithm>
#include <cstdint>
#include <memory>

#include "events/chain.h"
#include "events/codec.h"
#include "events/event_log.h"
#include "events/event_log_internal.h"
#include "events/keys.h"

namespace shardledger {

Status EventLog::Scan(uint64_t from, uint64_t to,
                      const std::function<bool(uint64_t, std::string_view)>& visit) const {
  const uint64_t last = std::min(to, Head().seq);
  if (from == 0) from = 1;
  if (from > last) return Status::Ok();
  rocksdb::ReadOptions read_options;
  const std::string upper = BigEndian64(last + 1);
  rocksdb::Slice upper_slice(upper);
  if (last != UINT64_MAX) read_options.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options, log_cf_));
  uint64_t expected = from;
  for (it->Seek(BigEndian64(from)); it->Valid(); it->Next()) {
    if (it->key().size() != 8) {
      return Status(ErrorCode::kCorruption, "log key is not an 8-byte seq");
    }
    const uint64_t seq = ReadBigEndian64(it->key().ToStringView());
    if (seq != expected) {
      return Status(ErrorCode::kCorruption, "the log has a gap: expected seq " +
                                                std::to_string(expected) + ", found " +
                                                std::to_string(seq));
    }
    if (!visit(seq, it->value().ToStringView())) return Status::Ok();
    if (seq == last) break;
    ++expected;
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scanning the log");
  return Status::Ok();
}

Result<std::vector<StoredRecord>> EventLog::ReadRangeBytes(uint64_t from, uint64_t to,
                                                           size_t limit) const {
  std::vector<StoredRecord> out;
  if (limit == 0) return out;
  SL_RETURN_IF_ERROR(Scan(from, to, [&](uint64_t seq, std::string_view bytes) {
    out.push_back(StoredRecord{seq, std::string(bytes)});
    return out.size() < limit;
  }));
  return out;
}

Result<std::vector<Record>> EventLog::ReadRange(uint64_t from, uint64_t to, size_t limit) const {
  std::vector<Record> out;
  if (limit == 0) return out;
  Status error;
  SL_RETURN_IF_ERROR(Scan(from, to, [&](uint64_t seq, std::string_view bytes) {
    auto record = DecodeRecord(bytes);
    if (!record.ok()) {
      error = Status(ErrorCode::kCorruption,
                     "record " + std::to_string(seq) + ": " + record.status().message());
      return false;
    }
    out.push_back(std::move(record).value());
    return out.size() < limit;
  }));
  SL_RETURN_IF_ERROR(error);
  return out;
}

Result<std::vector<Record>> EventLog::ReadFiltered(const ReadFilter& filter) const {
  std::vector<Record> out;
  if (filter.limit == 0) return out;
  Status error;
  SL_RETURN_IF_ERROR(
      Scan(filter.from_seq, filter.to_seq, [&](uint64_t seq, std::string_view bytes) {
        auto record = DecodeRecord(bytes);
        if (!record.ok()) {
          error = Status(ErrorCode::kCorruption,
                         "record " + std::to_string(seq) + ": " + record.status().message());
          return false;
        }
        if (!record->stream.starts_with(filter.stream_prefix)) return true;
        if (!filter.event_types.empty() &&
            std::find(filter.event_types.begin(), filter.event_types.end(),
                      TypeOf(record->payload)) == filter.event_types.end()) {
          return true;
        }
        out.push_back(std::move(record).value());
        return out.size() < filter.limit;
      }));
  SL_RETURN_IF_ERROR(error);
  return out;
}

Result<std::vector<Record>> EventLog::ReadStream(std::string_view stream, uint64_t from_version,
                                                 size_t limit) const {
  std::vector<Record> out;
  const uint64_t head = Head().seq;
  const std::string prefix = StreamKey(stream, 0).substr(0, stream.size() + 1);
  rocksdb::ReadOptions within_bucket;
  // The memtable is hashed by 256-version bucket (StreamOfKey): the iterator stays in the
  // bucket it was sought into, and the next bucket is sought when one ends at its last row.
  within_bucket.prefix_same_as_start = true;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(within_bucket, streams_cf_));
  uint64_t next = std::max<uint64_t>(from_version, 1);
  bool more = true;
  while (more && out.size() < limit) {
    more = false;
    for (it->Seek(StreamKey(stream, next));
         it->Valid() && out.size() < limit && it->key().starts_with(prefix); it->Next()) {
      if (it->key().size() != prefix.size() + 8 || it->value().size() != 8) {
        return Status(ErrorCode::kCorruption, "malformed stream index entry");
      }
      const uint64_t version = ReadBigEndian64(it->key().ToStringView().substr(prefix.size()));
      const uint64_t seq = ReadBigEndian64(it->value().ToStringView());
      if (seq > head) {  // written by a group that is not acknowledged yet
        more = false;
        break;
      }
      std::string bytes;
      rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), log_cf_, BigEndian64(seq), &bytes);
      if (!s.ok()) {
        return FromRocks(
            s, "reading record " + std::to_string(seq) + " of stream " + std::string(stream));
      }
      auto record = DecodeRecord(bytes);
      if (!record.ok()) {
        return Status(ErrorCode::kCorruption,
                      "record " + std::to_string(seq) + ": " + record.status().message());
      }
      out.push_back(std::move(record).value());
      // A stream's versions have no gaps: the bucket's last row means the next may exist.
      next = version + 1;
      more = (version & 0xff) == 0xff;
    }
    if (!it->status().ok()) return FromRocks(it->status(), "reading stream");
  }
  return out;
}

Result<uint64_t> EventLog::StreamVersion(std::string_view stream) const {
  return StoredStreamVersion(stream);
}

Result<uint64_t> EventLog::StoredStreamVersion(std::string_view stream) const {
  // A stream's versions are 1..v with no gap, each a row of its own: v is the last version
  // whose row exists, found by doubling from 1 and then halving, one point lookup each. Most
  // lookups are of streams that do not exist yet: one lookup, which the bloom filters answer
  // without reading a block; a stream of v versions takes about 2·log2(v). (No head row per
  // stream is kept for this: rewritten at every append, it cost the writer more than these
  // lookups cost the rare cache miss; docs/event-log.md, "A stream's version".)
  std::string key = StreamKey(stream, 0);
  rocksdb::PinnableSlice value;
  auto exists = [&](uint64_t version) -> Result<bool> {
    for (int i = 0; i < 8; ++i) key[key.size() - 1 - i] = static_cast<char>(version >> (8 * i));
    value.Reset();
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), streams_cf_, key, &value);
    if (s.IsNotFound()) return false;
    if (!s.ok()) return FromRocks(s, "reading the version of stream " + std::string(stream));
    return true;
  };
  SL_ASSIGN_OR_RETURN(bool any, exists(1));
  if (!any) return uint64_t{0};
  uint64_t present = 1;  // a version whose row exists
  uint64_t absent = 2;   // a version past the last, once found
  for (;;) {
    SL_ASSIGN_OR_RETURN(bool found, exists(absent));
    if (!found) break;
    present = absent;
    if (absent > (uint64_t{1} << 62)) {
      return Status(ErrorCode::kCorruption,
                    "stream " + std::string(stream) + " has a version row past 2^62");
    }
    absent *= 2;
  }
  while (absent - present > 1) {
    const uint64_t middle = present + (absent - present) / 2;
    SL_ASSIGN_OR_RETURN(bool found, exists(middle));
    (found ? present : absent) = middle;
  }
  return present;
}

Result<std::optional<uint64_t>> EventLog::FindEventId(const Id128& event_id) const {
  return StoredEventSeq(event_id);
}

Result<std::optional<uint64_t>> EventLog::StoredEventSeq(const Id128& id) const {
  std::string value;
  rocksdb::Slice key(reinterpret_cast<const char*>(id.data()), id.size());
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), ids_cf_, key, &value);
  SL_ASSIGN_OR_RETURN(uint64_t seq, StoredSeqOf(s, value));
  return seq == 0 ? std::optional<uint64_t>() : std::optional<uint64_t>(seq);
}

Result<ChainReport> EventLog::VerifyChain(uint64_t from, uint64_t to) const {
  ChainReport report;
  if (from == 0) from = 1;
  Hash256 prev{};
  if (from > 1) {
    std::string bytes;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), log_cf_, BigEndian64(from - 1), &bytes);
    if (!s.ok()) return FromRocks(s, "reading record " + std::to_string(from - 1));
    auto before = DecodeRecord(bytes);
    if (!before.ok()) {
      report.first_bad_seq = from - 1;
      report.problem = before.status().message();
      return report;
    }
    prev = before->hash;
  }
  auto fail = [&](uint64_t seq, std::string problem) {
    report.first_bad_seq = seq;
    report.problem = std::move(problem);
    return false;
  };
  Status scanned = Scan(from, to, [&](uint64_t seq, std::string_view bytes) {
    size_t hash_offset = 0;
    auto record = DecodeRecord(bytes, &hash_offset);
    if (!record.ok()) return fail(seq, "does not decode: " + record.status().message());
    if (record->seq != seq) {
      return fail(seq, "is stored under seq " + std::to_string(seq) + " but says seq " +
                           std::to_string(record->seq));
    }
    if (record->prev_hash != prev) return fail(seq, "prevHash does not match the previous hash");
    if (RecordHash(prev, bytes, hash_offset) != record->hash) {
      return fail(seq, "hash does not match its contents");
    }
    prev = record->hash;
    ++report.checked;
    return true;
  });
  if (!scanned.ok()) {
    if (scanned.code() != ErrorCode::kCorruption) return scanned;
    report.first_bad_seq = from + report.checked;
    report.problem = scanned.message();
    return report;
  }
  const LogHead head = Head();
  if (!report.first_bad_seq && report.checked > 0 && from + report.checked - 1 == head.seq &&
      prev != head.hash) {
    report.first_bad_seq = head.seq;
    report.problem = "the stored head hash differs from the last record's hash";
  }
  return report;
}

}  // namespace shardledger
