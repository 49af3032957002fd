// JobViews: the live, persisted job views (DESIGN.md section 3), in column family
// "proj.jobs". The fold is JobViewsState; LiveProjection does the rest.
#pragma once

#include <memory>

#include "projections/job_views_state.h"
#include "projections/live_projection.h"

namespace shardledger {

class JobViews : public LiveProjection<JobViewsState> {
 public:
  static constexpr const char* kColumnFamily = "proj.jobs";

  static Result<std::unique_ptr<JobViews>> Open(EventLog& log) {
    std::unique_ptr<JobViews> views(new JobViews(log));
    SL_RETURN_IF_ERROR(views->Join());
    return views;
  }

 private:
  explicit JobViews(EventLog& log) : LiveProjection(log, kColumnFamily) {}
};

}  // namespace shardledger
