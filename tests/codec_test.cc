#include "events/codec.h"

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/schema.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "events/chain.h"
#include "events/schema/ledger.capnp.h"
#include "tests/sample_events.h"
#include "tests/test_util.h"

namespace shardledger {
namespace {

using testing::SampleEvents;
using testing::SampleRecord;

// Places `prepared` at `record`'s position and writes its hash, as the writer does; returns
// the hash.
Hash256 PlaceAndHash(PreparedRecord& prepared, const Record& record) {
  PlaceRecord(prepared, record.seq, record.stream_version, record.timestamp_ns, record.prev_hash);
  const Hash256 hash = RecordHash(record.prev_hash, prepared.view(), prepared.hash_offset);
  std::memcpy(prepared.bytes.data() + prepared.hash_offset, hash.data(), hash.size());
  return hash;
}

TEST(Codec, EveryEventTypeRoundTrips) {
  std::vector<bool> seen(kEventTypeCount, false);
  for (const Event& event : SampleEvents()) {
    Record record = SampleRecord(event);
    EncodedRecord encoded = SealRecord(record);
    size_t hash_offset = 0;
    auto decoded = DecodeRecord(encoded.bytes, &hash_offset);
    ASSERT_OK(decoded);
    EXPECT_EQ(*decoded, record) << EventTypeName(TypeOf(event));
    EXPECT_EQ(hash_offset, encoded.hash_offset);
    seen[event.index()] = true;
  }
  for (int i = 0; i < kEventTypeCount; ++i) {
    EXPECT_TRUE(seen[i]) << "no sample for " << EventTypeName(static_cast<EventType>(i));
  }
}

TEST(Codec, EncodingIsDeterministicAndAStandardMessage) {
  Record record = SampleRecord(SampleEvents()[2]);
  EncodedRecord a = SealRecord(record);
  EncodedRecord b = SealRecord(record);
  EXPECT_EQ(a.bytes, b.bytes);
  // A plain Cap'n Proto reader takes the bytes as they are.
  kj::ArrayPtr<const capnp::word> words(reinterpret_cast<const capnp::word*>(a.bytes.data()),
                                        a.bytes.size() / sizeof(capnp::word));
  capnp::FlatArrayMessageReader reader(words);
  EXPECT_EQ(reader.getRoot<schema::Envelope>().getSeq(), 17u);
  EXPECT_TRUE(reader.isCanonical());
}

TEST(Codec, HashCoversEveryByteButItsOwn) {
  Record record = SampleRecord(SampleEvents()[0]);
  EncodedRecord encoded = SealRecord(record);
  EXPECT_EQ(RecordHash(record.prev_hash, encoded.bytes, encoded.hash_offset), record.hash);
  std::string changed = encoded.bytes;
  changed[encoded.hash_offset + 3] ^= 1;  // inside the hash field: ignored by the hash
  EXPECT_EQ(RecordHash(record.prev_hash, changed, encoded.hash_offset), record.hash);
  changed = encoded.bytes;
  changed[encoded.hash_offset - 1] ^= 1;
  EXPECT_NE(RecordHash(record.prev_hash, changed, encoded.hash_offset), record.hash);
}

TEST(Codec, PlacedRecordIsTheCanonicalEncodingOfThePlacedRecord) {
  for (const Event& event : SampleEvents()) {
    Record record = SampleRecord(event);
    ByteArena arena;
    PreparedRecord prepared = PrepareRecord(record, arena);
    const Hash256 hash = PlaceAndHash(prepared, record);
    EncodedRecord sealed = SealRecord(record);
    EXPECT_EQ(prepared.view(), sealed.bytes) << EventTypeName(TypeOf(event));
    EXPECT_EQ(hash, record.hash);
  }
}

// PrepareRecord writes straight into its arena. Many records share one arena of small blocks,
// taken at odd offsets, with and without the optional ids, with lists and texts long enough
// to need many words: each lands word-aligned, places to the sealed bytes, and stays as it was
// while later records are taken.
TEST(Codec, PreparedRecordsShareAnArenaWordAlignedAndCanonical) {
  std::vector<Record> records;
  for (const Event& event : SampleEvents()) {
    records.push_back(SampleRecord(event));
    Record bare = SampleRecord(event, 18);
    bare.correlation_id = {};
    bare.actor.clear();
    records.push_back(std::move(bare));
    Record full = SampleRecord(event, 19);
    full.causation_id.fill(0x33);
    full.stream = std::string(300, 's');
    records.push_back(std::move(full));
  }
  records.push_back(SampleRecord(JobCreated{
      "job-big", JobType::kAggregator, 7, {{"data", std::string(5000, 'd')}, {"k", ""}}}));
  std::vector<std::string> sealed;  // SealRecord also sets each record's hash
  for (Record& record : records) sealed.push_back(SealRecord(record).bytes);

  ByteArena arena(1024);
  std::vector<PreparedRecord> prepared;
  for (size_t i = 0; i < records.size(); ++i) {
    arena.Take(i % 7 + 1);  // leave the next record at an odd offset
    prepared.push_back(PrepareRecord(records[i], arena));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(prepared.back().bytes.data()) % sizeof(capnp::word), 0u);
  }
  for (size_t i = 0; i < records.size(); ++i) {
    const Record& record = records[i];
    const Hash256 hash = PlaceAndHash(prepared[i], record);
    EXPECT_EQ(prepared[i].view(), sealed[i]) << i;
    EXPECT_EQ(hash, record.hash) << i;
  }
}

// PrepareRecord writes the envelope itself and takes only the payload from Cap'n Proto;
// PrepareRecordByCopy takes all of it from Cap'n Proto. Over records of random shape — texts of
// every length around a word's edge (and empty), ids present or absent, payloads whose sections
// Cap'n Proto trims (zero fields, the union's first member), large and small — the placed bytes are
// those of capnp::canonicalize.
TEST(Codec, PreparedRecordsMatchTheCanonicalEncodingForRandomShapes) {
  std::mt19937_64 rng(20261206);
  auto text = [&](size_t max) {
    std::string out(rng() % (max + 1), ' ');
    for (char& c : out) c = static_cast<char>('a' + rng() % 26);
    return out;
  };
  std::vector<Event> payloads = SampleEvents();
  ByteArena arena(512);
  for (int i = 0; i < 5000; ++i) {
    Event payload;
    switch (rng() % 4) {
      case 0:
        payload = payloads[rng() % payloads.size()];
        break;
      case 1:  // the union's first member, zero fields included
        payload = WorkflowAssigned{text(20), static_cast<uint32_t>(rng() % 2),
                                   rng() % 2 == 0 ? 0 : rng()};
        break;
      default: {
        JobCreated job{text(40), JobType::kAggregator, rng() % 3 == 0 ? 0 : rng(), {}};
        const size_t entries = rng() % 6;
        for (size_t e = 0; e < entries; ++e)
          job.metadata.emplace_back(text(12), text(i % 50 == 0 ? 3000 : 300));
        // Past the 64 KiB a thread keeps for the payload's canonical copy.
        if (i % 1000 == 7) job.metadata.emplace_back("large", std::string(100'000, 'x'));
        payload = std::move(job);
      }
    }
    Record record = SampleRecord(std::move(payload), 1 + rng() % 1000000);
    record.stream = "s" + text(70);
    record.actor = text(40);
    record.stream_version = 1 + rng() % 1000;
    record.timestamp_ns = 1 + static_cast<int64_t>(rng() >> 2);
    for (auto& b : record.event_id) b = static_cast<uint8_t>(rng());
    for (auto& b : record.prev_hash) b = static_cast<uint8_t>(rng());
    record.correlation_id = {};
    record.causation_id = {};
    if (rng() % 2 == 0)
      for (auto& b : record.correlation_id) b = static_cast<uint8_t>(rng() | 1);
    if (rng() % 2 == 0)
      for (auto& b : record.causation_id) b = static_cast<uint8_t>(rng() | 1);

    const std::string sealed = SealRecord(record).bytes;
    for (bool by_copy : {false, true}) {
      PreparedRecord prepared =
          by_copy ? PrepareRecordByCopy(record, arena) : PrepareRecord(record, arena);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(prepared.bytes.data()) % sizeof(capnp::word), 0u);
      const Hash256 hash = PlaceAndHash(prepared, record);
      ASSERT_EQ(prepared.view(), sealed)
          << "record " << i << ", " << EventTypeName(TypeOf(record.payload)) << ", by copy "
          << by_copy;
      ASSERT_EQ(hash, record.hash) << i;
    }
  }
}

Status DecodeStatus(std::string_view bytes) { return DecodeRecord(bytes).status(); }

TEST(Codec, TruncatedRecordsAreCorruption) {
  Record record = SampleRecord(SampleEvents()[5]);
  std::string bytes = SealRecord(record).bytes;
  for (size_t size = 0; size < bytes.size(); ++size) {
    Status s = DecodeStatus(std::string_view(bytes).substr(0, size));
    EXPECT_EQ(s.code(), ErrorCode::kCorruption) << "size " << size;
  }
}

TEST(Codec, OversizedAndMisalignedInputIsCorruption) {
  std::string huge(kMaxRecordBytes + 8, '\0');
  EXPECT_EQ(DecodeStatus(huge).code(), ErrorCode::kCorruption);
  EXPECT_NE(DecodeStatus(huge).message().find("exceeds the limit"), std::string::npos);
  Record record = SampleRecord(SampleEvents()[0]);
  std::string bytes = SealRecord(record).bytes;
  // Unaligned start address: decoded from a copy, same result.
  std::string shifted = "x" + bytes;
  auto decoded = DecodeRecord(std::string_view(shifted).substr(1));
  ASSERT_OK(decoded);
  EXPECT_EQ(*decoded, record);
  // A length that is not whole words.
  EXPECT_EQ(DecodeStatus(bytes + "abc").code(), ErrorCode::kCorruption);
}

TEST(Codec, SegmentTableClaimingHugeSegmentsIsCorruption) {
  std::string bytes(64, '\0');
  const uint32_t table[2] = {0, 0x7fffffff};
  std::memcpy(bytes.data(), table, sizeof(table));
  EXPECT_EQ(DecodeStatus(bytes).code(), ErrorCode::kCorruption);
  const uint32_t many[2] = {100000, 1};
  std::memcpy(bytes.data(), many, sizeof(many));
  EXPECT_EQ(DecodeStatus(bytes).code(), ErrorCode::kCorruption);
}

// Builds a valid envelope, then overwrites the payload's union discriminant.
std::string WithPayloadTag(uint16_t tag) {
  capnp::MallocMessageBuilder message;
  auto env = message.initRoot<schema::Envelope>();
  const uint8_t id[16] = {1};
  const uint8_t hash[32] = {};
  env.setEventId(kj::arrayPtr(id, 16));
  env.setPrevHash(kj::arrayPtr(hash, 32));
  env.setHash(kj::arrayPtr(hash, 32));
  env.initPayload().initWorkflowAssigned().setWorkflowId("w");
  auto proto = capnp::Schema::from<schema::Payload>().getProto().getStruct();
  capnp::AnyStruct::Builder any = capnp::toAny(env.getPayload());
  auto data = any.getDataSection();
  const size_t offset = proto.getDiscriminantOffset() * sizeof(uint16_t);
  std::memcpy(data.begin() + offset, &tag, sizeof(tag));
  auto words = capnp::messageToFlatArray(message);
  return std::string(reinterpret_cast<const char*>(words.begin()), words.size() * 8);
}

TEST(Codec, UnknownPayloadTagIsCorruption) {
  ASSERT_OK(DecodeRecord(WithPayloadTag(0)));
  for (uint16_t tag : {uint16_t(kEventTypeCount), uint16_t(200), uint16_t(0xffff)}) {
    Status s = DecodeStatus(WithPayloadTag(tag));
    EXPECT_EQ(s.code(), ErrorCode::kCorruption) << tag;
    EXPECT_NE(s.message().find("unknown payload tag"), std::string::npos) << s.message();
  }
}

TEST(Codec, WrongSizedIdsAndHashesAreCorruption) {
  capnp::MallocMessageBuilder message;
  auto env = message.initRoot<schema::Envelope>();
  const uint8_t bytes[40] = {1};
  env.setEventId(kj::arrayPtr(bytes, 15));
  env.setPrevHash(kj::arrayPtr(bytes, 32));
  env.setHash(kj::arrayPtr(bytes, 32));
  env.initPayload().initJobRetried().setJobId("j");
  auto words = capnp::messageToFlatArray(message);
  std::string encoded(reinterpret_cast<const char*>(words.begin()), words.size() * 8);
  Status s = DecodeStatus(encoded);
  EXPECT_EQ(s.code(), ErrorCode::kCorruption);
  EXPECT_NE(s.message().find("eventId has 15 bytes"), std::string::npos) << s.message();
}

TEST(Codec, DeepNestingBeyondTheLimitIsCorruption) {
  // A pointer chain where the root points at itself forever: the nesting and traversal
  // limits stop it.
  std::string bytes(8 + 8, '\0');
  const uint32_t table[2] = {0, 1};
  std::memcpy(bytes.data(), table, sizeof(table));
  // Struct pointer with offset -1 (points at itself), 0 data words, 1 pointer.
  const uint64_t self = (uint64_t{1} << 48) | (uint64_t(0xfffffffc) & 0xfffffffc);
  std::memcpy(bytes.data() + 8, &self, sizeof(self));
  EXPECT_EQ(DecodeStatus(bytes).code(), ErrorCode::kCorruption);
}

}  // namespace
}  // namespace shardledger
