#include "events/event.h"

#include <array>

namespace shardledger {

namespace {
constexpr std::array<std::string_view, kJobTypeCount> kJobTypeNames = {
    "SnosRun", "ProofCreation", "ProofRegistration", "DataSubmission", "StateTransition",
    "Aggregator"};

constexpr std::array<std::string_view, kEventTypeCount> kEventTypeNames = {
    "WorkflowAssigned",        "WorkflowRemoved",
    "TransitionStarted",       "WorkflowMoving",
    "ShardHealthChanged",      "TriggerRegistrationReported",
    "WorkflowMoveConfirmed",   "TransitionCompleted",
    "JobCreated",              "JobClaimed",
    "JobProcessingCompleted",  "JobVerified",
    "JobVerificationRejected", "JobVerificationPending",
    "JobVerificationTimedOut", "JobFailed",
    "JobRetried",              "JobVerificationRequeued",
    "JobClaimExpired"};
}  // namespace

std::string_view JobTypeName(JobType type) {
  auto index = static_cast<size_t>(type);
  return index < kJobTypeNames.size() ? kJobTypeNames[index] : std::string_view("Unknown");
}

std::optional<JobType> ParseJobType(std::string_view name) {
  for (size_t i = 0; i < kJobTypeNames.size(); ++i) {
    if (kJobTypeNames[i] == name) return static_cast<JobType>(i);
  }
  return std::nullopt;
}

std::string_view EventTypeName(EventType type) {
  auto index = static_cast<size_t>(type);
  return index < kEventTypeNames.size() ? kEventTypeNames[index] : std::string_view("Unknown");
}

std::optional<EventType> ParseEventType(std::string_view name) {
  for (size_t i = 0; i < kEventTypeNames.size(); ++i) {
    if (kEventTypeNames[i] == name) return static_cast<EventType>(i);
  }
  return std::nullopt;
}

bool IsJobEvent(EventType type) {
  return static_cast<int>(type) >= static_cast<int>(EventType::kJobCreated);
}

std::optional<JobType> JobTypeOf(const Event& event) {
  return std::visit(
      [](const auto& e) -> std::optional<JobType> {
        if constexpr (requires { e.job_type; }) {
          return e.job_type;
        } else {
          return std::nullopt;
        }
      },
      event);
}

}  // namespace shardledger
