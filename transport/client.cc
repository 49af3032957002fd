#include "transport/client.h"

namespace shardledger {
namespace {

using W = wire::Response::Which;

Status Unexpected(std::string_view call) {
  return Status(ErrorCode::kUnavailable,
                "the daemon answered " + std::string(call) + " with a response of another kind");
}

CommandResult CommandOf(wire::CommandResult::Reader in) {
  CommandResult out;
  out.first_seq = in.getFirstSeq();
  out.last_seq = in.getLastSeq();
  out.map_version = in.getMapVersion();
  out.unknown_ids = Texts(in.getUnknownIds());
  out.already_registered = Texts(in.getAlreadyRegistered());
  return out;
}

Result<JobCommandResult> JobCommandOf(wire::JobCommandResult::Reader in) {
  JobCommandResult out;
  out.first_seq = in.getFirstSeq();
  out.last_seq = in.getLastSeq();
  SL_ASSIGN_OR_RETURN(out.job, FromWire(in.getJob()));
  return out;
}

Result<std::vector<JobRecord>> JobsOf(capnp::List<wire::JobRecord>::Reader list) {
  std::vector<JobRecord> jobs;
  for (auto job : list) {
    SL_ASSIGN_OR_RETURN(auto record, FromWire(job));
    jobs.push_back(std::move(record));
  }
  return jobs;
}

std::string BytesOf(capnp::Data::Reader data) {
  return std::string(reinterpret_cast<const char*>(data.begin()), data.size());
}

std::vector<StoredRecord> RecordsOf(capnp::List<wire::Records::Record>::Reader list) {
  std::vector<StoredRecord> out;
  out.reserve(list.size());
  for (auto record : list) out.push_back(StoredRecord{record.getSeq(), BytesOf(record.getEnvelope())});
  return out;
}

void SetTick(std::optional<int64_t> now_ns, wire::Tick::Builder tick) {
  tick.setHasNow(now_ns.has_value());
  tick.setNowNs(now_ns.value_or(0));
}

void SetList(const std::vector<std::string>& texts, capnp::List<capnp::Text>::Builder out) {
  SetTexts(texts, out);
}

}  // namespace

RpcClient::RpcClient(ClientOptions options) : options_(std::move(options)), context_(1) {}

Result<std::unique_ptr<RpcClient>> RpcClient::Connect(ClientOptions options) {
  std::unique_ptr<RpcClient> client(new RpcClient(std::move(options)));
  SL_RETURN_IF_ERROR(client->Reconnect());
  return client;
}

Status RpcClient::Reconnect() {
  socket_.reset();  // dropped with whatever it queued; a failure below leaves none, and the
                    // next call tries again and reports it
  try {
    auto socket = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::dealer);
    socket->set(zmq::sockopt::linger, 0);
    // Queue only to a connected daemon: a request must not wait in a buffer for a daemon that
    // comes back after the caller gave up on it.
    socket->set(zmq::sockopt::immediate, 1);
    socket->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(kMaxFrameBytes));
    if (options_.client_keys) {
      socket->set(zmq::sockopt::curve_serverkey, options_.server_public_key);
      socket->set(zmq::sockopt::curve_publickey, options_.client_keys->public_key);
      socket->set(zmq::sockopt::curve_secretkey, options_.client_keys->secret_key);
    }
    socket->connect(options_.endpoint);
    socket_ = std::move(socket);
  } catch (const zmq::error_t& e) {
    return Status(ErrorCode::kUnavailable, "connecting to " + options_.endpoint + ": " + e.what());
  }
  return Status::Ok();
}

