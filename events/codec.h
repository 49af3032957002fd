// Encoding and decoding of log records (the Cap'n Proto Envelope of
// events/schema/ledger.capnp).
//
// Encoded bytes are the standard Cap'n Proto serialization, unpacked, of one segment holding
// the envelope in canonical form: the same record always encodes to the same bytes. Those
// bytes are what the log stores, hashes and publishes.
//
// DecodeRecord takes untrusted bytes: whatever they hold, it returns a Record or a
// Corruption status naming what is wrong; it never reads outside the given bytes.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "events/memory.h"
#include "events/record.h"
#include "events/status.h"

namespace shardledger {

// The largest encoded record accepted, and nesting depth beyond which decoding refuses.
inline constexpr size_t kMaxRecordBytes = 16 * 1024 * 1024;
inline constexpr int kMaxNestingDepth = 16;

struct EncodedRecord {
  std::string bytes;
  size_t hash_offset = 0;  // where the 32 bytes of the `hash` field sit inside `bytes`
};

// Encodes `record` including its `hash` field as it is.
EncodedRecord EncodeRecord(const Record& record);

// A record encoded before it has a place in the log: every field is final except seq,
// streamVersion, timestampNs, prevHash and hash, which have fixed sizes and sit at the
// recorded offsets, so the writer places the record by patching bytes instead of encoding.
// Placed values must be non-zero (seq, version and timestamp are), which keeps the patched
// bytes the canonical encoding of the placed record.
struct PreparedRecord {
  std::span<char> bytes;  // in the ByteArena given to PrepareRecord
  size_t seq_offset = 0;
  size_t stream_version_offset = 0;
  size_t timestamp_offset = 0;
  size_t prev_hash_offset = 0;
  size_t hash_offset = 0;

  std::string_view view() const { return {bytes.data(), bytes.size()}; }
};

// The fields of a record that PrepareRecord encodes (all but the position fields), by
// reference: an append's events are encoded where they lie, without being moved into a
// Record and back.
struct RecordToPrepare {
  std::string_view stream;
  const Id128& event_id;
  std::string_view actor;
  const Id128& correlation_id;
  const Id128& causation_id;
  const Event& payload;
};

// Encodes `record` (its position fields are ignored) ready for placement, its bytes taken
// from `arena`.
PreparedRecord PrepareRecord(const RecordToPrepare& record, ByteArena& arena);
inline PreparedRecord PrepareRecord(const Record& record, ByteArena& arena) {
  return PrepareRecord(RecordToPrepare{record.stream, record.event_id, record.actor,
                                       record.correlation_id, record.causation_id, record.payload},
                       arena);
}
// The same bytes by the longer way (the whole envelope through Cap'n Proto), which
// PrepareRecord takes for a payload it does not expect (one of zero size); tests compare both.
PreparedRecord PrepareRecordByCopy(const Record& record, ByteArena& arena);

// Writes the position fields into `prepared.bytes`; the hash field is left zero.
void PlaceRecord(PreparedRecord& prepared, uint64_t seq, uint64_t stream_version,
                 int64_t timestamp_ns, const Hash256& prev_hash);

// Decodes a record; `hash_offset`, when given, receives where the hash field's bytes sit.
Result<Record> DecodeRecord(std::span<const uint8_t> bytes, size_t* hash_offset = nullptr);

inline Result<Record> DecodeRecord(std::string_view bytes, size_t* hash_offset = nullptr) {
  return DecodeRecord(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
      hash_offset);
}

}  // namespace shardledger
