// FoldHook: how a projection folds records into the same WriteBatch as the log's own writes,
// so that after any crash it sits exactly at the log head (DESIGN.md section 3).
#pragma once

#include <rocksdb/write_batch.h>

#include <cstdint>

#include "events/record.h"
#include "events/status.h"

namespace shardledger {

// The log's append path is a pipeline: the writer thread folds group k+1 while the sync
// thread makes group k durable. So a hook sees:
//   - Fold(record, batch) on the writer thread, in seq order: add the projection's writes to
//     `batch` and stage the change where later Folds can see it, but readers cannot. For a
//     large append (tens of thousands of records) Fold runs on a helper thread beside the
//     writer instead, still in seq order and never two at once, and `batch` is one of the
//     helper's own whose rows the log copies into the group's: so a hook writes only Puts
//     and Deletes, and reads nothing back from `batch`;
//   - FinishBatch(batch) on the writer thread, once after the last Fold into `batch`: a
//     place for rows written once per batch rather than once per record;
//   - Publish(through_seq) on the sync thread (the writer in buffered mode), in seq order:
//     every record <= through_seq is durable; make its staged changes visible;
//   - Discard(after_seq) on the writer or the sync thread: records > after_seq were not
//     written (or not made durable); forget their staged changes.
// The record given to Fold stays alive and unchanged until a Publish or Discard has covered
// its seq, so a hook may keep a pointer to it rather than a copy. Fold may run concurrently
// with Publish or Discard, so a hook guards its own state. A Fold error fails every append of
// its group.
class FoldHook {
 public:
  virtual ~FoldHook() = default;
  virtual Status Fold(const Record& record, rocksdb::WriteBatch& batch) = 0;
  virtual void FinishBatch(rocksdb::WriteBatch& /*batch*/) {}
  virtual void Publish(uint64_t through_seq) = 0;
  virtual void Discard(uint64_t after_seq) = 0;
};

}  // namespace shardledger
