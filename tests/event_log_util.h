// Helpers shared by the event log's test suites.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "events/event_log.h"

namespace shardledger::testing {

// Opens the log in `dir`, failing the test (and answering null) when it does not open.
inline std::unique_ptr<EventLog> OpenLog(const std::string& dir, EventLogOptions options = {}) {
  auto log = EventLog::Open(dir, std::move(options));
  EXPECT_TRUE(log.ok()) << log.status().ToString();
  return log.ok() ? std::move(log).value() : nullptr;
}

}  // namespace shardledger::testing
