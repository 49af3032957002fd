// Figures of the event log: durable_append_1, durable_append_64, buffered_append(_1),
// read_range (and read_range_decoded), each against raw RocksDB in the same run.
#include <fmt/core.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <atomic>
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
  if (!s.ok()) {
    fmt::print(stderr, "raw open failed: {}\n", s.ToString());
    std::exit(1);
  }
  return std::unique_ptr<rocksdb::DB>(raw);
}

// Raw RocksDB: `batch_size` records of `value_size` bytes per WriteBatch, `sync` as given,
// from one thread, for `seconds`, after the warm-up unless `cold`. Records/s.
double RawWrites(const std::string& dir, size_t value_size, size_t batch_size, bool sync,
                 double seconds, bool cold) {
  auto db = OpenRaw(dir);
  const std::string value(value_size, 'r');
  uint64_t seq = 0;
  auto write = [&](const rocksdb::WriteOptions& options) {
    rocksdb::WriteBatch batch;
    for (size_t i = 0; i < batch_size; ++i) batch.Put(BigEndian64(++seq), value);
    if (!db->Write(options, &batch).ok()) std::exit(1);
  };
  if (!cold) {
    Stopwatch warming;
    while (seq * value_size < kWarmBytes) write(rocksdb::WriteOptions());
    Must("settling the raw baseline", SettleRocksDb(*db, {db->DefaultColumnFamily()}));
    fmt::print(stderr, "  raw baseline warmed up: {} records, flushed ({:.2f} s)\n", seq,
               warming.Seconds());
  }
  const uint64_t warm = seq;
  rocksdb::WriteOptions write_options;
  write_options.sync = sync;
  Stopwatch clock;
  while (clock.Seconds() < seconds) write(write_options);
  return static_cast<double>(seq - warm) / clock.Seconds();
}

// Opens a log for an append figure and, unless `cold`, warms it up as RawWrites does its
// database: the same bytes of records in 256-event appends over the clients' 64 streams
// (ids of their own), then flushed and settled.
std::unique_ptr<EventLog> OpenOrExit(const std::string& dir, Durability durability, bool cold) {
  auto log = Must("open", EventLog::Open(dir, EventLogOptions{.durability = durability}));
  if (!cold) {
    Stopwatch warming;
    constexpr size_t kEvents = 256;
    const uint64_t appends = kWarmBytes / (RecordSize() * kEvents) + 1;
    std::vector<BenchClient> clients;
    for (int w = 0; w < 64; ++w) clients.emplace_back(w);
    for (uint64_t i = 0; i < appends; ++i) {
      Must("warm-up append", log->Append(clients[i % clients.size()].Next(kEvents)));
    }
    Must("settling the log", log->SettleStorage());
    fmt::print(stderr, "  ledger warmed up: {} records, flushed ({:.2f} s)\n", appends * kEvents,
               warming.Seconds());
  }
  return log;
}

AppendBatch BenchBatch(int writer, uint64_t i) {
  AppendBatch batch;
  batch.events.push_back(NewEvent{RandomId128(), fmt::format("bench/{:02}", writer), Payload200(i)});
  return batch;
}

// What the log did since `before` (the warm-up's counts taken out).
LogStats Since(const LogStats& before, LogStats now) {
  for (auto [field, earlier] : {std::pair{&now.groups, before.groups},
                                {&now.appends, before.appends},
                                {&now.records, before.records},
                                {&now.syncs, before.syncs},
                                {&now.sync_ns, before.sync_ns},
                                {&now.writer_cpu_ns, before.writer_cpu_ns},
                                {&now.sync_thread_cpu_ns, before.sync_thread_cpu_ns},
                                {&now.writer_stage_ns, before.writer_stage_ns},
                                {&now.write_wal_ns, before.write_wal_ns},
                                {&now.write_memtable_ns, before.write_memtable_ns},
                                {&now.write_timed_appends, before.write_timed_appends},
                                {&now.writer_polls, before.writer_polls},
                                {&now.writer_polls_run_out, before.writer_polls_run_out},
                                {&now.sync_polls, before.sync_polls},
                                {&now.sync_polls_run_out, before.sync_polls_run_out},
                                {&now.wal_prefill.bytes_filled, before.wal_prefill.bytes_filled},
                                {&now.wal_prefill.writer_waits, before.wal_prefill.writer_waits}}) {
    *field -= earlier;
  }
  return now;
}

