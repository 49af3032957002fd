// Figures of the event log: durable_append_1, durable_append_64, buffered_append(_1),
// read_range (and read_range_decoded), each against raw RocksDB in the same run.
#include <fmt/core.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <thread>

#include "events/chain.h"
#include "events/codec.h"
#include "events/event_log.h"
#include "events/keys.h"
#include "tools/bench/bench.h"

namespace shardledger::bench {

// An event whose payload carries 200 bytes of content.
Event Payload200(uint64_t i) {
  return JobCreated{"job-" + std::to_string(i), JobType::kProofCreation, i,
                    {{"data", std::string(200 - 16, 'p')}}};
}

namespace {

// Before it is timed, each database of an append figure (ours and the raw baseline's) takes
// this many bytes of records, untimed, and is flushed and settled: the timed part then runs
// on a database that has filled, switched and freed a memtable, as a running one has. A
// fresh RocksDB's first memtable faults in every page of its arena; once one has been
// freed, glibc serves the next arenas from memory it keeps (its mmap threshold rises), and
// in minutes when the disk is fast the raw baseline then runs 16–37% faster
// (docs/BENCHMARKS.md, "stop 35").
constexpr uint64_t kWarmBytes = uint64_t{80} << 20;  // 1.25 write buffers of 64 MiB

// After the warm-up's flush the raw baseline's next memtable runs at ~0.7 of its later rate
// until it is switched, most likely because glibc handed the flushed memtable's memory back
// to the kernel and the new one faults its pages in again (with glibc's trim and mmap
// thresholds raised it runs at full rate at once; the ledger keeps its memtables' huge pages
// and does not slow so). So after the warm-up each side
// runs, untimed, as it will be timed, until it has written a write buffer's worth or for
// kRunInSeconds: the timed part starts from each side's steady state.
constexpr uint64_t kRunInBytes = uint64_t{64} << 20;
constexpr double kRunInSeconds = 2;

// The size of the stored record our appends write, so raw baselines write the same bytes.
size_t RecordSize() {
  Record record;
  record.seq = 1'000'000;
  record.stream = "bench/00";
  record.stream_version = 10'000;
  record.event_id = RandomId128();
  record.actor = "local";
  record.payload = Payload200(1'000'000);
  return SealRecord(record).bytes.size();
}

std::unique_ptr<rocksdb::DB> OpenRaw(const std::string& dir) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.write_buffer_size = 64 << 20;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, &raw);
  if (!s.ok()) Fail("raw baseline open: " + s.ToString());
  return std::unique_ptr<rocksdb::DB>(raw);
}

// What one side of an append figure did in its timed slices.
struct Timed {
  uint64_t count = 0;  // records (raw) or appends (ledger)
  double seconds = 0;
  double Rate() const { return seconds > 0 ? static_cast<double>(count) / seconds : 0; }
  void Add(const Timed& slice) {
    count += slice.count;
    seconds += slice.seconds;
  }
};

// Whether `db` runs a flush or a compaction, or has one waiting (over all its families).
bool Busy(rocksdb::DB& db) {
  uint64_t flushes = 0, compactions = 0, compaction_pending = 0, flush_pending = 0;
  if (!db.GetIntProperty(rocksdb::DB::Properties::kNumRunningFlushes, &flushes) ||
      !db.GetIntProperty(rocksdb::DB::Properties::kNumRunningCompactions, &compactions) ||
      !db.GetAggregatedIntProperty(rocksdb::DB::Properties::kCompactionPending,
                                   &compaction_pending) ||
      !db.GetAggregatedIntProperty(rocksdb::DB::Properties::kMemTableFlushPending,
                                   &flush_pending)) {
    Fail("RocksDB does not report its background work");
  }
  return flushes + compactions + compaction_pending + flush_pending > 0;
}

// The raw baseline of an append figure: one RocksDB database with `batch_size` records of
// `value_size` bytes per WriteBatch, written from one thread, `sync` as given.
class RawSide {
 public:
  RawSide(const std::string& dir, size_t value_size, size_t batch_size, bool sync, bool cold)
      : db_(OpenRaw(dir)), value_(value_size, 'r'), batch_size_(batch_size) {
    options_.sync = sync;
    if (cold) return;
    // With its timed writes' options, as the log warms up with its own durability: both
    // sides' warm-ups write as the sides will be timed.
    Stopwatch warming;
    while (seq_ * value_size < kWarmBytes) Write();
    Must("settling the raw baseline", SettleRocksDb(*db_, {db_->DefaultColumnFamily()}));
    fmt::print(stderr, "  raw baseline warmed up: {} records, flushed ({:.2f} s)\n", seq_,
               warming.Seconds());
  }