Result<std::string> RpcClient::Exchange(std::string_view frame, uint64_t id) {
  const auto deadline = std::chrono::steady_clock::now() + options_.timeout;
  const auto unavailable = [&] {
    (void)Reconnect();  // drop whatever is queued (a failure leaves no socket: see Reconnect)
    return Status(ErrorCode::kUnavailable,
                  "no answer from " + options_.endpoint + " within " +
                      std::to_string(options_.timeout.count()) + " ms");
  };
  if (socket_ == nullptr) SL_RETURN_IF_ERROR(Reconnect());
  try {
    // With `immediate`, send waits for a connection: poll for writability within the deadline.
    const auto connect_deadline =
        std::min(deadline, std::chrono::steady_clock::now() + options_.connect_timeout);
    for (;;) {
      zmq::pollitem_t item{socket_->handle(), 0, ZMQ_POLLOUT, 0};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          connect_deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        (void)Reconnect();
        return Status(ErrorCode::kUnavailable, "cannot connect to " + options_.endpoint + " within " +
                                                   std::to_string(options_.connect_timeout.count()) + " ms");
      }
      zmq::poll(&item, 1, left);
      if (item.revents & ZMQ_POLLOUT) break;
    }
    if (!socket_->send(zmq::buffer(frame.data(), frame.size()), zmq::send_flags::dontwait)) {
      return unavailable();
    }
    for (;;) {
      zmq::pollitem_t item{socket_->handle(), 0, ZMQ_POLLIN, 0};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return unavailable();
      zmq::poll(&item, 1, left);
      if (!(item.revents & ZMQ_POLLIN)) continue;
      std::string answer;
      zmq::message_t part;
      do {
        if (!socket_->recv(part)) break;
        answer.assign(static_cast<const char*>(part.data()), part.size());  // the last part
      } while (part.more());
      if (id == 0) return answer;
      // Skip answers to earlier requests this client gave up on.
      auto words = AlignedWords(answer);
      if (!words.ok()) continue;
      try {
        capnp::FlatArrayMessageReader reader(*words, FrameReaderOptions(answer.size()));
        if (reader.getRoot<wire::Response>().getId() == id) return answer;
      } catch (const kj::Exception&) {
        continue;  // not a response at all: not ours
      }
    }
  } catch (const zmq::error_t& e) {
    (void)Reconnect();
    return Status(ErrorCode::kUnavailable, std::string("talking to the daemon: ") + e.what());
  }
}

Result<std::string> RpcClient::SendRaw(std::string_view frame) { return Exchange(frame, 0); }

Status RpcClient::Call(const std::function<void(wire::Request::Builder)>& build,
                       const std::function<Status(wire::Response::Reader)>& read) {
  capnp::MallocMessageBuilder message;
  auto request = message.initRoot<wire::Request>();
  const uint64_t id = next_id_++;
  request.setId(id);
  build(request);
  SL_ASSIGN_OR_RETURN(std::string answer, Exchange(MessageBytes(message), id));
  SL_ASSIGN_OR_RETURN(auto words, AlignedWords(answer));
  try {
    capnp::FlatArrayMessageReader reader(words, FrameReaderOptions(answer.size()));
    auto response = reader.getRoot<wire::Response>();
    if (response.isError()) return FromWire(response.getError());
    return read(response);
  } catch (const kj::Exception& e) {
    return Status(ErrorCode::kUnavailable,
                  std::string("the daemon's answer does not decode: ") + e.getDescription().cStr());
  }
}

#define SL_EXPECT_RESPONSE(response, kind, name) \
  if ((response).which() != W::kind) return Unexpected(name)

// ---------------------------------------------------------------- routing

namespace {
Result<CommandResult> RoutingCall(RpcClient& client,
                                  const std::function<Status(const std::function<void(wire::Request::Builder)>&,
                                                             const std::function<Status(wire::Response::Reader)>&)>& call,
                                  const std::function<void(wire::Request::Builder)>& build) {
  (void)client;
  CommandResult result;
  SL_RETURN_IF_ERROR(call(build, [&](wire::Response::Reader response) {
    SL_EXPECT_RESPONSE(response, COMMAND, "a routing command");
    result = CommandOf(response.getCommand());
    return Status::Ok();
  }));
  return result;
}
}  // namespace

#define SL_ROUTING_CALL(build_body)                                                               \
  RoutingCall(*this, [this](const auto& b, const auto& r) { return Call(b, r); },                 \
              [&](wire::Request::Builder request) { build_body; })

Result<CommandResult> RpcClient::RegisterWorkflows(const std::vector<std::string>& ids) {
  return SL_ROUTING_CALL(SetList(ids, request.initRegisterWorkflows(static_cast<unsigned>(ids.size()))));
}

