// AdaptivePoll: how the append pipeline's threads wait for their queues.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace shardledger {

// A queue's consumer thread (the writer taking appends, the sync thread taking groups) may
// poll the queue for up to a limit (100 µs unless set) before it sleeps on its condition
// variable. Waking a sleeping thread is a futex wake on the producer's thread: on a virtual
// machine an inter-processor interrupt through the hypervisor, a tenth of the sync thread's
// samples where the clients' callbacks woke the writer, 8% of the writer's where it woke the
// sync thread in buffered mode; and the woken thread started that much later.
//
// A poll that runs out is a core's time spent for nothing, so a thread polls only while most
// of its waits were worth it: shorter than the limit, or ending with a burst (kBurst items or
// more queued while the thread waited). It keeps a moving average of that share (each wait
// weighs 1/16) and polls while it is at least 3/4. Under a saturated pipeline nearly every
// wait is short and the threads poll; with appends arriving now and then, or one at a time
// at a rate whose gaps are often longer than the limit, they sleep as before.
//
// The bursts keep a saturated pipeline from settling into sleep (stop 35, docs/event-log.md).
// A writer that has not polled for a while (a new log, or after a phase of sparse appends)
// wakes late, by then half of the clients have queued their appends, and it writes them as
// one group per fsync. Its waits then span most of an fsync, longer than the limit, so by
// their length alone it never started polling. In the bench such slices ran with fsyncs of
// 280–380 µs against 150–270 µs beside them. A burst is the sign of load that waits alone
// missed.
//
// Use, beside the queue's mutex and condition variable: the producer calls Signal() under the
// mutex with each item it queues (and when the queue closes); the consumer calls Poll() before
// it takes the mutex and Took(items) under it, once it has taken the items.
class AdaptivePoll {
 public:
  static constexpr std::chrono::microseconds kDefaultLimit{100};
  // The share of short waits is kept in 1/kOne units.
  static constexpr int kOne = 1 << 12;
  static constexpr int kPollAbove = kOne * 3 / 4;
  // Items taken at once that make a wait worth polling whatever its length. The bench's
  // writer takes ~10 appends a wake while it polls, and 20–32 once it has slept through an
  // fsync; a paced caller's appends come one a wake.
  static constexpr size_t kBurst = 8;

  // How long a wait polls (EventLogOptions::queue_poll); zero: never, the thread always sleeps.
  // Set before the consumer thread starts.
  void set_limit(std::chrono::microseconds limit) { limit_ = limit; }

  // The producer, under the queue's mutex: the queue holds something (or has closed).
  void Signal() { ready_.store(true, std::memory_order_release); }

  // The consumer, before it takes the queue's mutex: polls for a Signal while most waits
  // have been worth it.
  void Poll() {
    start_ = std::chrono::steady_clock::now();
    if (worth_share_ < kPollAbove) return;
    polls_.fetch_add(1, std::memory_order_relaxed);
    const auto until = start_ + limit_;
    for (unsigned i = 1; !ready_.load(std::memory_order_acquire); ++i) {
      CpuRelax();
      if (i % 64 == 0 && std::chrono::steady_clock::now() > until) {
        run_out_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
    }
  }
  // The consumer, under the queue's mutex, once it has taken the `items` the queue held:
  // clears the signal and counts the wait, worth polling if it was short under the limit or
  // ended with a burst. With a zero limit no wait is.
  void Took(size_t items) {
    ready_.store(false, std::memory_order_relaxed);
    const bool short_wait = std::chrono::steady_clock::now() - start_ < limit_;
    const bool worth = limit_.count() > 0 && (short_wait || items >= kBurst);
    worth_share_ += ((worth ? kOne : 0) - worth_share_) / 16;
  }

  uint64_t polls() const { return polls_.load(std::memory_order_relaxed); }
  uint64_t run_out() const { return run_out_.load(std::memory_order_relaxed); }

 private:
  static void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }

  std::chrono::microseconds limit_ = kDefaultLimit;
  std::atomic<bool> ready_{false};  // set by Signal, cleared by Took
  int worth_share_ = 0;  // a new thread sleeps until its waits have been worth polling a while
  std::chrono::steady_clock::time_point start_;
  std::atomic<uint64_t> polls_{0};    // waits that polled
  std::atomic<uint64_t> run_out_{0};  // polls that ran out, so that the thread slept
};

}  // namespace shardledger
