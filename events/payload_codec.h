// The event payloads' Cap'n Proto encoding, for codec.cc's envelope: every event of
// events/event.h to and from the schema's Payload union. Internal to the events layer.
#pragma once

#include <capnp/blob.h>
#include <kj/array.h>

#include <string>

#include "events/event.h"
#include "events/ids.h"
#include "events/schema/ledger.capnp.h"
#include "events/status.h"

namespace shardledger {

// Writes `event` into `payload`, the union member of its type.
void WritePayload(const Event& event, schema::Payload::Builder payload);

// Reads the event `payload` holds. Untrusted input: an unknown union tag or job type is a
// Corruption status, never a crash.
Result<Event> ReadPayload(schema::Payload::Reader payload);

// A record that does not decode.
inline Status CorruptRecord(std::string what) {
  return Status(ErrorCode::kCorruption, std::move(what));
}

// Our fixed-size ids and text as Cap'n Proto's blobs, and back.
inline kj::ArrayPtr<const kj::byte> AsBytes(const Id128& id) { return {id.data(), id.size()}; }
inline kj::ArrayPtr<const kj::byte> AsBytes(const Hash256& h) { return {h.data(), h.size()}; }
inline kj::StringPtr AsText(const std::string& s) { return {s.c_str(), s.size()}; }
inline std::string FromText(capnp::Text::Reader t) { return {t.begin(), t.size()}; }

}  // namespace shardledger