Result<CommandResult> RpcClient::DeregisterWorkflows(const std::vector<std::string>& ids) {
  return SL_ROUTING_CALL(SetList(ids, request.initDeregisterWorkflows(static_cast<unsigned>(ids.size()))));
}

Result<CommandResult> RpcClient::SetShardCount(uint32_t count, const std::string& reason, bool force) {
  return SL_ROUTING_CALL({
    auto in = request.initSetShardCount();
    in.setCount(count);
    in.setReason(reason);
    in.setForce(force);
  });
}

Result<CommandResult> RpcClient::ReportShardHealth(uint32_t shard, bool healthy) {
  return SL_ROUTING_CALL({
    auto in = request.initReportShardHealth();
    in.setShard(shard);
    in.setHealthy(healthy);
  });
}

Result<CommandResult> RpcClient::ReportTriggerRegistration(uint32_t shard, const std::vector<std::string>& ids,
                                                           uint64_t total_active) {
  return SL_ROUTING_CALL({
    auto in = request.initReportTriggerRegistration();
    in.setShard(shard);
    SetList(ids, in.initWorkflowIds(static_cast<unsigned>(ids.size())));
    in.setTotalActiveWorkflows(total_active);
  });
}

Result<CommandResult> RpcClient::Tick(std::optional<int64_t> now_ns) {
  return SL_ROUTING_CALL(SetTick(now_ns, request.initTick()));
}

Result<CommandResult> RpcClient::ApplyRoutingOutcome(const RoutingOutcome& outcome) {
  return SL_ROUTING_CALL({
    auto in = request.initApplyRoutingOutcome();
    in.setTransition(outcome.phase == RoutingPhase::kTransition);
    in.setFromCount(outcome.from_count);
    in.setTargetCount(outcome.target_count);
    in.setChangesSafeAfterNs(outcome.changes_safe_after_ns);
    in.setEpoch(outcome.epoch);
    in.setReason(outcome.reason);
    auto routes = in.initRoutes(static_cast<unsigned>(outcome.routes.size()));
    for (size_t i = 0; i < outcome.routes.size(); ++i) {
      routes[static_cast<unsigned>(i)].setWorkflowId(outcome.routes[i].first);
      routes[static_cast<unsigned>(i)].setShard(outcome.routes[i].second);
    }
  });
}

Result<WorkflowShardMapping> RpcClient::GetWorkflowShardMapping(const std::vector<std::string>& ids) {
  WorkflowShardMapping out;
  SL_RETURN_IF_ERROR(Call(
      [&](wire::Request::Builder request) {
        SetList(ids, request.initGetWorkflowShardMapping(static_cast<unsigned>(ids.size())));
      },
      [&](wire::Response::Reader response) {
        SL_EXPECT_RESPONSE(response, MAPPING, "getWorkflowShardMapping");
        SL_ASSIGN_OR_RETURN(out, FromWire(response.getMapping()));
        return Status::Ok();
      }));
  return out;
}

Result<RoutingStatus> RpcClient::RoutingState(uint64_t* workflows) {
  RoutingStatus out;
  SL_RETURN_IF_ERROR(Call([](wire::Request::Builder request) { request.setRoutingState(); },
                          [&](wire::Response::Reader response) {
                            SL_EXPECT_RESPONSE(response, ROUTING_STATE, "routingState");
                            out = FromWire(response.getRoutingState());
                            if (workflows) *workflows = response.getRoutingState().getWorkflows();
                            return Status::Ok();
                          }));
  return out;
}

Result<std::vector<std::string>> RpcClient::WorkflowsOnShard(uint32_t shard, const std::string& after,
                                                            uint32_t limit) {
  std::vector<std::string> out;
  SL_RETURN_IF_ERROR(Call(
      [&](wire::Request::Builder request) {
        auto in = request.initWorkflowsOnShard();
        in.setShard(shard);
        in.setAfter(after);
        in.setLimit(limit);
      },
      [&](wire::Response::Reader response) {
        SL_EXPECT_RESPONSE(response, WORKFLOW_IDS, "workflowsOnShard");
        out = Texts(response.getWorkflowIds());
        return Status::Ok();
      }));
  return out;
}

