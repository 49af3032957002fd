// Figures of the transport, each against a raw baseline in the same run:
//   pubsub_throughput     appends → Publisher → TCP loopback → Subscriber applying, records/s,
//                         against raw ZeroMQ PUB/SUB sending the same frames (topic, seq,
//                         envelope bytes) from one thread to another.
//   pubsub_p50_latency,   the same paths at a steady 5,000 records/s, from the moment the
//   pubsub_p99_latency    record is handed over (AppendAsync; raw: send) to its apply (raw:
//                         receive), microseconds.
//   rpc_lookup_1000_p50,  GetWorkflowShardMapping of 1,000 ids over RPC (RpcClient → ROUTER →
//   rpc_lookup_1000_p99   worker → shard map → answer), ms, against the same lookup made
//                         in-process on the projection.
// The log runs buffered here: fsync cost belongs to the append figures, and would otherwise
// dominate what this measures (the publication path).
#include <fmt/core.h>
#include <zmq.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "core/ledger.h"
#include "events/codec.h"
#include "events/keys.h"
#include "tools/bench/bench.h"
#include "transport/client.h"
#include "transport/publisher.h"
#include "transport/rpc_server.h"
#include "transport/subscriber.h"

namespace shardledger::bench {

namespace {

// High-water marks, both ends, ours and raw alike. Throughput runs unbounded (0), so the raw
// PUB drops nothing and delivers every record, as ours does.
constexpr int kLatencyHighWaterMark = 100'000;
constexpr int kUnbounded = 0;

// The system clock, as the log's record timestamps are.
int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The ledger's side: a buffered log with its Publisher on loopback TCP and a Subscriber
// applying in a thread of its own.
class OurPath {
 public:
  OurPath(const std::string& dir, int hwm) : hwm_(hwm) {
    log_ = Must("open", EventLog::Open(dir, EventLogOptions{.durability = Durability::kBuffered}));
    publisher_ = Must("publisher", Publisher::Start(*log_, {.endpoint = "tcp://127.0.0.1:*",
                                                           .send_high_water_mark = hwm}));
    source_ = std::make_unique<LogReplaySource>(*log_);
  }

  // Runs the subscriber until it has applied `last`, calling on_apply(seq, bytes) for each
  // record.
  std::thread Follow(uint64_t last, std::function<void(uint64_t, std::string_view)> on_apply) {
    auto sub = Must("subscriber",
                    Subscriber::Connect({.endpoint = publisher_->endpoint(), .receive_high_water_mark = hwm_},
                                        *source_, [on_apply](uint64_t seq, std::string_view, std::string_view bytes) {
                                          on_apply(seq, bytes);
                                        }));
    if (Status s = sub->Start(); !s.ok()) Die("subscriber start", s);
    // Let the connection settle (a heartbeat arrives within 200 ms of joining).
    for (int i = 0; i < 5; ++i) (void)sub->Poll(std::chrono::milliseconds(100));
    return std::thread([this, last, sub = std::shared_ptr<Subscriber>(std::move(sub))] {
      while (sub->last_seq() < last) {
        auto polled = sub->Poll(std::chrono::milliseconds(100));
        if (!polled.ok()) Die("subscriber", polled.status());
      }
      stats_ = sub->stats();
    });
  }

  EventLog& log() { return *log_; }
  const SubscriberStats& stats() const { return stats_; }

