#include "events/wal_prefill.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <system_error>
#include <thread>
#include <utility>

namespace shardledger {

namespace {

constexpr uint64_t kBlock = 4096;

uint64_t RoundUp(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }

std::string ErrnoText(std::string_view what, int err) {
  return std::string(what) + ": " + std::error_code(err, std::generic_category()).message();
}

// Writes `bytes` zeros at `offset` and makes them and the file's new size durable. Returns
// the error, empty on success.
std::string WriteZeros(int fd, uint64_t offset, uint64_t bytes) {
  static const std::array<char, 64 * 1024> kZeros{};
  constexpr size_t kMaxPieces = 64;
  while (bytes > 0) {
    std::array<iovec, kMaxPieces> pieces;
    size_t count = 0;
    uint64_t batch = 0;
    while (count < kMaxPieces && batch < bytes) {
      const size_t piece = static_cast<size_t>(std::min<uint64_t>(kZeros.size(), bytes - batch));
      pieces[count++] = {const_cast<char*>(kZeros.data()), piece};
      batch += piece;
    }
    const ssize_t wrote =
        ::pwritev(fd, pieces.data(), static_cast<int>(count), static_cast<off_t>(offset));
    if (wrote < 0) {
      if (errno == EINTR) continue;
      return ErrnoText("writing zeros", errno);
    }
    if (wrote == 0) return "writing zeros: the file took none";
    offset += static_cast<uint64_t>(wrote);
    bytes -= static_cast<uint64_t>(wrote);
  }
  while (::fdatasync(fd) != 0) {
    if (errno != EINTR) return ErrnoText("syncing zeros", errno);
  }
  return {};
}

// A write-ahead log file with a filler thread keeping zeros ahead of its writes. Invariant,
// under mu_: the file is at least filled_end_ bytes long on disk, or is being made so by a
// write below written_end_; while filling_, the filler writes [filled_end_ rounded up to a
// block, + chunk) and nothing else writes there.
class PrefilledWalFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  PrefilledWalFile(std::unique_ptr<rocksdb::FSWritableFile> file, std::string path, int fd,
                   WalPrefillOptions options, std::shared_ptr<WalPrefillTally> tally)
      : FSWritableFileOwnerWrapper(std::move(file)),
        path_(std::move(path)),
        fd_(fd),
        options_(options),
        tally_(std::move(tally)) {
    filler_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "sl-wal-fill");
      FillLoop();
    });
  }

  ~PrefilledWalFile() override {
    StopFilling();
    ::close(fd_);
  }

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* debug) override {
    ReserveAppend(data.size());
    return target()->Append(data, options, debug);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& verification,
                           rocksdb::IODebugContext* debug) override {
    ReserveAppend(data.size());
    return target()->Append(data, options, verification, debug);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     rocksdb::IODebugContext* debug) override {
    ReserveThrough(offset + data.size(), data.size());
    return target()->PositionedAppend(data, offset, options, debug);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     const rocksdb::DataVerificationInfo& verification,
                                     rocksdb::IODebugContext* debug) override {
    ReserveThrough(offset + data.size(), data.size());
    return target()->PositionedAppend(data, offset, options, verification, debug);
  }

  rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* debug) override {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !filling_; });
    rocksdb::IOStatus s = target()->Truncate(size, options, debug);
    if (s.ok()) written_end_ = filled_end_ = size;
    return s;
  }

  // Cuts the zeros past the last write off, so a closed log ends where its records do.
  rocksdb::IOStatus Close(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* debug) override {
    StopFilling();
    rocksdb::IOStatus s = target()->Close(options, debug);
    if (!s.ok()) return s;
    const uint64_t end = WrittenEnd();
    while (::ftruncate(fd_, static_cast<off_t>(end)) != 0) {
      if (errno != EINTR) {
        return rocksdb::IOStatus::IOError(ErrnoText("cutting the zeros off " + path_, errno));
      }
    }
    return s;
  }

 private:
  uint64_t WrittenEnd() {
    std::lock_guard lock(mu_);
    return written_end_;
  }

  // Called before each write of `bytes`: an append, or a write that ends at `end`.
  void ReserveAppend(uint64_t bytes) {
    std::unique_lock lock(mu_);
    ReserveLocked(lock, written_end_ + bytes, bytes);
  }
  void ReserveThrough(uint64_t end, uint64_t bytes) {
    std::unique_lock lock(mu_);
    ReserveLocked(lock, end, bytes);
  }
  void ReserveLocked(std::unique_lock<std::mutex>& lock, uint64_t end, uint64_t bytes) {
    if (bytes * 2 >= options_.chunk_bytes) {
      pause_until_ = std::chrono::steady_clock::now() + options_.stream_pause;
    }
    if (end > filled_end_ && filling_) {
      tally_->WriterWaited();
      cv_.wait(lock, [&] { return !filling_; });
    }
    written_end_ = std::max(written_end_, end);
    filled_end_ = std::max(filled_end_, written_end_);  // past the zeros, the write grows it
    if (!filling_ && !stopped_ && FillDue()) cv_.notify_all();
  }

  // Not before the first write: a log opened only to be read (a tool, a restart) costs no
  // zeros.
  bool FillDue() const {
    return written_end_ > 0 && written_end_ + options_.ahead_bytes > filled_end_;
  }

  void FillLoop() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stopped_ || FillDue(); });
      if (stopped_) return;
      if (std::chrono::steady_clock::now() < pause_until_) {
        cv_.wait_until(lock, pause_until_, [&] { return stopped_; });
        continue;  // the pause may have been stretched meanwhile
      }
      const uint64_t at = RoundUp(filled_end_, kBlock);
      filling_ = true;
      lock.unlock();
      std::string error = WriteZeros(fd_, at, options_.chunk_bytes);
      lock.lock();
      filling_ = false;
      cv_.notify_all();
      if (!error.empty()) {
        stopped_ = true;
        tally_->Failed("filling " + path_ + " ahead: " + error);
        return;
      }
      filled_end_ = at + options_.chunk_bytes;
      tally_->Filled(options_.chunk_bytes);
    }
  }

  void StopFilling() {
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
    }
    cv_.notify_all();
    if (filler_.joinable()) filler_.join();
  }

  const std::string path_;
  const int fd_;  // our own descriptor of the file, for the zeros and the final cut
  const WalPrefillOptions options_;
  const std::shared_ptr<WalPrefillTally> tally_;

  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t written_end_ = 0;
  uint64_t filled_end_ = 0;
  bool filling_ = false;
  bool stopped_ = false;
  std::chrono::steady_clock::time_point pause_until_;  // no chunk is started before it
  std::thread filler_;
};

}  // namespace

