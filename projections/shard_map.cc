#include "projections/shard_map.h"

#include "events/codec.h"

namespace shardledger {

Result<uint64_t> SeqAtTime(const EventLog& log, int64_t timestamp_ns) {
  uint64_t last = 0;
  Status error;
  SL_RETURN_IF_ERROR(log.Scan(1, UINT64_MAX, [&](uint64_t seq, std::string_view bytes) {
    auto record = DecodeRecord(bytes);
    if (!record.ok()) {
      error = record.status();
      return false;
    }
    if (record->timestamp_ns > timestamp_ns) return false;  // timestamps never go back
    last = seq;
    return true;
  }));
  SL_RETURN_IF_ERROR(error);
  return last;
}

}  // namespace shardledger
