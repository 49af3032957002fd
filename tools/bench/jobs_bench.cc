// Figures of jobs: job_transitions (durable), attention_query_p99, by_status_query_p99.
#include <fmt/core.h>

#include <atomic>
#include <thread>

#include "core/ledger.h"
#include "tools/bench/bench.h"

namespace shardledger::bench {

int RunJobsBench(const Settings& settings, uint64_t internal_ids) {
  auto opened = Must("open", Ledger::Open(ScratchDir(settings, "jobs"), LedgerOptions{}));
  Ledger& ledger = *opened;
  // Five types in dependency order. StateTransition is left out: it runs one at a time in
  // internal-id order, so it measures the chain's latency, not the ledger's throughput.
  const JobType kTypes[] = {JobType::kSnosRun, JobType::kProofCreation, JobType::kProofRegistration,
                            JobType::kDataSubmission, JobType::kAggregator};
  constexpr int kWorkers = 64;
  std::atomic<uint64_t> transitions{0};
  std::atomic<bool> failed{false};
  auto must = [&](auto result) {
    if (!result.ok()) {
      fmt::print(stderr, "job command failed: {}\n", result.status().ToString());
      failed = true;
    }
    return result;
  };
  Stopwatch clock;
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      for (uint64_t id = w; id < internal_ids && !failed; id += kWorkers) {
        for (JobType type : kTypes) {
          auto created = must(ledger.CreateJob(type, id));
          if (!created.ok()) return;
          const std::string job = created->job.id;
          if (type == JobType::kSnosRun && id % 100 == 99) {
            // One id in a hundred fails at its first job: the attention list has entries.
            if (!must(ledger.FailJob(job, 0, "bench failure")).ok()) return;
            transitions += 2;
            break;
          }
          auto claimed = must(ledger.ClaimJob(job, fmt::format("worker-{}", w)));
          if (!claimed.ok()) return;
          const uint64_t token = claimed->job.claim.fencing_token;
          if (!must(ledger.CompleteProcessing(job, token, std::string("ext"))).ok()) return;
          if (!must(ledger.RecordVerification(job, token, VerificationResult::kVerified)).ok()) return;
          transitions += 4;
        }
      }
    });
  }
  for (auto& t : workers) t.join();
  if (failed) Fail("a job command failed (above)");
  PrintFigure("job_transitions", "transitions/s",
              static_cast<double>(transitions.load()) / clock.Seconds());

  auto query_p99 = [&](auto&& query) {
    std::vector<double> micros;
    for (int i = 0; i < 10'000; ++i) {
      Stopwatch one;
      const size_t n = ledger.job_views().Read(query);
      micros.push_back(one.Seconds() * 1e6);
      if (n == 0) Fail("a job query found nothing");
    }
    return Percentile(micros, 99);
  };
  PrintFigure("attention_query_p99", "us", query_p99([](const JobViewsState& s) {
    return s.Attention("", 100).size();
  }));
  PrintFigure("by_status_query_p99", "us", query_p99([](const JobViewsState& s) {
    return s.Page(JobQuery{.status = JobStatus::kCompleted, .limit = 100}).size();
  }));
  return 0;
}

}  // namespace shardledger::bench
