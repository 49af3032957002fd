// EventLog: the append path's second half, on the sync thread — one fsync for every group
// written since the last (durable mode), then the head advanced, the projections' staged
// changes published and the callers answered; and the drains that let hooks and the commit
// observer change between groups.
#include <algorithm>
#include <chrono>

#include "events/event_log.h"
#include "events/event_log_internal.h"

namespace shardledger {

void EventLog::SyncLoop() {
  std::vector<std::unique_ptr<StagedGroup>> groups;
  const bool durable = options_.durability == Durability::kDurable;
  for (uint64_t round = 0; sync_queue_.TakeAll(groups); ++round) {
    if (durable) {
      const Status failed = Sync(groups);
      for (auto& group : groups) Advance(*group, failed);
    }  // buffered: the writer has advanced the head past them already
    // Answering here, not on a thread of its own: a completion thread measured slower (the
    // extra hand-off costs more than the callbacks it takes off this thread).
    Answer(groups);
    Recycle(groups);
    if (round % kCpuClockEvery == 0) sync_cpu_ns_.store(ThreadCpuNs(), std::memory_order_relaxed);
  }
  sync_cpu_ns_.store(ThreadCpuNs(), std::memory_order_relaxed);
}

Status EventLog::Sync(const std::vector<std::unique_ptr<StagedGroup>>& groups) {
  // One fsync makes every group written so far durable.
  const bool wrote = std::any_of(groups.begin(), groups.end(),
                                 [](const auto& g) { return g->error.ok() && g->has_records(); });
  if (wrote && options_.durability == Durability::kDurable) {
    const auto sync_start = std::chrono::steady_clock::now();
    rocksdb::Status s = db_->SyncWAL();
    const auto sync_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::steady_clock::now() - sync_start)
                             .count();
    {
      std::lock_guard lock(head_mu_);
      stats_.syncs += 1;
      stats_.sync_ns += static_cast<uint64_t>(sync_ns);
    }
    if (!s.ok()) {
      std::lock_guard lock(failed_mu_);
      if (failed_.ok()) {
        failed_ = Status(ErrorCode::kIoError, "syncing the write-ahead log: " + s.ToString());
      }
    }
  }
  // After any write or sync error the head never moves again: later groups fail too, so no
  // projection publishes a change whose predecessor it discarded.
  return FailedStatus();
}

Status EventLog::FailedStatus() const {
  std::lock_guard lock(failed_mu_);
  return failed_;
}

void EventLog::Advance(StagedGroup& group, const Status& failed) {
  group.outcome = !group.error.ok() ? group.error : failed;
  if (group.outcome.ok() && group.has_records()) {
    {
      std::lock_guard lock(head_mu_);
      head_ = group.after;
      stats_.groups += 1;
      stats_.appends += group.appends;
      stats_.records += group.after.seq - group.before.seq;
    }
    for (FoldHook* hook : group.hooks) hook->Publish(group.after.seq);
    if (observer_) observer_(CommittedRecordsOf(group));
  } else if (!group.outcome.ok() && group.has_records()) {
    for (FoldHook* hook : group.hooks) hook->Discard(Head().seq);
  }
}

void EventLog::Answer(std::vector<std::unique_ptr<StagedGroup>>& groups) {
  uint64_t answered = 0;
  for (auto& staged : groups) {
    StagedGroup& group = *staged;
    for (auto& pending : group.pendings) {
      if (!group.outcome.ok() && !pending->rejected) pending->result = group.outcome;
      // Kept for the next append before its callback runs: the callback's own next append
      // (a client issuing from it) fills it again while its memory is in this core's cache.
      AppendCallback done = std::move(pending->done);
      Result<AppendResult> result = std::move(pending->result);
      KeepSpare(std::move(pending));
      done(std::move(result));
    }
    if (group.outcome.ok()) answered = std::max(answered, group.after.seq);
  }
  {
    std::lock_guard lock(head_mu_);
    answered_seq_ = std::max(answered_seq_, answered);
  }
  head_cv_.notify_all();
}

std::vector<CommittedRecord> EventLog::CommittedRecordsOf(StagedGroup& group) {
  std::vector<CommittedRecord> out;
  out.reserve(group.after.seq - group.before.seq);
  for (auto& pending : group.pendings) {
    if (pending->rejected || pending->replayed || !pending->result.ok()) continue;
    uint64_t seq = pending->result->first_seq;
    for (size_t i = 0; i < pending->prepared.size(); ++i) {
      out.push_back(CommittedRecord{seq++, pending->prepared[i].view(), pending->events[i].type,
                                    pending->events[i].job_type});
    }
  }
  return out;
}

void EventLog::SetCommitObserver(CommitObserver observer) {
  std::lock_guard write_lock(write_mu_);
  DrainPipeline();  // no group in flight sees half a change
  observer_ = std::move(observer);
}

void EventLog::DrainPipeline() {
  std::unique_lock lock(head_mu_);
  head_cv_.wait(lock, [&] {
    if (answered_seq_ == staged_head_.seq) return true;
    std::lock_guard failed_lock(failed_mu_);
    return !failed_.ok();
  });
}

Status EventLog::AddHook(FoldHook* hook, uint64_t hook_applied_seq) {
  std::lock_guard write_lock(write_mu_);
  DrainPipeline();
  const LogHead head = Head();
  if (hook_applied_seq > head.seq) {
    return Status(ErrorCode::kCorruption, "a projection is at seq " +
                                              std::to_string(hook_applied_seq) +
                                              ", past the log head " + std::to_string(head.seq));
  }
  // Catch the hook up in bounded batches, each made durable before the next.
  constexpr uint64_t kCatchUpBatch = 50'000;
  uint64_t next = hook_applied_seq + 1;
  while (next <= head.seq) {
    const uint64_t last = std::min(head.seq, next + kCatchUpBatch - 1);
    rocksdb::WriteBatch batch;
    Status error;
    std::deque<Record> records;  // alive until the hook has published or discarded them
    Status scanned = Scan(next, last, [&](uint64_t seq, std::string_view bytes) {
      auto record = DecodeRecord(bytes);
      if (!record.ok()) {
        error = Status(ErrorCode::kCorruption,
                       "record " + std::to_string(seq) + ": " + record.status().message());
        return false;
      }
      records.push_back(std::move(*record));
      error = hook->Fold(records.back(), batch);
      return error.ok();
    });
    if (error.ok()) error = scanned;
    if (error.ok()) {
      hook->FinishBatch(batch);
      rocksdb::WriteOptions write_options;
      write_options.sync = options_.durability == Durability::kDurable;
      rocksdb::Status written = db_->Write(write_options, &batch);
      if (!written.ok()) error = Status(ErrorCode::kIoError, written.ToString());
    }
    if (!error.ok()) {
      hook->Discard(next - 1);
      return error;
    }
    hook->Publish(last);
    next = last + 1;
  }
  hooks_.push_back(hook);
  return Status::Ok();
}

void EventLog::RemoveHook(FoldHook* hook) {
  std::lock_guard write_lock(write_mu_);
  DrainPipeline();  // no group in flight still names the hook
  hooks_.erase(std::remove(hooks_.begin(), hooks_.end(), hook), hooks_.end());
}

}  // namespace shardledger
