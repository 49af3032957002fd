// Conversions between the library's types and the wire schema (transport/schema/rpc.capnp),
// shared by the RPC server and the client. Reading untrusted wire values checks them: an
// enumerant this build does not know is a BadRequest, never a cast to garbage.
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <string>
#include <string_view>
#include <vector>

#include "core/job_decider.h"
#include "core/ledger.h"
#include "events/status.h"
#include "projections/job_views_state.h"
#include "projections/shard_map_state.h"
#include "transport/schema/rpc.capnp.h"

namespace shardledger {

// Who a request comes from. Without CURVE every client is an admin.
enum class Role : uint8_t { kReader = 0, kWriter = 1, kAdmin = 2 };
std::string_view RoleName(Role role);
std::optional<Role> ParseRole(std::string_view name);

// The lowest role allowed to send a request of this kind.
Role RequiredRole(wire::Request::Which which);
// "registerWorkflows", ... for logs and errors.
std::string_view RequestName(wire::Request::Which which);

// The most bytes one request or response frame may hold.
inline constexpr size_t kMaxFrameBytes = size_t{512} << 20;

// Reader options for untrusted frames: a traversal limit from the frame size, and a nesting
// limit well above what the schema needs.
capnp::ReaderOptions FrameReaderOptions(size_t frame_bytes);

// Copies `bytes` into word-aligned memory (ZeroMQ frames need not be aligned); BadRequest
// when it cannot hold a message.
Result<kj::Array<capnp::word>> AlignedWords(std::string_view bytes);
std::string MessageBytes(capnp::MessageBuilder& message);

wire::ErrorCode ToWire(ErrorCode code);
ErrorCode FromWire(wire::ErrorCode code);
Status FromWire(wire::Error::Reader error);

wire::JobType ToWire(JobType type);
Result<JobType> FromWire(wire::JobType type);
wire::JobStatus ToWire(JobStatus status);
Result<JobStatus> FromWire(wire::JobStatus status);

void ToWire(const JobRecord& job, wire::JobRecord::Builder out);
Result<JobRecord> FromWire(wire::JobRecord::Reader in);
void ToWire(const RoutingStatus& status, uint64_t workflows, wire::RoutingState::Builder out);
RoutingStatus FromWire(wire::RoutingState::Reader in);
void ToWire(const WorkflowShardMappingView& mapping, wire::WorkflowShardMapping::Builder out);
// The answer of GetWorkflowShardMapping; Unavailable when its two lists do not match.
Result<WorkflowShardMapping> FromWire(wire::WorkflowShardMapping::Reader in);

std::vector<std::string> Texts(capnp::List<capnp::Text>::Reader list);
// Fills `out` (sized to `texts`) from strings or string views, copying each text once.
template <typename Text>
void SetTexts(const std::vector<Text>& texts, capnp::List<capnp::Text>::Builder out) {
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string_view text = texts[i];
    out.set(static_cast<unsigned>(i), capnp::Text::Reader(text.data(), text.size()));
  }
}
std::vector<std::string> EventTypeNames(const std::vector<Event>& events);

}  // namespace shardledger
