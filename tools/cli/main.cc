// shardledger: the command-line client (DESIGN.md section 7). Talks to shardledgerd over RPC,
// or, with --data-dir, opens a data directory itself when no daemon runs (it then serves
// itself on a private loopback port, so both paths run the same code).
//
// Human tables by default, --json for machines. Exit codes: 0 ok, 1 rejected (the ledger
// refused: rejected, wrong expected version, not found, unauthorized, a chain that does not
// verify), 2 usage (bad flags or input), 3 unavailable (no daemon, storage failure).
#include <fmt/core.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/job_config.h"
#include "events/codec.h"
#include "transport/client.h"
#include "transport/publisher.h"
#include "transport/rpc_server.h"
#include "transport/subscriber.h"
#include "transport/topics.h"

namespace shardledger {
namespace {

using json = nlohmann::json;

constexpr int kExitOk = 0;
constexpr int kExitRejected = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnavailable = 3;

std::atomic<bool> g_interrupted{false};

int ExitCodeOf(const Status& status) {
  switch (status.code()) {
    case ErrorCode::kOk:
      return kExitOk;
    case ErrorCode::kBadRequest:
      return kExitUsage;
    case ErrorCode::kRejected:
    case ErrorCode::kWrongExpectedVersion:
    case ErrorCode::kNotFound:
    case ErrorCode::kUnauthorized:
      return kExitRejected;
    default:
      return kExitUnavailable;
  }
}

struct Globals {
  std::string rpc = "tcp://127.0.0.1:7400";
  std::string pub = "tcp://127.0.0.1:7401";
  std::string data_dir;
  std::string curve_key;
  std::string server_key;
  int timeout_ms = 30'000;
  bool json = false;
};

// The connection: to the daemon, or to a ledger this process opened on --data-dir.
struct Connection {
  std::unique_ptr<Ledger> ledger;
  std::unique_ptr<RpcServer> server;
  std::unique_ptr<Publisher> publisher;
  std::unique_ptr<RpcClient> client;
  std::string pub_endpoint;
};

Result<Connection> Connect(const Globals& g) {
  Connection c;
  ClientOptions options;
  options.endpoint = g.rpc;
  options.timeout = std::chrono::milliseconds(g.timeout_ms);
  c.pub_endpoint = g.pub;
  if (!g.data_dir.empty()) {
    SL_ASSIGN_OR_RETURN(c.ledger, Ledger::Open(g.data_dir));
    SL_ASSIGN_OR_RETURN(
        c.server, RpcServer::Start(*c.ledger, {.endpoint = "tcp://127.0.0.1:*", .workers = 1}));
    SL_ASSIGN_OR_RETURN(c.publisher,
                        Publisher::Start(c.ledger->log(), {.endpoint = "tcp://127.0.0.1:*"}));
    options.endpoint = c.server->endpoint();
    c.pub_endpoint = c.publisher->endpoint();
  } else if (!g.curve_key.empty()) {
    SL_ASSIGN_OR_RETURN(auto keys, ReadCurveKeyFile(g.curve_key, /*need_secret=*/true));
    if (g.server_key.empty())
      return Status(ErrorCode::kBadRequest, "--curve-key needs --server-key");
    SL_ASSIGN_OR_RETURN(auto server, ReadCurveKeyFile(g.server_key, /*need_secret=*/false));
    options.client_keys = keys;
    options.server_public_key = server.public_key;
  }
  SL_ASSIGN_OR_RETURN(c.client, RpcClient::Connect(options));
  return c;
}

int Fail(const Globals& g, const Status& status) {
  if (g.json) {
    std::cout << json{{"error", std::string(ErrorCodeName(status.code()))},
                      {"message", status.message()}}
                     .dump()
              << "\n";
  } else {
    std::cerr << "shardledger: " << status.ToString() << "\n";
  }
  return ExitCodeOf(status);
}

// Prints rows as an aligned table.
void Table(const std::vector<std::string>& header,
           const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size() && i < width.size(); ++i)
      width[i] = std::max(width[i], row[i].size());
  }
  auto line = [&](const std::vector<std::string>& row) {
    std::string out;
    for (size_t i = 0; i < row.size(); ++i) {
      out += row[i];
      if (i + 1 < row.size()) out += std::string(width[i] - row[i].size() + 2, ' ');
    }
    std::cout << out << "\n";
  };
  line(header);
  for (const auto& row : rows) line(row);
}

