// The shardledger CLI as a user runs it, against a real shardledgerd: commands, --json output,
// the exit codes (0 ok, 1 rejected, 2 usage, 3 unavailable), subscribe/replay/audit, keygen
// and CURVE roles.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/process_util.h"
#include "tests/test_util.h"

namespace shardledger {
namespace {

using json = nlohmann::json;
using testing::Child;
using testing::FreePort;
using testing::Ran;
using testing::RunProcess;
using testing::TempDir;

class Cli : public ::testing::Test {
 protected:
  void StartDaemon(std::vector<std::string> extra = {}) {
    rpc_ = "tcp://127.0.0.1:" + std::to_string(FreePort());
    pub_ = "tcp://127.0.0.1:" + std::to_string(FreePort());
    daemon_ = testing::StartDaemonProcess(SHARDLEDGERD_PATH, dir_.path(), rpc_, pub_, extra);
    ASSERT_NE(daemon_, nullptr) << "the daemon did not become ready";
  }

  // Runs the CLI against the daemon (the endpoint flags first, then `args`).
  Ran Run(std::vector<std::string> args, std::vector<std::string> globals = {}) {
    std::vector<std::string> argv{SHARDLEDGER_CLI_PATH, "--rpc", rpc_, "--pub", pub_, "--timeout-ms", "10000"};
    argv.insert(argv.end(), globals.begin(), globals.end());
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv);
  }

  static std::vector<json> JsonLines(const std::string& text) {
    std::vector<json> lines;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) lines.push_back(json::parse(line));
    }
    return lines;
  }

  TempDir dir_;
  std::string rpc_, pub_;
  std::unique_ptr<Child> daemon_;
};

