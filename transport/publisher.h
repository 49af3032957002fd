// Publisher: every durable record, in seq order, on a ZeroMQ PUB socket as three frames —
// topic, seq (8 bytes big-endian), the envelope (DESIGN.md section 6).
//
// The log hands each durable group to the publisher (its commit observer), which sends it
// right there, on the log's sync thread (its writer thread when the log is buffered): a PUB
// send only queues the message for ZeroMQ's I/O thread and never waits on the network, and
// sending in place spares every record a thread hand-off. PUB drops what a slow subscriber
// cannot take (its high-water mark): subscribers recover by replay. A thread of the
// publisher's own sends the heartbeat while idle.
#pragma once

#include <zmq.hpp>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "events/event_log.h"
#include "transport/topics.h"

namespace shardledger {

struct PublisherOptions {
  std::string endpoint = "tcp://127.0.0.1:7401";  // "tcp://127.0.0.1:*" picks a free port
  int send_high_water_mark = 100'000;             // messages per subscriber
  // While idle, the head seq is published this often on kHeadTopic, so a subscriber whose
  // last records were dropped learns it is behind without waiting for the next record.
  std::chrono::milliseconds heartbeat = std::chrono::milliseconds(200);
};


class Publisher {
 public:
  // Binds the socket and starts publishing every record `log` makes durable from now on.
  static Result<std::unique_ptr<Publisher>> Start(EventLog& log, PublisherOptions options);
  ~Publisher();  // stops observing the log (what is durable by then is sent), closes the socket

  // The bound endpoint (with the port the system chose for "*").
  const std::string& endpoint() const { return endpoint_; }
  // The last seq handed to the socket.
  uint64_t published_seq() const;
  // Ok, or why the publisher stopped sending.
  Status status() const;

 private:
  Publisher(EventLog& log, PublisherOptions options);
  // The commit observer: sends a durable group, in seq order.
  void Publish(std::vector<CommittedRecord>&& records);
  // Sends the head on kHeadTopic whenever a heartbeat interval passes without a record.
  void HeartbeatLoop();
  // Sends one three-frame message; false (and error_ set) when the socket failed. Caller
  // holds mu_.
  bool SendFrames(std::string_view topic, std::string_view seq, std::string_view body);

  EventLog& log_;
  PublisherOptions options_;
  zmq::context_t context_;
  zmq::socket_t socket_;
  std::string endpoint_;

  mutable std::mutex mu_;  // the socket and everything below
  std::condition_variable cv_;
  bool stopping_ = false;
  bool sent_since_heartbeat_ = false;
  uint64_t published_seq_ = 0;
  Status error_;
  std::thread thread_;
};

}  // namespace shardledger