std::string ExternalIdText(const ExternalId& id) {
  if (const auto* text = std::get_if<std::string>(&id)) return *text;
  if (const auto* number = std::get_if<uint64_t>(&id)) return std::to_string(*number);
  return "";
}

json JobJson(const JobRecord& job) {
  json metadata = json::object();
  for (const auto& [k, v] : job.metadata) metadata[k] = v;
  return json{{"id", job.id},
              {"type", std::string(JobTypeName(job.type))},
              {"internalId", job.internal_id},
              {"status", std::string(JobStatusName(job.status))},
              {"externalId", ExternalIdText(job.external_id)},
              {"metadata", metadata},
              {"version", job.version},
              {"processAttempts", job.process_attempts},
              {"processRetries", job.process_retries},
              {"verificationAttempts", job.verification_attempts},
              {"verificationRetries", job.verification_retries},
              {"createdAtNs", job.created_at_ns},
              {"updatedAtNs", job.updated_at_ns},
              {"nextVerificationAtNs", job.next_verification_at_ns},
              {"failureReason", job.failure_reason},
              {"failureHistory", job.failure_history},
              {"claim",
               {{"owner", job.claim.owner},
                {"leaseExpiresAtNs", job.claim.lease_expires_at_ns},
                {"fencingToken", job.claim.fencing_token},
                {"active", job.claim.active}}}};
}

void PrintJobs(const Globals& g, const std::vector<JobRecord>& jobs) {
  if (g.json) {
    json out = json::array();
    for (const auto& job : jobs) out.push_back(JobJson(job));
    std::cout << out.dump() << "\n";
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& job : jobs) {
    rows.push_back({job.id, std::string(JobTypeName(job.type)), std::to_string(job.internal_id),
                    std::string(JobStatusName(job.status)), std::to_string(job.process_attempts),
                    std::to_string(job.verification_attempts),
                    job.claim.active ? job.claim.owner : "",
                    std::to_string(job.claim.fencing_token), job.failure_reason});
  }
  Table({"ID", "TYPE", "INTERNAL", "STATUS", "PROC", "VERIF", "CLAIMED BY", "TOKEN", "FAILURE"},
        rows);
}

void PrintJobCommand(const Globals& g, const JobCommandResult& result) {
  if (g.json) {
    std::cout << json{{"firstSeq", result.first_seq},
                      {"lastSeq", result.last_seq},
                      {"job", JobJson(result.job)}}
                     .dump()
              << "\n";
    return;
  }
  if (result.last_seq == 0) {
    std::cout << "no change\n";
  } else {
    std::cout << "appended seq " << result.first_seq << ".." << result.last_seq << "\n";
  }
  PrintJobs(g, {result.job});
}

void PrintCommand(const Globals& g, const CommandResult& result) {
  if (g.json) {
    std::cout << json{{"firstSeq", result.first_seq},
                      {"lastSeq", result.last_seq},
                      {"mapVersion", result.map_version},
                      {"unknownIds", result.unknown_ids},
                      {"alreadyRegistered", result.already_registered}}
                     .dump()
              << "\n";
    return;
  }
  if (result.last_seq == 0) {
    std::cout << "no change; map version " << result.map_version << "\n";
  } else {
    std::cout << "appended seq " << result.first_seq << ".." << result.last_seq << "; map version "
              << result.map_version << "\n";
  }
  if (!result.unknown_ids.empty()) std::cout << result.unknown_ids.size() << " unknown ids\n";
  if (!result.already_registered.empty()) {
    std::cout << result.already_registered.size() << " already registered\n";
  }
}

json RecordJson(const Record& record) {
  return json{{"seq", record.seq},
              {"stream", record.stream},
              {"streamVersion", record.stream_version},
              {"type", std::string(EventTypeName(TypeOf(record.payload)))},
              {"topic", TopicOf(record.payload)},
              {"timestampNs", record.timestamp_ns},
              {"eventId", ToHex(record.event_id)},
              {"hash", ToHex(record.hash)}};
}

