#include "events/codec.h"

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/schema.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <array>
#include <cstring>
#include <type_traits>

#include "events/payload_codec.h"
#include "events/schema/ledger.capnp.h"

namespace shardledger {

namespace {

namespace s = ::shardledger::schema;

template <size_t N>
Status ReadFixed(capnp::Data::Reader data, std::array<uint8_t, N>& out, const char* field,
                 bool may_be_empty) {
  if (data.size() == 0 && may_be_empty) {
    out.fill(0);
    return Status::Ok();
  }
  if (data.size() != N) {
    return CorruptRecord(std::string(field) + " has " + std::to_string(data.size()) +
                         " bytes, expected " + std::to_string(N));
  }
  std::memcpy(out.data(), data.begin(), N);
  return Status::Ok();
}

Result<Record> ReadEnvelope(s::Envelope::Reader r, const kj::byte* base, size_t* hash_offset) {
  Record record;
  record.seq = r.getSeq();
  record.stream = FromText(r.getStream());
  record.stream_version = r.getStreamVersion();
  record.timestamp_ns = r.getTimestampNs();
  record.actor = FromText(r.getActor());
  SL_RETURN_IF_ERROR(ReadFixed(r.getEventId(), record.event_id, "eventId", false));
  SL_RETURN_IF_ERROR(ReadFixed(r.getCorrelationId(), record.correlation_id, "correlationId", true));
  SL_RETURN_IF_ERROR(ReadFixed(r.getCausationId(), record.causation_id, "causationId", true));
  SL_RETURN_IF_ERROR(ReadFixed(r.getPrevHash(), record.prev_hash, "prevHash", false));
  auto hash = r.getHash();
  SL_RETURN_IF_ERROR(ReadFixed(hash, record.hash, "hash", false));
  if (hash_offset != nullptr) *hash_offset = static_cast<size_t>(hash.begin() - base);
  if (!r.hasPayload()) return CorruptRecord("record has no payload");
  SL_ASSIGN_OR_RETURN(record.payload, ReadPayload(r.getPayload()));
  return record;
}

}  // namespace

namespace {

size_t Offset(const void* field, const capnp::word* words) {
  return 8 + static_cast<size_t>(reinterpret_cast<const kj::byte*>(field) -
                                 reinterpret_cast<const kj::byte*>(words));
}

// The offset (in bytes, within the envelope's data section) of a UInt64/Int64 field.
size_t DataFieldOffset(const char* name) {
  auto field = capnp::Schema::from<s::Envelope>().getFieldByName(name);
  return field.getProto().getSlot().getOffset() * sizeof(uint64_t);
}

// The placeholders BuildEnvelope and PrepareRecord encode: seq, stream version and timestamp
// as kPositionPlaceholder, prevHash as kPrevHashPlaceholder, hash as zeros.
constexpr uint64_t kPositionPlaceholder = 1;
constexpr Hash256 kPrevHashPlaceholder = [] {
  Hash256 ones{};
  for (auto& b : ones) b = 1;
  return ones;
}();

// Builds `record`'s envelope in `message`. With `placeholders` the position fields are
// encoded as non-zero placeholders instead of the record's own: canonical form drops trailing
// zero words of the data section, and non-zero values keep every position field in the
// encoding, so placement never changes the layout.
s::Envelope::Reader BuildEnvelope(capnp::MessageBuilder& message, const Record& record,
                                  bool placeholders) {
  auto env = message.initRoot<s::Envelope>();
  env.setSeq(placeholders ? kPositionPlaceholder : record.seq);
  env.setStream(AsText(record.stream));
  env.setStreamVersion(placeholders ? kPositionPlaceholder : record.stream_version);
  env.setEventId(AsBytes(record.event_id));
  env.setTimestampNs(placeholders ? static_cast<int64_t>(kPositionPlaceholder)
                                  : record.timestamp_ns);
  env.setActor(AsText(record.actor));
  if (!IsZero(record.correlation_id)) env.setCorrelationId(AsBytes(record.correlation_id));
  if (!IsZero(record.causation_id)) env.setCausationId(AsBytes(record.causation_id));
  env.setPrevHash(AsBytes(placeholders ? kPrevHashPlaceholder : record.prev_hash));
  env.setHash(AsBytes(placeholders ? Hash256{} : record.hash));
  auto payload = env.initPayload();
  WritePayload(record.payload, payload);
  return env.asReader();
}

// Fills in where the fixed-size position fields of the canonical segment `words` sit in the
// message made of it (the standard one-segment table, then the segment), by reading the
// encoding back (a constant-time pointer walk).
void LocateFields(kj::ArrayPtr<const capnp::word> words, PreparedRecord& offsets) {
  capnp::SegmentArrayMessageReader reader(kj::arrayPtr(&words, 1));
  auto root = reader.getRoot<s::Envelope>();
  offsets.hash_offset = Offset(root.getHash().begin(), words.begin());
  offsets.prev_hash_offset = Offset(root.getPrevHash().begin(), words.begin());
  const size_t data = Offset(capnp::toAny(root).getDataSection().begin(), words.begin());
  static const size_t kSeq = DataFieldOffset("seq");
  static const size_t kVersion = DataFieldOffset("streamVersion");
  static const size_t kTimestamp = DataFieldOffset("timestampNs");
  offsets.seq_offset = data + kSeq;
  offsets.stream_version_offset = data + kVersion;
  offsets.timestamp_offset = data + kTimestamp;
}

// The builder's first segment: one buffer per thread, reused. The builder zeroes what it used
// when it is destroyed, as its first segment must be zero when it is given.
kj::ArrayPtr<capnp::word> ScratchSegment() {
  thread_local std::array<capnp::word, 128> first_segment{};
  return kj::arrayPtr(first_segment.data(), first_segment.size());
}

// Encodes `record` canonically, one segment (capnp::canonicalize, the reference), and fills
// in where its position fields sit.
kj::Array<capnp::word> EncodeCanonical(const Record& record, PreparedRecord& offsets) {
  capnp::MallocMessageBuilder message(ScratchSegment());
  s::Envelope::Reader env = BuildEnvelope(message, record, /*placeholders=*/false);
  // Canonical form is one segment with the root pointer first; prefixing the standard
  // one-segment table makes it an ordinary unpacked message.
  kj::Array<capnp::word> words = capnp::canonicalize(env);
  const capnp::word* begin = words.begin();
  LocateFields(kj::arrayPtr(begin, words.size()), offsets);
  return words;
}

size_t MessageBytes(const kj::Array<capnp::word>& words) {
  return 8 + words.size() * sizeof(capnp::word);
}

// Writes the one-segment table and the segment to `out`, MessageBytes(words) long.
void WriteMessage(const kj::Array<capnp::word>& words, char* out) {
  const uint32_t table[2] = {0, static_cast<uint32_t>(words.size())};
  std::memcpy(out, table, sizeof(table));
  std::memcpy(out + 8, words.begin(), words.size() * sizeof(capnp::word));
}

void PutLittleEndian64(char* bytes, uint64_t value) {
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(value >> (8 * i));
}

// Where the envelope's fields sit in its struct, read from the schema once.
struct EnvelopeLayout {
  uint16_t data_words = 0;
  uint16_t pointer_count = 0;
  size_t seq = 0;  // byte offsets in the data section
  size_t stream_version = 0;
  size_t timestamp = 0;
  enum class Slot : uint8_t {
    kNone,
    kStream,
    kEventId,
    kActor,
    kCorrelation,
    kCausation,
    kPrevHash,
    kHash,
    kPayload
  };
  static constexpr size_t kMaxPointers = 16;
  std::array<Slot, kMaxPointers> slots{};  // what each pointer slot holds
};

const EnvelopeLayout& Layout() {
  static const EnvelopeLayout layout = [] {
    using Slot = EnvelopeLayout::Slot;
    const auto schema = capnp::Schema::from<s::Envelope>();
    EnvelopeLayout l;
    l.data_words = schema.getProto().getStruct().getDataWordCount();
    l.pointer_count = schema.getProto().getStruct().getPointerCount();
    if (l.pointer_count > l.slots.size()) std::abort();  // the schema outgrew this table
    auto offset = [&](const char* name) {
      return schema.getFieldByName(name).getProto().getSlot().getOffset();
    };
    l.seq = DataFieldOffset("seq");
    l.stream_version = DataFieldOffset("streamVersion");
    l.timestamp = DataFieldOffset("timestampNs");
    const std::pair<const char*, Slot> pointers[] = {{"stream", Slot::kStream},
                                                     {"eventId", Slot::kEventId},
                                                     {"actor", Slot::kActor},
                                                     {"correlationId", Slot::kCorrelation},
                                                     {"causationId", Slot::kCausation},
                                                     {"prevHash", Slot::kPrevHash},
                                                     {"hash", Slot::kHash},
                                                     {"payload", Slot::kPayload}};
    for (const auto& [name, slot] : pointers) l.slots[offset(name)] = slot;
    return l;
  }();
  return layout;
}

// A zeroed segment of `words` for a flat builder: a buffer of the thread's, reused, for
// payloads up to 64 KiB; `large`, which the caller frees, for a bigger one (a thread that
// once encoded a 16 MiB record does not keep 16 MiB).
kj::ArrayPtr<capnp::word> ZeroedScratch(size_t words, std::vector<capnp::word>& large) {
  constexpr size_t kKeptWords = 8192;
  thread_local std::vector<capnp::word> kept;
  std::vector<capnp::word>& buffer = words <= kKeptWords ? kept : large;
  if (buffer.size() < words) buffer.resize(words);
  std::memset(buffer.data(), 0, words * sizeof(capnp::word));
  return kj::arrayPtr(buffer.data(), words);
}

uint64_t StructPointer(int64_t offset_words, uint64_t sizes_word_half) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(offset_words << 2))) |
         (sizes_word_half << 32);
}

