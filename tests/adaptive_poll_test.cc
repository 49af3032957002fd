#include "events/adaptive_poll.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace shardledger {
namespace {

using std::chrono::microseconds;

// One wait, as a consumer thread makes it around its queue: Poll, then (after `lasting`)
// Took of `items`. With `queued`, the producer has signalled an item before the wait begins,
// so a poll ends at once.
void Wait(AdaptivePoll& poll, bool queued, microseconds lasting = microseconds(0),
          size_t items = 1) {
  if (queued) poll.Signal();
  poll.Poll();
  if (lasting.count() > 0) std::this_thread::sleep_for(lasting);
  poll.Took(items);
}

// A new thread sleeps; once most of its waits have been short it polls, and once enough of them
// are long it sleeps again.
TEST(AdaptivePoll, PollsOnlyWhileMostWaitsAreShort) {
  AdaptivePoll poll;
  poll.set_limit(microseconds(2'000'000));  // every wait here is short against 2 s
  Wait(poll, true);
  EXPECT_EQ(poll.polls(), 0u);  // no short waits seen yet
  for (int i = 0; i < 40; ++i) Wait(poll, true);
  const uint64_t after_short = poll.polls();
  EXPECT_GT(after_short, 0u);
  EXPECT_LT(after_short, 40u);  // not from the first wait on
  EXPECT_EQ(poll.run_out(), 0u);

  poll.set_limit(microseconds(200));
  for (int i = 0; i < 8; ++i) Wait(poll, true, microseconds(2'000));  // long waits
  const uint64_t after_long = poll.polls();
  for (int i = 0; i < 4; ++i) Wait(poll, true, microseconds(2'000));
  EXPECT_EQ(poll.polls(), after_long);  // it sleeps again
}

// Long waits that each end with a burst of items (a saturated pipeline whose thread sleeps
// through an fsync and wakes to half the clients' appends) turn polling on; long waits that
// each take one item (a paced caller) do not.
TEST(AdaptivePoll, LongWaitsEndingInABurstPollAndLongWaitsForOneItemDoNot) {
  AdaptivePoll bursts;
  bursts.set_limit(microseconds(200));
  for (int i = 0; i < 40; ++i) {
    Wait(bursts, true, microseconds(1'000), AdaptivePoll::kBurst);
  }
  EXPECT_GT(bursts.polls(), 0u);

  AdaptivePoll singles;
  singles.set_limit(microseconds(200));
  for (int i = 0; i < 40; ++i) Wait(singles, true, microseconds(1'000), 1);
  EXPECT_EQ(singles.polls(), 0u);

  // A poller whose waits turn long and end with fewer items than a burst stops again.
  for (int i = 0; i < 8; ++i) Wait(bursts, true, microseconds(1'000), AdaptivePoll::kBurst - 1);
  const uint64_t after_small = bursts.polls();
  for (int i = 0; i < 4; ++i) Wait(bursts, true, microseconds(1'000), 1);
  EXPECT_EQ(bursts.polls(), after_small);
}

// A poll that finds nothing gives up after the limit and counts as run out.
TEST(AdaptivePoll, APollRunsOutAfterItsLimit) {
  AdaptivePoll poll;
  poll.set_limit(microseconds(2'000'000));
  for (int i = 0; i < 40; ++i) Wait(poll, true);
  poll.set_limit(microseconds(5'000));
  const uint64_t polls = poll.polls();
  const auto start = std::chrono::steady_clock::now();
  poll.Poll();  // nothing signalled
  const auto spent = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(poll.polls(), polls + 1);
  EXPECT_EQ(poll.run_out(), 1u);
  EXPECT_GE(spent, microseconds(5'000));
}

// A limit of zero turns polling off: no wait counts as worth polling, bursts included.
TEST(AdaptivePoll, AZeroLimitNeverPolls) {
  AdaptivePoll poll;
  poll.set_limit(microseconds(0));
  for (int i = 0; i < 100; ++i) Wait(poll, true, microseconds(0), AdaptivePoll::kBurst * 4);
  EXPECT_EQ(poll.polls(), 0u);
}

}  // namespace
}  // namespace shardledger