// Prints one record; false when its bytes do not decode.
bool PrintRecord(const Globals& g, uint64_t seq, std::string_view bytes) {
  auto record = DecodeRecord(bytes);
  if (!record.ok()) {
    std::cerr << "record " << seq << ": " << record.status().ToString() << "\n";
    return false;
  }
  if (g.json) {
    std::cout << RecordJson(*record).dump() << "\n";
  } else {
    std::cout << fmt::format("{:>10}  {:<40}  {}@{}\n", seq, TopicOf(record->payload),
                             record->stream, record->stream_version);
  }
  return true;
}

// Prints each record; stops at the first whose bytes do not decode, with a Corruption status
// that names it.
Status PrintRecords(const Globals& g, const std::vector<StoredRecord>& records) {
  for (const auto& record : records) {
    if (!PrintRecord(g, record.seq, record.bytes)) {
      return Status(ErrorCode::kCorruption,
                    "record " + std::to_string(record.seq) + " does not decode");
    }
  }
  return Status::Ok();
}

// The ids a command takes: as arguments, from a file (--file, one per line, '-' for stdin),
// or both.
struct IdArgs {
  std::vector<std::string> ids;
  std::string file;

  void AddTo(CLI::App* command, const std::string& what) {
    command->add_option("ids", ids, what);
    command->add_option("--file", file, "read ids from a file, one per line ('-': stdin)");
  }

  Result<std::vector<std::string>> Read() const {
    std::vector<std::string> all = ids;
    if (file.empty()) return all;
    std::ifstream in(file == "-" ? "/dev/stdin" : file);
    if (!in) return Status(ErrorCode::kBadRequest, "cannot read ids from " + file);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) all.push_back(line);
    }
    if (in.bad()) return Status(ErrorCode::kBadRequest, "reading ids from " + file + " failed");
    return all;
  }
};

using Body = std::function<Status(Connection&)>;

// One run of the command line: its global flags, and the exit code the chosen command sets.
struct Invocation {
  Globals g;
  int code = kExitOk;

  // A subcommand's callback: connects (to the daemon, or to --data-dir), runs `body`, and
  // turns a failure of either into a message and the exit code.
  std::function<void()> Run(Body body) {
    return [this, body = std::move(body)] {
      auto connection = Connect(g);
      if (!connection.ok()) {
        code = Fail(g, connection.status());
        return;
      }
      Status status = body(*connection);
      if (!status.ok()) code = Fail(g, status);
    };
  }
};

// Each Add*Commands below keeps its flags' values in state of its own, shared with the
// callbacks that read them (CLI11 writes into it while parsing; the app keeps the callbacks,
// so the state lives as long as the app).

void AddMappingCommands(CLI::App& app, Invocation& run) {
  auto* mapping =
      app.add_subcommand("mapping", "workflow to shard mappings")->require_subcommand(1);
  auto args = std::make_shared<IdArgs>();
  auto* get = mapping->add_subcommand("get", "GetWorkflowShardMapping for the given ids");
  args->AddTo(get, "workflow ids");
  get->callback(run.Run([&g = run.g, args](Connection& c) -> Status {
    SL_ASSIGN_OR_RETURN(auto ids, args->Read());
    SL_ASSIGN_OR_RETURN(auto m, c.client->GetWorkflowShardMapping(ids));
    if (g.json) {
      json mappings = json::object(), states = json::object();
      for (const auto& [id, shard, s] : m.mappings) {
        mappings[id] = shard;
        states[id] = {{"oldShard", s.old_shard ? json(*s.old_shard) : json(nullptr)},
                      {"newShard", s.new_shard},
                      {"inTransition", s.in_transition},
                      {"confirmed", s.confirmed}};
      }
      std::cout << json{{"mappings", mappings},
                        {"mappingStates", states},
                        {"mappingVersion", m.mapping_version},
                        {"unknownIds", m.unknown_ids}}
                       .dump()
                << "\n";
    } else {
      std::vector<std::vector<std::string>> rows;
      for (const auto& [id, shard, s] : m.mappings) {
        rows.push_back(
            {id, std::to_string(shard), s.old_shard ? std::to_string(*s.old_shard) : "-",
             std::to_string(s.new_shard),
             s.in_transition ? (s.confirmed ? "moving, confirmed" : "moving") : "steady"});
      }
      for (const auto& id : m.unknown_ids) rows.push_back({id, "unknown", "", "", ""});
      Table({"WORKFLOW", "SHARD", "OLD", "NEW", "STATE"}, rows);
      std::cout << "map version " << m.mapping_version << "\n";
    }
    return Status::Ok();
  }));
}

