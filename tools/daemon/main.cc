// shardledgerd: the ledger as a service (DESIGN.md sections 6 and 7) — the Ledger over a data
// directory, its records published on PUB, its commands and queries served on ROUTER.
//
// Flags, or the same names in a config file (--config, "name = value" lines). Stops cleanly on
// SIGTERM/SIGINT: stops taking requests, lets the ones running finish, publishes what is
// durable, closes the log.
#include <CLI/CLI.hpp>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/ledger.h"
#include "tools/log.h"
#include "transport/curve.h"
#include "transport/publisher.h"
#include "transport/rpc_server.h"

namespace shardledger {
namespace {

struct DaemonFlags {
  std::string data_dir = "./var/shardledger";
  std::string rpc = "tcp://127.0.0.1:7400";
  std::string pub = "tcp://127.0.0.1:7401";
  std::string durability = "durable";
  std::string curve_key;     // the server's key file: CURVE on when set
  std::string curve_allow;   // the allow-list of client keys and roles
  std::string job_config;
  std::string log_level = "info";
  std::string ready_file;
  int workers = 4;
  int tick_ms = 1000;
  int timetosync_s = 300;
  int pub_hwm = 100'000;
  int queue_poll_us = static_cast<int>(AdaptivePoll::kDefaultLimit.count());
};

int Run(const DaemonFlags& flags) {
  const auto level = tools::ParseLogLevel(flags.log_level);
  if (!level) {
    SL_LOG(kError, "--log-level must be debug, info, warn or error, not '{}'", flags.log_level);
    return 2;
  }
  tools::Logger::Get().set_level(*level);

  LedgerOptions options;
  const auto durability = ParseDurability(flags.durability);
  if (!durability) {
    SL_LOG(kError, "--durability must be durable or buffered, not '{}'", flags.durability);
    return 2;
  }
  options.durability = *durability;
  if (flags.queue_poll_us < 0) {
    SL_LOG(kError, "--queue-poll-us must be 0 or more, not {}", flags.queue_poll_us);
    return 2;
  }
  options.queue_poll = std::chrono::microseconds(flags.queue_poll_us);
  options.routing.time_to_sync_ns = int64_t{flags.timetosync_s} * 1'000'000'000;
  if (!flags.job_config.empty()) {
    auto jobs = JobConfig::Load(flags.job_config);
    if (!jobs.ok()) {
      SL_LOG(kError, "job config refused: {}", jobs.status().ToString());
      return 2;
    }
    options.jobs = *jobs;
  }

  RpcServerOptions rpc_options;
  rpc_options.endpoint = flags.rpc;
  rpc_options.workers = flags.workers;
  if (!flags.curve_key.empty()) {
    auto keys = ReadCurveKeyFile(flags.curve_key, /*need_secret=*/true);
    if (!keys.ok()) {
      SL_LOG(kError, "CURVE key: {}", keys.status().ToString());
      return 2;
    }
    if (flags.curve_allow.empty()) {
      SL_LOG(kError, "--curve-key needs --curve-allow (the allow-list of client keys and roles)");
      return 2;
    }
    auto allow = ReadAllowList(flags.curve_allow);
    if (!allow.ok()) {
      SL_LOG(kError, "CURVE allow-list: {}", allow.status().ToString());
      return 2;
    }
    rpc_options.curve_server_keys = *keys;
    rpc_options.allow = std::move(*allow);
  }

  // Signals go to the main thread's sigwait only: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::error_code ec;
  std::filesystem::create_directories(flags.data_dir, ec);
  if (ec) {
    SL_LOG(kError, "cannot create data directory {}: {}", flags.data_dir, ec.message());
    return 3;
  }
  auto ledger = Ledger::Open(flags.data_dir, options);
  if (!ledger.ok()) {
    SL_LOG(kError, "cannot open the ledger in {}: {}", flags.data_dir, ledger.status().ToString());
    return 3;
  }
  SL_LOG(kInfo, "ledger open in {} ({}), head seq {}", flags.data_dir, flags.durability,
         (*ledger)->log().Head().seq);

  auto publisher = Publisher::Start((*ledger)->log(), {.endpoint = flags.pub, .send_high_water_mark = flags.pub_hwm});
  if (!publisher.ok()) {
    SL_LOG(kError, "{}", publisher.status().ToString());
    return 3;
  }
  auto server = RpcServer::Start(**ledger, rpc_options);
  if (!server.ok()) {
    SL_LOG(kError, "{}", server.status().ToString());
    return 3;
  }
  SL_LOG(kInfo, "serving rpc on {} ({} workers{}), publishing on {}", (*server)->endpoint(), flags.workers,
         rpc_options.curve_server_keys ? ", CURVE on" : "", (*publisher)->endpoint());
  if (!flags.ready_file.empty()) {
    const std::string tmp = flags.ready_file + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << "rpc=" << (*server)->endpoint() << "\npub=" << (*publisher)->endpoint() << "\npid=" << getpid()
          << "\n";
    }
    std::filesystem::rename(tmp, flags.ready_file, ec);
  }

