// AdaptivePoll: how the append pipeline's threads wait for their queues.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace shardledger {

// A queue's consumer thread (the writer taking appends, the sync thread taking groups) polls
// the queue for up to kLimit before it sleeps on its condition variable, while its waits have
// been shorter than that. Waking a sleeping thread is a futex wake on the producer's thread: on
// this VM an inter-processor interrupt through the hypervisor, a tenth of the sync thread's
// samples where the clients' callbacks wake the writer, 8% of the writer's where it wakes the
// sync thread in buffered mode; and the woken thread started that much later. A thread whose
// waits are long (appends now and then, or an fsync longer than kLimit between them) sleeps.
class AdaptivePoll {
 public:
  static constexpr std::chrono::microseconds kLimit{100};

  // Before the consumer takes the queue's lock: polls `ready` (set by the producer with each
  // item, cleared by the consumer as it takes them) when the last wait was short.
  void Poll(const std::atomic<bool>& ready) {
    start_ = std::chrono::steady_clock::now();
    if (!poll_) return;
    polls_.fetch_add(1, std::memory_order_relaxed);
    const auto until = start_ + kLimit;
    for (unsigned i = 1; !ready.load(std::memory_order_acquire); ++i) {
      CpuRelax();
      if (i % 64 == 0 && std::chrono::steady_clock::now() > until) {
        run_out_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
    }
  }
  // Once the consumer has taken what the queue held: the wait counts as short under kLimit.
  void Took() { poll_ = std::chrono::steady_clock::now() - start_ < kLimit; }

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

  bool poll_ = false;  // a new thread sleeps until it has waited briefly once
  std::chrono::steady_clock::time_point start_;
  std::atomic<uint64_t> polls_{0};    // waits that polled
  std::atomic<uint64_t> run_out_{0};  // polls that ran out, so that the thread slept
};

}  // namespace shardledger