 private:
  int hwm_;
  std::unique_ptr<EventLog> log_;
  std::unique_ptr<Publisher> publisher_;
  std::unique_ptr<LogReplaySource> source_;
  SubscriberStats stats_;
};

// The raw side: a PUB and a SUB socket over loopback TCP, connected and warmed up.
class RawPath {
 public:
  explicit RawPath(int hwm)
      : context_(1), pub_(context_, zmq::socket_type::pub), sub_(context_, zmq::socket_type::sub) {
    pub_.set(zmq::sockopt::sndhwm, hwm);
    pub_.set(zmq::sockopt::linger, 0);
    pub_.bind("tcp://127.0.0.1:*");
    sub_.set(zmq::sockopt::rcvhwm, hwm);
    sub_.set(zmq::sockopt::linger, 0);
    sub_.set(zmq::sockopt::subscribe, "");
    sub_.connect(pub_.get(zmq::sockopt::last_endpoint));
    // Until the subscription has reached the publisher, PUB drops: send until one arrives.
    for (;;) {
      Send("~warm", 0, "");
      zmq::pollitem_t item{sub_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(10));
      if (item.revents & ZMQ_POLLIN) break;
    }
    for (;;) {  // drain the warm-ups
      zmq::message_t part;
      if (!sub_.recv(part, zmq::recv_flags::dontwait)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (!sub_.recv(part, zmq::recv_flags::dontwait)) break;
      }
    }
  }

  void Send(std::string_view topic, uint64_t seq, std::string_view bytes) {
    const std::string seq_frame = BigEndian64(seq);
    pub_.send(zmq::buffer(topic), zmq::send_flags::sndmore);
    pub_.send(zmq::buffer(seq_frame), zmq::send_flags::sndmore);
    pub_.send(zmq::buffer(bytes), zmq::send_flags::none);
  }

  // Receives until seq `last` arrives or nothing comes for a second (the PUB dropped it);
  // calls on_receive(seq) per message; returns how many arrived.
  std::thread Follow(uint64_t last, std::function<void(uint64_t)> on_receive, std::atomic<uint64_t>& received) {
    return std::thread([this, last, on_receive, &received] {
      for (;;) {
        zmq::pollitem_t item{sub_.handle(), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, std::chrono::seconds(1));
        if (!(item.revents & ZMQ_POLLIN)) return;
        zmq::message_t topic, seq, body;
        if (!sub_.recv(topic) || !sub_.recv(seq) || !sub_.recv(body)) return;
        const uint64_t n = ReadBigEndian64(seq.to_string_view());
        on_receive(n);
        received.fetch_add(1, std::memory_order_relaxed);
        if (n == last) return;
      }
    });
  }

 private:
  zmq::context_t context_;
  zmq::socket_t pub_;
  zmq::socket_t sub_;
};

// Appends `records` events in batches of `per_batch`, keeping `window` batches in flight.
void AppendPipelined(EventLog& log, uint64_t records, size_t per_batch, int window) {
  BenchClient client(0);
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;
  for (uint64_t sent = 0; sent < records; sent += per_batch) {
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return in_flight < window; });
      ++in_flight;
    }
    log.AppendAsync(client.Next(std::min<uint64_t>(per_batch, records - sent)), [&](Result<AppendResult> r) {
      if (!r.ok()) Die("append", r.status());
      std::lock_guard lock(mu);
      --in_flight;
      cv.notify_one();
    });
  }
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return in_flight == 0; });
}

void PubSubThroughput(const Settings& settings) {
  constexpr uint64_t kRecords = 300'000;
  // Ours: from the first append to the subscriber applying the last record.
  double ours = 0;
  std::vector<StoredRecord> stored;
  {
    OurPath path(ScratchDir(settings, "pubsub"), kUnbounded);
    Stopwatch clock;
    std::thread follower = path.Follow(kRecords, [](uint64_t, std::string_view) {});
    AppendPipelined(path.log(), kRecords, 64, 8);
    fmt::print(stderr, "  appended in {:.2f} s\n", clock.Seconds());
    follower.join();
    ours = static_cast<double>(kRecords) / clock.Seconds();
    fmt::print(stderr, "  ours: {} applied, {} from {} replays\n", path.stats().applied,
               path.stats().from_replay, path.stats().replays);
    stored = Must("read back", path.log().ReadRangeBytes(1, kRecords));
  }
  // Raw: the same frames, sent as fast as PUB takes them.
  RawPath raw(kUnbounded);
  std::atomic<uint64_t> received{0};
  const std::string topic = TopicOf(Payload200(0));
  Stopwatch clock;
  std::thread receiver = raw.Follow(kRecords, [](uint64_t) {}, received);
  for (const auto& record : stored) raw.Send(topic, record.seq, record.bytes);
  receiver.join();
  const double elapsed = clock.Seconds() - (received.load() < kRecords ? 1.0 : 0.0);  // less the idle second
  const double baseline = static_cast<double>(received.load()) / elapsed;
  if (received.load() < kRecords) {
    fmt::print(stderr, "  raw: {} of {} arrived (PUB dropped the rest)\n", received.load(), kRecords);
  }
  PrintFigure("pubsub_throughput", "records/s", ours, baseline);
}

