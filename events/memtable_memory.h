// Memtables whose memory comes in transparent huge pages.
//
// A RocksDB memtable takes its memory from an arena of 1 MiB heap blocks, and each 4 KiB page of
// a fresh block faults in on its first write. On the virtual machines we run on a fault is a
// trip through the hypervisor (~10 µs each, measured), and the log's writer spent ~14% of its
// time there under load: every append's record, stream row and id row lands on fresh memtable
// memory. `HugePageMemtable` wraps a memtable factory so that its memtables allocate from
// 2 MiB-aligned mappings advised for transparent huge pages instead: one fault per 2 MiB
// (~0.24 µs per 4 KiB measured). Where the kernel gives no huge pages (transparent huge pages
// set to `never`), each mapping is faulted in whole by one call when it is taken, which costs
// about half what page-by-page faults do.
//
// When a flushed memtable is freed its mappings are kept (`MappingPool::kProcessCapacity`,
// events/huge_page_arena.h) and the next memtables write in them again: a fresh huge page is
// zeroed by the kernel on its first write, which was 8% of the writer's time under load.
//
// The memtable is otherwise the wrapped representation's (RocksDB's, or PrefixBucketMemtable):
// it gets our allocator and does everything else itself. The bytes mapped are reported as the
// memtable's memory usage, so RocksDB flushes at `write_buffer_size` as before. Inserts must be
// serialised (RocksDB's `allow_concurrent_memtable_write = false`, which the log sets); reads
// may run beside them.
#pragma once

#include <rocksdb/memtablerep.h>

#include <memory>

namespace shardledger {

// The factory's memtables allocate through a `HugePageArena` and otherwise are `inner`'s.
std::shared_ptr<rocksdb::MemTableRepFactory> HugePageMemtable(
    std::shared_ptr<rocksdb::MemTableRepFactory> inner);

}  // namespace shardledger
