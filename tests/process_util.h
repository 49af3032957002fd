// Helpers for the tests that run real processes: free ports, children on pipes, and running
// a command to completion with its output captured.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace shardledger::testing {

// A free loopback TCP port (bound and released; the daemon binds it right after).
inline int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// A child process with its stdin and stdout on pipes.
class Child {
 public:
  explicit Child(std::vector<std::string> argv) {
    int in[2], out[2];
    if (::pipe(in) != 0 || ::pipe(out) != 0) std::abort();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::close(in[1]);
      ::close(out[0]);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      std::_Exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    to_ = ::fdopen(in[1], "w");
    from_ = ::fdopen(out[0], "r");
  }
  ~Child() {
    if (pid_ > 0) {
      Signal(SIGKILL);
      Wait();
    }
    if (to_) std::fclose(to_);
    if (from_) std::fclose(from_);
  }
  void Send(const std::string& line) {
    std::fputs((line + "\n").c_str(), to_);
    std::fflush(to_);
  }
  std::string ReadLine() {
    char buffer[4096];
    if (!std::fgets(buffer, sizeof buffer, from_)) return "";
    std::string line(buffer);
    if (!line.empty() && line.back() == '\n') line.pop_back();
    return line;
  }
  void Signal(int signal) { ::kill(pid_, signal); }
  // The exit status (-signal when killed).
  int Wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  FILE* to_ = nullptr;
  FILE* from_ = nullptr;
};

// Starts shardledgerd (`daemon_path`) on `dir`/data with the given endpoints and `extra` flags,
// and waits until it has written its ready file (`dir`/ready); nullptr when it did not
// within 30 s.
inline std::unique_ptr<Child> StartDaemonProcess(const std::string& daemon_path, const std::string& dir,
                                                 const std::string& rpc, const std::string& pub,
                                                 const std::vector<std::string>& extra = {}) {
  const std::string ready = (std::filesystem::path(dir) / "ready").string();
  std::filesystem::remove(ready);
  std::vector<std::string> argv{daemon_path, "--data-dir", (std::filesystem::path(dir) / "data").string(),
                                "--rpc", rpc, "--pub", pub, "--ready-file", ready, "--log-level", "warn"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto daemon = std::make_unique<Child>(argv);
  if (!WaitFor([&] { return std::filesystem::exists(ready); }, std::chrono::seconds(30))) return nullptr;
  return daemon;
}

// What a command printed and how it exited.
struct Ran {
  int exit_code = -1;  // -signal when killed
  std::string out;
  std::string err;
};

// Runs argv[0] with its arguments to completion; stdin is empty unless `input` is given.
inline Ran RunProcess(const std::vector<std::string>& argv, const std::string& input = {}) {
  char out_path[] = "/tmp/shardledger-run-out-XXXXXX";
  char err_path[] = "/tmp/shardledger-run-err-XXXXXX";
  const int out_fd = ::mkstemp(out_path);
  const int err_fd = ::mkstemp(err_path);
  int in[2];
  if (out_fd < 0 || err_fd < 0 || ::pipe(in) != 0) std::abort();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    ::close(in[1]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::_Exit(127);
  }
  ::close(in[0]);
  if (!input.empty() && ::write(in[1], input.data(), input.size()) != static_cast<ssize_t>(input.size())) {
    std::abort();
  }
  ::close(in[1]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  Ran ran;
  ran.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  auto slurp = [](int fd) {
    std::string text;
    ::lseek(fd, 0, SEEK_SET);
    char buffer[65536];
    for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<size_t>(n));
    ::close(fd);
    return text;
  };
  ran.out = slurp(out_fd);
  ran.err = slurp(err_fd);
  ::unlink(out_path);
  ::unlink(err_path);
  return ran;
}

}  // namespace shardledger::testing
