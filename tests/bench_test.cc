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

// Runs `shardledger-bench --only <figure> <flags> append` in a scratch directory, expects it
// to succeed with that figure's one JSON line, and returns its stderr.
std::string RunAppendFigure(const std::string& figure, const std::vector<std::string>& flags) {
  TempDir dir;
  std::vector<std::string> argv = {SHARDLEDGER_BENCH_PATH, "--dir", dir.path() + "/bench", "--only",
                                   figure};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.push_back("append");
  const Ran ran = RunProcess(argv);
  EXPECT_EQ(ran.exit_code, 0) << ran.err;
  const std::vector<json> lines = JsonLines(ran.out);
  EXPECT_EQ(lines.size(), 1u) << ran.out;
  if (!lines.empty()) ExpectFigureAgainstBaseline(lines[0], figure);
  return ran.err;
}

TEST(Bench, AnAppendFigureIsOneJsonLineAgainstItsBaselineTimedAfterTheWarmUp) {
  const std::string err = RunAppendFigure("durable_append_64", {"--seconds", "0.3"});
  // One database a side, warmed up and run in once, then timed in rounds of a slice a side.
  EXPECT_EQ(Count(err, "raw baseline warmed up:"), 1u) << err;
  EXPECT_EQ(Count(err, "ledger warmed up:"), 1u) << err;
  EXPECT_EQ(Count(err, "raw baseline run in:"), 1u) << err;
  EXPECT_EQ(Count(err, "ledger run in:"), 1u) << err;
  EXPECT_EQ(Count(err, "  round "), 1u) << err;
}

TEST(Bench, AnAppendFigureAlternatesSlicesOfTheBaselineAndTheLedger) {
  const std::string err =
      RunAppendFigure("durable_append_1", {"--seconds", "0.4", "--slice", "0.1"});
  // 0.4 s a side in slices of 0.1 s: four rounds, each with a rate for both sides.
  for (int round = 1; round <= 4; ++round) {
    EXPECT_EQ(Count(err, "  round " + std::to_string(round) + ": raw baseline "), 1u) << err;
  }
  EXPECT_EQ(Count(err, "  round 5:"), 0u) << err;
  EXPECT_EQ(Count(err, "4 rounds of 0.10 s a side"), 1u) << err;
  EXPECT_EQ(Count(err, "warmed up:"), 2u) << err;
}

TEST(Bench, ColdTimesFreshDatabases) {
  const std::string err = RunAppendFigure("buffered_append", {"--seconds", "0.3", "--cold"});
  EXPECT_EQ(Count(err, "warmed up"), 0u) << err;
  EXPECT_EQ(Count(err, "run in"), 0u) << err;
}

}  // namespace
}  // namespace shardledger