void PrintRoutingState(const Globals& g, const RoutingStatus& s, uint64_t workflows,
                       const std::map<uint32_t, uint64_t>& counts) {
  if (g.json) {
    json per_shard = json::object();
    for (const auto& [shard, n] : counts) per_shard[std::to_string(shard)] = n;
    std::cout << json{{"phase", s.phase == RoutingPhase::kSteady ? "steady" : "transition"},
                      {"shardCount", s.shard_count},
                      {"targetCount", s.target_count},
                      {"changesSafeAfterNs", s.changes_safe_after_ns},
                      {"epoch", s.epoch},
                      {"unhealthy", s.unhealthy},
                      {"mapVersion", s.map_version},
                      {"appliedSeq", s.applied_seq},
                      {"moving", s.moving},
                      {"workflows", workflows},
                      {"perShard", per_shard}}
                     .dump()
              << "\n";
    return;
  }
  if (s.phase == RoutingPhase::kSteady) {
    std::cout << "steady(" << s.shard_count << ")";
  } else {
    std::cout << "transition(" << s.shard_count << " -> " << s.target_count << "), " << s.moving
              << " moving, safe after " << s.changes_safe_after_ns << " ns";
  }
  std::cout << "  epoch " << s.epoch << "  map version " << s.map_version << "  workflows "
            << workflows << "\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& [shard, n] : counts) {
    const bool unhealthy =
        std::find(s.unhealthy.begin(), s.unhealthy.end(), shard) != s.unhealthy.end();
    rows.push_back({std::to_string(shard), std::to_string(n), unhealthy ? "unhealthy" : "healthy"});
  }
  Table({"SHARD", "WORKFLOWS", "HEALTH"}, rows);
}

void AddRoutingCommands(CLI::App& app, Invocation& run) {
  auto* routing = app.add_subcommand("routing", "the routing state")->require_subcommand(1);
  routing->add_subcommand("state", "the routing state and shard counts")
      ->callback(run.Run([&g = run.g](Connection& c) -> Status {
        uint64_t workflows = 0;
        SL_ASSIGN_OR_RETURN(auto s, c.client->RoutingState(&workflows));
        SL_ASSIGN_OR_RETURN(auto counts, c.client->CountsPerShard());
        PrintRoutingState(g, s, workflows, counts);
        return Status::Ok();
      }));

  struct SetShards {
    uint32_t count = 0;
    std::string reason = "operator";
    bool force = false;
  };
  auto args = std::make_shared<SetShards>();
  auto* set_shards = routing->add_subcommand("set-shards", "SetShardCount");
  set_shards->add_option("count", args->count, "the new shard count")->required();
  set_shards->add_option("--reason", args->reason, "why")->capture_default_str();
  set_shards->add_flag("--force", args->force, "override a transition in progress");
  set_shards->callback(run.Run([&g = run.g, args](Connection& c) -> Status {
    SL_ASSIGN_OR_RETURN(auto r, c.client->SetShardCount(args->count, args->reason, args->force));
    PrintCommand(g, r);
    return Status::Ok();
  }));
}