  Timed Run(double seconds) {
    const uint64_t start = seq_;
    Stopwatch clock;
    while (clock.Seconds() < seconds) Write();
    return Timed{seq_ - start, clock.Seconds()};
  }

  rocksdb::DB& db() { return *db_; }

 private:
  void Write() {
    rocksdb::WriteBatch batch;
    for (size_t i = 0; i < batch_size_; ++i) batch.Put(BigEndian64(++seq_), value_);
    rocksdb::Status s = db_->Write(options_, &batch);
    if (!s.ok()) Fail("raw baseline write: " + s.ToString());
  }

  std::unique_ptr<rocksdb::DB> db_;
  const std::string value_;
  const size_t batch_size_;
  rocksdb::WriteOptions options_;
  uint64_t seq_ = 0;
};

AppendBatch BenchBatch(int writer, uint64_t i) {
  AppendBatch batch;
  batch.events.push_back(NewEvent{RandomId128(), fmt::format("bench/{:02}", writer), Payload200(i)});
  return batch;
}

double PerSync(const LogStats& stats) {
  return static_cast<double>(stats.sync_ns) / 1000.0 /
         static_cast<double>(std::max<uint64_t>(1, stats.syncs));
}

void ReportGroups(const LogStats& stats, const std::string& how) {
  fmt::print(stderr,
             "  {}: {} appends in {} groups ({:.1f} per group), {} fsyncs ({:.1f} appends and "
             "{:.0f} us each)\n",
             how, stats.appends, stats.groups,
             static_cast<double>(stats.appends) / static_cast<double>(std::max<uint64_t>(1, stats.groups)),
             stats.syncs,
             static_cast<double>(stats.appends) / static_cast<double>(std::max<uint64_t>(1, stats.syncs)),
             PerSync(stats));
  const double appends = static_cast<double>(std::max<uint64_t>(1, stats.appends));
  const double timed = static_cast<double>(std::max<uint64_t>(1, stats.write_timed_appends));
  fmt::print(stderr, "    CPU per append: writer thread {:.2f} us, sync thread {:.2f} us\n",
             static_cast<double>(stats.writer_cpu_ns) / 1000.0 / appends,
             static_cast<double>(stats.sync_thread_cpu_ns) / 1000.0 / appends);
  fmt::print(stderr,
             "    writer per append: staging {:.2f} us; RocksDB write-ahead log {:.2f} us, "
             "memtables {:.2f} us (timed in 1 group of 16)\n",
             static_cast<double>(stats.writer_stage_ns) / 1000.0 / appends,
             static_cast<double>(stats.write_wal_ns) / 1000.0 / timed,
             static_cast<double>(stats.write_memtable_ns) / 1000.0 / timed);
  fmt::print(
      stderr,
      "    polled before sleeping: writer in {} waits ({} ran out), sync thread in {} ({} ran "
      "out)\n",
      stats.writer_polls, stats.writer_polls_run_out, stats.sync_polls, stats.sync_polls_run_out);
  const WalPrefillReport& prefill = stats.wal_prefill;
  fmt::print(stderr, "    write-ahead log zero-filled ahead: {:.1f} MiB, {} writes waited for it{}{}\n",
             static_cast<double>(prefill.bytes_filled) / (1 << 20), prefill.writer_waits,
             prefill.failures > 0 ? "; failed: " : "", prefill.last_failure);
}

// The ledger's side of an append figure: one log, opened and (unless `cold`) warmed up as
// RawSide does its database — the same bytes of records in 256-event appends over the
// clients' 64 streams (ids of their own), then flushed and settled — and timed in slices.
// The clients, and so their ids, last for the whole figure: every timed append is new.
class LedgerSide {
 public:
  LedgerSide(const std::string& dir, Durability durability, int writers, bool threads, bool cold)
      : log_(Must("open", EventLog::Open(dir, EventLogOptions{.durability = durability}))),
        writers_(writers),
        threads_(threads) {
    for (int w = 0; w < std::max(writers, 64); ++w) clients_.emplace_back(w);
    if (!cold) {
      Stopwatch warming;
      constexpr size_t kEvents = 256;
      const uint64_t appends = kWarmBytes / (RecordSize() * kEvents) + 1;
      for (uint64_t i = 0; i < appends; ++i) {
        Must("warm-up append", log_->Append(clients_[i % 64].Next(kEvents)));
      }
      Must("settling the log", log_->SettleStorage());
      fmt::print(stderr, "  ledger warmed up: {} records, flushed ({:.2f} s)\n",
                 appends * kEvents, warming.Seconds());
    }
  }

