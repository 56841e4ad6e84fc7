// Alerts of a pipeline run: what happened that a person should hear about, sent to the
// sinks of the pipeline file's `alerts:` list. A webhook sink POSTs one JSON document per
// event with a Slack-compatible `text` field (plus the event's name, pipeline, run,
// component and details), retried with backoff; a log sink appends the same documents as
// JSON lines to a file. A sink that fails is reported as a warning and never changes the
// run's outcome.
//
// Events: run_failed (a component failed, or the run was interrupted), anomalies (a
// validate gate found ERROR anomalies, in this run or in the cached result it reused),
// drift (a validate component found only drift or skew), held (a push waits for
// `kiln approve`), not_blessed
// (evaluate or infra_validate did not bless the model), findings (a command component exited 3),
// pushed (a push ran; a cached push sends nothing).
#ifndef KILN_PIPELINE_ALERTS_H_
#define KILN_PIPELINE_ALERTS_H_

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "kiln/pipeline/pipeline_spec.h"
#include "kiln/pipeline/runner.h"
#include "nlohmann/json.hpp"

namespace kiln::pipeline {

struct AlertEvent {
  std::string event;  // run_failed, anomalies, drift, held, not_blessed, findings, pushed
  std::string component;
  std::string text;         // one line for a person
  nlohmann::json document;  // what a sink sends
};

// The events of `result`, in component order, the run's failure last.
std::vector<AlertEvent> AlertEventsOf(const Pipeline& pipeline, const RunResult& result);

// POSTs a JSON body (serving/webhook.h's PostJson: kUnavailable and kDeadlineExceeded are
// worth a retry, other errors are not).
using PostFn = std::function<absl::Status(const std::string& url, const std::string& body,
                                          std::chrono::milliseconds timeout)>;

// Sends every event to every sink of `pipeline`; failures go to `warnings` (may be null).
// Returns the number of deliveries that failed.
int SendAlerts(const Pipeline& pipeline, const std::vector<AlertEvent>& events, const PostFn& post,
               FILE* warnings);

}  // namespace kiln::pipeline

#endif  // KILN_PIPELINE_ALERTS_H_
