// The RPC server and client in one process over loopback TCP: typed calls and errors,
// malformed frames, CURVE roles, and a ShardMapCache following the publisher.
#include <gtest/gtest.h>

#include <capnp/message.h>

#include <random>

#include "core/assignment.h"
#include "events/codec.h"
#include "tests/test_util.h"
#include "transport/client.h"
#include "transport/publisher.h"
#include "transport/rpc_server.h"
#include "transport/shard_map_cache.h"

namespace shardledger {
namespace {

using testing::TempDir;

class Rpc : public ::testing::Test {
 protected:
  void SetUp() override { Start({}); }

  void Start(RpcServerOptions options) {
    server_.reset();
    publisher_.reset();
    if (!ledger_) {
      LedgerOptions ledger_options;
      ledger_options.durability = Durability::kBuffered;
      auto ledger = Ledger::Open(dir_.path(), ledger_options);
      ASSERT_OK(ledger);
      ledger_ = std::move(*ledger);
    }
    options.endpoint = "tcp://127.0.0.1:*";
    options.workers = 2;
    auto server = RpcServer::Start(*ledger_, std::move(options));
    ASSERT_OK(server);
    server_ = std::move(*server);
    auto publisher = Publisher::Start(ledger_->log(), {.endpoint = "tcp://127.0.0.1:*"});
    ASSERT_OK(publisher);
    publisher_ = std::move(*publisher);
  }

  std::unique_ptr<RpcClient> Client(ClientOptions options = {}) {
    options.endpoint = server_->endpoint();
    if (options.timeout == std::chrono::seconds(30)) options.timeout = std::chrono::seconds(10);
    auto client = RpcClient::Connect(options);
    EXPECT_TRUE(client.ok());
    return std::move(*client);
  }

  std::vector<std::string> Ids(int n) {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) ids.push_back("wf-" + std::to_string(i));
    return ids;
  }

  // A request asking for the routing state, encoded.
  static std::string RoutingStateRequest(uint64_t id) {
    capnp::MallocMessageBuilder message;
    auto request = message.initRoot<wire::Request>();
    request.setId(id);
    request.setRoutingState();
    return MessageBytes(message);
  }

  static Status ErrorOf(const std::string& answer) {
    auto words = AlignedWords(answer);
    if (!words.ok()) return words.status();
    capnp::FlatArrayMessageReader reader(*words);
    auto response = reader.getRoot<wire::Response>();
    if (!response.isError()) return Status::Ok();
    return FromWire(response.getError());
  }

