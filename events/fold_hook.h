// FoldHook: how a projection folds records into the same WriteBatch as the log's own writes,
// so that after any crash it sits exactly at the log head (DESIGN.md section 3).
#pragma once

#include <rocksdb/write_batch.h>

#include "events/record.h"
#include "events/status.h"

namespace shardledger {

// The log calls a hook on its single writer thread, so calls never overlap:
//   Fold(r1, batch) ... Fold(rN, batch), then exactly one of Publish() or Discard().
// Fold stages the record: it adds the projection's writes to `batch` and keeps the change
// where later Folds of the same group can see it, but readers cannot. Publish() is called
// once the batch is durable and makes the staged changes visible; Discard() is called when
// the batch was not written and forgets them. A Fold error fails every append of the group.
class FoldHook {
 public:
  virtual ~FoldHook() = default;
  virtual Status Fold(const Record& record, rocksdb::WriteBatch& batch) = 0;
  virtual void Publish() = 0;
  virtual void Discard() = 0;
};

}  // namespace shardledger