TEST_F(Cli, RoutingCommandsAndJsonOutput) {
  StartDaemon();
  Ran ran = Run({"routing", "set-shards", "3", "--reason", "setup"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  ran = Run({"workflows", "register", "wf-a", "wf-b", "wf-c"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  EXPECT_NE(ran.out.find("appended seq"), std::string::npos) << ran.out;

  ran = Run({"mapping", "get", "wf-a", "wf-b", "nobody", "--json"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  const json mapping = json::parse(ran.out);
  EXPECT_EQ(mapping["mappings"].size(), 2u);
  EXPECT_LT(mapping["mappings"]["wf-a"].get<int>(), 3);
  EXPECT_EQ(mapping["unknownIds"], json::array({"nobody"}));

  // Ids from stdin-like files work too, and the human table names every id.
  std::ofstream(dir_.Sub("ids")) << "wf-a\nwf-c\n";
  ran = Run({"mapping", "get", "--file", dir_.Sub("ids")});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  EXPECT_NE(ran.out.find("wf-a"), std::string::npos);
  EXPECT_NE(ran.out.find("wf-c"), std::string::npos);

  ran = Run({"routing", "state", "--json"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  EXPECT_NE(ran.out.find('3'), std::string::npos);
}

TEST_F(Cli, ExitCodesSayWhatHappened) {
  StartDaemon();
  // 2: usage.
  EXPECT_EQ(Run({"jobs", "frobnicate"}).exit_code, 2);
  EXPECT_EQ(Run({"routing", "set-shards", "not-a-number"}).exit_code, 2);
  EXPECT_EQ(Run({"jobs", "create", "--type", "NoSuchType", "--internal-id", "1"}).exit_code, 2);
  EXPECT_EQ(Run({"jobs", "verify", "SnosRun-1", "--token", "1", "--result", "maybe"}).exit_code, 2);
  // An ids file that cannot be read is bad input that names the file, not an empty list.
  Ran unread = Run({"workflows", "register", "wf-x", "--file", dir_.Sub("no-such-ids"), "--json"});
  EXPECT_EQ(unread.exit_code, 2) << unread.out << unread.err;
  ASSERT_FALSE(unread.out.empty()) << unread.err;
  EXPECT_EQ(json::parse(unread.out)["error"], "BadRequest") << unread.out;
  EXPECT_NE(json::parse(unread.out)["message"].get<std::string>().find("no-such-ids"),
            std::string::npos)
      << unread.out;
  Ran mapped = Run({"mapping", "get", "wf-x", "--json"});
  ASSERT_EQ(mapped.exit_code, 0) << mapped.err;
  EXPECT_EQ(json::parse(mapped.out)["unknownIds"], json::array({"wf-x"}))
      << "nothing was registered";
  // 1: the ledger refused.
  Ran ran = Run({"jobs", "show", "SnosRun-424242"});
  EXPECT_EQ(ran.exit_code, 1) << ran.out << ran.err;
  ran = Run({"jobs", "show", "SnosRun-424242", "--json"});
  EXPECT_EQ(ran.exit_code, 1);
  EXPECT_EQ(json::parse(ran.out)["error"], "NotFound") << ran.out;
  // 3: nobody listens there.
  const std::string nowhere = "tcp://127.0.0.1:" + std::to_string(FreePort());
  ran = RunProcess({SHARDLEDGER_CLI_PATH, "--rpc", nowhere, "--timeout-ms", "300", "routing", "state"});
  EXPECT_EQ(ran.exit_code, 3) << ran.err;
}

TEST_F(Cli, JobLifecycleFromTheCommandLine) {
  StartDaemon();
  Ran ran = Run({"jobs", "create", "--type", "SnosRun", "--internal-id", "7", "--json"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  const std::string id = json::parse(ran.out)["job"]["id"];
  ran = Run({"jobs", "claim", id, "--worker", "w1", "--json"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  const uint64_t token = json::parse(ran.out)["job"]["claim"]["fencingToken"];
  // A stale token is rejected (exit 1); the real one completes.
  ran = Run({"jobs", "complete", id, "--token", std::to_string(token + 1), "--external-id", "99"});
  EXPECT_EQ(ran.exit_code, 1) << ran.out << ran.err;
  ran = Run({"jobs", "complete", id, "--token", std::to_string(token), "--external-id", "99", "--json"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  EXPECT_EQ(json::parse(ran.out)["job"]["status"], "PendingVerification");
  ran = Run({"jobs", "list", "--status", "PendingVerification", "--json"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  ASSERT_EQ(json::parse(ran.out).size(), 1u);
  ran = Run({"audit", "history", "job/" + id, "--json"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  EXPECT_EQ(JsonLines(ran.out).size(), 3u);  // created, claimed, processed
}

TEST_F(Cli, DeregisterTriggerReportsAndAJobsFailureAndRetry) {
  StartDaemon();
  ASSERT_EQ(Run({"routing", "set-shards", "2"}).exit_code, 0);
  ASSERT_EQ(Run({"workflows", "register", "wf-a", "wf-b"}).exit_code, 0);
  Ran ran = Run({"workflows", "deregister", "wf-b", "--json"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  EXPECT_GT(json::parse(ran.out)["lastSeq"].get<uint64_t>(), 0u);
  ran = Run({"mapping", "get", "wf-a", "wf-b", "--json"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  EXPECT_EQ(json::parse(ran.out)["unknownIds"], json::array({"wf-b"}));
  // A shard's report is one record, with the total given or taken from the ids.
  for (const auto& args : std::vector<std::vector<std::string>>{{"--shard", "0", "wf-a"},
                                                                {"--shard", "1", "--total", "5"}}) {
    std::vector<std::string> report{"trigger", "report", "--json"};
    report.insert(report.end(), args.begin(), args.end());
    ran = Run(report);
    ASSERT_EQ(ran.exit_code, 0) << ran.err;
    const json r = json::parse(ran.out);
    EXPECT_EQ(r["firstSeq"], r["lastSeq"]) << ran.out;
  }

  // A rejected verification without --reason fails the job with the ledger's own reason; it
  // shows in the attention list, and an operator's retry lets a worker claim it again.
  ran = Run({"jobs", "create", "--type", "SnosRun", "--internal-id", "9", "--json"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  const std::string id = json::parse(ran.out)["job"]["id"];
  ASSERT_EQ(Run({"jobs", "claim", id, "--worker", "w1"}).exit_code, 0);
  ASSERT_EQ(Run({"jobs", "complete", id, "--token", "1", "--external-id", "abc"}).exit_code, 0);
  ran = Run({"jobs", "verify", id, "--token", "1", "--result", "rejected", "--json"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  EXPECT_EQ(json::parse(ran.out)["job"]["status"], "Failed");
  EXPECT_EQ(json::parse(ran.out)["job"]["failureReason"], "verification rejected");
  EXPECT_EQ(json::parse(ran.out)["job"]["externalId"], "abc");
  ran = Run({"jobs", "list", "--attention", "--json"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  ASSERT_EQ(json::parse(ran.out).size(), 1u);
  ASSERT_EQ(Run({"jobs", "retry", id}).exit_code, 0);
  ran = Run({"jobs", "claim", id, "--worker", "w2", "--json"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  EXPECT_EQ(json::parse(ran.out)["job"]["claim"]["fencingToken"], 2);
  ran = Run({"jobs", "fail", id, "--token", "2", "--reason", "prover down", "--json"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  EXPECT_EQ(json::parse(ran.out)["job"]["failureReason"], "prover down");
  ran = Run({"jobs", "list", "--type", "SnosRun", "--status", "Failed", "--json"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  EXPECT_EQ(json::parse(ran.out).size(), 1u);
  EXPECT_EQ(Run({"jobs", "list", "--status", "Bogus"}).exit_code, 2);
}

TEST_F(Cli, ReplaySubscribeAndAudit) {
  StartDaemon();
  ASSERT_EQ(Run({"routing", "set-shards", "2"}).exit_code, 0);
  ASSERT_EQ(Run({"workflows", "register", "a", "b", "c", "d"}).exit_code, 0);
  Ran ran = Run({"replay", "--json"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  const auto records = JsonLines(ran.out);
  ASSERT_GE(records.size(), 5u);
  for (size_t i = 0; i < records.size(); ++i) EXPECT_EQ(records[i]["seq"], i + 1);

  // Resume after seq 1: the records after it, in order, then stop at --count.
  ran = Run({"subscribe", "--from-seq", "1", "--count", "3", "--json"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  const auto followed = JsonLines(ran.out);
  ASSERT_EQ(followed.size(), 3u);
  EXPECT_EQ(followed[0]["seq"], 2);
  EXPECT_EQ(followed[2]["seq"], 4);

  ran = Run({"replay", "--topic", "routing.ShardCountChanged", "--json"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  for (const auto& record : JsonLines(ran.out)) EXPECT_EQ(record["topic"], "routing.ShardCountChanged");

  ran = Run({"audit", "verify", "--json"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  EXPECT_EQ(json::parse(ran.out)["ok"], true);
  EXPECT_EQ(json::parse(ran.out)["checked"], records.size());
}

TEST_F(Cli, KeygenAndCurveRoles) {
  for (const std::string name : {"server", "reader", "writer"}) {
    Ran ran = RunProcess({SHARDLEDGER_CLI_PATH, "keygen", dir_.Sub(name), "--json"});
    ASSERT_EQ(ran.exit_code, 0) << ran.err;
    ASSERT_TRUE(std::filesystem::exists(dir_.Sub(name + ".key")));
  }
  // The allow-list names each client's public key (read back from its .pub file).
  auto read_public = [&](const std::string& name) {
    std::ifstream in(dir_.Sub(name + ".pub"));
    std::string line;
    while (std::getline(in, line)) {
      if (line.starts_with("public-key")) return line.substr(line.find('=') + 1);
    }
    return std::string();
  };
  auto trim = [](std::string s) {
    s.erase(0, s.find_first_not_of(' '));
    s.erase(s.find_last_not_of(' ') + 1);
    return s;
  };
  std::ofstream(dir_.Sub("allow")) << trim(read_public("reader")) << " reader\n"
                                   << trim(read_public("writer")) << " writer\n";
  StartDaemon({"--curve-key", dir_.Sub("server.key"), "--curve-allow", dir_.Sub("allow")});
  auto as = [&](const std::string& who) {
    return std::vector<std::string>{"--curve-key", dir_.Sub(who + ".key"), "--server-key", dir_.Sub("server.pub")};
  };
  Ran ran = Run({"routing", "state"}, as("reader"));
  EXPECT_EQ(ran.exit_code, 0) << ran.err;
  ran = Run({"workflows", "register", "x", "--json"}, as("reader"));
  EXPECT_EQ(ran.exit_code, 1) << ran.out << ran.err;
  EXPECT_EQ(json::parse(ran.out)["error"], "Unauthorized");
  ran = Run({"workflows", "register", "x"}, as("writer"));
  EXPECT_EQ(ran.exit_code, 0) << ran.err;
  // No key at all: the handshake never completes, so the daemon is unavailable to it.
  ran = RunProcess({SHARDLEDGER_CLI_PATH, "--rpc", rpc_, "--timeout-ms", "500", "routing", "state"});
  EXPECT_EQ(ran.exit_code, 3) << ran.err;
}

}  // namespace
}  // namespace shardledger