uint64_t BytePointer(int64_t offset_words, size_t count) {
  constexpr uint64_t kListKind = 1;
  constexpr uint64_t kByteElements = 2;
  return static_cast<uint64_t>(static_cast<uint32_t>(offset_words << 2)) | kListKind |
         ((kByteElements | (static_cast<uint64_t>(count) << 3)) << 32);
}

size_t WordsFor(size_t bytes) { return (bytes + sizeof(capnp::word) - 1) / sizeof(capnp::word); }

}  // namespace

EncodedRecord EncodeRecord(const Record& record) {
  PreparedRecord offsets;
  kj::Array<capnp::word> words = EncodeCanonical(record, offsets);
  EncodedRecord encoded;
  encoded.bytes.resize(MessageBytes(words));
  WriteMessage(words, encoded.bytes.data());
  encoded.hash_offset = offsets.hash_offset;
  return encoded;
}

// The whole envelope built, then copied canonically (`setStruct(..., canonical=true)`, the
// copy that capnp::canonicalize makes) into the arena, without canonicalize's heap buffers
// and its check that the result is canonical, which re-reads the whole copy.
PreparedRecord PrepareRecordByCopy(const Record& record, ByteArena& arena) {
  capnp::MallocMessageBuilder message(ScratchSegment());
  const capnp::_::StructReader source = capnp::_::PointerHelpers<s::Envelope>::getInternalReader(
      BuildEnvelope(message, record, /*placeholders=*/true));
  // What the builder allocated, its root pointer included, bounds the canonical copy: the
  // copy holds the same objects with their sections trimmed. Were it ever short, the flat
  // builder throws; it never writes past `capacity`.
  const size_t capacity = message.sizeInWords();
  char* out = arena.Take(8 + capacity * sizeof(capnp::word), alignof(capnp::word));
  auto* segment = reinterpret_cast<capnp::word*>(out + 8);
  std::memset(segment, 0, capacity * sizeof(capnp::word));  // a builder's segment starts zeroed
  size_t used = 0;
  {
    capnp::FlatMessageBuilder flat(kj::arrayPtr(segment, capacity));
    capnp::_::PointerHelpers<capnp::AnyPointer>::getInternalBuilder(
        flat.initRoot<capnp::AnyPointer>())
        .setStruct(source, /*canonical=*/true);
    used = flat.getSegmentsForOutput()[0].size();
  }
  const uint32_t table[2] = {0, static_cast<uint32_t>(used)};
  std::memcpy(out, table, sizeof(table));
  PreparedRecord prepared;
  prepared.bytes = std::span<char>(out, 8 + used * sizeof(capnp::word));
  LocateFields(kj::arrayPtr(static_cast<const capnp::word*>(segment), used), prepared);
  return prepared;
}

