// A small leveled logger for the tools: "2026-11-22T10:00:00.123Z INFO  message" on stderr.
#pragma once

#include <fmt/core.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <optional>
#include <string_view>

namespace shardledger::tools {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

inline std::optional<LogLevel> ParseLogLevel(std::string_view name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warn") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  return std::nullopt;
}

class Logger {
 public:
  static Logger& Get() {
    static Logger logger;
    return logger;
  }
  void set_level(LogLevel level) { level_ = level; }
  bool enabled(LogLevel level) const { return level >= level_; }

  template <typename... Args>
  void Log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
    if (!enabled(level)) return;
    static constexpr const char* kNames[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
    const auto now = std::chrono::system_clock::now();
    const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
    const auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
    const std::string line = fmt::format("{}.{:03d}Z {} {}\n", stamp, static_cast<int>(millis),
                                         kNames[static_cast<int>(level)],
                                         fmt::format(format, std::forward<Args>(args)...));
    std::lock_guard lock(mu_);
    std::fputs(line.c_str(), stderr);
    std::fflush(stderr);
  }

 private:
  LogLevel level_ = LogLevel::kInfo;
  std::mutex mu_;
};

#define SL_LOG(level, ...) ::shardledger::tools::Logger::Get().Log(::shardledger::tools::LogLevel::level, __VA_ARGS__)

}  // namespace shardledger::tools
