// A memtable representation hashed by key prefix, for the `streams` and `ids` families.
//
// RocksDB's hash-linklist representation, which both families used before, keeps a bucket of
// more than a few keys as a skiplist, and Debian's librocksdb is built with assertions: every
// insert first searches the bucket from its top for the key (`assert(!Contains(key))`), then
// inserts. Under the append bench's 64 long streams that search was ~6.6% of the log writer's
// samples (docs/event-log.md, "RocksDB settings").
//
// Here a slot of the hash table holds one key as it is (most streams have a few rows, and an
// id is a prefix of its own) or a bucket: a skiplist that also remembers its last node at
// each level, so that a key after every key of its bucket — a stream's next version, the
// usual insert — is linked at the tail without a search.
//
// Inserts must be serialised (RocksDB's `allow_concurrent_memtable_write = false`, which the
// log sets). Reads may run beside them: a node is complete before it is linked, links are
// published with release stores and read with acquire loads, bottom level first.
//
// Reads: the iterator of `GetDynamicPrefixIterator` stays in the slot its Seek chose (keys of
// other prefixes that hash to the same slot are in it too, in order, as in RocksDB's hashed
// representations), and does not order keys across slots (SeekToFirst and SeekToLast leave
// it invalid). `GetIterator` (a flush, or a read with `total_order_seek`) sorts a snapshot of
// every key, comparing their first 16 bytes as numbers before it calls the comparator: the
// family's comparator must be RocksDB's bytewise one (the default, which every family of the
// log uses).
#pragma once

#include <rocksdb/memtablerep.h>

#include <cstddef>
#include <memory>

namespace shardledger {

// `slots` hash slots per memtable (8 bytes each, from the memtable's allocator). The family's
// prefix extractor chooses the prefix; a key outside its domain is hashed whole.
std::shared_ptr<rocksdb::MemTableRepFactory> PrefixBucketMemtable(size_t slots);

}  // namespace shardledger