// The canonical bytes EncodeCanonical gives for the record with placeholder position fields,
// written straight into the arena. Canonical form lays the objects out in pre-order: the
// root pointer, the envelope's data and pointer sections, then what each pointer points to,
// in pointer order. The envelope's own fields are written here as they are (its data
// section keeps all its words: the placeholders are non-zero; its texts and ids are byte
// lists; its last pointer, the payload, is never null). Only the payload goes through Cap'n
// Proto: built on its own and copied canonically, then moved in as a block (its pointers are
// relative). Building the whole envelope and copying it canonically cost twice as much, on
// the thread that answers the log's callbacks. The `Codec.Placed*`, `Codec.Prepared*` and
// `Codec.PreparedRecordsMatch*` tests compare the two ways byte for byte.
PreparedRecord PrepareRecord(const RecordToPrepare& record, ByteArena& arena) {
  using Slot = EnvelopeLayout::Slot;
  const EnvelopeLayout& layout = Layout();
  std::vector<capnp::word> large_scratch;
  kj::ArrayPtr<capnp::word> scratch;
  size_t payload_used = 0;  // the root pointer and the payload's tree
  {
    capnp::MallocMessageBuilder message(ScratchSegment());
    auto payload = message.initRoot<s::Payload>();
    WritePayload(record.payload, payload);
    const capnp::_::StructReader source =
        capnp::_::PointerHelpers<s::Payload>::getInternalReader(payload.asReader());
    // What the builder allocated bounds the copy: see PrepareRecordByCopy.
    scratch = ZeroedScratch(message.sizeInWords(), large_scratch);
    capnp::FlatMessageBuilder flat(scratch);
    capnp::_::PointerHelpers<capnp::AnyPointer>::getInternalBuilder(
        flat.initRoot<capnp::AnyPointer>())
        .setStruct(source, /*canonical=*/true);
    payload_used = flat.getSegmentsForOutput()[0].size();
  }  // the builder gives ScratchSegment back (PrepareRecordByCopy takes it)
  uint64_t payload_root = 0;
  std::memcpy(&payload_root, scratch.begin(), sizeof(payload_root));
  // The tree must start right after its root pointer (offset 0): a zero-sized payload would
  // not, and is left to the reference way.
  if (payload_used < 2 || static_cast<uint32_t>(payload_root) != 0) {
    Record whole;
    whole.stream = record.stream;
    whole.event_id = record.event_id;
    whole.actor = record.actor;
    whole.correlation_id = record.correlation_id;
    whole.causation_id = record.causation_id;
    whole.payload = record.payload;
    return PrepareRecordByCopy(whole, arena);
  }

  static constexpr Hash256 kZeroHash{};
  struct Blob {
    const void* bytes = nullptr;  // null: a null pointer
    size_t size = 0;
    size_t count = 0;  // list elements: a text's NUL counts
  };
  auto blob_of = [&](Slot slot) -> Blob {
    switch (slot) {
      case Slot::kStream:
        return {record.stream.data(), record.stream.size(), record.stream.size() + 1};
      case Slot::kEventId:
        return {record.event_id.data(), record.event_id.size(), record.event_id.size()};
      case Slot::kActor:
        return {record.actor.data(), record.actor.size(), record.actor.size() + 1};
      case Slot::kCorrelation:
        if (IsZero(record.correlation_id)) return {};
        return {record.correlation_id.data(), 16, 16};
      case Slot::kCausation:
        if (IsZero(record.causation_id)) return {};
        return {record.causation_id.data(), 16, 16};
      case Slot::kPrevHash:
        return {kPrevHashPlaceholder.data(), kPrevHashPlaceholder.size(),
                kPrevHashPlaceholder.size()};
      case Slot::kHash:
        return {kZeroHash.data(), kZeroHash.size(), kZeroHash.size()};
      case Slot::kNone:
      case Slot::kPayload:
        return {};
    }
    return {};
  };
  std::array<Blob, EnvelopeLayout::kMaxPointers> blobs{};
  const size_t header_words = 1 + layout.data_words + layout.pointer_count;
  size_t words = header_words + (payload_used - 1);
  for (size_t i = 0; i < layout.pointer_count; ++i) {
    blobs[i] = blob_of(layout.slots[i]);
    words += WordsFor(blobs[i].count);
  }

  char* out = arena.Take(8 + words * sizeof(capnp::word), alignof(capnp::word));
  std::memset(out, 0, 8 + words * sizeof(capnp::word));
  const uint32_t table[2] = {0, static_cast<uint32_t>(words)};
  std::memcpy(out, table, sizeof(table));
  char* segment = out + 8;
  auto put_word = [&](size_t at, uint64_t value) {
    std::memcpy(segment + at * sizeof(capnp::word), &value, sizeof(value));
  };
  put_word(0, StructPointer(0, layout.data_words | (uint64_t{layout.pointer_count} << 16)));
  char* data = segment + sizeof(capnp::word);
  PutLittleEndian64(data + layout.seq, kPositionPlaceholder);
  PutLittleEndian64(data + layout.stream_version, kPositionPlaceholder);
  PutLittleEndian64(data + layout.timestamp, kPositionPlaceholder);

  PreparedRecord prepared;
  size_t next = header_words;
  for (size_t i = 0; i < layout.pointer_count; ++i) {
    const size_t at = 1 + layout.data_words + i;
    const auto offset = static_cast<int64_t>(next) - static_cast<int64_t>(at) - 1;
    const Slot slot = layout.slots[i];
    if (slot == Slot::kPayload) {
      put_word(at, StructPointer(offset, payload_root >> 32));
      std::memcpy(segment + next * sizeof(capnp::word), scratch.begin() + 1,
                  (payload_used - 1) * sizeof(capnp::word));
      next += payload_used - 1;
      continue;
    }
    const Blob& blob = blobs[i];
    if (blob.bytes == nullptr) continue;
    put_word(at, BytePointer(offset, blob.count));
    std::memcpy(segment + next * sizeof(capnp::word), blob.bytes, blob.size);
    if (slot == Slot::kPrevHash) prepared.prev_hash_offset = 8 + next * sizeof(capnp::word);
    if (slot == Slot::kHash) prepared.hash_offset = 8 + next * sizeof(capnp::word);
    next += WordsFor(blob.count);
  }
  prepared.bytes = std::span<char>(out, 8 + words * sizeof(capnp::word));
  prepared.seq_offset = 8 + sizeof(capnp::word) + layout.seq;
  prepared.stream_version_offset = 8 + sizeof(capnp::word) + layout.stream_version;
  prepared.timestamp_offset = 8 + sizeof(capnp::word) + layout.timestamp;
  return prepared;
}