void AddWorkflowCommands(CLI::App& app, Invocation& run) {
  auto* workflows =
      app.add_subcommand("workflows", "register and deregister workflows")->require_subcommand(1);
  using Call = Result<CommandResult> (RpcClient::*)(const std::vector<std::string>&);
  auto add = [&run, workflows](const char* name, const char* rpc, Call call) {
    auto args = std::make_shared<IdArgs>();
    auto* command = workflows->add_subcommand(name, rpc);
    args->AddTo(command, "workflow ids");
    command->callback(run.Run([&g = run.g, args, call](Connection& c) -> Status {
      SL_ASSIGN_OR_RETURN(auto ids, args->Read());
      SL_ASSIGN_OR_RETURN(auto r, ((*c.client).*call)(ids));
      PrintCommand(g, r);
      return Status::Ok();
    }));
  };
  add("register", "RegisterWorkflows", &RpcClient::RegisterWorkflows);
  add("deregister", "DeregisterWorkflows", &RpcClient::DeregisterWorkflows);
}

void AddTriggerCommands(CLI::App& app, Invocation& run) {
  auto* trigger =
      app.add_subcommand("trigger", "trigger registration reports")->require_subcommand(1);
  struct Report {
    uint32_t shard = 0;
    uint64_t total = 0;
    IdArgs ids;
  };
  auto args = std::make_shared<Report>();
  auto* report = trigger->add_subcommand("report", "ReportTriggerRegistration of a shard");
  report->add_option("--shard", args->shard, "the reporting shard")->required();
  args->ids.AddTo(report, "workflow ids registered on the shard");
  auto* total =
      report->add_option("--total", args->total, "total active workflows (default: the id count)");
  report->callback(run.Run([&g = run.g, args, total](Connection& c) -> Status {
    SL_ASSIGN_OR_RETURN(auto all, args->ids.Read());
    const uint64_t active = total->count() > 0 ? args->total : all.size();
    SL_ASSIGN_OR_RETURN(auto r, c.client->ReportTriggerRegistration(args->shard, all, active));
    PrintCommand(g, r);
    return Status::Ok();
  }));
}

Result<JobType> ParseJobTypeArg(const std::string& name) {
  auto type = ParseJobType(name);
  if (!type) return Status(ErrorCode::kBadRequest, "unknown job type '" + name + "'");
  return *type;
}

Result<VerificationResult> ParseVerificationArg(const std::string& name) {
  if (name == "verified") return VerificationResult::kVerified;
  if (name == "rejected") return VerificationResult::kRejected;
  if (name == "pending") return VerificationResult::kPending;
  return Status(ErrorCode::kBadRequest, "--result must be verified, rejected or pending");
}

// A number when the text is all digits and fits, else the text.
ExternalId ParseExternalIdArg(const std::string& text) {
  if (text.empty()) return ExternalId{};
  const bool numeric =
      text.find_first_not_of("0123456789") == std::string::npos && text.size() < 20;
  if (numeric) return static_cast<uint64_t>(std::stoull(text));
  return text;
}