void ReportGroups(const EventLog& log, const LogStats& before, const char* how) {
  const LogStats stats = Since(before, log.Stats());
  fmt::print(stderr,
             "  {}: {} appends in {} groups ({:.1f} per group), {} fsyncs ({:.1f} appends and "
             "{:.0f} us each)\n",
             how, stats.appends, stats.groups,
             static_cast<double>(stats.appends) / static_cast<double>(std::max<uint64_t>(1, stats.groups)),
             stats.syncs,
             static_cast<double>(stats.appends) / static_cast<double>(std::max<uint64_t>(1, stats.syncs)),
             static_cast<double>(stats.sync_ns) / 1000.0 / static_cast<double>(std::max<uint64_t>(1, stats.syncs)));
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

// `writers` OS threads, each appending one-event batches with the blocking Append.
double ThreadedAppends(const std::string& dir, Durability durability, int writers, double seconds,
                       bool cold) {
  auto log = OpenOrExit(dir, durability, cold);
  const LogStats before = log->Stats();
  std::atomic<uint64_t> appended{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  Stopwatch clock;
  for (int t = 0; t < writers; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        auto result = log->Append(BenchBatch(t, i));
        if (!result.ok()) {
          fmt::print(stderr, "append failed: {}\n", result.status().ToString());
          std::exit(1);
        }
        appended.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  while (clock.Seconds() < seconds) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  stop = true;
  for (auto& t : threads) t.join();
  const double rate = static_cast<double>(appended.load()) / clock.Seconds();
  ReportGroups(*log, before,
               fmt::format("{} threads, {}", writers, DurabilityName(durability)).c_str());
  return rate;
}

// `writers` concurrent clients, each keeping one append in flight with AppendAsync and
// issuing the next from the last one's callback, on the log's sync thread. (The RPC server's
// workers call the blocking Append instead: that is the `_64_threads` figure's shape.)
double ClientAppends(const std::string& dir, Durability durability, int writers, double seconds,
                     bool cold) {
  auto log = OpenOrExit(dir, durability, cold);
  const LogStats before = log->Stats();
  std::atomic<uint64_t> appended{0};
  std::atomic<int> in_flight{0};
  std::atomic<bool> stop{false};
  std::vector<BenchClient> clients;
  for (int w = 0; w < writers; ++w) clients.emplace_back(w);
  std::function<void(int)> issue = [&](int writer) {
    in_flight.fetch_add(1);
    log->AppendAsync(clients[writer].Next(), [&, writer](Result<AppendResult> r) {
      if (!r.ok()) {
        fmt::print(stderr, "append failed: {}\n", r.status().ToString());
        std::exit(1);
      }
      appended.fetch_add(1, std::memory_order_relaxed);
      if (!stop.load(std::memory_order_relaxed)) issue(writer);
      in_flight.fetch_sub(1);
    });
  };
  Stopwatch clock;
  for (int w = 0; w < writers; ++w) issue(w);
  while (clock.Seconds() < seconds) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  stop = true;
  const double elapsed = clock.Seconds();
  const uint64_t count = appended.load();
  while (in_flight.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ReportGroups(*log, before,
               fmt::format("{} clients, {}", writers, DurabilityName(durability)).c_str());
  return static_cast<double>(count) / elapsed;
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
  // The disk's fsync time drifts over seconds, so each figure alternates three slices of the
  // raw baseline with three of the ledger and compares the totals.
  constexpr int kSlices = 3;
  const double slice = settings.seconds / kSlices;
  for (const Run& run : {Run{"durable_append_1", Durability::kDurable, 1, true},
                         Run{"durable_append_64", Durability::kDurable, 64, false},
                         Run{"durable_append_64_threads", Durability::kDurable, 64, true},
                         Run{"buffered_append", Durability::kBuffered, 64, false},
                         Run{"buffered_append_1", Durability::kBuffered, 1, true}}) {
    if (!settings.Wants(run.figure)) continue;
    const bool durable = run.durability == Durability::kDurable;
    double raw = 0, ours = 0;
    for (int i = 0; i < kSlices; ++i) {
      // Baselines: durable — sync=true WriteBatches of 64 records; buffered — sync=false puts.
      const double raw_slice =
          RawWrites(ScratchDir(settings, "raw"), record_size, durable ? 64 : 1, durable, slice,
                    settings.cold);
      fmt::print(stderr, "  raw baseline: {:.0f} records/s\n", raw_slice);
      raw += raw_slice;
      const std::string dir = ScratchDir(settings, run.figure);
      ours += run.threads ? ThreadedAppends(dir, run.durability, run.writers, slice, settings.cold)
                          : ClientAppends(dir, run.durability, run.writers, slice, settings.cold);
    }
    PrintFigure(run.figure, "appends/s", ours / kSlices, raw / kSlices);
  }
  return 0;
}

int RunReadBench(const Settings& settings) {
  constexpr uint64_t kRecords = 300'000;
  const std::string dir = ScratchDir(settings, "read");
  {
    auto log = EventLog::Open(dir, EventLogOptions{.durability = Durability::kBuffered});
    if (!log.ok()) return 1;
    for (uint64_t i = 0; i < kRecords; i += 1000) {
      AppendBatch batch;
      for (uint64_t j = 0; j < 1000; ++j) {
        batch.events.push_back(NewEvent{RandomId128(), "bench/" + std::to_string(j % 64),
                                        Payload200(i + j)});
      }
      if (!(*log)->Append(std::move(batch)).ok()) return 1;
    }
  }
  auto log = EventLog::Open(dir, {});
  if (!log.ok()) return 1;
  auto best_of = [&](auto&& run) {
    double best = 0;
    for (int round = 0; round < 3; ++round) best = std::max(best, run());
    return best;
  };
  // Raw: iterate the log column family, touching every key and value.
  const double raw = best_of([&] {
    Stopwatch clock;
    std::unique_ptr<rocksdb::Iterator> it(
        (*log)->db()->NewIterator(rocksdb::ReadOptions(), (*log)->ColumnFamily("log")));
    uint64_t n = 0, bytes = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      bytes += it->key().size() + it->value().size();
      ++n;
    }
    if (n != kRecords || bytes == 0) std::exit(1);
    return static_cast<double>(n) / clock.Seconds();
  });
  constexpr size_t kChunk = 10'000;
  const double ours = best_of([&] {
    Stopwatch clock;
    uint64_t n = 0;
    for (uint64_t from = 1; from <= kRecords; from += kChunk) {
      auto chunk = (*log)->ReadRangeBytes(from, from + kChunk - 1);
      if (!chunk.ok()) std::exit(1);
      n += chunk->size();
    }
    if (n != kRecords) std::exit(1);
    return static_cast<double>(n) / clock.Seconds();
  });
  PrintFigure("read_range", "records/s", ours, raw);
  const double decoded = best_of([&] {
    Stopwatch clock;
    uint64_t n = 0;
    for (uint64_t from = 1; from <= kRecords; from += kChunk) {
      auto chunk = (*log)->ReadRange(from, from + kChunk - 1);
      if (!chunk.ok()) std::exit(1);
      n += chunk->size();
    }
    return static_cast<double>(n) / clock.Seconds();
  });
  PrintFigure("read_range_decoded", "records/s", decoded, raw);
  return 0;
}

}  // namespace shardledger::bench
