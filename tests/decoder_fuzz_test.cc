// Feeds the record decoder 100,000 random and mutated byte strings: every one must come back
// as a Record or a typed Corruption status, with no crash and (under ASan) no bad read.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>

#include "events/chain.h"
#include "events/codec.h"
#include "tests/sample_events.h"

namespace shardledger {
namespace {

int Iterations() {
  const char* env = std::getenv("SHARDLEDGER_FUZZ_ITERATIONS");
  return env ? std::atoi(env) : 100'000;
}

TEST(DecoderFuzz, RandomAndMutatedInputsYieldTypedErrorsOnly) {
  std::mt19937_64 rng(0x5eed);
  std::vector<std::string> seeds;
  for (const Event& event : testing::SampleEvents()) {
    Record record = testing::SampleRecord(event);
    seeds.push_back(SealRecord(record).bytes);
  }
  const int iterations = Iterations();
  int decoded_ok = 0;
  for (int i = 0; i < iterations; ++i) {
    std::string input;
    switch (i % 6) {
      case 0: {  // pure random bytes of a random length
        input.resize(rng() % 512);
        for (auto& c : input) c = static_cast<char>(rng());
        break;
      }
      case 1:
      case 2: {  // a valid record with a few bytes flipped
        input = seeds[rng() % seeds.size()];
        const int flips = 1 + static_cast<int>(rng() % 8);
        for (int f = 0; f < flips; ++f) input[rng() % input.size()] ^= static_cast<char>(1 + rng() % 255);
        break;
      }
      case 3: {  // a valid record truncated or extended
        input = seeds[rng() % seeds.size()];
        if (rng() % 2) {
          input.resize(rng() % input.size());
        } else {
          input.append(8 * (1 + rng() % 4), static_cast<char>(rng()));
        }
        break;
      }
      case 4: {  // a valid record with one 8-byte word (a pointer, often) replaced
        input = seeds[rng() % seeds.size()];
        const size_t word = rng() % (input.size() / 8);
        const uint64_t value = rng();
        std::memcpy(input.data() + word * 8, &value, 8);
        break;
      }
      case 5: {  // a valid record whose segment table lies about sizes
        input = seeds[rng() % seeds.size()];
        const uint32_t lie[2] = {static_cast<uint32_t>(rng() % 4),
                                 static_cast<uint32_t>(rng())};
        std::memcpy(input.data(), lie, sizeof(lie));
        break;
      }
    }
    auto result = DecodeRecord(input);
    if (result.ok()) {
      ++decoded_ok;
    } else {
      ASSERT_EQ(result.status().code(), ErrorCode::kCorruption) << result.status().ToString();
      ASSERT_FALSE(result.status().message().empty());
    }
  }
  // Some mutations land in payload bytes and still decode; most must not.
  EXPECT_LT(decoded_ok, iterations);
}

}  // namespace
}  // namespace shardledger
