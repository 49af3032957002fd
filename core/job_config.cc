#include "core/job_config.h"

#include <charconv>
#include <fstream>
#include <sstream>

namespace shardledger {

namespace {

constexpr int64_t kSecond = 1'000'000'000;

std::string Trim(const std::string& s) {
  const size_t first = s.find_first_not_of(" \t\r");
  if (first == std::string::npos) return "";
  const size_t last = s.find_last_not_of(" \t\r");
  return s.substr(first, last - first + 1);
}

Status BadKey(const std::string& key, const std::string& why) {
  return Status(ErrorCode::kBadRequest, "job config key '" + key + "': " + why);
}

Result<uint64_t> Number(const std::string& key, const std::string& value) {
  uint64_t out = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  if (ec != std::errc() || end != value.data() + value.size()) {
    return BadKey(key, "'" + value + "' is not a non-negative integer");
  }
  return out;
}

}  // namespace

JobConfig JobConfig::Defaults() {
  JobConfig config;
  auto set = [&](JobType type, uint32_t process, uint32_t verification, int64_t delay_s,
                 std::optional<JobType> parent) {
    config.types[static_cast<size_t>(type)] = {process, verification, delay_s * kSecond, parent};
  };
  set(JobType::kSnosRun, 1, 1, 1, std::nullopt);
  set(JobType::kProofCreation, 1, 900, 30, JobType::kSnosRun);
  set(JobType::kProofRegistration, 2, 300, 300, JobType::kProofCreation);
  set(JobType::kDataSubmission, 1, 3, 60, JobType::kProofRegistration);
  set(JobType::kStateTransition, 3, 10, 60, JobType::kDataSubmission);
  set(JobType::kAggregator, 1, 900, 30, JobType::kProofCreation);
  return config;
}

Result<JobConfig> JobConfig::Parse(const std::string& text) {
  JobConfig config = Defaults();
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    line = Trim(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    const size_t eq = line.find('=');
    if (eq == std::string::npos) return BadKey(line, "expected 'key = value'");
    const std::string key = Trim(line.substr(0, eq));
    const std::string value = Trim(line.substr(eq + 1));
    if (key == "lease_s") {
      SL_ASSIGN_OR_RETURN(uint64_t seconds, Number(key, value));
      if (seconds == 0) return BadKey(key, "a lease must be at least 1 second");
      config.default_lease_ns = static_cast<int64_t>(seconds) * kSecond;
      continue;
    }
    const size_t dot = key.find('.');
    const auto type = dot == std::string::npos ? std::nullopt : ParseJobType(key.substr(0, dot));
    if (!type) return BadKey(key, "unknown key (no such job type)");
    JobTypeConfig& entry = config.types[static_cast<size_t>(*type)];
    const std::string field = key.substr(dot + 1);
    if (field == "max_process_attempts" || field == "max_verification_attempts") {
      SL_ASSIGN_OR_RETURN(uint64_t n, Number(key, value));
      if (n == 0 || n > 1'000'000) return BadKey(key, "must be between 1 and 1000000");
      (field == "max_process_attempts" ? entry.max_process_attempts
                                       : entry.max_verification_attempts) = static_cast<uint32_t>(n);
    } else if (field == "verification_delay_s") {
      SL_ASSIGN_OR_RETURN(uint64_t n, Number(key, value));
      entry.verification_delay_ns = static_cast<int64_t>(n) * kSecond;
    } else if (field == "parent") {
      if (value == "none") {
        entry.parent.reset();
      } else if (auto parent = ParseJobType(value)) {
        entry.parent = parent;
      } else {
        return BadKey(key, "'" + value + "' is not a job type or 'none'");
      }
    } else {
      return BadKey(key, "unknown key");
    }
  }
  // A dependency cycle would make every job in it impossible to create.
  for (int t = 0; t < kJobTypeCount; ++t) {
    std::optional<JobType> at = static_cast<JobType>(t);
    for (int steps = 0; at; ++steps) {
      at = config.For(*at).parent;
      if (steps > kJobTypeCount) {
        return BadKey(std::string(JobTypeName(static_cast<JobType>(t))) + ".parent",
                      "the parents form a cycle");
      }
    }
  }
  return config;
}

Result<JobConfig> JobConfig::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status(ErrorCode::kNotFound, "cannot read job config " + path);
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str());
}

}  // namespace shardledger