// The commands that change one job (create, claim, complete, verify, fail, retry).
void AddJobChangeCommands(CLI::App* jobs, Invocation& run) {
  struct JobArgs {
    std::string type, id, worker, external, result, reason;
    uint64_t internal_id = 0, token = 0;
    int64_t lease_ms = 0;
    std::vector<std::string> metadata;
  };
  auto args = std::make_shared<JobArgs>();
  auto command = [&run](CLI::App* sub, std::function<Result<JobCommandResult>(Connection&)> call) {
    sub->callback(run.Run([&g = run.g, call = std::move(call)](Connection& c) -> Status {
      SL_ASSIGN_OR_RETURN(auto r, call(c));
      PrintJobCommand(g, r);
      return Status::Ok();
    }));
  };

  auto* create = jobs->add_subcommand("create", "CreateJob");
  create->add_option("--type", args->type, "SnosRun, ProofCreation, ...")->required();
  create->add_option("--internal-id", args->internal_id, "the internal id (block number)")
      ->required();
  create->add_option("--meta", args->metadata, "key=value metadata");
  command(create, [args](Connection& c) -> Result<JobCommandResult> {
    SL_ASSIGN_OR_RETURN(JobType type, ParseJobTypeArg(args->type));
    std::vector<std::pair<std::string, std::string>> meta;
    for (const auto& kv : args->metadata) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos)
        return Status(ErrorCode::kBadRequest, "--meta needs key=value, got " + kv);
      meta.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    }
    return c.client->CreateJob(type, args->internal_id, meta);
  });

  auto* claim = jobs->add_subcommand("claim", "ClaimJob");
  claim->add_option("id", args->id, "job id")->required();
  claim->add_option("--worker", args->worker, "the claiming worker")->required();
  claim->add_option("--lease-ms", args->lease_ms, "lease length (default: the configured one)");
  command(claim, [args](Connection& c) {
    return c.client->ClaimJob(args->id, args->worker, args->lease_ms * 1'000'000);
  });

  auto* complete = jobs->add_subcommand("complete", "CompleteProcessing");
  complete->add_option("id", args->id, "job id")->required();
  complete->add_option("--token", args->token, "the claim's fencing token")->required();
  complete->add_option("--external-id", args->external, "the external id (a number or text)");
  command(complete, [args](Connection& c) {
    return c.client->CompleteProcessing(args->id, args->token, ParseExternalIdArg(args->external));
  });

  auto* verify = jobs->add_subcommand("verify", "RecordVerification");
  verify->add_option("id", args->id, "job id")->required();
  verify->add_option("--token", args->token, "the claim's fencing token")->required();
  verify->add_option("--result", args->result, "verified, rejected or pending")->required();
  verify->add_option("--reason", args->reason, "why (rejections)");
  command(verify, [args](Connection& c) -> Result<JobCommandResult> {
    SL_ASSIGN_OR_RETURN(auto result, ParseVerificationArg(args->result));
    return c.client->RecordVerification(args->id, args->token, result, args->reason);
  });

  auto* fail = jobs->add_subcommand("fail", "FailJob");
  fail->add_option("id", args->id, "job id")->required();
  fail->add_option("--token", args->token, "the claim's fencing token")->required();
  fail->add_option("--reason", args->reason, "why")->required();
  command(fail,
          [args](Connection& c) { return c.client->FailJob(args->id, args->token, args->reason); });

  auto* retry = jobs->add_subcommand("retry", "RetryJob (operator)");
  retry->add_option("id", args->id, "job id")->required();
  command(retry, [args](Connection& c) { return c.client->RetryJob(args->id); });
}

// The commands that read jobs (list, show).
void AddJobQueryCommands(CLI::App* jobs, Invocation& run) {
  struct ListArgs {
    std::string status, type, after;
    uint32_t limit = 100;
    bool attention = false;
  };
  auto args = std::make_shared<ListArgs>();
  auto* list = jobs->add_subcommand(
      "list", "a page of jobs by status and/or type; --attention for the attention list");
  list->add_option("--status", args->status, "Created, LockedForProcessing, ...");
  list->add_option("--type", args->type, "SnosRun, ProofCreation, ...");
  list->add_option("--after", args->after, "page after this job id");
  list->add_option("--limit", args->limit, "page size")->capture_default_str();
  list->add_flag("--attention", args->attention, "jobs in Failed or VerificationTimeout");
  list->callback(run.Run([&g = run.g, args](Connection& c) -> Status {
    if (args->attention) {
      SL_ASSIGN_OR_RETURN(auto page, c.client->Attention(args->after, args->limit));
      PrintJobs(g, page);
      return Status::Ok();
    }
    JobQuery query;
    if (!args->status.empty()) {
      query.status = ParseJobStatus(args->status);
      if (!query.status)
        return Status(ErrorCode::kBadRequest, "unknown job status '" + args->status + "'");
    }
    if (!args->type.empty()) {
      SL_ASSIGN_OR_RETURN(query.type, ParseJobTypeArg(args->type));
    }
    query.after = args->after;
    query.limit = args->limit;
    SL_ASSIGN_OR_RETURN(auto page, c.client->ListJobs(query));
    PrintJobs(g, page);
    return Status::Ok();
  }));

  auto id = std::make_shared<std::string>();
  auto* show = jobs->add_subcommand("show", "one job, whole");
  show->add_option("id", *id, "job id")->required();
  show->callback(run.Run([&g = run.g, id](Connection& c) -> Status {
    SL_ASSIGN_OR_RETURN(auto job, c.client->GetJob(*id));
    std::cout << (g.json ? JobJson(job).dump() : JobJson(job).dump(2)) << "\n";
    return Status::Ok();
  }));
}