  Timed Run(double seconds) { return threads_ ? RunThreads(seconds) : RunClients(seconds); }

  EventLog& log() { return *log_; }

 private:
  // `writers_` OS threads, each appending one-event batches with the blocking Append.
  Timed RunThreads(double seconds) {
    std::atomic<uint64_t> appended{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    Stopwatch clock;
    for (int t = 0; t < writers_; ++t) {
      threads.emplace_back([&, t] {
        for (uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
          Must("append", log_->Append(BenchBatch(t, i)));
          appended.fetch_add(1, std::memory_order_relaxed);
        }
      });
    }
    while (clock.Seconds() < seconds) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    stop = true;
    for (auto& t : threads) t.join();
    return Timed{appended.load(), clock.Seconds()};
  }

  // `writers_` concurrent clients, each keeping one append in flight with AppendAsync and
  // issuing the next from the last one's callback, on the log's sync thread. (The RPC
  // server's workers call the blocking Append instead: that is the `_64_threads` figure's
  // shape.) Appends still in flight at the end are waited for, not counted.
  Timed RunClients(double seconds) {
    std::atomic<uint64_t> appended{0};
    std::atomic<int> in_flight{0};
    std::atomic<bool> stop{false};
    std::function<void(int)> issue = [&](int writer) {
      in_flight.fetch_add(1);
      log_->AppendAsync(clients_[writer].Next(), [&, writer](Result<AppendResult> r) {
        if (!r.ok()) Die("append", r.status());
        appended.fetch_add(1, std::memory_order_relaxed);
        if (!stop.load(std::memory_order_relaxed)) issue(writer);
        in_flight.fetch_sub(1);
      });
    };
    Stopwatch clock;
    for (int w = 0; w < writers_; ++w) issue(w);
    while (clock.Seconds() < seconds) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    stop = true;
    const Timed timed{appended.load(), clock.Seconds()};
    while (in_flight.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return timed;
  }

  std::unique_ptr<EventLog> log_;
  const int writers_;
  const bool threads_;
  std::vector<BenchClient> clients_;
};

// Waits until neither database has background work left from the slice before: no flush or
// compaction running or waiting, and no zeros being written ahead of the log's write-ahead
// log (its count of zeros the same over 20 ms). Returns the seconds waited. Without it the
// flush that one side's slice set off would run in the other side's slice.
double WaitForQuiet(rocksdb::DB& raw, EventLog& log) {
  Stopwatch waited;
  uint64_t filled = log.Stats().wal_prefill.bytes_filled;
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const uint64_t now = log.Stats().wal_prefill.bytes_filled;
    if (now == filled && !Busy(raw) && !Busy(*log.db())) return waited.Seconds();
    filled = now;
  }
}

// Runs one side (`run` times it for a while) untimed until it has written kRunInBytes of
// records of `record_size` bytes, or for kRunInSeconds.
void RunIn(const char* side, const char* unit, size_t record_size,
           const std::function<Timed(double)>& run) {
  Timed ran;
  while (ran.count * record_size < kRunInBytes && ran.seconds < kRunInSeconds) ran.Add(run(0.1));
  fmt::print(stderr, "  {} run in: {} {} in {:.2f} s ({:.0f}/s)\n", side, ran.count, unit,
             ran.seconds, ran.Rate());
}

}  // namespace

