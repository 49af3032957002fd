// Topics of published records (DESIGN.md section 6): "routing.<EventType>" or
// "job.<JobType>.<EventType>". Subscribers filter by topic prefix.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "events/event.h"

namespace shardledger {

// The publisher's heartbeat topic: frames are the topic, the head seq, and an empty body.
// Subscribers always subscribe to it, whatever their filters.
inline constexpr std::string_view kHeadTopic = "~head";

inline std::string TopicOf(EventType type, std::optional<JobType> job_type) {
  if (job_type) {
    return "job." + std::string(JobTypeName(*job_type)) + "." + std::string(EventTypeName(type));
  }
  return "routing." + std::string(EventTypeName(type));
}

inline std::string TopicOf(const Event& event) { return TopicOf(TypeOf(event), JobTypeOf(event)); }

}  // namespace shardledger