void AddJobCommands(CLI::App& app, Invocation& run) {
  auto* jobs = app.add_subcommand("jobs", "pipeline jobs")->require_subcommand(1);
  AddJobChangeCommands(jobs, run);
  AddJobQueryCommands(jobs, run);
}

// Prints records as they come, from --from-seq (0: from now on) through the publisher,
// catching up over RPC where it must.
Status Subscribe(const Globals& g, Connection& c, uint64_t from_seq,
                 const std::vector<std::string>& topics, uint64_t count) {
  RpcReplaySource source(*c.client);
  uint64_t printed = 0;
  bool broken = false;
  auto apply = [&](uint64_t seq, std::string_view, std::string_view bytes) {
    if (count != 0 && printed >= count) return;
    broken = !PrintRecord(g, seq, bytes) || broken;
    ++printed;
    std::cout.flush();
  };
  uint64_t after = from_seq;
  if (from_seq == 0) {
    SL_ASSIGN_OR_RETURN(after, source.Head());
  }
  SL_ASSIGN_OR_RETURN(
      auto sub,
      Subscriber::Connect({.endpoint = c.pub_endpoint, .topics = topics, .after_seq = after},
                          source, apply));
  SL_RETURN_IF_ERROR(sub->Start());
  while (!g_interrupted && (count == 0 || printed < count)) {
    auto polled = sub->Poll(std::chrono::milliseconds(100));
    if (!polled.ok()) {
      std::cerr << "shardledger: " << polled.status().ToString() << " (retrying)\n";
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
  if (broken) return Status(ErrorCode::kCorruption, "some records did not decode");
  return Status::Ok();
}

// Prints the records of [from, to] (to 0: through the head) whose topics match.
Status Replay(const Globals& g, Connection& c, uint64_t from, uint64_t to,
              const std::vector<std::string>& topics) {
  uint64_t next = std::max<uint64_t>(1, from);
  const uint64_t last = to == 0 ? UINT64_MAX : to;
  while (!g_interrupted) {
    SL_ASSIGN_OR_RETURN(auto chunk, c.client->Replay(next, last, topics));
    SL_RETURN_IF_ERROR(PrintRecords(g, chunk.records));
    if (chunk.done) break;
    next = chunk.next_seq;
  }
  return Status::Ok();
}

void AddRecordCommands(CLI::App& app, Invocation& run) {
  struct RecordArgs {
    uint64_t from = 0, to = 0, count = 0;
    std::vector<std::string> topics;
  };
  auto follow = std::make_shared<RecordArgs>();
  auto* subscribe = app.add_subcommand("subscribe", "follow live records (Ctrl-C to stop)");
  subscribe->add_option("--from-seq", follow->from, "resume after this seq (0: from now on)");
  subscribe->add_option("--topic", follow->topics,
                        "topic prefixes (routing., job., job.ProofCreation.)");
  subscribe->add_option("--count", follow->count, "stop after this many records");
  subscribe->callback(run.Run([&g = run.g, follow](Connection& c) {
    return Subscribe(g, c, follow->from, follow->topics, follow->count);
  }));

  auto range = std::make_shared<RecordArgs>();
  auto* replay = app.add_subcommand("replay", "print records of a seq range");
  replay->add_option("--from", range->from, "first seq")->capture_default_str();
  replay->add_option("--to", range->to, "last seq (0: the head)");
  replay->add_option("--topic", range->topics, "topic prefixes");
  replay->callback(run.Run([&g = run.g, range](Connection& c) {
    return Replay(g, c, range->from, range->to, range->topics);
  }));
}

void PrintChainReport(const Globals& g, const ChainReport& report) {
  if (g.json) {
    std::cout << json{{"checked", report.checked},
                      {"ok", !report.first_bad_seq.has_value()},
                      {"firstBadSeq",
                       report.first_bad_seq ? json(*report.first_bad_seq) : json(nullptr)},
                      {"problem", report.problem}}
                     .dump()
              << "\n";
  } else if (report.first_bad_seq) {
    std::cout << "chain BROKEN at seq " << *report.first_bad_seq << ": " << report.problem << " ("
              << report.checked << " records verified before it)\n";
  } else {
    std::cout << "chain OK: " << report.checked << " records verified\n";
  }
}

void AddAuditCommands(CLI::App& app, Invocation& run) {
  auto* audit = app.add_subcommand("audit", "verify and read history")->require_subcommand(1);
  struct Range {
    uint64_t from = 0, to = 0;
  };
  auto range = std::make_shared<Range>();
  auto* verify = audit->add_subcommand("verify", "recompute the hash chain");
  verify->add_option("--from", range->from, "first seq");
  verify->add_option("--to", range->to, "last seq (0: the head)");
  verify->callback(run.Run([&run, range](Connection& c) -> Status {
    SL_ASSIGN_OR_RETURN(auto report,
                        c.client->VerifyChain(std::max<uint64_t>(1, range->from), range->to));
    PrintChainReport(run.g, report);
    if (report.first_bad_seq) run.code = kExitRejected;
    return Status::Ok();
  }));

  auto stream = std::make_shared<std::string>();
  auto* history = audit->add_subcommand("history", "every record of one stream");
  history->add_option("stream", *stream, "routing, wf/<id>, job/<id>")->required();
  history->callback(run.Run([&g = run.g, stream](Connection& c) -> Status {
    SL_ASSIGN_OR_RETURN(auto records, c.client->StreamHistory(*stream));
    if (records.empty()) return Status(ErrorCode::kNotFound, "no stream " + *stream);
    return PrintRecords(g, records);
  }));
}

// keygen needs no connection.
void AddKeygenCommand(CLI::App& app, Invocation& run) {
  auto base = std::make_shared<std::string>();
  auto* keygen = app.add_subcommand("keygen", "write a CURVE key pair: <base>.key and <base>.pub");
  keygen->add_option("base", *base, "path without extension")->required();
  keygen->callback([&run, base] {
    auto keys = GenerateCurveKeyPair();
    Status status = keys.ok() ? WriteCurveKeyFiles(*keys, *base) : keys.status();
    if (!status.ok()) {
      run.code = Fail(run.g, status);
      return;
    }
    if (run.g.json) {
      std::cout << json{{"publicKey", keys->public_key},
                        {"keyFile", *base + ".key"},
                        {"publicFile", *base + ".pub"}}
                       .dump()
                << "\n";
    } else {
      std::cout << "public key " << keys->public_key << "\nwrote " << *base << ".key and " << *base
                << ".pub\n";
    }
  });
}

}  // namespace
}  // namespace shardledger

