// Splitting one large, pure computation over the machine's cores.
#pragma once

#include <algorithm>
#include <cstddef>
#include <thread>
#include <vector>

namespace shardledger {

// How many parts to split `items` units of work into: one per core, at most 8, and one when
// the work is too small to pay for starting a thread (~20 µs).
inline size_t PartsFor(size_t items, size_t min_items_per_part = 50'000) {
  if (items < 2 * min_items_per_part) return 1;  // the common case, decided without asking
  // Asked once: hardware_concurrency() reads /sys on every call (tens of µs), which on the
  // per-append path cost the durable pipeline a third of its throughput.
  static const size_t cores = std::max<size_t>(1, std::thread::hardware_concurrency());
  return std::clamp<size_t>(items / min_items_per_part, 1, std::min<size_t>(cores, 8));
}

// Runs run(part) for part = 0..parts-1, part 0 on the calling thread and each other on a
// thread of its own; returns when all are done. `run` must not throw.
template <typename F>
void RunParts(size_t parts, F&& run) {
  std::vector<std::thread> threads;
  threads.reserve(parts > 0 ? parts - 1 : 0);
  for (size_t part = 1; part < parts; ++part) threads.emplace_back([&run, part] { run(part); });
  if (parts > 0) run(size_t{0});
  for (auto& thread : threads) thread.join();
}

// Splits items 0..items-1 into `parts` contiguous ranges of near-equal size and runs
// run(begin, end) for each with RunParts.
template <typename F>
void RunRanges(size_t items, size_t parts, F&& run) {
  RunParts(parts, [&](size_t part) { run(items * part / parts, items * (part + 1) / parts); });
}

}  // namespace shardledger