Result<std::map<uint32_t, uint64_t>> RpcClient::CountsPerShard() {
  std::map<uint32_t, uint64_t> out;
  SL_RETURN_IF_ERROR(Call([](wire::Request::Builder request) { request.setCountsPerShard(); },
                          [&](wire::Response::Reader response) {
                            SL_EXPECT_RESPONSE(response, COUNTS, "countsPerShard");
                            for (auto c : response.getCounts()) out[c.getShard()] = c.getWorkflows();
                            return Status::Ok();
                          }));
  return out;
}

Result<std::vector<ShardDrift>> RpcClient::RegistrationDrift() {
  std::vector<ShardDrift> out;
  SL_RETURN_IF_ERROR(Call([](wire::Request::Builder request) { request.setRegistrationDrift(); },
                          [&](wire::Response::Reader response) {
                            SL_EXPECT_RESPONSE(response, DRIFT, "registrationDrift");
                            for (auto d : response.getDrift()) {
                              out.push_back(ShardDrift{d.getShard(), Texts(d.getRegisteredElsewhere()),
                                                       Texts(d.getNotRegistered())});
                            }
                            return Status::Ok();
                          }));
  return out;
}

// ---------------------------------------------------------------- jobs

namespace {
using CallFn = std::function<Status(const std::function<void(wire::Request::Builder)>&,
                                    const std::function<Status(wire::Response::Reader)>&)>;
Result<JobCommandResult> JobCall(const CallFn& call, const std::function<void(wire::Request::Builder)>& build) {
  Result<JobCommandResult> result = Status(ErrorCode::kUnavailable, "no answer");
  SL_RETURN_IF_ERROR(call(build, [&](wire::Response::Reader response) {
    SL_EXPECT_RESPONSE(response, JOB, "a job command");
    result = JobCommandOf(response.getJob());
    return Status::Ok();
  }));
  return result;
}
}  // namespace

#define SL_JOB_CALL(build_body) \
  JobCall([this](const auto& b, const auto& r) { return Call(b, r); }, [&](wire::Request::Builder request) { build_body; })

Result<JobCommandResult> RpcClient::CreateJob(JobType type, uint64_t internal_id,
                                              const std::vector<std::pair<std::string, std::string>>& metadata) {
  return SL_JOB_CALL({
    auto in = request.initCreateJob();
    in.setType(ToWire(type));
    in.setInternalId(internal_id);
    auto list = in.initMetadata(static_cast<unsigned>(metadata.size()));
    for (size_t i = 0; i < metadata.size(); ++i) {
      list[static_cast<unsigned>(i)].setKey(metadata[i].first);
      list[static_cast<unsigned>(i)].setValue(metadata[i].second);
    }
  });
}

Result<JobCommandResult> RpcClient::ClaimJob(const std::string& id, const std::string& worker, int64_t lease_ns) {
  return SL_JOB_CALL({
    auto in = request.initClaimJob();
    in.setJobId(id);
    in.setWorker(worker);
    in.setLeaseNs(lease_ns);
  });
}

Result<JobCommandResult> RpcClient::CompleteProcessing(const std::string& id, uint64_t token,
                                                       const ExternalId& external) {
  return SL_JOB_CALL({
    auto in = request.initCompleteProcessing();
    in.setJobId(id);
    in.setFencingToken(token);
    if (const auto* text = std::get_if<std::string>(&external)) {
      in.getExternalId().setText(*text);
    } else if (const auto* number = std::get_if<uint64_t>(&external)) {
      in.getExternalId().setNumber(*number);
    } else {
      in.getExternalId().setNone();
    }
  });
}

Result<JobCommandResult> RpcClient::RecordVerification(const std::string& id, uint64_t token,
                                                       VerificationResult result, const std::string& reason) {
  return SL_JOB_CALL({
    auto in = request.initRecordVerification();
    in.setJobId(id);
    in.setFencingToken(token);
    in.setResult(result == VerificationResult::kVerified   ? wire::Verification::VERIFIED
                 : result == VerificationResult::kRejected ? wire::Verification::REJECTED
                                                           : wire::Verification::PENDING);
    in.setReason(reason);
  });
}

Result<JobCommandResult> RpcClient::FailJob(const std::string& id, uint64_t token, const std::string& reason) {
  return SL_JOB_CALL({
    auto in = request.initFailJob();
    in.setJobId(id);
    in.setFencingToken(token);
    in.setReason(reason);
  });
}

