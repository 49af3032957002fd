// JobConfig: the job types' dependencies and attempt limits (DESIGN.md section 5), with the
// Madara defaults, optionally overridden by a config file.
//
// File format: one `key = value` per line, `#` starts a comment. Keys:
//   lease_s                              default claim lease, seconds (300)
//   <Type>.max_process_attempts          >= 1
//   <Type>.max_verification_attempts     >= 1
//   <Type>.verification_delay_s          >= 0, polling delay between verification checks
//   <Type>.parent                        a job type, or `none`
// where <Type> is SnosRun, ProofCreation, ProofRegistration, DataSubmission, StateTransition
// or Aggregator. Anything else is refused with a message naming the key.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "events/event.h"
#include "events/status.h"

namespace shardledger {

struct JobTypeConfig {
  uint32_t max_process_attempts = 1;
  uint32_t max_verification_attempts = 1;
  int64_t verification_delay_ns = 0;
  std::optional<JobType> parent;  // must be Completed for the same internal id
};

struct JobConfig {
  std::array<JobTypeConfig, kJobTypeCount> types;
  int64_t default_lease_ns = int64_t{300} * 1'000'000'000;

  const JobTypeConfig& For(JobType type) const { return types[static_cast<size_t>(type)]; }

  // SnosRun 1/1/1 s, ProofCreation 1/900/30 s, ProofRegistration 2/300/300 s,
  // DataSubmission 1/3/60 s, StateTransition 3/10/60 s, Aggregator 1/900/30 s; the pipeline
  // SnosRun -> ProofCreation -> ProofRegistration -> DataSubmission -> StateTransition, and
  // Aggregator after ProofCreation.
  static JobConfig Defaults();
  // The defaults overridden by the `key = value` lines of `text`.
  static Result<JobConfig> Parse(const std::string& text);
  static Result<JobConfig> Load(const std::string& path);
};

}  // namespace shardledger
