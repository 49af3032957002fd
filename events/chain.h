// The hash chain of the log.
//
// hash(record) = SHA-256(prevHash || encoded record with its 32 hash bytes zeroed), where
// the encoding is codec.h's canonical one. Because the hash covers every stored byte but its
// own, flipping any byte of a stored record breaks the chain at that record.
#pragma once

#include <string_view>

#include "events/codec.h"
#include "events/ids.h"
#include "events/record.h"

namespace shardledger {

// The hash of an encoded record whose hash field sits at `hash_offset`; the bytes there are
// treated as zeros whatever they hold.
Hash256 RecordHash(const Hash256& prev_hash, std::string_view encoded, size_t hash_offset);

// Encodes `record` (whose prev_hash is set), computes its hash, and writes it both into
// `record.hash` and into the returned bytes.
EncodedRecord SealRecord(Record& record);

}  // namespace shardledger