Result<JobCommandResult> RpcClient::RetryJob(const std::string& id) {
  return SL_JOB_CALL(request.setRetryJob(id));
}

Result<JobCommandResult> RpcClient::RequeueVerification(const std::string& id) {
  return SL_JOB_CALL(request.setRequeueVerification(id));
}

Result<JobCommandResult> RpcClient::TickJobs(std::optional<int64_t> now_ns) {
  return SL_JOB_CALL(SetTick(now_ns, request.initTickJobs()));
}

Result<JobRecord> RpcClient::GetJob(const std::string& id) {
  SL_ASSIGN_OR_RETURN(auto result, SL_JOB_CALL(request.setGetJob(id)));
  return std::move(result.job);
}

namespace {
Result<std::vector<JobRecord>> JobsCall(const CallFn& call, const std::function<void(wire::Request::Builder)>& build) {
  Result<std::vector<JobRecord>> out = Status(ErrorCode::kUnavailable, "no answer");
  SL_RETURN_IF_ERROR(call(build, [&](wire::Response::Reader response) {
    SL_EXPECT_RESPONSE(response, JOBS, "a job query");
    out = JobsOf(response.getJobs());
    return Status::Ok();
  }));
  return out;
}
}  // namespace

#define SL_JOBS_CALL(build_body) \
  JobsCall([this](const auto& b, const auto& r) { return Call(b, r); }, [&](wire::Request::Builder request) { build_body; })

Result<std::vector<JobRecord>> RpcClient::ListJobs(const JobQuery& query) {
  return SL_JOBS_CALL({
    auto in = request.initListJobs();
    in.setHasStatus(query.status.has_value());
    if (query.status) in.setStatus(ToWire(*query.status));
    in.setHasType(query.type.has_value());
    if (query.type) in.setType(ToWire(*query.type));
    in.getPage().setAfter(query.after);
    in.getPage().setLimit(static_cast<uint32_t>(std::min<size_t>(query.limit, UINT32_MAX)));
  });
}

Result<std::vector<JobRecord>> RpcClient::Attention(const std::string& after, uint32_t limit) {
  return SL_JOBS_CALL({
    auto in = request.initAttention();
    in.setAfter(after);
    in.setLimit(limit);
  });
}

Result<std::vector<JobRecord>> RpcClient::Pipeline(uint64_t internal_id) {
  return SL_JOBS_CALL(request.setPipeline(internal_id));
}

Result<std::map<std::pair<JobType, JobStatus>, uint64_t>> RpcClient::JobCounts() {
  std::map<std::pair<JobType, JobStatus>, uint64_t> out;
  SL_RETURN_IF_ERROR(Call([](wire::Request::Builder request) { request.setJobCounts(); },
                          [&](wire::Response::Reader response) -> Status {
                            SL_EXPECT_RESPONSE(response, JOB_COUNTS, "jobCounts");
                            for (auto c : response.getJobCounts()) {
                              SL_ASSIGN_OR_RETURN(JobType type, FromWire(c.getType()));
                              SL_ASSIGN_OR_RETURN(JobStatus status, FromWire(c.getStatus()));
                              out[{type, status}] = c.getCount();
                            }
                            return Status::Ok();
                          }));
  return out;
}

// ---------------------------------------------------------------- the log

Result<RecordsChunk> RpcClient::Replay(uint64_t from, uint64_t to, const std::vector<std::string>& topics,
                                       uint32_t max_records) {
  RecordsChunk out;
  SL_RETURN_IF_ERROR(Call(
      [&](wire::Request::Builder request) {
        auto in = request.initReplay();
        in.setFromSeq(from);
        in.setToSeq(to);
        SetList(topics, in.initTopics(static_cast<unsigned>(topics.size())));
        in.setMaxRecords(max_records);
      },
      [&](wire::Response::Reader response) {
        SL_EXPECT_RESPONSE(response, RECORDS, "replay");
        auto records = response.getRecords();
        out.records = RecordsOf(records.getRecords());
        out.next_seq = records.getNextSeq();
        out.done = records.getDone();
        out.head = records.getHead();
        return Status::Ok();
      }));
  return out;
}

