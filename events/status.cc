#include "events/status.h"

namespace shardledger {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return "Ok";
    case ErrorCode::kWrongExpectedVersion: return "WrongExpectedVersion";
    case ErrorCode::kRejected: return "Rejected";
    case ErrorCode::kNotFound: return "NotFound";
    case ErrorCode::kBadRequest: return "BadRequest";
    case ErrorCode::kCorruption: return "Corruption";
    case ErrorCode::kIoError: return "IoError";
    case ErrorCode::kUnavailable: return "Unavailable";
    case ErrorCode::kUnauthorized: return "Unauthorized";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "Ok";
  std::string out(ErrorCodeName(code_));
  out += ": ";
  out += message_;
  return out;
}

}  // namespace shardledger