int main(int argc, char** argv) {
  using namespace shardledger;
  Invocation run;
  Globals& g = run.g;
  CLI::App app{"shardledger: query and drive the shardledger daemon"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags such as --json may follow the subcommand
  app.add_option("--rpc", g.rpc, "the daemon's RPC endpoint")->capture_default_str();
  app.add_option("--pub", g.pub, "the daemon's PUB endpoint")->capture_default_str();
  app.add_option("--data-dir", g.data_dir,
                 "open this data directory instead (no daemon must run on it)");
  app.add_option("--curve-key", g.curve_key, "this client's CURVE key file");
  app.add_option("--server-key", g.server_key, "the daemon's CURVE public key file");
  app.add_option("--timeout-ms", g.timeout_ms, "how long to wait for the daemon")
      ->capture_default_str();
  app.add_flag("--json", g.json, "machine-readable output");

  AddMappingCommands(app, run);
  AddRoutingCommands(app, run);
  AddWorkflowCommands(app, run);
  AddTriggerCommands(app, run);
  AddJobCommands(app, run);
  AddRecordCommands(app, run);
  AddAuditCommands(app, run);
  AddKeygenCommand(app, run);

  struct sigaction action {};
  action.sa_handler = [](int) { g_interrupted = true; };
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int exit = app.exit(e);
    return exit == 0 ? kExitOk : kExitUsage;
  }
  return run.code;
}