  // The clock: ends routing transitions at their deadline and expires job leases.
  std::atomic<bool> stopping{false};
  std::thread ticker([&] {
    while (!stopping) {
      for (int waited = 0; waited < flags.tick_ms && !stopping; waited += 10) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (stopping) break;
      auto tick = (*ledger)->Tick();
      if (!tick.ok()) {
        SL_LOG(kWarn, "routing tick: {}", tick.status().ToString());
      } else if (tick->last_seq != 0) {
        SL_LOG(kInfo, "routing tick appended seq {}..{}", tick->first_seq, tick->last_seq);
      }
      auto jobs = (*ledger)->TickJobs();
      if (!jobs.ok()) {
        SL_LOG(kWarn, "job tick: {}", jobs.status().ToString());
      } else if (jobs->last_seq != 0) {
        SL_LOG(kInfo, "job tick expired leases: seq {}..{}", jobs->first_seq, jobs->last_seq);
      }
    }
  });

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  SL_LOG(kInfo, "{} received: stopping", signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
  stopping = true;
  ticker.join();
  server->reset();     // no new requests; running ones finish
  publisher->reset();  // publishes what is durable
  const uint64_t head = (*ledger)->log().Head().seq;
  ledger->reset();     // closes the log
  SL_LOG(kInfo, "stopped cleanly at seq {}", head);
  if (!flags.ready_file.empty()) std::filesystem::remove(flags.ready_file, ec);
  return 0;
}

}  // namespace
}  // namespace shardledger

int main(int argc, char** argv) {
  shardledger::DaemonFlags flags;
  CLI::App app{"shardledgerd: the shardledger daemon"};
  app.set_config("--config", "", "a config file of 'name = value' lines, names as the flags");
  app.add_option("--data-dir", flags.data_dir, "data directory")->capture_default_str();
  app.add_option("--rpc", flags.rpc, "request/reply (ROUTER) endpoint")->capture_default_str();
  app.add_option("--pub", flags.pub, "publication (PUB) endpoint")->capture_default_str();
  app.add_option("--pub-hwm", flags.pub_hwm,
                 "records queued per subscriber before the publisher drops (they then replay)")
      ->capture_default_str();
  app.add_option("--durability", flags.durability, "durable (fsync) or buffered")->capture_default_str();
  app.add_option(
         "--queue-poll-us", flags.queue_poll_us,
         "microseconds the event log's writer (and, buffered, its sync thread) polls before "
         "sleeping, while most of its waits are shorter (0: always sleep)")
      ->capture_default_str();
  app.add_option("--curve-key", flags.curve_key, "the server's CURVE key file: turns CURVE on");
  app.add_option("--curve-allow", flags.curve_allow, "allow-list: '<public key> <reader|writer|admin>' lines");
  app.add_option("--job-config", flags.job_config, "job configuration file");
  app.add_option("--workers", flags.workers, "RPC worker threads")->capture_default_str();
  app.add_option("--tick-ms", flags.tick_ms, "how often the daemon ticks routing and job leases")
      ->capture_default_str();
  app.add_option("--time-to-sync", flags.timetosync_s, "seconds a transition waits for confirmations")
      ->capture_default_str();
  app.add_option("--log-level", flags.log_level, "debug, info, warn or error")->capture_default_str();
  app.add_option("--ready-file", flags.ready_file, "written with the bound endpoints once serving");
  CLI11_PARSE(app, argc, argv);
  return shardledger::Run(flags);
}