  TempDir dir_;
  std::unique_ptr<Ledger> ledger_;
  std::unique_ptr<RpcServer> server_;
  std::unique_ptr<Publisher> publisher_;
};

TEST_F(Rpc, RoutingCommandsAndQueriesRoundTrip) {
  auto client = Client();
  ASSERT_OK(client->SetShardCount(4, "setup"));
  auto registered = client->RegisterWorkflows(Ids(1'000));
  ASSERT_OK(registered);
  EXPECT_GT(registered->last_seq, registered->first_seq);
  EXPECT_EQ(registered->map_version, registered->last_seq);

  auto mapping = client->GetWorkflowShardMapping({"wf-1", "wf-2", "unknown"});
  ASSERT_OK(mapping);
  auto local = ledger_->shard_map().Read(
      [](const ShardMapState& s) { return s.GetWorkflowShardMapping({"wf-1", "wf-2", "unknown"}); });
  ASSERT_OK(local);
  EXPECT_EQ(mapping->mappings, local->mappings);
  EXPECT_EQ(mapping->unknown_ids, std::vector<std::string>{"unknown"});
  EXPECT_EQ(mapping->mapping_version, local->mapping_version);

  uint64_t workflows = 0;
  auto state = client->RoutingState(&workflows);
  ASSERT_OK(state);
  EXPECT_EQ(*state, ledger_->shard_map().Routing());
  EXPECT_EQ(workflows, 1'000u);

  auto counts = client->CountsPerShard();
  ASSERT_OK(counts);
  uint64_t total = 0;
  for (const auto& [shard, n] : *counts) total += n;
  EXPECT_EQ(total, 1'000u);

  auto on_shard = client->WorkflowsOnShard(0, "", 10);
  ASSERT_OK(on_shard);
  EXPECT_EQ(on_shard->size(), 10u);

  auto digest = client->Digest(wire::Projection::SHARD_MAP);
  ASSERT_OK(digest);
  EXPECT_EQ(digest->sha256, ledger_->shard_map().Digest());

  auto head = client->Head();
  ASSERT_OK(head);
  EXPECT_EQ(head->seq, ledger_->log().Head().seq);
  auto chain = client->VerifyChain();
  ASSERT_OK(chain);
  EXPECT_FALSE(chain->first_bad_seq.has_value());
  EXPECT_EQ(chain->checked, head->seq);
}

// The client reads a mapping answer in any order: sorted, a repeated id once, each state
// matched to its mapping by id; a mapping without a state, or the reverse, is refused.
TEST(MappingAnswer, IsReadInAnyOrderAndRefusedWhenItsListsDisagree) {
  struct Row {
    const char* id;
    uint32_t shard;
  };
  auto answer = [](std::vector<Row> mappings, std::vector<Row> states) {
    capnp::MallocMessageBuilder message;
    auto out = message.initRoot<wire::WorkflowShardMapping>();
    auto m = out.initMappings(static_cast<unsigned>(mappings.size()));
    for (unsigned i = 0; i < m.size(); ++i) {
      m[i].setWorkflowId(mappings[i].id);
      m[i].setShard(mappings[i].shard);
    }
    auto s = out.initMappingStates(static_cast<unsigned>(states.size()));
    for (unsigned i = 0; i < s.size(); ++i) {
      s[i].setWorkflowId(states[i].id);
      s[i].setNewShard(states[i].shard);
    }
    out.setMappingVersion(7);
    return FromWire(out.asReader());
  };
  auto read = answer({{"c", 3}, {"a", 1}, {"b", 2}, {"a", 9}},
                     {{"b", 20}, {"c", 30}, {"a", 10}, {"b", 99}});
  ASSERT_OK(read);
  ASSERT_EQ(read->mappings.size(), 3u);
  EXPECT_EQ(read->mappings[0], (WorkflowMapping{"a", 1, {std::nullopt, 10, false, false}}));
  EXPECT_EQ(read->mappings[1], (WorkflowMapping{"b", 2, {std::nullopt, 20, false, false}}));
  EXPECT_EQ(read->mappings[2], (WorkflowMapping{"c", 3, {std::nullopt, 30, false, false}}));
  EXPECT_EQ(read->mapping_version, 7u);
  EXPECT_EQ(read->Find("b"), &read->mappings[1]);
  EXPECT_EQ(read->Find("d"), nullptr);

  auto orphan_state = answer({{"a", 1}}, {{"a", 1}, {"z", 2}});
  EXPECT_EQ(orphan_state.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(orphan_state.status().message().find("z"), std::string::npos);
  auto stateless = answer({{"a", 1}, {"b", 2}}, {{"a", 1}});
  EXPECT_EQ(stateless.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(stateless.status().message().find("b"), std::string::npos);
}

TEST_F(Rpc, TypedErrorsComeBackTyped) {
  auto client = Client();
  auto empty = client->GetWorkflowShardMapping({});
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), ErrorCode::kBadRequest);

  auto bad_id = client->RegisterWorkflows({""});
  ASSERT_FALSE(bad_id.ok());
  EXPECT_EQ(bad_id.status().code(), ErrorCode::kBadRequest);

  ASSERT_OK(client->SetShardCount(4, "setup"));
  ASSERT_OK(client->RegisterWorkflows(Ids(100)));
  ASSERT_OK(client->SetShardCount(5, "grow"));  // some move: a transition begins
  auto second = client->SetShardCount(6, "again");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), ErrorCode::kRejected);

  auto missing = client->GetJob("SnosRun-404");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
}

TEST_F(Rpc, JobsThroughTheClient) {
  auto client = Client();
  auto created = client->CreateJob(JobType::kSnosRun, 7, {{"block", "7"}});
  ASSERT_OK(created);
  const std::string id = created->job.id;
  auto claimed = client->ClaimJob(id, "worker-a");
  ASSERT_OK(claimed);
  EXPECT_EQ(claimed->job.status, JobStatus::kLockedForProcessing);
  auto processed = client->CompleteProcessing(id, claimed->job.claim.fencing_token, std::string("ext-7"));
  ASSERT_OK(processed);
  auto verified = client->RecordVerification(id, claimed->job.claim.fencing_token, VerificationResult::kVerified);
  ASSERT_OK(verified);
  EXPECT_EQ(verified->job.status, JobStatus::kCompleted);

  auto job = client->GetJob(id);
  ASSERT_OK(job);
  auto local = ledger_->job_views().Read([&](const JobViewsState& s) { return *s.Find(id); });
  EXPECT_EQ(*job, local);

  auto listed = client->ListJobs({.status = JobStatus::kCompleted});
  ASSERT_OK(listed);
  ASSERT_EQ(listed->size(), 1u);
  auto pipeline = client->Pipeline(7);
  ASSERT_OK(pipeline);
  EXPECT_EQ(pipeline->size(), 1u);
  auto counts = client->JobCounts();
  ASSERT_OK(counts);
  EXPECT_EQ(counts->at(std::make_pair(JobType::kSnosRun, JobStatus::kCompleted)), 1u);

  auto history = client->StreamHistory("job/" + id);
  ASSERT_OK(history);
  ASSERT_EQ(history->size(), 4u);
  for (const auto& record : *history) EXPECT_OK(DecodeRecord(record.bytes));
}

TEST_F(Rpc, ReplayIsChunkedAndFiltered) {
  auto client = Client();
  ASSERT_OK(client->RegisterWorkflows(Ids(50)));
  ASSERT_OK(client->CreateJob(JobType::kSnosRun, 1));
  const uint64_t head = ledger_->log().Head().seq;
  RpcReplaySource source(*client);
  auto all = source.Replay(1, head, {});
  ASSERT_OK(all);
  EXPECT_EQ(all->size(), head);
  auto chunk = client->Replay(1, head, {}, 7);
  ASSERT_OK(chunk);
  EXPECT_EQ(chunk->records.size(), 7u);
  EXPECT_EQ(chunk->next_seq, 8u);
  EXPECT_FALSE(chunk->done);
  auto jobs = source.Replay(1, head, {"job."});
  ASSERT_OK(jobs);
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ(jobs->front().seq, head);
}

TEST_F(Rpc, MalformedRequestsGetBadRequestAndTheServerKeepsServing) {
  auto client = Client();
  std::mt19937_64 rng(11);
  std::vector<std::string> frames;
  // Random bytes of many sizes, aligned and not.
  for (int i = 0; i < 200; ++i) {
    std::string bytes(rng() % 300, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng());
    frames.push_back(bytes);
  }
  frames.push_back("");
  // A valid request truncated at every word boundary and mid-word.
  const std::string valid = RoutingStateRequest(99);
  for (size_t cut = 1; cut < valid.size(); cut += 3) frames.push_back(valid.substr(0, cut));
  // A wrong union tag: a request whose discriminant is past the last kind.
  {
    capnp::MallocMessageBuilder message;
    auto request = message.initRoot<wire::Request>();
    request.setId(5);
    request.setHead();
    std::string bytes = MessageBytes(message);
    // The root struct's data section: id (8 bytes) then the 16-bit union tag.
    const size_t tag_offset = 8 /*segment table*/ + 8 /*root pointer*/ + 8 /*id*/;
    bytes[tag_offset] = static_cast<char>(0xff);
    bytes[tag_offset + 1] = static_cast<char>(0x7f);
    frames.push_back(bytes);
  }
  // Huge lengths: a segment table claiming 2^31 words, and a list pointer of 2^29 elements.
  {
    std::string bytes(32, '\0');
    bytes[4] = static_cast<char>(0xff);
    bytes[5] = static_cast<char>(0xff);
    bytes[6] = static_cast<char>(0xff);
    bytes[7] = static_cast<char>(0x7f);
    frames.push_back(bytes);
    std::string list = valid;
    // Make the first pointer a list pointer with an enormous element count.
    const size_t pointer = 8;
    list[pointer] = 0x01;
    list[pointer + 4] = static_cast<char>(0xff);
    list[pointer + 5] = static_cast<char>(0xff);
    list[pointer + 6] = static_cast<char>(0xff);
    list[pointer + 7] = static_cast<char>(0xff);
    frames.push_back(list);
  }

  size_t bad = 0;
  for (const std::string& frame : frames) {
    auto answer = client->SendRaw(frame);
    ASSERT_OK(answer);
    const Status status = ErrorOf(*answer);
    if (!status.ok()) {
      ASSERT_EQ(status.code(), ErrorCode::kBadRequest) << status.ToString();
      ++bad;
    }
  }
  EXPECT_GT(bad, frames.size() * 9 / 10);
  // The wrong union tag in particular.
  EXPECT_EQ(ErrorOf(*client->SendRaw(frames[frames.size() - 3])).code(), ErrorCode::kBadRequest);

  // And a valid request afterwards is answered.
  auto state = client->RoutingState();
  ASSERT_OK(state);
  auto answer = client->SendRaw(RoutingStateRequest(99));
  ASSERT_OK(answer);
  EXPECT_OK(ErrorOf(*answer));
}

TEST_F(Rpc, CurveRefusesUnknownKeysAndEnforcesRoles) {
  auto server_keys = GenerateCurveKeyPair();
  auto reader = GenerateCurveKeyPair();
  auto writer = GenerateCurveKeyPair();
  auto stranger = GenerateCurveKeyPair();
  ASSERT_OK(server_keys);
  RpcServerOptions options;
  options.curve_server_keys = *server_keys;
  options.allow = {{reader->public_key, Role::kReader}, {writer->public_key, Role::kWriter}};
  Start(options);

  auto with = [&](std::optional<CurveKeyPair> keys) {
    ClientOptions client_options;
    client_options.timeout = std::chrono::milliseconds(1500);
    client_options.client_keys = keys;
    client_options.server_public_key = server_keys->public_key;
    return Client(client_options);
  };

  auto anonymous = with(std::nullopt);
  auto refused = anonymous->RoutingState();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kUnavailable);

  auto unknown = with(*stranger);
  auto refused_key = unknown->RoutingState();
  ASSERT_FALSE(refused_key.ok());
  EXPECT_EQ(refused_key.status().code(), ErrorCode::kUnavailable);

  auto as_reader = with(*reader);
  ASSERT_OK(as_reader->RoutingState());
  auto denied = as_reader->RegisterWorkflows({"wf-1"});
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.status().code(), ErrorCode::kUnauthorized);
  EXPECT_EQ(ledger_->log().Head().seq, 0u) << "a reader's command must append nothing";

  auto as_writer = with(*writer);
  ASSERT_OK(as_writer->RegisterWorkflows({"wf-1"}));
  auto operator_only = as_writer->SetShardCount(3, "not yours");
  ASSERT_FALSE(operator_only.ok());
  EXPECT_EQ(operator_only.status().code(), ErrorCode::kUnauthorized);
}

TEST_F(Rpc, ShardMapCacheFollowsTheDaemon) {
  auto client = Client();
  ASSERT_OK(client->SetShardCount(4, "setup"));
  ASSERT_OK(client->RegisterWorkflows(Ids(2'000)));  // before the cache: from its snapshot

  ShardMapCacheOptions options;
  options.rpc.endpoint = server_->endpoint();
  options.publisher = publisher_->endpoint();
  auto cache = ShardMapCache::Start(options);
  ASSERT_OK(cache);
  EXPECT_EQ((*cache)->Digest(), ledger_->shard_map().Digest());

  ASSERT_OK(client->SetShardCount(5, "grow"));
  std::vector<std::string> moving;
  for (const auto& id : Ids(2'000)) {
    if (AssignShard(id, RoutableShards(5, {})) == 4) moving.push_back(id);
  }
  ASSERT_OK(client->ReportTriggerRegistration(4, moving, moving.size()));
  ASSERT_OK(client->CreateJob(JobType::kSnosRun, 1));  // another domain's record passes by
  const uint64_t head = ledger_->log().Head().seq;
  ASSERT_TRUE((*cache)->WaitFor(head, std::chrono::seconds(20)));
  EXPECT_EQ((*cache)->Digest(), ledger_->shard_map().Digest());
  EXPECT_EQ((*cache)->Routing().phase, RoutingPhase::kSteady);
  EXPECT_EQ((*cache)->ShardOf(moving.front()), std::optional<uint32_t>(4));
  EXPECT_OK((*cache)->status());
}

}  // namespace
}  // namespace shardledger
