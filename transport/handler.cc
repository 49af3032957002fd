#include "transport/handler.h"

#include <kj/exception.h>

#include "events/codec.h"
#include "transport/topics.h"

namespace shardledger {
namespace {

void SetCommand(const CommandResult& result, wire::CommandResult::Builder out) {
  out.setFirstSeq(result.first_seq);
  out.setLastSeq(result.last_seq);
  const auto names = EventTypeNames(result.events);
  SetTexts(names, out.initEventTypes(static_cast<unsigned>(names.size())));
  out.setMapVersion(result.map_version);
  SetTexts(result.unknown_ids, out.initUnknownIds(static_cast<unsigned>(result.unknown_ids.size())));
  SetTexts(result.already_registered,
           out.initAlreadyRegistered(static_cast<unsigned>(result.already_registered.size())));
}

void SetJobCommand(const JobCommandResult& result, wire::JobCommandResult::Builder out) {
  out.setFirstSeq(result.first_seq);
  out.setLastSeq(result.last_seq);
  const auto names = EventTypeNames(result.events);
  SetTexts(names, out.initEventTypes(static_cast<unsigned>(names.size())));
  ToWire(result.job, out.initJob());
}

void SetJobs(const std::vector<JobRecord>& jobs, wire::Response::Builder response) {
  auto list = response.initJobs(static_cast<unsigned>(jobs.size()));
  for (size_t i = 0; i < jobs.size(); ++i) ToWire(jobs[i], list[static_cast<unsigned>(i)]);
}

std::optional<int64_t> NowOf(wire::Tick::Reader tick) {
  if (!tick.getHasNow()) return std::nullopt;
  return tick.getNowNs();
}

bool MatchesTopics(const std::vector<std::string>& topics, std::string_view topic) {
  if (topics.empty()) return true;
  for (const auto& prefix : topics) {
    if (topic.starts_with(prefix)) return true;
  }
  return false;
}

}  // namespace

std::string ErrorResponse(uint64_t id, const Status& status) {
  capnp::MallocMessageBuilder message;
  auto response = message.initRoot<wire::Response>();
  response.setId(id);
  auto error = response.initError();
  error.setCode(ToWire(status.code()));
  error.setMessage(status.message());
  return MessageBytes(message);
}

std::string RequestHandler::Handle(Role role, std::string_view frame) {
  auto words = AlignedWords(frame);
  if (!words.ok()) return ErrorResponse(0, words.status());
  uint64_t id = 0;
  try {
    capnp::FlatArrayMessageReader reader(*words, FrameReaderOptions(frame.size()));
    auto request = reader.getRoot<wire::Request>();
    id = request.getId();
    capnp::MallocMessageBuilder message;
    auto response = message.initRoot<wire::Response>();
    response.setId(id);
    Status status = Dispatch(role, request, response);
    if (!status.ok()) return ErrorResponse(id, status);
    return MessageBytes(message);
  } catch (const kj::Exception& e) {
    // Cap'n Proto found the frame malformed while reading it (bad pointers, limits, ...).
    return ErrorResponse(id, Status(ErrorCode::kBadRequest,
                                    "malformed request: " + std::string(e.getDescription().cStr())));
  }
}

Status RequestHandler::Dispatch(Role role, wire::Request::Reader request,
                                wire::Response::Builder response) {
  using W = wire::Request::Which;
  const W which = request.which();
  if (static_cast<uint16_t>(which) > static_cast<uint16_t>(W::DIGEST)) {
    return Status(ErrorCode::kBadRequest,
                  "unknown request kind " + std::to_string(static_cast<uint16_t>(which)));
  }
  if (role < RequiredRole(which)) {
    return Status(ErrorCode::kUnauthorized,
                  std::string(RequestName(which)) + " needs role " +
                      std::string(RoleName(RequiredRole(which))) + ", the client has " +
                      std::string(RoleName(role)));
  }
  const auto page_limit = [&](uint32_t asked) -> size_t {
    if (asked == 0) return options_.default_page;
    return std::min(asked, options_.max_page);
  };

  switch (which) {
    // ------------------------------------------------------------ routing commands
    case W::REGISTER_WORKFLOWS: {
      SL_ASSIGN_OR_RETURN(auto result, ledger_.RegisterWorkflows(Texts(request.getRegisterWorkflows())));
      SetCommand(result, response.initCommand());
      return Status::Ok();
    }
    case W::DEREGISTER_WORKFLOWS: {
      SL_ASSIGN_OR_RETURN(auto result,
                          ledger_.DeregisterWorkflows(Texts(request.getDeregisterWorkflows())));
      SetCommand(result, response.initCommand());
      return Status::Ok();
    }
    case W::SET_SHARD_COUNT: {
      auto in = request.getSetShardCount();
      SL_ASSIGN_OR_RETURN(auto result,
                          ledger_.SetShardCount(in.getCount(), in.getReason(), in.getForce()));
      SetCommand(result, response.initCommand());
      return Status::Ok();
    }
    case W::REPORT_SHARD_HEALTH: {
      auto in = request.getReportShardHealth();
      SL_ASSIGN_OR_RETURN(auto result, ledger_.ReportShardHealth(in.getShard(), in.getHealthy()));
      SetCommand(result, response.initCommand());
      return Status::Ok();
    }
    case W::REPORT_TRIGGER_REGISTRATION: {
      auto in = request.getReportTriggerRegistration();
      SL_ASSIGN_OR_RETURN(auto result,
                          ledger_.ReportTriggerRegistration(in.getShard(), Texts(in.getWorkflowIds()),
                                                            in.getTotalActiveWorkflows()));
      SetCommand(result, response.initCommand());
      return Status::Ok();
    }
    case W::TICK: {
      SL_ASSIGN_OR_RETURN(auto result, ledger_.Tick(NowOf(request.getTick())));
      SetCommand(result, response.initCommand());
      return Status::Ok();
    }
    case W::APPLY_ROUTING_OUTCOME: {
      auto in = request.getApplyRoutingOutcome();
      RoutingOutcome outcome;
      outcome.phase = in.getTransition() ? RoutingPhase::kTransition : RoutingPhase::kSteady;
      outcome.from_count = in.getFromCount();
      outcome.target_count = in.getTargetCount();
      outcome.changes_safe_after_ns = in.getChangesSafeAfterNs();
      outcome.epoch = in.getEpoch();
      outcome.reason = in.getReason();
      for (auto route : in.getRoutes()) outcome.routes.emplace_back(route.getWorkflowId(), route.getShard());
      SL_ASSIGN_OR_RETURN(auto result, ledger_.ApplyRoutingOutcome(outcome));
      SetCommand(result, response.initCommand());
      return Status::Ok();
    }

    // ------------------------------------------------------------ routing queries
    case W::GET_WORKFLOW_SHARD_MAPPING: {
      std::vector<std::string_view> ids;  // views into the request: no copies
      for (auto id : request.getGetWorkflowShardMapping()) ids.emplace_back(id.cStr(), id.size());
      SL_ASSIGN_OR_RETURN(auto mapping, ledger_.shard_map().Read([&](const ShardMapState& s) {
        return s.GetWorkflowShardMappingOfViews(ids);
      }));
      ToWire(mapping, response.initMapping());
      return Status::Ok();
    }
    case W::ROUTING_STATE: {
      ledger_.shard_map().Read([&](const ShardMapState& s) {
        ToWire(s.status(), s.size(), response.initRoutingState());
        return 0;
      });
      return Status::Ok();
    }
    case W::WORKFLOWS_ON_SHARD: {
      auto in = request.getWorkflowsOnShard();
      const std::string after = in.getAfter();
      auto ids = ledger_.shard_map().Read([&](const ShardMapState& s) {
        return s.IdsOnShard(in.getShard(), after, page_limit(in.getLimit()));
      });
      SetTexts(ids, response.initWorkflowIds(static_cast<unsigned>(ids.size())));
      return Status::Ok();
    }
    case W::COUNTS_PER_SHARD: {
      auto counts = ledger_.shard_map().Read([](const ShardMapState& s) { return s.CountsPerShard(); });
      auto list = response.initCounts(static_cast<unsigned>(counts.size()));
      unsigned i = 0;
      for (const auto& [shard, n] : counts) {
        list[i].setShard(shard);
        list[i].setWorkflows(n);
        ++i;
      }
      return Status::Ok();
    }
    case W::CHANGES_SINCE: {
      std::vector<std::string> changed, removed;
      uint64_t version = 0;
      ledger_.shard_map().Read([&](const ShardMapState& s) {
        s.ChangedSince(request.getChangesSince(), changed, removed);
        version = s.status().map_version;
        return 0;
      });
      auto out = response.initChanges();
      SetTexts(changed, out.initChanged(static_cast<unsigned>(changed.size())));
      SetTexts(removed, out.initRemoved(static_cast<unsigned>(removed.size())));
      out.setMapVersion(version);
      return Status::Ok();
    }
    case W::REGISTRATION_DRIFT: {
      auto drift = ledger_.shard_map().Read([](const ShardMapState& s) { return s.RegistrationDrift(); });
      auto list = response.initDrift(static_cast<unsigned>(drift.size()));
      for (size_t i = 0; i < drift.size(); ++i) {
        auto out = list[static_cast<unsigned>(i)];
        out.setShard(drift[i].shard);
        SetTexts(drift[i].registered_elsewhere,
                 out.initRegisteredElsewhere(static_cast<unsigned>(drift[i].registered_elsewhere.size())));
        SetTexts(drift[i].not_registered,
                 out.initNotRegistered(static_cast<unsigned>(drift[i].not_registered.size())));
      }
      return Status::Ok();
    }

    // ------------------------------------------------------------ job commands
    case W::CREATE_JOB: {
      auto in = request.getCreateJob();
      SL_ASSIGN_OR_RETURN(JobType type, FromWire(in.getType()));
      std::vector<std::pair<std::string, std::string>> metadata;
      for (auto kv : in.getMetadata()) metadata.emplace_back(kv.getKey(), kv.getValue());
      SL_ASSIGN_OR_RETURN(auto result, ledger_.CreateJob(type, in.getInternalId(), metadata));
      SetJobCommand(result, response.initJob());
      return Status::Ok();
    }
    case W::CLAIM_JOB: {
      auto in = request.getClaimJob();
      SL_ASSIGN_OR_RETURN(auto result, ledger_.ClaimJob(in.getJobId(), in.getWorker(), in.getLeaseNs()));
      SetJobCommand(result, response.initJob());
      return Status::Ok();
    }
    case W::COMPLETE_PROCESSING: {
      auto in = request.getCompleteProcessing();
      ExternalId external;
      switch (in.getExternalId().which()) {
        case wire::CompleteProcessing::ExternalId::TEXT:
          external = std::string(in.getExternalId().getText());
          break;
        case wire::CompleteProcessing::ExternalId::NUMBER:
          external = in.getExternalId().getNumber();
          break;
        case wire::CompleteProcessing::ExternalId::NONE:
          break;
        default:
          return Status(ErrorCode::kBadRequest, "unknown external id kind");
      }
      SL_ASSIGN_OR_RETURN(auto result,
                          ledger_.CompleteProcessing(in.getJobId(), in.getFencingToken(), external));
      SetJobCommand(result, response.initJob());
      return Status::Ok();
    }
    case W::RECORD_VERIFICATION: {
      auto in = request.getRecordVerification();
      VerificationResult result_kind;
      switch (in.getResult()) {
        case wire::Verification::VERIFIED: result_kind = VerificationResult::kVerified; break;
        case wire::Verification::REJECTED: result_kind = VerificationResult::kRejected; break;
        case wire::Verification::PENDING: result_kind = VerificationResult::kPending; break;
        default: return Status(ErrorCode::kBadRequest, "unknown verification result");
      }
      SL_ASSIGN_OR_RETURN(auto result, ledger_.RecordVerification(in.getJobId(), in.getFencingToken(),
                                                                  result_kind, in.getReason()));
      SetJobCommand(result, response.initJob());
      return Status::Ok();
    }
    case W::FAIL_JOB: {
      auto in = request.getFailJob();
      SL_ASSIGN_OR_RETURN(auto result,
                          ledger_.FailJob(in.getJobId(), in.getFencingToken(), in.getReason()));
      SetJobCommand(result, response.initJob());
      return Status::Ok();
    }
    case W::RETRY_JOB: {
      SL_ASSIGN_OR_RETURN(auto result, ledger_.RetryJob(request.getRetryJob()));
      SetJobCommand(result, response.initJob());
      return Status::Ok();
    }
    case W::REQUEUE_VERIFICATION: {
      SL_ASSIGN_OR_RETURN(auto result, ledger_.RequeueVerification(request.getRequeueVerification()));
      SetJobCommand(result, response.initJob());
      return Status::Ok();
    }
    case W::TICK_JOBS: {
      SL_ASSIGN_OR_RETURN(auto result, ledger_.TickJobs(NowOf(request.getTickJobs())));
      SetJobCommand(result, response.initJob());
      return Status::Ok();
    }

    // ------------------------------------------------------------ job queries
    case W::GET_JOB: {
      const std::string id = request.getGetJob();
      auto job = ledger_.job_views().Read([&](const JobViewsState& s) -> std::optional<JobRecord> {
        const JobRecord* found = s.Find(id);
        if (found == nullptr) return std::nullopt;
        return *found;
      });
      if (!job) return Status(ErrorCode::kNotFound, "no job " + id);
      auto out = response.initJob();
      ToWire(*job, out.initJob());
      return Status::Ok();
    }
    case W::LIST_JOBS: {
      auto in = request.getListJobs();
      JobQuery query;
      if (in.getHasStatus()) {
        SL_ASSIGN_OR_RETURN(query.status, FromWire(in.getStatus()));
      }
      if (in.getHasType()) {
        SL_ASSIGN_OR_RETURN(query.type, FromWire(in.getType()));
      }
      query.after = in.getPage().getAfter();
      query.limit = page_limit(in.getPage().getLimit());
      SetJobs(ledger_.job_views().Read([&](const JobViewsState& s) { return s.Page(query); }), response);
      return Status::Ok();
    }
    case W::ATTENTION: {
      auto in = request.getAttention();
      const std::string after = in.getAfter();
      SetJobs(ledger_.job_views().Read(
                  [&](const JobViewsState& s) { return s.Attention(after, page_limit(in.getLimit())); }),
              response);
      return Status::Ok();
    }
    case W::PIPELINE: {
      SetJobs(ledger_.job_views().Read(
                  [&](const JobViewsState& s) { return s.Pipeline(request.getPipeline()); }),
              response);
      return Status::Ok();
    }
    case W::JOB_COUNTS: {
      auto counts = ledger_.job_views().Read([](const JobViewsState& s) { return s.Counts(); });
      auto list = response.initJobCounts(static_cast<unsigned>(counts.size()));
      unsigned i = 0;
      for (const auto& [key, n] : counts) {
        list[i].setType(ToWire(key.first));
        list[i].setStatus(ToWire(key.second));
        list[i].setCount(n);
        ++i;
      }
      return Status::Ok();
    }
    case W::EXPIRED_LEASES: {
      auto in = request.getExpiredLeases();
      const int64_t now = in.getHasNow() ? in.getNowNs() : ledger_.Now();
      SetJobs(ledger_.job_views().Read([&](const JobViewsState& s) {
        return s.ExpiredLeases(now, page_limit(in.getLimit()));
      }),
              response);
      return Status::Ok();
    }

    // ------------------------------------------------------------ the log
    case W::REPLAY: {
      auto in = request.getReplay();
      const std::vector<std::string> topics = Texts(in.getTopics());
      const uint64_t head = ledger_.log().Head().seq;
      const uint64_t from = std::max<uint64_t>(1, in.getFromSeq());
      const uint64_t to = std::min(in.getToSeq() == 0 ? UINT64_MAX : in.getToSeq(), head);
      const size_t max_records =
          in.getMaxRecords() == 0 ? options_.replay_chunk_records
                                  : std::min(in.getMaxRecords(), options_.replay_chunk_records);
      std::vector<StoredRecord> records;
      size_t bytes = 0;
      uint64_t next = from;
      Status error;
      if (from <= to) {
        uint64_t scanned = 0;
        SL_RETURN_IF_ERROR(ledger_.log().Scan(from, to, [&](uint64_t seq, std::string_view record) {
          if (records.size() >= max_records || bytes >= options_.replay_chunk_bytes ||
              scanned >= options_.replay_scan_limit) {
            return false;
          }
          ++scanned;
          next = seq + 1;
          if (!topics.empty()) {
            auto decoded = DecodeRecord(record);
            if (!decoded.ok()) {
              error = Status(ErrorCode::kCorruption,
                             "record " + std::to_string(seq) + ": " + decoded.status().message());
              return false;
            }
            if (!MatchesTopics(topics, TopicOf(decoded->payload))) return true;
          }
          bytes += record.size();
          records.push_back(StoredRecord{seq, std::string(record)});
          return true;
        }));
        SL_RETURN_IF_ERROR(error);
      }
      auto out = response.initRecords();
      auto list = out.initRecords(static_cast<unsigned>(records.size()));
      for (size_t i = 0; i < records.size(); ++i) {
        list[static_cast<unsigned>(i)].setSeq(records[i].seq);
        list[static_cast<unsigned>(i)].setEnvelope(
            kj::arrayPtr(reinterpret_cast<const kj::byte*>(records[i].bytes.data()), records[i].bytes.size()));
      }
      out.setNextSeq(std::max(next, from));
      out.setDone(from > to || next > to);
      out.setHead(head);
      return Status::Ok();
    }
    case W::SNAPSHOT: {
      std::vector<std::pair<std::string, std::string>> rows;
      uint64_t seq = 0;
      const auto collect = [&](const auto& state) {
        seq = state.applied_seq();
        state.ForEachRow([&](const std::string& key, const std::string& value) { rows.emplace_back(key, value); });
        return 0;
      };
      if (request.getSnapshot() == wire::Projection::SHARD_MAP) {
        ledger_.shard_map().Read(collect);
      } else if (request.getSnapshot() == wire::Projection::JOB_VIEWS) {
        ledger_.job_views().Read(collect);
      } else {
        return Status(ErrorCode::kBadRequest, "unknown projection");
      }
      auto out = response.initSnapshot();
      out.setProjection(request.getSnapshot());
      out.setSeq(seq);
      auto list = out.initRows(static_cast<unsigned>(rows.size()));
      for (size_t i = 0; i < rows.size(); ++i) {
        const auto& [key, value] = rows[i];
        list[static_cast<unsigned>(i)].setKey(kj::arrayPtr(reinterpret_cast<const kj::byte*>(key.data()), key.size()));
        list[static_cast<unsigned>(i)].setValue(
            kj::arrayPtr(reinterpret_cast<const kj::byte*>(value.data()), value.size()));
      }
      return Status::Ok();
    }
    case W::HEAD: {
      const LogHead head = ledger_.log().Head();
      auto out = response.initHead();
      out.setSeq(head.seq);
      out.setHash(kj::arrayPtr(head.hash.data(), head.hash.size()));
      return Status::Ok();
    }
    case W::VERIFY_CHAIN: {
      auto in = request.getVerifyChain();
      SL_ASSIGN_OR_RETURN(auto report, ledger_.log().VerifyChain(
                                           std::max<uint64_t>(1, in.getFromSeq()),
                                           in.getToSeq() == 0 ? UINT64_MAX : in.getToSeq()));
      auto out = response.initChain();
      out.setChecked(report.checked);
      out.setOk(!report.first_bad_seq.has_value());
      out.setFirstBadSeq(report.first_bad_seq.value_or(0));
      out.setProblem(report.problem);
      return Status::Ok();
    }
    case W::STREAM_HISTORY: {
      auto in = request.getStreamHistory();
      const std::string stream = in.getStream();
      if (stream.empty()) return Status(ErrorCode::kBadRequest, "streamHistory needs a stream");
      SL_ASSIGN_OR_RETURN(auto records,
                          ledger_.log().ReadStream(stream, std::max<uint64_t>(1, in.getFromVersion()),
                                                   page_limit(in.getLimit())));
      std::vector<StoredRecord> stored;
      for (const Record& record : records) {
        SL_ASSIGN_OR_RETURN(auto bytes, ledger_.log().ReadRangeBytes(record.seq, record.seq, 1));
        if (bytes.size() != 1) {
          return Status(ErrorCode::kCorruption, "record " + std::to_string(record.seq) + " vanished");
        }
        stored.push_back(std::move(bytes[0]));
      }
      auto out = response.initRecords();
      auto list = out.initRecords(static_cast<unsigned>(stored.size()));
      for (size_t i = 0; i < stored.size(); ++i) {
        list[static_cast<unsigned>(i)].setSeq(stored[i].seq);
        list[static_cast<unsigned>(i)].setEnvelope(
            kj::arrayPtr(reinterpret_cast<const kj::byte*>(stored[i].bytes.data()), stored[i].bytes.size()));
      }
      out.setDone(true);
      out.setHead(ledger_.log().Head().seq);
      return Status::Ok();
    }
    case W::DIGEST: {
      Hash256 digest{};
      uint64_t seq = 0;
      const auto take = [&](const auto& state) {
        digest = state.Digest();
        seq = state.applied_seq();
        return 0;
      };
      if (request.getDigest() == wire::Projection::SHARD_MAP) {
        ledger_.shard_map().Read(take);
      } else if (request.getDigest() == wire::Projection::JOB_VIEWS) {
        ledger_.job_views().Read(take);
      } else {
        return Status(ErrorCode::kBadRequest, "unknown projection");
      }
      auto out = response.initDigest();
      out.setProjection(request.getDigest());
      out.setSeq(seq);
      out.setSha256(kj::arrayPtr(digest.data(), digest.size()));
      return Status::Ok();
    }
  }
  return Status(ErrorCode::kBadRequest, "unknown request kind");
}

}  // namespace shardledger
