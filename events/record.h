// Records of the log and the batches that append them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "events/event.h"
#include "events/ids.h"

namespace shardledger {

// One stored event: the Envelope of DESIGN.md section 2 with its payload decoded.
struct Record {
  uint64_t seq = 0;
  std::string stream;
  uint64_t stream_version = 0;
  Id128 event_id{};
  int64_t timestamp_ns = 0;
  std::string actor;
  Id128 correlation_id{};  // all zeros: none
  Id128 causation_id{};    // all zeros: none
  Hash256 prev_hash{};
  Hash256 hash{};
  Event payload;
  bool operator==(const Record&) const = default;
};

// What a stream's version must be for an append to go ahead.
struct ExpectedVersion {
  enum class Kind : uint8_t { kAny, kNoStream, kExists, kExact };
  Kind kind = Kind::kAny;
  uint64_t version = 0;  // for kExact

  static ExpectedVersion Any() { return {Kind::kAny, 0}; }
  static ExpectedVersion NoStream() { return {Kind::kNoStream, 0}; }
  static ExpectedVersion Exists() { return {Kind::kExists, 0}; }
  static ExpectedVersion Exact(uint64_t v) { return {Kind::kExact, v}; }

  // True when a stream whose current version is `actual` (0: no stream) satisfies this.
  bool Holds(uint64_t actual) const;
  // "any", "no stream", "exists", or the number.
  std::string ToString() const;
};

struct NewEvent {
  Id128 event_id{};
  std::string stream;
  Event payload;
};

// A condition on one stream. A batch may hold conditions on streams it does not write to:
// that is how a command appends only if the state it was decided on is still current.
struct StreamExpectation {
  std::string stream;
  ExpectedVersion expected;
};

// All or nothing: either every event is appended, in order, or none is.
struct AppendBatch {
  std::vector<NewEvent> events;
  std::vector<StreamExpectation> expectations;  // streams without one: Any
  std::string actor = "local";
  Id128 correlation_id{};
  Id128 causation_id{};
  // True when the caller drew every event id from the CSPRNG just now (FillRandomId128s) and
  // no one else has seen them: no earlier append can hold them, so the log skips the
  // idempotency lookups — for a shard-count change, 200,000 filter probes of the id index.
  // Ids a client supplies, which a retry repeats, never set this.
  bool ids_minted = false;
};

struct AppendResult {
  uint64_t first_seq = 0;  // the batch's records are first_seq..last_seq
  uint64_t last_seq = 0;
  // True when every event id of the batch was already in the log: nothing was written, and
  // `seqs` holds the seq each event id was first recorded at, in batch order.
  bool replayed = false;
  std::vector<uint64_t> seqs;
};

// Stream names: "routing", "wf/<id>", "job/<id>". A stream name is 1..kMaxStreamBytes bytes
// and holds no NUL (it is the prefix of a key in the `streams` column family).
inline constexpr size_t kMaxStreamBytes = 512;

}  // namespace shardledger
