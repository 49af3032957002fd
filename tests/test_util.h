// Helpers shared by the test suites: scratch directories and event builders.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

#include "events/ids.h"
#include "events/record.h"
#include "events/status.h"

namespace shardledger::testing {

// A fresh directory under the system temp dir, removed with everything in it on scope exit.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string("shardledger-") + (info ? info->name() : "test") + "-" +
                       std::to_string(::getpid()) + "-" + std::to_string(counter++);
    path_ = std::filesystem::temp_directory_path() / name;
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path() const { return path_.string(); }
  std::string Sub(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// An event for `stream` with a fresh random id.
inline NewEvent Assigned(const std::string& stream, const std::string& workflow, uint32_t shard) {
  return NewEvent{RandomId128(), stream, WorkflowAssigned{workflow, shard, 1}};
}

inline AppendBatch OneEvent(const std::string& stream,
                            ExpectedVersion expected = ExpectedVersion::Any()) {
  AppendBatch batch;
  batch.events.push_back(Assigned(stream, stream, 1));
  batch.expectations.push_back({stream, expected});
  return batch;
}

// Waits until `condition` holds or `deadline` passes; returns whether it held.
inline bool WaitFor(const std::function<bool()>& condition,
                    std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return condition();
}

inline const Status& StatusOf(const Status& status) { return status; }
template <typename T>
const Status& StatusOf(const Result<T>& result) {
  return result.status();
}

}  // namespace shardledger::testing

#define ASSERT_OK(expr)                                                         \
  do {                                                                          \
    const auto& sl_s_ = (expr);                                                 \
    ASSERT_TRUE(::shardledger::testing::StatusOf(sl_s_).ok())                   \
        << ::shardledger::testing::StatusOf(sl_s_).ToString();                  \
  } while (0)
#define EXPECT_OK(expr)                                                         \
  do {                                                                          \
    const auto& sl_s_ = (expr);                                                 \
    EXPECT_TRUE(::shardledger::testing::StatusOf(sl_s_).ok())                   \
        << ::shardledger::testing::StatusOf(sl_s_).ToString();                  \
  } while (0)