bool IsWriteAheadLogName(std::string_view path) {
  constexpr std::string_view kSuffix = ".log";
  const size_t slash = path.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  return name.size() > kSuffix.size() && name.substr(name.size() - kSuffix.size()) == kSuffix;
}

void WalPrefillTally::Filled(uint64_t bytes) {
  std::lock_guard lock(mu_);
  report_.bytes_filled += bytes;
}

void WalPrefillTally::WriterWaited() {
  std::lock_guard lock(mu_);
  ++report_.writer_waits;
}

void WalPrefillTally::Failed(std::string what) {
  std::lock_guard lock(mu_);
  ++report_.failures;
  report_.last_failure = std::move(what);
}

WalPrefillReport WalPrefillTally::Report() const {
  std::lock_guard lock(mu_);
  return report_;
}

WalPrefillFileSystem::WalPrefillFileSystem(const std::shared_ptr<rocksdb::FileSystem>& base,
                                           WalPrefillOptions options)
    : FileSystemWrapper(base),
      options_{options.ahead_bytes, std::max(kBlock, RoundUp(options.chunk_bytes, kBlock)),
               options.stream_pause},
      tally_(std::make_shared<WalPrefillTally>()) {}

rocksdb::IOStatus WalPrefillFileSystem::NewWritableFile(
    const std::string& path, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* debug) {
  rocksdb::IOStatus s = target()->NewWritableFile(path, options, result, debug);
  if (!s.ok() || options_.ahead_bytes == 0 || !IsWriteAheadLogName(path)) return s;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    // The file works without the zeros, only its fsyncs cost more: count it and go on.
    tally_->Failed(ErrnoText("opening " + path + " to fill it ahead", errno));
    return s;
  }
  *result = std::make_unique<PrefilledWalFile>(std::move(*result), path, fd, options_, tally_);
  return s;
}

}  // namespace shardledger
