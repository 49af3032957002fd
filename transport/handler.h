// RequestHandler: turns one request frame into one response frame against a Ledger — decode,
// check the sender's role, run the command or query, encode the typed answer. Every failure
// is a typed error in the response, including a frame that does not decode (BadRequest).
// Thread-safe: the RPC server's workers share one handler.
#pragma once

#include <string>
#include <string_view>

#include "core/ledger.h"
#include "transport/wire.h"

namespace shardledger {

struct HandlerOptions {
  uint32_t replay_chunk_records = 10'000;  // the most records one replay response carries
  size_t replay_chunk_bytes = size_t{8} << 20;
  uint64_t replay_scan_limit = 200'000;  // records one replay chunk may skip past the filter
  uint32_t default_page = 100;
  uint32_t max_page = 100'000;
};

class RequestHandler {
 public:
  RequestHandler(Ledger& ledger, HandlerOptions options = {}) : ledger_(ledger), options_(options) {}

  std::string Handle(Role role, std::string_view frame);

 private:
  Status Dispatch(Role role, wire::Request::Reader request, wire::Response::Builder response);

  Ledger& ledger_;
  HandlerOptions options_;
};

// An error response for request `id`.
std::string ErrorResponse(uint64_t id, const Status& status);

}  // namespace shardledger
