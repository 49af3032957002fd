// shardledger-bench as `make bench` runs it, on short slices: each append figure is one JSON
// line {"figure", "unit", "value", "baseline", "ratio"} with ratio = value / baseline; each
// database is warmed up before it is timed unless --cold says otherwise, and the two sides
// are timed in alternating slices.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sstream>
#include <string>
#include <vector>

#include "tests/process_util.h"
#include "tests/test_util.h"

namespace shardledger {
namespace {

using json = nlohmann::json;
using testing::Ran;
using testing::RunProcess;
using testing::TempDir;

// The JSON objects of `out`, one per line; a line that is not one fails the test.
std::vector<json> JsonLines(const std::string& out) {
  std::vector<json> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    json parsed = json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(parsed.is_object()) << "not a JSON object: " << line;
    if (parsed.is_object()) lines.push_back(std::move(parsed));
  }
  return lines;
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

void ExpectFigureAgainstBaseline(const json& line, const std::string& figure) {
  EXPECT_EQ(line.value("figure", ""), figure);
  EXPECT_EQ(line.value("unit", ""), "appends/s");
  ASSERT_TRUE(line["value"].is_number() && line["baseline"].is_number() &&
              line["ratio"].is_number())
      << line.dump();
  const double value = line["value"].get<double>();
  const double baseline = line["baseline"].get<double>();
  EXPECT_GT(value, 0);
  EXPECT_GT(baseline, 0);
  // value and baseline are printed to 6 significant digits, ratio to 4 decimals.
  EXPECT_NEAR(line["ratio"].get<double>(), value / baseline, 1e-3 + 1e-5 * value / baseline);
}

TEST(Bench, AnAppendFigureIsOneJsonLineAgainstItsBaselineTimedAfterTheWarmUp) {
  TempDir dir;
  const Ran ran = RunProcess({SHARDLEDGER_BENCH_PATH, "--dir", dir.path() + "/bench", "--seconds",
                              "0.3", "--only", "durable_append_64", "append"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  const std::vector<json> lines = JsonLines(ran.out);
  ASSERT_EQ(lines.size(), 1u) << ran.out;
  ExpectFigureAgainstBaseline(lines[0], "durable_append_64");
  // One database a side, warmed up and run in once, then timed in rounds of a slice a side.
  EXPECT_EQ(Count(ran.err, "raw baseline warmed up:"), 1u) << ran.err;
  EXPECT_EQ(Count(ran.err, "ledger warmed up:"), 1u) << ran.err;
  EXPECT_EQ(Count(ran.err, "raw baseline run in:"), 1u) << ran.err;
  EXPECT_EQ(Count(ran.err, "ledger run in:"), 1u) << ran.err;
  EXPECT_EQ(Count(ran.err, "  round "), 1u) << ran.err;
}

TEST(Bench, AnAppendFigureAlternatesSlicesOfTheBaselineAndTheLedger) {
  TempDir dir;
  const Ran ran = RunProcess({SHARDLEDGER_BENCH_PATH, "--dir", dir.path() + "/bench", "--seconds",
                              "0.4", "--slice", "0.1", "--only", "durable_append_1", "append"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  const std::vector<json> lines = JsonLines(ran.out);
  ASSERT_EQ(lines.size(), 1u) << ran.out;
  ExpectFigureAgainstBaseline(lines[0], "durable_append_1");
  // 0.4 s a side in slices of 0.1 s: four rounds, each with a rate for both sides.
  for (int round = 1; round <= 4; ++round) {
    EXPECT_EQ(Count(ran.err, "  round " + std::to_string(round) + ": raw baseline "), 1u)
        << ran.err;
  }
  EXPECT_EQ(Count(ran.err, "  round 5:"), 0u) << ran.err;
  EXPECT_EQ(Count(ran.err, "4 rounds of 0.10 s a side"), 1u) << ran.err;
  EXPECT_EQ(Count(ran.err, "warmed up:"), 2u) << ran.err;
}

TEST(Bench, ColdTimesFreshDatabases) {
  TempDir dir;
  const Ran ran = RunProcess({SHARDLEDGER_BENCH_PATH, "--dir", dir.path() + "/bench", "--seconds",
                              "0.3", "--only", "buffered_append", "--cold", "append"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  const std::vector<json> lines = JsonLines(ran.out);
  ASSERT_EQ(lines.size(), 1u) << ran.out;
  ExpectFigureAgainstBaseline(lines[0], "buffered_append");
  EXPECT_EQ(Count(ran.err, "warmed up"), 0u) << ran.err;
  EXPECT_EQ(Count(ran.err, "run in"), 0u) << ran.err;
}

}  // namespace
}  // namespace shardledger
