// Subscriber: follows the publisher losslessly (DESIGN.md section 6, the ZeroMQ guide's Clone
// pattern made lossless).
//
// It tracks the last seq it applied. At start it replays from there to the head; afterwards,
// whenever a live record's seq jumps past the next one (records dropped at the high-water
// mark, or missed while connecting), it replays the missing range before applying the live
// record. Records at or below the last applied seq are dropped. So every matching record is
// applied exactly once, in seq order. With topic filters, seqs jump between matching
// records too; the replay then finds nothing to apply.
#pragma once

#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "events/event_log.h"

namespace shardledger {

// Where a subscriber fetches what live delivery missed: the ledger's Replay, over RPC or
// from a local log.
class ReplaySource {
 public:
  virtual ~ReplaySource() = default;
  // Records from..to (inclusive) whose topic starts with one of `topics` (all when empty).
  virtual Result<std::vector<StoredRecord>> Replay(uint64_t from, uint64_t to,
                                                   const std::vector<std::string>& topics) = 0;
  virtual Result<uint64_t> Head() = 0;
};

// Replays from an EventLog in this process (tests, and tools that open a data directory).
class LogReplaySource : public ReplaySource {
 public:
  explicit LogReplaySource(const EventLog& log) : log_(log) {}
  Result<std::vector<StoredRecord>> Replay(uint64_t from, uint64_t to,
                                           const std::vector<std::string>& topics) override;
  Result<uint64_t> Head() override { return log_.Head().seq; }

 private:
  const EventLog& log_;
};

struct SubscriberOptions {
  std::string endpoint;             // the publisher's
  std::vector<std::string> topics;  // topic prefixes; empty: everything
  uint64_t after_seq = 0;           // the last seq already applied (resume point)
  int receive_high_water_mark = 100'000;
  int receive_buffer_bytes = 0;  // the kernel's TCP receive buffer (SO_RCVBUF); 0: OS default
};

struct SubscriberStats {
  uint64_t applied = 0;       // records applied
  uint64_t from_replay = 0;   // of which came from replays
  uint64_t replays = 0;       // replay requests made
  uint64_t duplicates = 0;    // live records dropped as already applied
};

class Subscriber {
 public:
  using Apply = std::function<void(uint64_t seq, std::string_view topic, std::string_view bytes)>;

  // Connects and subscribes; nothing is applied before Start.
  static Result<std::unique_ptr<Subscriber>> Connect(SubscriberOptions options,
                                                     ReplaySource& source, Apply apply);
  // Replays from after_seq to the current head.
  Status Start();
  // Receives for up to `timeout`, applying live records and filling gaps; returns how many
  // records it applied. Returns at the deadline even while records keep arriving.
  Result<size_t> Poll(std::chrono::milliseconds timeout);
  // Replays up to `seq` if live delivery has not brought it yet.
  Status CatchUpTo(uint64_t seq);

  uint64_t last_seq() const { return last_seq_; }
  const SubscriberStats& stats() const { return stats_; }

 private:
  Subscriber(SubscriberOptions options, ReplaySource& source, Apply apply);
  bool Matches(std::string_view topic) const;
  Status ReplayThrough(uint64_t to);

  SubscriberOptions options_;
  ReplaySource& source_;
  Apply apply_;
  zmq::context_t context_;
  zmq::socket_t socket_;
  uint64_t last_seq_ = 0;
  SubscriberStats stats_;
};

}  // namespace shardledger
