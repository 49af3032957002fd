// Jobs end to end: the Ledger deciding job commands and folding them into the JobViews.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <thread>

#include "core/ledger.h"
#include "tests/test_util.h"

namespace shardledger {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

class Jobs : public ::testing::Test {
 protected:
  void SetUp() override {
    LedgerOptions options;
    options.durability = Durability::kBuffered;
    options.clock = [this] { return now_.load(); };
    auto config = JobConfig::Parse("SnosRun.max_process_attempts = 2\n");
    ASSERT_OK(config);
    options.jobs = *config;
    auto ledger = Ledger::Open(dir_.path(), options);
    ASSERT_OK(ledger);
    ledger_ = std::move(ledger).value();
  }
  void TearDown() override {
    // The rebuilt views equal the live ones, and every job's stream is its full history.
    auto rebuilt = FoldLog<JobViewsState>(ledger_->log());
    ASSERT_OK(rebuilt);
    EXPECT_EQ(rebuilt->Digest(), ledger_->job_views().Digest());
    ledger_->job_views().Read([&](const JobViewsState& views) {
      for (const auto& job : views.Page(JobQuery{.limit = 100'000})) {
        auto history = ledger_->log().ReadStream(JobStream(job.id));
        EXPECT_TRUE(history.ok());
        EXPECT_EQ(history->size(), job.version) << job.id;
        EXPECT_TRUE(std::holds_alternative<JobCreated>(history->front().payload)) << job.id;
      }
      return 0;
    });
  }

  JobCommandResult Ok(Result<JobCommandResult> result) {
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    return result.ok() ? std::move(result).value() : JobCommandResult{};
  }
  JobRecord Job(const std::string& id) {
    return ledger_->job_views().Read([&](const JobViewsState& s) {
      const JobRecord* job = s.Find(id);
      return job ? *job : JobRecord{};
    });
  }

  // A SnosRun job (no parent) brought to `status`; returns its id.
  std::string JobIn(JobStatus status) {
    const std::string id = Ok(ledger_->CreateJob(JobType::kSnosRun, next_id_++)).job.id;
    auto claim = [&] { return Ok(ledger_->ClaimJob(id, "w1", 60 * kSecond)).job.claim.fencing_token; };
    switch (status) {
      case JobStatus::kCreated: break;
      case JobStatus::kLockedForProcessing: claim(); break;
      case JobStatus::kPendingVerification: {
        const uint64_t token = claim();
        Ok(ledger_->CompleteProcessing(id, token, std::string("x")));
        break;
      }
      case JobStatus::kCompleted: {
        const uint64_t token = claim();
        Ok(ledger_->CompleteProcessing(id, token, std::string("x")));
        Ok(ledger_->RecordVerification(id, token, VerificationResult::kVerified));
        break;
      }
      case JobStatus::kVerificationTimeout: {  // SnosRun: one verification attempt
        const uint64_t token = claim();
        Ok(ledger_->CompleteProcessing(id, token, std::string("x")));
        Ok(ledger_->RecordVerification(id, token, VerificationResult::kPending));
        break;
      }
      case JobStatus::kVerificationFailed: {  // first of two process attempts
        const uint64_t token = claim();
        Ok(ledger_->CompleteProcessing(id, token, std::string("x")));
        Ok(ledger_->RecordVerification(id, token, VerificationResult::kRejected, "bad"));
        break;
      }
      case JobStatus::kFailed: Ok(ledger_->FailJob(id, 0, "broken")); break;
      case JobStatus::kPendingRetry:
        Ok(ledger_->FailJob(id, 0, "broken"));
        Ok(ledger_->RetryJob(id));
        break;
    }
    EXPECT_EQ(Job(id).status, status) << JobStatusName(status);
    return id;
  }

  testing::TempDir dir_;
  std::atomic<int64_t> now_{1'000 * kSecond};
  std::unique_ptr<Ledger> ledger_;
  uint64_t next_id_ = 1;
};

enum class Command { kClaim, kComplete, kVerify, kFail, kRetry, kRequeue };
constexpr Command kCommands[] = {Command::kClaim, Command::kComplete, Command::kVerify,
                                 Command::kFail,  Command::kRetry,    Command::kRequeue};
const char* Name(Command c) {
  switch (c) {
    case Command::kClaim: return "ClaimJob";
    case Command::kComplete: return "CompleteProcessing";
    case Command::kVerify: return "RecordVerification";
    case Command::kFail: return "FailJob";
    case Command::kRetry: return "RetryJob";
    case Command::kRequeue: return "RequeueVerification";
  }
  return "?";
}

// DESIGN.md section 5: the status each command leads to from each status, or nullopt for a
// rejection. LockedForProcessing here holds a live lease.
std::optional<JobStatus> Expected(JobStatus from, Command command) {
  using S = JobStatus;
  switch (command) {
    case Command::kClaim:
      if (from == S::kCreated || from == S::kVerificationFailed || from == S::kPendingRetry) {
        return S::kLockedForProcessing;
      }
      return std::nullopt;
    case Command::kComplete:
      return from == S::kLockedForProcessing ? std::optional(S::kPendingVerification) : std::nullopt;
    case Command::kVerify:
      return from == S::kPendingVerification ? std::optional(S::kCompleted) : std::nullopt;
    case Command::kFail:
      return from == S::kCompleted || from == S::kFailed ? std::nullopt : std::optional(S::kFailed);
    case Command::kRetry:
      return from == S::kFailed ? std::optional(S::kPendingRetry) : std::nullopt;
    case Command::kRequeue:
      return from == S::kVerificationTimeout ? std::optional(S::kPendingVerification) : std::nullopt;
  }
  return std::nullopt;
}

TEST_F(Jobs, EveryStatusTimesEveryCommand) {
  for (int s = 0; s < kJobStatusCount; ++s) {
    const auto status = static_cast<JobStatus>(s);
    for (Command command : kCommands) {
      const std::string id = JobIn(status);
      const uint64_t token = Job(id).claim.fencing_token;
      const uint64_t head = ledger_->log().Head().seq;
      Result<JobCommandResult> result = Status(ErrorCode::kBadRequest, "unset");
      switch (command) {
        case Command::kClaim: result = ledger_->ClaimJob(id, "w2"); break;
        case Command::kComplete: result = ledger_->CompleteProcessing(id, token, uint64_t{7}); break;
        case Command::kVerify:
          result = ledger_->RecordVerification(id, token, VerificationResult::kVerified);
          break;
        case Command::kFail: result = ledger_->FailJob(id, token, "operator"); break;
        case Command::kRetry: result = ledger_->RetryJob(id); break;
        case Command::kRequeue: result = ledger_->RequeueVerification(id); break;
      }
      const auto expected = Expected(status, command);
      const std::string pair = std::string(Name(command)) + " in " + std::string(JobStatusName(status));
      if (expected) {
        ASSERT_TRUE(result.ok()) << pair << ": " << result.status().ToString();
        EXPECT_EQ(Job(id).status, *expected) << pair;
      } else {
        ASSERT_FALSE(result.ok()) << pair << " was allowed";
        EXPECT_EQ(result.status().code(), ErrorCode::kRejected) << pair;
        EXPECT_NE(result.status().message().find(Name(command)), std::string::npos) << pair;
        EXPECT_NE(result.status().message().find(std::string(JobStatusName(status))),
                  std::string::npos) << pair;
        EXPECT_EQ(ledger_->log().Head().seq, head) << pair << " appended";
        EXPECT_EQ(Job(id).status, status) << pair;
      }
    }
  }
}

TEST_F(Jobs, FullPipelineOfOneInternalId) {
  constexpr uint64_t kBlock = 42;
  // Runs claim -> complete -> verify for one type; returns the job id.
  auto process = [&](JobType type, const std::string& worker) {
    const std::string id = Ok(ledger_->CreateJob(type, kBlock, {{"block", "42"}})).job.id;
    const uint64_t token = Ok(ledger_->ClaimJob(id, worker)).job.claim.fencing_token;
    Ok(ledger_->CompleteProcessing(id, token, std::string("ext-") + id));
    return std::make_pair(id, token);
  };
  auto [snos, snos_token] = process(JobType::kSnosRun, "w");
  Ok(ledger_->RecordVerification(snos, snos_token, VerificationResult::kVerified));
  auto [proof, proof_token] = process(JobType::kProofCreation, "w");
  Ok(ledger_->RecordVerification(proof, proof_token, VerificationResult::kPending));
  EXPECT_EQ(Job(proof).status, JobStatus::kPendingVerification);
  Ok(ledger_->RecordVerification(proof, proof_token, VerificationResult::kVerified));
  EXPECT_EQ(Job(proof).verification_attempts, 2u);

  // ProofRegistration: rejected once (2 process attempts allowed), re-processed, verified.
  auto [reg, reg_token] = process(JobType::kProofRegistration, "w");
  Ok(ledger_->RecordVerification(reg, reg_token, VerificationResult::kRejected, "bad fact"));
  EXPECT_EQ(Job(reg).status, JobStatus::kVerificationFailed);
  const uint64_t reg_token2 = Ok(ledger_->ClaimJob(reg, "w")).job.claim.fencing_token;
  EXPECT_EQ(Job(reg).process_attempts, 2u);
  Ok(ledger_->CompleteProcessing(reg, reg_token2, uint64_t{99}));
  Ok(ledger_->RecordVerification(reg, reg_token2, VerificationResult::kVerified));
  EXPECT_EQ(Job(reg).failure_history, std::vector<std::string>{"bad fact"});

  // DataSubmission: 3 pending checks time it out; an operator re-queues; then verified.
  auto [da, da_token] = process(JobType::kDataSubmission, "w");
  for (int i = 0; i < 3; ++i) Ok(ledger_->RecordVerification(da, da_token, VerificationResult::kPending));
  EXPECT_EQ(Job(da).status, JobStatus::kVerificationTimeout);
  auto attention = ledger_->job_views().Read([](const JobViewsState& s) { return s.Attention("", 10); });
  ASSERT_EQ(attention.size(), 1u);
  EXPECT_EQ(attention[0].id, da);
  Ok(ledger_->RequeueVerification(da));
  EXPECT_EQ(Job(da).verification_retries, 1u);
  Ok(ledger_->RecordVerification(da, da_token, VerificationResult::kVerified));

  // StateTransition: fails, an operator retries it, it completes.
  auto [st, st_token] = process(JobType::kStateTransition, "w");
  Ok(ledger_->FailJob(st, st_token, "rpc down"));
  Ok(ledger_->RetryJob(st));
  const uint64_t st_token2 = Ok(ledger_->ClaimJob(st, "w")).job.claim.fencing_token;
  Ok(ledger_->CompleteProcessing(st, st_token2, std::string("0xfeed")));
  Ok(ledger_->RecordVerification(st, st_token2, VerificationResult::kVerified));
  EXPECT_EQ(Job(st).process_retries, 1u);

  auto [agg, agg_token] = process(JobType::kAggregator, "w");
  Ok(ledger_->RecordVerification(agg, agg_token, VerificationResult::kVerified));

  auto pipeline = ledger_->job_views().Read([&](const JobViewsState& s) { return s.Pipeline(kBlock); });
  ASSERT_EQ(pipeline.size(), 6u);
  for (const auto& job : pipeline) EXPECT_EQ(job.status, JobStatus::kCompleted) << job.id;
  EXPECT_EQ(ledger_->job_views().Read([](const JobViewsState& s) {
    return s.HighestCompleted(JobType::kStateTransition);
  }), std::optional<uint64_t>(kBlock));
}

TEST_F(Jobs, DependenciesAreEnforced) {
  auto refused = ledger_->CreateJob(JobType::kProofCreation, 7);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kRejected);
  EXPECT_NE(refused.status().message().find("SnosRun-7"), std::string::npos);
  const std::string snos = JobIn(JobStatus::kCompleted);  // SnosRun-1
  (void)snos;
  Ok(ledger_->CreateJob(JobType::kSnosRun, 7));
  EXPECT_FALSE(ledger_->CreateJob(JobType::kProofCreation, 7).ok()) << "SnosRun-7 is only Created";

  // StateTransition in order, one at a time (its parent check is lifted for this test).
  auto config = JobConfig::Parse("StateTransition.parent = none\n");
  ASSERT_OK(config);
  JobDecider decider(*config);
  auto decide = [&](uint64_t n) {
    return ledger_->job_views().Read([&](const JobViewsState& s) {
      return decider.CreateJob(s, JobType::kStateTransition, n, {});
    });
  };
  JobViewsState views;  // a state where StateTransition 8 is running
  auto with = [&](std::vector<Event> events) {
    uint64_t seq = 0;
    for (auto& e : events) {
      Record r;
      r.seq = ++seq;
      r.stream_version = seq;
      r.payload = std::move(e);
      views.Apply(r);
    }
  };
  with({JobCreated{"StateTransition-8", JobType::kStateTransition, 8, {}}});
  auto nine = decider.CreateJob(views, JobType::kStateTransition, 9, {});
  ASSERT_FALSE(nine.ok());
  EXPECT_EQ(nine.status().code(), ErrorCode::kRejected);
  with({JobClaimed{"StateTransition-8", JobType::kStateTransition, "w", 1, 10, 1},
        JobProcessingCompleted{"StateTransition-8", JobType::kStateTransition, 1, {}},
        JobVerified{"StateTransition-8", JobType::kStateTransition, 1}});
  EXPECT_TRUE(decider.CreateJob(views, JobType::kStateTransition, 9, {}).ok());
  EXPECT_FALSE(decider.CreateJob(views, JobType::kStateTransition, 10, {}).ok());
  EXPECT_TRUE(decide(1).ok());  // nothing has run yet in the ledger: the first may be any id
}

TEST_F(Jobs, FailureOfOneInternalIdDoesNotStopTheNext) {
  const std::string s15 = Ok(ledger_->CreateJob(JobType::kSnosRun, 15)).job.id;
  Ok(ledger_->FailJob(s15, 0, "prover down"));
  EXPECT_EQ(Job(s15).status, JobStatus::kFailed);
  const std::string s16 = Ok(ledger_->CreateJob(JobType::kSnosRun, 16)).job.id;
  const uint64_t token = Ok(ledger_->ClaimJob(s16, "w")).job.claim.fencing_token;
  Ok(ledger_->CompleteProcessing(s16, token, std::string("x")));
  Ok(ledger_->RecordVerification(s16, token, VerificationResult::kVerified));
  Ok(ledger_->CreateJob(JobType::kProofCreation, 16));
  EXPECT_FALSE(ledger_->CreateJob(JobType::kProofCreation, 15).ok());
}

TEST_F(Jobs, ExpiredLeaseIsReclaimedAndTheStaleTokenRejected) {
  const std::string id = Ok(ledger_->CreateJob(JobType::kSnosRun, 3)).job.id;
  const uint64_t first = Ok(ledger_->ClaimJob(id, "crashed", 30 * kSecond)).job.claim.fencing_token;
  EXPECT_FALSE(ledger_->ClaimJob(id, "eager").ok()) << "the lease still holds";
  EXPECT_TRUE(Ok(ledger_->TickJobs(now_ + 30 * kSecond - 1)).events.empty());
  auto expired = Ok(ledger_->TickJobs(now_ + 30 * kSecond));
  ASSERT_EQ(expired.events.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<JobClaimExpired>(expired.events[0]));
  now_ += 31 * kSecond;
  const uint64_t second = Ok(ledger_->ClaimJob(id, "rescuer")).job.claim.fencing_token;
  EXPECT_EQ(second, first + 1);
  const uint64_t head = ledger_->log().Head().seq;
  auto late = ledger_->CompleteProcessing(id, first, std::string("late"));
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().code(), ErrorCode::kRejected);
  EXPECT_NE(late.status().message().find("stale"), std::string::npos) << late.status().message();
  EXPECT_EQ(ledger_->log().Head().seq, head);
  EXPECT_EQ(Job(id).claim.owner, "rescuer");
  Ok(ledger_->CompleteProcessing(id, second, std::string("done")));
}

TEST_F(Jobs, CreateIsIdempotentByTypeAndInternalId) {
  auto first = Ok(ledger_->CreateJob(JobType::kSnosRun, 5, {{"k", "v"}}));
  auto again = Ok(ledger_->CreateJob(JobType::kSnosRun, 5, {{"k", "other"}}));
  EXPECT_EQ(again.job.id, first.job.id);
  EXPECT_TRUE(again.events.empty());
  EXPECT_EQ(again.job.metadata, first.job.metadata);
}

TEST_F(Jobs, RacingWorkersCompleteEveryJobExactlyOnce) {
  constexpr int kJobs = 10'000;
  constexpr int kWorkers = 8;
  std::vector<std::string> ids;
  for (int i = 0; i < kJobs; ++i) ids.push_back(JobDecider::JobIdFor(JobType::kSnosRun, 1000 + i));
  {
    std::vector<std::thread> creators;
    for (int t = 0; t < kWorkers; ++t) {
      creators.emplace_back([&, t] {
        for (int i = t; i < kJobs; i += kWorkers) ASSERT_OK(ledger_->CreateJob(JobType::kSnosRun, 1000 + i));
      });
    }
    for (auto& t : creators) t.join();
  }
  std::atomic<int> completed{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < kWorkers; ++t) {
    workers.emplace_back([&, t] {
      std::vector<std::string> order = ids;
      std::shuffle(order.begin(), order.end(), std::mt19937(t));
      const std::string me = "worker-" + std::to_string(t);
      for (const auto& id : order) {
        auto claim = ledger_->ClaimJob(id, me);
        if (!claim.ok()) {
          ASSERT_EQ(claim.status().code(), ErrorCode::kRejected) << claim.status().ToString();
          continue;
        }
        const uint64_t token = claim->job.claim.fencing_token;
        ASSERT_OK(ledger_->CompleteProcessing(id, token, me));
        ASSERT_OK(ledger_->RecordVerification(id, token, VerificationResult::kVerified));
        ++completed;
      }
    });
  }
  for (auto& t : workers) t.join();
  EXPECT_EQ(completed.load(), kJobs);
  EXPECT_GT(ledger_->job_retries(), 0u) << "no claim race was lost: the test proved nothing";
  auto processed = ledger_->log().ReadFiltered(ReadFilter{.event_types = {EventType::kJobProcessingCompleted}});
  ASSERT_OK(processed);
  EXPECT_EQ(processed->size(), size_t{kJobs});
  std::set<std::string> once;
  for (const auto& r : *processed) EXPECT_TRUE(once.insert(std::get<JobProcessingCompleted>(r.payload).job_id).second);
  auto counts = ledger_->job_views().Read([](const JobViewsState& s) { return s.Counts(); });
  const auto done_key = std::make_pair(JobType::kSnosRun, JobStatus::kCompleted);
  EXPECT_EQ(counts[done_key], uint64_t{kJobs});
  EXPECT_EQ(counts.size(), 1u);
}

TEST(JobConfig, InvalidConfigIsRefusedNamingTheKey) {
  for (const char* bad : {"ProofCreation.max_process_attempts = 0", "Nope.parent = none",
                          "SnosRun.max_verification_attempts = many", "SnosRun.colour = red",
                          "SnosRun.parent = ProofCreation", "lease_s = 0"}) {
    auto config = JobConfig::Parse(bad);
    ASSERT_FALSE(config.ok()) << bad;
    EXPECT_EQ(config.status().code(), ErrorCode::kBadRequest);
    const std::string key = std::string(bad).substr(0, std::string(bad).find(' '));
    EXPECT_NE(config.status().message().find(key), std::string::npos) << config.status().message();
  }
  auto good = JobConfig::Parse("# comment\nProofRegistration.max_process_attempts = 4\nlease_s = 60\n");
  ASSERT_OK(good);
  EXPECT_EQ(good->For(JobType::kProofRegistration).max_process_attempts, 4u);
  EXPECT_EQ(good->For(JobType::kProofCreation).max_verification_attempts, 900u);
}

}  // namespace
}  // namespace shardledger
