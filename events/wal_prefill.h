// WalPrefillFileSystem: keeps each write-ahead log file zero-filled ahead of its last write.
//
// An fdatasync of a file that grew since the last one must also commit the new size: on ext4
// that is a journal commit, a second device flush on top of the data's. A durable append pays
// it on every fsync, because every group makes the log longer. When the bytes past the write
// position already exist on disk (written as zeros, size committed), the log's writes only
// overwrite them, and its fdatasync flushes the data alone. Databases have long done this with
// their own logs; the figures for ours are in docs/event-log.md.
//
// The filling runs on a thread of each log file's own, one chunk at a time from the file's
// first write on, so that at least `ahead_bytes` past the last write are zeros; the journal
// commit then comes once per chunk.
// The log's writes never overlap a chunk being filled: a write that would reach into one
// waits for it, and a write past the filled end (the filler behind) goes ahead and the filler
// continues after it. A large write pauses the filling for a moment (`stream_pause`). On Close the
// file is cut back to the bytes written, as RocksDB does with its own preallocation. A crash leaves
// the zeros in place; RocksDB's log reader treats a zero header as the end of the records (its
// format reserves type 0 for preallocated space).
//
// Only `*.log` files are filled (RocksDB's write-ahead logs; the info log is "LOG"). A filling
// error stops the filling of that file and is counted; the log then grows as a plain file
// would, so the error costs speed, never a write.
#pragma once

#include <rocksdb/file_system.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace shardledger {

struct WalPrefillOptions {
  size_t ahead_bytes = size_t{4} << 20;  // zeros kept past the last write; 0 turns filling off
  size_t chunk_bytes = size_t{1} << 20;  // filled at a time (a multiple of 4 KiB)
  // After a write of half a chunk or more, no chunk is started for this long. Such writes
  // come from a large group (RocksDB hands the log over ~1 MB at a time), which outruns the
  // filler: every chunk it started would hold the next write up until it was on disk, and
  // the group's own fsync comes once, at its end.
  std::chrono::milliseconds stream_pause{20};
};

// What the filling did, across the files of one file system.
struct WalPrefillReport {
  uint64_t bytes_filled = 0;
  uint64_t writer_waits = 0;  // log writes that waited for a chunk being filled
  uint64_t failures = 0;      // files whose filling stopped on an error
  std::string last_failure;   // the last of those errors, empty when none
};

// Whether RocksDB names `path` as a write-ahead log ("000012.log").
bool IsWriteAheadLogName(std::string_view path);

// The tally the files of one file system report to; it outlives whichever goes last.
class WalPrefillTally {
 public:
  void Filled(uint64_t bytes);
  void WriterWaited();
  void Failed(std::string what);
  WalPrefillReport Report() const;

 private:
  mutable std::mutex mu_;
  WalPrefillReport report_;
};

class WalPrefillFileSystem : public rocksdb::FileSystemWrapper {
 public:
  WalPrefillFileSystem(const std::shared_ptr<rocksdb::FileSystem>& base, WalPrefillOptions options);

  const char* Name() const override { return "shardledger.WalPrefillFileSystem"; }
  rocksdb::IOStatus NewWritableFile(const std::string& path, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* debug) override;

  WalPrefillReport Report() const { return tally_->Report(); }

 private:
  const WalPrefillOptions options_;
  const std::shared_ptr<WalPrefillTally> tally_;
};

}  // namespace shardledger