Result<ProjectionSnapshot> RpcClient::Snapshot(wire::Projection projection) {
  ProjectionSnapshot out;
  SL_RETURN_IF_ERROR(Call([&](wire::Request::Builder request) { request.setSnapshot(projection); },
                          [&](wire::Response::Reader response) {
                            SL_EXPECT_RESPONSE(response, SNAPSHOT, "snapshot");
                            auto snapshot = response.getSnapshot();
                            out.seq = snapshot.getSeq();
                            out.rows.reserve(snapshot.getRows().size());
                            for (auto row : snapshot.getRows()) {
                              out.rows.emplace_back(BytesOf(row.getKey()), BytesOf(row.getValue()));
                            }
                            return Status::Ok();
                          }));
  return out;
}

Result<LogHead> RpcClient::Head() {
  LogHead out;
  SL_RETURN_IF_ERROR(Call([](wire::Request::Builder request) { request.setHead(); },
                          [&](wire::Response::Reader response) {
                            SL_EXPECT_RESPONSE(response, HEAD, "head");
                            out.seq = response.getHead().getSeq();
                            auto hash = response.getHead().getHash();
                            if (hash.size() == out.hash.size()) std::copy(hash.begin(), hash.end(), out.hash.begin());
                            return Status::Ok();
                          }));
  return out;
}

Result<ChainReport> RpcClient::VerifyChain(uint64_t from, uint64_t to) {
  ChainReport out;
  SL_RETURN_IF_ERROR(Call(
      [&](wire::Request::Builder request) {
        auto in = request.initVerifyChain();
        in.setFromSeq(from);
        in.setToSeq(to);
      },
      [&](wire::Response::Reader response) {
        SL_EXPECT_RESPONSE(response, CHAIN, "verifyChain");
        auto chain = response.getChain();
        out.checked = chain.getChecked();
        if (!chain.getOk()) out.first_bad_seq = chain.getFirstBadSeq();
        out.problem = chain.getProblem();
        return Status::Ok();
      }));
  return out;
}

Result<std::vector<StoredRecord>> RpcClient::StreamHistory(const std::string& stream, uint64_t from_version,
                                                           uint32_t limit) {
  std::vector<StoredRecord> out;
  SL_RETURN_IF_ERROR(Call(
      [&](wire::Request::Builder request) {
        auto in = request.initStreamHistory();
        in.setStream(stream);
        in.setFromVersion(from_version);
        in.setLimit(limit);
      },
      [&](wire::Response::Reader response) {
        SL_EXPECT_RESPONSE(response, RECORDS, "streamHistory");
        out = RecordsOf(response.getRecords().getRecords());
        return Status::Ok();
      }));
  return out;
}

Result<ProjectionDigest> RpcClient::Digest(wire::Projection projection) {
  ProjectionDigest out;
  SL_RETURN_IF_ERROR(Call([&](wire::Request::Builder request) { request.setDigest(projection); },
                          [&](wire::Response::Reader response) {
                            SL_EXPECT_RESPONSE(response, DIGEST, "digest");
                            out.seq = response.getDigest().getSeq();
                            auto sha = response.getDigest().getSha256();
                            if (sha.size() == out.sha256.size()) std::copy(sha.begin(), sha.end(), out.sha256.begin());
                            return Status::Ok();
                          }));
  return out;
}

// ---------------------------------------------------------------- replay source

Result<std::vector<StoredRecord>> RpcReplaySource::Replay(uint64_t from, uint64_t to,
                                                          const std::vector<std::string>& topics) {
  std::vector<StoredRecord> out;
  uint64_t next = from;
  while (next <= to) {
    SL_ASSIGN_OR_RETURN(RecordsChunk chunk, client_.Replay(next, to, topics));
    for (auto& record : chunk.records) out.push_back(std::move(record));
    if (chunk.done) break;
    if (chunk.next_seq <= next) {
      return Status(ErrorCode::kUnavailable, "replay made no progress at seq " + std::to_string(next));
    }
    next = chunk.next_seq;
  }
  return out;
}

Result<uint64_t> RpcReplaySource::Head() {
  SL_ASSIGN_OR_RETURN(LogHead head, client_.Head());
  return head.seq;
}

}  // namespace shardledger
