#include "transport/shard_map_cache.h"

#include "events/codec.h"

namespace shardledger {

Result<std::unique_ptr<ShardMapCache>> ShardMapCache::Start(ShardMapCacheOptions options) {
  std::unique_ptr<ShardMapCache> cache(new ShardMapCache(std::move(options)));
  SL_ASSIGN_OR_RETURN(cache->client_, RpcClient::Connect(cache->options_.rpc));
  cache->source_ = std::make_unique<RpcReplaySource>(*cache->client_);

  uint64_t after = 0;
  if (cache->options_.resume_from) {
    cache->state_ = std::move(*cache->options_.resume_from);
    cache->options_.resume_from.reset();
    after = cache->state_.applied_seq();
  } else {
    // A late joiner: the snapshot at S, then everything after S.
    SL_ASSIGN_OR_RETURN(ProjectionSnapshot snapshot, cache->client_->Snapshot(wire::Projection::SHARD_MAP));
    for (const auto& [key, value] : snapshot.rows) SL_RETURN_IF_ERROR(cache->state_.LoadRow(key, value));
    after = snapshot.seq;
    cache->state_.SkipTo(after);
  }
  cache->applied_seq_ = after;

  ShardMapCache* raw = cache.get();
  auto apply = [raw](uint64_t seq, std::string_view, std::string_view bytes) {
    auto record = DecodeRecord(bytes);
    if (!record.ok()) {
      std::unique_lock lock(raw->mu_);
      raw->error_ = Status(ErrorCode::kCorruption,
                           "routing record " + std::to_string(seq) + ": " + record.status().message());
      return;
    }
    std::unique_lock lock(raw->mu_);
    raw->state_.Apply(*record, nullptr);
  };
  SL_ASSIGN_OR_RETURN(cache->subscriber_,
                      Subscriber::Connect({.endpoint = cache->options_.publisher,
                                           .topics = {"routing."},
                                           .after_seq = after},
                                          *cache->source_, apply));
  SL_RETURN_IF_ERROR(cache->subscriber_->Start());
  {
    std::unique_lock lock(cache->mu_);
    cache->state_.SkipTo(cache->subscriber_->last_seq());
    cache->stats_ = cache->subscriber_->stats();
  }
  cache->applied_seq_ = cache->subscriber_->last_seq();
  cache->thread_ = std::thread([raw] { raw->Run(); });
  return cache;
}

ShardMapCache::~ShardMapCache() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void ShardMapCache::Run() {
  while (!stopping_) {
    auto polled = subscriber_->Poll(std::chrono::milliseconds(50));
    std::unique_lock lock(mu_);
    if (!polled.ok()) {
      // The daemon is unreachable for a replay: keep the map, say why, and try again.
      error_ = polled.status();
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    if (error_.code() == ErrorCode::kUnavailable) error_ = Status::Ok();
    state_.SkipTo(subscriber_->last_seq());
    stats_ = subscriber_->stats();
    applied_seq_ = subscriber_->last_seq();
  }
}

std::optional<uint32_t> ShardMapCache::ShardOf(std::string_view workflow_id) const {
  std::shared_lock lock(mu_);
  const WorkflowRoute* route = state_.Find(workflow_id);
  if (route == nullptr) return std::nullopt;
  return route->shard;
}

Result<WorkflowShardMapping> ShardMapCache::GetWorkflowShardMapping(const std::vector<std::string>& ids) const {
  std::shared_lock lock(mu_);
  return state_.GetWorkflowShardMapping(ids);
}

RoutingStatus ShardMapCache::Routing() const {
  std::shared_lock lock(mu_);
  return state_.status();
}

Hash256 ShardMapCache::Digest() const {
  std::shared_lock lock(mu_);
  return state_.Digest();
}

ShardMapState ShardMapCache::Copy() const {
  std::shared_lock lock(mu_);
  return state_;
}

Status ShardMapCache::status() const {
  std::shared_lock lock(mu_);
  return error_;
}

SubscriberStats ShardMapCache::stats() const {
  std::shared_lock lock(mu_);
  return stats_;
}

bool ShardMapCache::WaitFor(uint64_t seq, std::chrono::milliseconds timeout) const {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (applied_seq_.load() < seq) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace shardledger
