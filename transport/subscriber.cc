#include "transport/subscriber.h"

#include "events/codec.h"
#include "events/keys.h"
#include "transport/topics.h"

namespace shardledger {

Result<std::vector<StoredRecord>> LogReplaySource::Replay(uint64_t from, uint64_t to,
                                                          const std::vector<std::string>& topics) {
  std::vector<StoredRecord> out;
  Status error;
  SL_RETURN_IF_ERROR(log_.Scan(from, to, [&](uint64_t seq, std::string_view bytes) {
    if (!topics.empty()) {
      auto record = DecodeRecord(bytes);
      if (!record.ok()) {
        error = record.status();
        return false;
      }
      const std::string topic = TopicOf(record->payload);
      bool match = false;
      for (const auto& prefix : topics) match = match || topic.starts_with(prefix);
      if (!match) return true;
    }
    out.push_back(StoredRecord{seq, std::string(bytes)});
    return true;
  }));
  SL_RETURN_IF_ERROR(error);
  return out;
}

Subscriber::Subscriber(SubscriberOptions options, ReplaySource& source, Apply apply)
    : options_(std::move(options)),
      source_(source),
      apply_(std::move(apply)),
      context_(1),
      socket_(context_, zmq::socket_type::sub),
      last_seq_(options_.after_seq) {}

Result<std::unique_ptr<Subscriber>> Subscriber::Connect(SubscriberOptions options,
                                                        ReplaySource& source, Apply apply) {
  std::unique_ptr<Subscriber> sub(new Subscriber(std::move(options), source, std::move(apply)));
  try {
    sub->socket_.set(zmq::sockopt::rcvhwm, sub->options_.receive_high_water_mark);
    sub->socket_.set(zmq::sockopt::linger, 0);
    if (sub->options_.receive_buffer_bytes > 0) {
      sub->socket_.set(zmq::sockopt::rcvbuf, sub->options_.receive_buffer_bytes);
    }
    if (sub->options_.topics.empty()) {
      sub->socket_.set(zmq::sockopt::subscribe, "");
    } else {
      for (const auto& topic : sub->options_.topics) sub->socket_.set(zmq::sockopt::subscribe, topic);
      sub->socket_.set(zmq::sockopt::subscribe, kHeadTopic);
    }
    sub->socket_.connect(sub->options_.endpoint);
  } catch (const zmq::error_t& e) {
    return Status(ErrorCode::kUnavailable,
                  "connecting to " + sub->options_.endpoint + ": " + e.what());
  }
  return sub;
}

bool Subscriber::Matches(std::string_view topic) const {
  if (options_.topics.empty()) return true;
  for (const auto& prefix : options_.topics) {
    if (topic.starts_with(prefix)) return true;
  }
  return false;
}

Status Subscriber::ReplayThrough(uint64_t to) {
  while (last_seq_ < to) {
    ++stats_.replays;
    SL_ASSIGN_OR_RETURN(auto records, source_.Replay(last_seq_ + 1, to, options_.topics));
    for (const StoredRecord& record : records) {
      if (record.seq <= last_seq_) continue;
      auto decoded = DecodeRecord(record.bytes);
      if (!decoded.ok()) {
        return Status(ErrorCode::kCorruption, "replayed record " + std::to_string(record.seq) +
                                                  ": " + decoded.status().message());
      }
      apply_(record.seq, TopicOf(decoded->payload), record.bytes);
      ++stats_.applied;
      ++stats_.from_replay;
    }
    // Records past the last one returned did not match the filter: nothing to apply there.
    last_seq_ = to;
  }
  return Status::Ok();
}

Status Subscriber::Start() {
  SL_ASSIGN_OR_RETURN(uint64_t head, source_.Head());
  return ReplayThrough(head);
}

Status Subscriber::CatchUpTo(uint64_t seq) { return ReplayThrough(seq); }

Result<size_t> Subscriber::Poll(std::chrono::milliseconds timeout) {
  size_t applied = 0;
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    try {
      // Take what is queued without a system call; wait (poll) only when nothing is. Returns
      // at the deadline even while records keep coming.
      zmq::message_t topic, seq, body;
      if (!socket_.recv(topic, zmq::recv_flags::dontwait)) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            until - std::chrono::steady_clock::now());
        if (left.count() <= 0) return applied;
        zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, left);
        if (!(item.revents & ZMQ_POLLIN)) return applied;
        if (!socket_.recv(topic, zmq::recv_flags::dontwait)) continue;
      }
      if (!topic.more() || !socket_.recv(seq) || !seq.more() || !socket_.recv(body) || body.more() ||
          seq.size() != 8) {
        // A malformed message: drain its parts and let the next seq's gap replay cover it.
        while (socket_.get(zmq::sockopt::rcvmore)) {
          zmq::message_t rest;
          if (!socket_.recv(rest)) break;
        }
        continue;
      }
      const uint64_t n = ReadBigEndian64(seq.to_string_view());
      const std::string_view topic_view = topic.to_string_view();
      if (topic_view == kHeadTopic) {
        // The publisher's head: whatever up to it did not arrive was dropped (or filtered).
        const uint64_t before = stats_.applied;
        if (n > last_seq_) SL_RETURN_IF_ERROR(ReplayThrough(n));
        applied += stats_.applied - before;
        continue;
      }
      if (n <= last_seq_) {
        ++stats_.duplicates;
        continue;
      }
      if (n > last_seq_ + 1) {
        const uint64_t before = stats_.applied;
        SL_RETURN_IF_ERROR(ReplayThrough(n - 1));
        applied += stats_.applied - before;
      }
      if (Matches(topic_view)) {
        apply_(n, topic_view, body.to_string_view());
        ++stats_.applied;
        ++applied;
      }
      last_seq_ = n;
      if (std::chrono::steady_clock::now() >= until) return applied;  // a flood: the caller goes on
    } catch (const zmq::error_t& e) {
      return Status(ErrorCode::kUnavailable, std::string("receiving: ") + e.what());
    }
  }
}

}  // namespace shardledger