void PlaceRecord(PreparedRecord& prepared, uint64_t seq, uint64_t stream_version,
                 int64_t timestamp_ns, const Hash256& prev_hash) {
  char* bytes = prepared.bytes.data();
  PutLittleEndian64(bytes + prepared.seq_offset, seq);
  PutLittleEndian64(bytes + prepared.stream_version_offset, stream_version);
  PutLittleEndian64(bytes + prepared.timestamp_offset, static_cast<uint64_t>(timestamp_ns));
  std::memcpy(bytes + prepared.prev_hash_offset, prev_hash.data(), prev_hash.size());
  std::memset(bytes + prepared.hash_offset, 0, 32);
}

Result<Record> DecodeRecord(std::span<const uint8_t> bytes, size_t* hash_offset) {
  if (bytes.size() < 16) {
    return CorruptRecord("record of " + std::to_string(bytes.size()) + " bytes is truncated");
  }
  if (bytes.size() > kMaxRecordBytes) {
    return CorruptRecord("record of " + std::to_string(bytes.size()) +
                         " bytes exceeds the limit of " + std::to_string(kMaxRecordBytes));
  }
  if (bytes.size() % sizeof(capnp::word) != 0) {
    return CorruptRecord("record of " + std::to_string(bytes.size()) +
                         " bytes is not word-aligned");
  }
  // Cap'n Proto reads words in place; copy when the caller's bytes are not word-aligned.
  kj::Array<capnp::word> aligned;
  const capnp::word* words = reinterpret_cast<const capnp::word*>(bytes.data());
  if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(capnp::word) != 0) {
    aligned = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
    std::memcpy(aligned.begin(), bytes.data(), bytes.size());
    words = aligned.begin();
  }
  const size_t word_count = bytes.size() / sizeof(capnp::word);
  capnp::ReaderOptions options;
  options.traversalLimitInWords = 2 * word_count + 64;
  options.nestingLimit = kMaxNestingDepth;
  try {
    capnp::FlatArrayMessageReader reader(kj::arrayPtr(words, word_count), options);
    if (reader.getEnd() != words + word_count) {
      return CorruptRecord("record has trailing bytes after its message");
    }
    return ReadEnvelope(reader.getRoot<s::Envelope>(), reinterpret_cast<const kj::byte*>(words),
                        hash_offset);
  } catch (const kj::Exception& e) {
    return CorruptRecord(std::string("malformed record: ") + e.getDescription().cStr());
  }
}

}  // namespace shardledger