// Hands records over at `rate` per second for `count` records; latency per record in µs.
template <typename Send>
void Paced(uint64_t count, double rate, std::vector<std::atomic<int64_t>>& sent_at, Send&& send) {
  const int64_t start = NowNs();
  const double gap_ns = 1e9 / rate;
  for (uint64_t i = 1; i <= count; ++i) {
    const int64_t due = start + static_cast<int64_t>(gap_ns * static_cast<double>(i - 1));
    while (NowNs() < due) {
      if (due - NowNs() > 100'000) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    sent_at[i].store(NowNs(), std::memory_order_release);
    send(i);
  }
}

void PubSubLatency(const Settings& settings) {
  constexpr double kRate = 5'000;
  const uint64_t count = static_cast<uint64_t>(std::max(2.0, settings.seconds) * kRate);
  std::vector<std::atomic<int64_t>> sent_at(count + 1);
  // µs per seq: ours from the append call and from the record's commit (its timestamp, taken
  // as the writer stages it), raw from the send; to the apply or receive.
  std::vector<double> from_append(count + 1, -1), from_commit(count + 1, -1), raw(count + 1, -1);
  {
    OurPath path(ScratchDir(settings, "pubsub-latency"), kLatencyHighWaterMark);
    std::thread follower = path.Follow(count, [&](uint64_t seq, std::string_view bytes) {
      const int64_t now = NowNs();
      if (seq > count) return;
      from_append[seq] = static_cast<double>(now - sent_at[seq].load(std::memory_order_acquire)) / 1e3;
      auto record = Must("decode", DecodeRecord(bytes));
      from_commit[seq] = static_cast<double>(now - record.timestamp_ns) / 1e3;
    });
    BenchClient client(0);
    Paced(count, kRate, sent_at, [&](uint64_t) {
      path.log().AppendAsync(client.Next(), [](Result<AppendResult> r) {
        if (!r.ok()) Die("append", r.status());
      });
    });
    follower.join();
  }
  std::string bytes;
  {
    OurPath path(ScratchDir(settings, "pubsub-bytes"), kLatencyHighWaterMark);
    AppendPipelined(path.log(), 1, 1, 1);
    bytes = Must("read back", path.log().ReadRangeBytes(1, 1)).at(0).bytes;
  }
  {
    RawPath path(kLatencyHighWaterMark);
    std::atomic<uint64_t> received{0};
    const std::string topic = TopicOf(Payload200(0));
    std::thread receiver = path.Follow(count, [&](uint64_t seq) {
      if (seq <= count) raw[seq] = static_cast<double>(NowNs() - sent_at[seq].load(std::memory_order_acquire)) / 1e3;
    }, received);
    Paced(count, kRate, sent_at, [&](uint64_t seq) { path.Send(topic, seq, bytes); });
    receiver.join();
  }
  auto samples = [](const std::vector<double>& per_seq) {
    std::vector<double> out;
    for (double v : per_seq) {
      if (v >= 0) out.push_back(v);
    }
    return out;
  };
  auto commit = samples(from_commit), append = samples(from_append), base = samples(raw);
  fmt::print(stderr, "  latency samples: ours {}, raw {} of {}\n", commit.size(), base.size(), count);
  const double raw_p50 = Percentile(base, 50), raw_p99 = Percentile(base, 99);
  for (double pct : {90.0, 95.0, 98.0, 99.0, 99.5, 99.9}) {
    fmt::print(stderr, "  p{}: ours {:.0f} us, raw {:.0f} us\n", pct, Percentile(commit, pct),
               Percentile(base, pct));
  }
  PrintFigure("pubsub_p50_latency", "us", Percentile(commit, 50), raw_p50);
  PrintFigure("pubsub_p99_latency", "us", Percentile(commit, 99), raw_p99);
  PrintFigure("append_to_apply_p50_latency", "us", Percentile(append, 50), raw_p50);
  PrintFigure("append_to_apply_p99_latency", "us", Percentile(append, 99), raw_p99);
}

}  // namespace

int RunPubSubBench(const Settings& settings) {
  if (settings.Wants("pubsub_throughput")) PubSubThroughput(settings);
  if (settings.Wants("pubsub_p50_latency") || settings.Wants("pubsub_p99_latency")) PubSubLatency(settings);
  return 0;
}

int RunRpcBench(const Settings& settings, size_t workflows) {
  auto ledger = Must("open", Ledger::Open(ScratchDir(settings, "rpc"), LedgerOptions{}));
  if (auto r = ledger->SetShardCount(8, "bench"); !r.ok()) Die("set shard count", r.status());
  std::vector<std::string> ids;
  ids.reserve(workflows);
  for (size_t i = 0; i < workflows; ++i) ids.push_back(fmt::format("workflow-{:08}", i));
  constexpr size_t kChunk = 10'000;
  for (size_t i = 0; i < ids.size(); i += kChunk) {
    std::vector<std::string> part(ids.begin() + i, ids.begin() + std::min(ids.size(), i + kChunk));
    if (auto r = ledger->RegisterWorkflows(part); !r.ok()) Die("register", r.status());
  }
  auto server = Must("rpc server", RpcServer::Start(*ledger, {.endpoint = "tcp://127.0.0.1:*", .workers = 2}));
  auto client = Must("rpc client", RpcClient::Connect({.endpoint = server->endpoint()}));

  std::mt19937_64 rng(42);
  auto sample = [&] {
    std::vector<std::string> some(1'000);
    for (auto& id : some) id = ids[rng() % ids.size()];
    return some;
  };
  constexpr int kCalls = 2'000;
  std::vector<double> rpc_ms, local_ms;
  for (int i = 0; i < 50; ++i) (void)client->GetWorkflowShardMapping(sample());  // warm up
  for (int i = 0; i < kCalls; ++i) {
    const auto some = sample();
    Stopwatch one;
    auto mapping = Must("lookup", client->GetWorkflowShardMapping(some));
    rpc_ms.push_back(one.Seconds() * 1e3);
    if (mapping.mappings.empty()) Die("lookup", Status(ErrorCode::kNotFound, "no mappings"));
  }
  for (int i = 0; i < kCalls; ++i) {
    const auto some = sample();
    Stopwatch one;
    auto mapping = Must("local lookup", ledger->shard_map().Read([&](const ShardMapState& state) {
      return state.GetWorkflowShardMapping(some);
    }));
    local_ms.push_back(one.Seconds() * 1e3);
    if (mapping.mappings.empty()) Die("lookup", Status(ErrorCode::kNotFound, "no mappings"));
  }
  fmt::print(stderr, "  {} workflows, {} lookups of 1,000 ids each way\n", workflows, kCalls);
  PrintFigure("rpc_lookup_1000_p50", "ms", Percentile(rpc_ms, 50), Percentile(local_ms, 50));
  PrintFigure("rpc_lookup_1000_p99", "ms", Percentile(rpc_ms, 99), Percentile(local_ms, 99));
  return 0;
}

}  // namespace shardledger::bench
