#include "events/wal_prefill.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "events/event_log.h"
#include "tests/test_util.h"

namespace shardledger {
namespace {

using testing::OneEvent;
using testing::TempDir;
using testing::WaitFor;

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

bool AllZero(std::string_view bytes) {
  return bytes.find_first_not_of('\0') == std::string_view::npos;
}

TEST(WalPrefill, NamesOnlyWriteAheadLogs) {
  EXPECT_TRUE(IsWriteAheadLogName("/data/ledger/000012.log"));
  EXPECT_TRUE(IsWriteAheadLogName("000012.log"));
  EXPECT_FALSE(IsWriteAheadLogName("/data/ledger/LOG"));
  EXPECT_FALSE(IsWriteAheadLogName("/data/ledger/LOG.old.1700000000"));
  EXPECT_FALSE(IsWriteAheadLogName("/data/ledger/MANIFEST-000005"));
  EXPECT_FALSE(IsWriteAheadLogName("/data/ledger/000013.sst"));
  EXPECT_FALSE(IsWriteAheadLogName("/data/x.log/OPTIONS-000007"));
  EXPECT_FALSE(IsWriteAheadLogName("/data/ledger/.log"));
}

// Small chunks, so the writes cross many of them while the filler runs beside them: any
// zero written over a byte of the log shows up in the comparison.
TEST(WalPrefill, KeepsZerosAheadOfTheWritesAndCutsThemOffOnClose) {
  TempDir dir;
  constexpr size_t kAhead = 64 << 10;
  WalPrefillFileSystem fs(rocksdb::FileSystem::Default(), {kAhead, 16 << 10});
  const std::string path = dir.Sub("000007.log");
  std::unique_ptr<rocksdb::FSWritableFile> file;
  ASSERT_TRUE(fs.NewWritableFile(path, rocksdb::FileOptions(), &file, nullptr).ok());

  std::string written;
  for (int i = 0; i < 400; ++i) {
    std::string piece(700 + (i * 37) % 900, static_cast<char>(1 + i % 250));
    ASSERT_TRUE(file->Append(piece, rocksdb::IOOptions(), nullptr).ok());
    ASSERT_TRUE(file->Flush(rocksdb::IOOptions(), nullptr).ok());
    written += piece;
    if (i % 50 == 0) {
      ASSERT_TRUE(file->Sync(rocksdb::IOOptions(), nullptr).ok());
    }
  }
  ASSERT_TRUE(WaitFor([&] { return std::filesystem::file_size(path) >= written.size() + kAhead; }))
      << "file size " << std::filesystem::file_size(path) << ", written " << written.size();
  const std::string before_close = ReadWhole(path);
  EXPECT_EQ(before_close.substr(0, written.size()), written);
  EXPECT_TRUE(AllZero(std::string_view(before_close).substr(written.size())));
  // The writes may outrun the filler (they then grow the file themselves), so the zeros it
  // wrote add up to at least the distance it keeps, not to the whole file.
  EXPECT_GE(fs.Report().bytes_filled, kAhead);
  EXPECT_EQ(fs.Report().failures, 0u) << fs.Report().last_failure;

  ASSERT_TRUE(file->Close(rocksdb::IOOptions(), nullptr).ok());
  EXPECT_EQ(ReadWhole(path), written);
}

// A large group reaches RocksDB's log ~1 MB a write, faster than the filler writes and
// syncs a chunk: each chunk it started just ahead would hold the next write up. A write of
// half a chunk or more pauses the filling instead, and the filling resumes after the pause.
TEST(WalPrefill, ALargeWritePausesTheFillingInsteadOfWaitingForIt) {
  TempDir dir;
  constexpr size_t kAhead = 4 << 20;
  constexpr size_t kChunk = 1 << 20;
  auto fill_ahead_then_stream = [&](WalPrefillFileSystem& fs, const std::string& path,
                                    std::string& written) {
    std::unique_ptr<rocksdb::FSWritableFile> file;
    EXPECT_TRUE(fs.NewWritableFile(path, rocksdb::FileOptions(), &file, nullptr).ok());
    written = std::string(4096, 'a');
    EXPECT_TRUE(file->Append(written, rocksdb::IOOptions(), nullptr).ok());
    EXPECT_TRUE(WaitFor([&] { return fs.Report().bytes_filled >= kAhead; }));
    for (int i = 0; i < 6; ++i) {
      const std::string piece(kChunk, static_cast<char>('b' + i));
      EXPECT_TRUE(file->Append(piece, rocksdb::IOOptions(), nullptr).ok());
      written += piece;
    }
    EXPECT_TRUE(file->Flush(rocksdb::IOOptions(), nullptr).ok());
    return file;
  };

  // A pause longer than the test: the six writes neither wait nor see a chunk started.
  WalPrefillFileSystem paused(rocksdb::FileSystem::Default(),
                              {kAhead, kChunk, std::chrono::seconds(30)});
  const std::string path = dir.Sub("000009.log");
  std::string written;
  auto file = fill_ahead_then_stream(paused, path, written);
  EXPECT_EQ(paused.Report().writer_waits, 0u);
  EXPECT_EQ(paused.Report().bytes_filled, kAhead);
  ASSERT_TRUE(file->Close(rocksdb::IOOptions(), nullptr).ok());  // ends the pause too
  EXPECT_EQ(ReadWhole(path), written);

  // A short pause: afterwards the filler gets ahead of the writes again.
  WalPrefillFileSystem brief(rocksdb::FileSystem::Default(),
                             {kAhead, kChunk, std::chrono::milliseconds(20)});
  const std::string other = dir.Sub("000010.log");
  auto second = fill_ahead_then_stream(brief, other, written);
  EXPECT_TRUE(WaitFor([&] { return std::filesystem::file_size(other) >= written.size() + kAhead; }))
      << "file size " << std::filesystem::file_size(other) << ", written " << written.size();
  EXPECT_EQ(brief.Report().failures, 0u) << brief.Report().last_failure;
  ASSERT_TRUE(second->Close(rocksdb::IOOptions(), nullptr).ok());
  EXPECT_EQ(ReadWhole(other), written);
}

TEST(WalPrefill, LeavesFilesOtherThanWriteAheadLogsAsWritten) {
  TempDir dir;
  WalPrefillFileSystem fs(rocksdb::FileSystem::Default(), {64 << 10, 16 << 10});
  const std::string path = dir.Sub("MANIFEST-000001");
  std::unique_ptr<rocksdb::FSWritableFile> file;
  ASSERT_TRUE(fs.NewWritableFile(path, rocksdb::FileOptions(), &file, nullptr).ok());
  ASSERT_TRUE(file->Append(std::string(5000, 'm'), rocksdb::IOOptions(), nullptr).ok());
  ASSERT_TRUE(file->Sync(rocksdb::IOOptions(), nullptr).ok());
  EXPECT_EQ(std::filesystem::file_size(path), 5000u);
  ASSERT_TRUE(file->Close(rocksdb::IOOptions(), nullptr).ok());
  EXPECT_EQ(std::filesystem::file_size(path), 5000u);
  EXPECT_EQ(fs.Report().bytes_filled, 0u);
}

// A process that dies leaves its write-ahead log with zeros after the last record; the log
// reopens with every record, and the zeros are not taken for damage.
TEST(WalPrefill, LogKilledWithZerosPastItsLastRecordReopensWhole) {
  TempDir dir;
  constexpr int kAppends = 300;
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto log = EventLog::Open(dir.path(), EventLogOptions{});
    if (!log.ok()) ::_exit(2);
    for (int i = 0; i < kAppends; ++i) {
      if (!(*log)->Append(OneEvent("s")).ok()) ::_exit(3);
    }
    const bool filled = WaitFor([&] {
      return (*log)->Stats().wal_prefill.bytes_filled >= EventLogOptions{}.wal_prefill_bytes;
    });
    ::_exit(filled ? 0 : 4);  // no destructor: the log stays as a crash leaves it
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);

  int logs = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    if (!IsWriteAheadLogName(entry.path().string())) continue;
    ++logs;
    const std::string bytes = ReadWhole(entry.path().string());
    ASSERT_GE(bytes.size(), EventLogOptions{}.wal_prefill_bytes);
    EXPECT_TRUE(AllZero(std::string_view(bytes).substr(bytes.size() - 4096)));
  }
  ASSERT_EQ(logs, 1);

  auto log = EventLog::Open(dir.path(), EventLogOptions{});
  ASSERT_OK(log);
  EXPECT_EQ((*log)->Head().seq, static_cast<uint64_t>(kAppends));
  auto chain = (*log)->VerifyChain();
  ASSERT_OK(chain);
  EXPECT_EQ(chain->checked, static_cast<uint64_t>(kAppends));
  EXPECT_FALSE(chain->first_bad_seq.has_value()) << chain->problem;
  auto next = (*log)->Append(OneEvent("s", ExpectedVersion::Exact(kAppends)));
  ASSERT_OK(next);
  EXPECT_EQ(next->first_seq, static_cast<uint64_t>(kAppends) + 1);
}

}  // namespace
}  // namespace shardledger
