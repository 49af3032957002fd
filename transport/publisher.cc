#include "transport/publisher.h"

#include "events/keys.h"
#include "transport/topics.h"

namespace shardledger {

Publisher::Publisher(EventLog& log, PublisherOptions options)
    : log_(log), options_(std::move(options)), context_(1), socket_(context_, zmq::socket_type::pub) {}

Result<std::unique_ptr<Publisher>> Publisher::Start(EventLog& log, PublisherOptions options) {
  std::unique_ptr<Publisher> publisher(new Publisher(log, std::move(options)));
  try {
    publisher->socket_.set(zmq::sockopt::sndhwm, publisher->options_.send_high_water_mark);
    publisher->socket_.set(zmq::sockopt::linger, 0);
    publisher->socket_.bind(publisher->options_.endpoint);
    publisher->endpoint_ = publisher->socket_.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return Status(ErrorCode::kUnavailable,
                  "binding the publisher to " + publisher->options_.endpoint + ": " + e.what());
  }
  Publisher* raw = publisher.get();
  log.SetCommitObserver([raw](std::vector<CommittedRecord>&& records) { raw->Publish(std::move(records)); });
  {
    // Records made durable before the observer was in place are not sent; subscribers learn
    // of them from the heartbeat's head and replay them.
    std::lock_guard lock(raw->mu_);
    raw->published_seq_ = std::max(raw->published_seq_, log.Head().seq);
  }
  publisher->thread_ = std::thread([raw] { raw->HeartbeatLoop(); });
  return publisher;
}

Publisher::~Publisher() {
  log_.SetCommitObserver(nullptr);  // waits out a Publish in progress
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

Status Publisher::status() const {
  std::lock_guard lock(mu_);
  return error_;
}

uint64_t Publisher::published_seq() const {
  std::lock_guard lock(mu_);
  return published_seq_;
}

void Publisher::Publish(std::vector<CommittedRecord>&& records) {
  if (records.empty()) return;
  std::lock_guard lock(mu_);
  if (!error_.ok()) return;
  for (const CommittedRecord& record : records) {
    if (!SendFrames(TopicOf(record.type, record.job_type), BigEndian64(record.seq), record.bytes)) return;
  }
  published_seq_ = records.back().seq;
  sent_since_heartbeat_ = true;
}

void Publisher::HeartbeatLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, options_.heartbeat, [&] { return stopping_; });
    if (stopping_ || !error_.ok()) continue;
    if (!sent_since_heartbeat_) SendFrames(kHeadTopic, BigEndian64(published_seq_), {});
    sent_since_heartbeat_ = false;
  }
}

bool Publisher::SendFrames(std::string_view topic, std::string_view seq, std::string_view body) {
  try {
    // PUB never blocks: at a subscriber's high-water mark the message is dropped for it.
    socket_.send(zmq::buffer(topic), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(seq), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(body), zmq::send_flags::none);
    return true;
  } catch (const zmq::error_t& e) {
    // The socket is unusable: status() says why; subscribers catch up by replay.
    error_ = Status(ErrorCode::kUnavailable, std::string("publishing: ") + e.what());
    return false;
  }
}

}  // namespace shardledger