int RunAppendBench(const Settings& settings) {
  const size_t record_size = RecordSize();
  // "_1": one blocking caller. Plain names: 64 concurrent clients over AppendAsync.
  // "_64_threads": 64 OS threads each blocking in Append.
  struct Run {
    const char* figure;
    Durability durability;
    int writers;
    bool threads;
  };
  // The disk's fsync time drifts over seconds, in phases that may last a second or two. So
  // each figure keeps both databases open and alternates short slices of the raw baseline
  // and the ledger (raw first in even rounds, the ledger first in odd ones), each slice
  // starting when both databases are quiet; the figure compares the totals. A slow phase of
  // the disk then falls on both sides.
  const int rounds = std::max(1, static_cast<int>(std::lround(settings.seconds / settings.slice)));
  const double slice = settings.seconds / rounds;
  for (const Run& run : {Run{"durable_append_1", Durability::kDurable, 1, true},
                         Run{"durable_append_64", Durability::kDurable, 64, false},
                         Run{"durable_append_64_threads", Durability::kDurable, 64, true},
                         Run{"buffered_append", Durability::kBuffered, 64, false},
                         Run{"buffered_append_1", Durability::kBuffered, 1, true}}) {
    if (!settings.Wants(run.figure)) continue;
    const bool durable = run.durability == Durability::kDurable;
    // Baselines: durable — sync=true WriteBatches of 64 records; buffered — sync=false puts.
    RawSide raw(ScratchDir(settings, "raw"), record_size, durable ? 64 : 1, durable,
                settings.cold);
    LedgerSide ours(ScratchDir(settings, run.figure), run.durability, run.writers, run.threads,
                    settings.cold);
    if (!settings.cold) {
      RunIn("raw baseline", "records", record_size,
            [&](double seconds) { return raw.Run(seconds); });
      RunIn("ledger", "appends", record_size, [&](double seconds) { return ours.Run(seconds); });
    }
    const LogStats timed_start = ours.log().Stats();
    Timed raw_total, ours_total;
    double quiet_wait = 0;
    for (int round = 0; round < rounds; ++round) {
      const LogStats before = ours.log().Stats();
      Timed raw_slice, ours_slice;
      for (int side = 0; side < 2; ++side) {
        quiet_wait += WaitForQuiet(raw.db(), ours.log());
        if ((side == 0) == (round % 2 == 0)) {
          raw_slice = raw.Run(slice);
        } else {
          ours_slice = ours.Run(slice);
        }
      }
      raw_total.Add(raw_slice);
      ours_total.Add(ours_slice);
      const LogStats stats = ours.log().Stats().Since(before);
      fmt::print(stderr, "  round {}: raw baseline {:.0f} records/s; ledger {:.0f} appends/s",
                 round + 1, raw_slice.Rate(), ours_slice.Rate());
      if (durable) fmt::print(stderr, ", {:.0f} us per fsync", PerSync(stats));
      fmt::print(stderr, "\n");
    }
    ReportGroups(ours.log().Stats().Since(timed_start),
                 fmt::format("{} {}, {}", run.writers, run.threads ? "threads" : "clients",
                             DurabilityName(run.durability)));
    fmt::print(stderr, "  {} rounds of {:.2f} s a side; {:.2f} s waited for quiet databases\n",
               rounds, slice, quiet_wait);
    PrintFigure(run.figure, "appends/s", ours_total.Rate(), raw_total.Rate());
  }
  return 0;
}

int RunReadBench(const Settings& settings) {
  constexpr uint64_t kRecords = 300'000;
  const std::string dir = ScratchDir(settings, "read");
  {
    auto log =
        Must("open", EventLog::Open(dir, EventLogOptions{.durability = Durability::kBuffered}));
    for (uint64_t i = 0; i < kRecords; i += 1000) {
      AppendBatch batch;
      for (uint64_t j = 0; j < 1000; ++j) {
        batch.events.push_back(NewEvent{RandomId128(), "bench/" + std::to_string(j % 64),
                                        Payload200(i + j)});
      }
      Must("append", log->Append(std::move(batch)));
    }
  }
  auto log = Must("reopen", EventLog::Open(dir, {}));
  auto best_of = [&](auto&& run) {
    double best = 0;
    for (int round = 0; round < 3; ++round) best = std::max(best, run());
    return best;
  };
  // Raw: iterate the log column family, touching every key and value.
  const double raw = best_of([&] {
    Stopwatch clock;
    std::unique_ptr<rocksdb::Iterator> it(
        log->db()->NewIterator(rocksdb::ReadOptions(), log->ColumnFamily("log")));
    uint64_t n = 0, bytes = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      bytes += it->key().size() + it->value().size();
      ++n;
    }
    if (n != kRecords || bytes == 0) {
      Fail(fmt::format("raw iteration saw {} records of {} bytes, not {}", n, bytes, kRecords));
    }
    return static_cast<double>(n) / clock.Seconds();
  });
  constexpr size_t kChunk = 10'000;
  const double ours = best_of([&] {
    Stopwatch clock;
    uint64_t n = 0;
    for (uint64_t from = 1; from <= kRecords; from += kChunk) {
      n += Must("read range", log->ReadRangeBytes(from, from + kChunk - 1)).size();
    }
    if (n != kRecords) Fail(fmt::format("read {} records, not {}", n, kRecords));
    return static_cast<double>(n) / clock.Seconds();
  });
  PrintFigure("read_range", "records/s", ours, raw);
  const double decoded = best_of([&] {
    Stopwatch clock;
    uint64_t n = 0;
    for (uint64_t from = 1; from <= kRecords; from += kChunk) {
      n += Must("read range", log->ReadRange(from, from + kChunk - 1)).size();
    }
    return static_cast<double>(n) / clock.Seconds();
  });
  PrintFigure("read_range_decoded", "records/s", decoded, raw);
  return 0;
}

}  // namespace shardledger::bench
