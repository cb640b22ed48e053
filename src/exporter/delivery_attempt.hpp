// The decisions of delivering one request to MLflow, without I/O: told what happened (the
// experiment lookup, a failed connection, MLflow's classified answer), a DeliveryAttempt says
// what to do next and keeps every retry counter. The exporter's coroutine performs its actions.
// The clock and the jitter are injected, so tests walk it through the status table exactly.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "exporter/experiment_resolver.hpp"
#include "exporter/response_classifier.hpp"
#include "mlflow/experiment_ref.hpp"

namespace proxy::exporter {

enum class DeliveryStep {
  resolve,      // look the experiment name up (the resolver caches it), then on_resolved()
  reresolve,    // forget the cached id of the name, look it up again, then on_resolved()
  send,         // POST /v1/traces to experiment_id(), gzip only if gzip_allowed()
  wait,         // sleep until `until`, then resume()
  split,        // MLflow refuses the request as a whole: deliver its parts, each on its own
  dead_letter,  // give up: the spans go to the dead-letter file with `status` and `reason`
  delivered,    // MLflow took the spans
};

// Why the step was chosen: the coroutine's logs, counters and health report follow it.
enum class DeliveryCause {
  none,
  lookup_failed,       // the experiment lookup failed and may succeed later
  lookup_refused,      // the lookup failed for good (creating the experiment was refused)
  experiment_missing,  // the experiment does not exist and its route may not create it
  transport_failed,    // no answer from MLflow (connection, TLS, timeout)
  answered,            // MLflow's answer, as classified
  gzip_refused,        // MLflow could not read a gzip body: the same request goes plain
};

struct DeliveryAction {
  DeliveryStep step = DeliveryStep::send;
  DeliveryCause cause = DeliveryCause::none;
  std::chrono::milliseconds delay{0};            // wait
  std::chrono::steady_clock::time_point until{};  // wait: the injected clock's now + delay
  int status = 0;      // MLflow's last HTTP status (0: none yet), for the dead-letter record
  std::string reason;  // wait, split, dead_letter: for the logs and the dead-letter record
};

// MLflow's answer to POST /v1/traces, classified once for the attempt and for the logs.
struct ClassifiedResponse {
  int status = 0;
  ExportVerdict verdict;
  std::optional<std::chrono::milliseconds> retry_after;
  bool refuses_gzip = false;  // a gzip body answered "cannot read it" rather than "bad spans"
};

// `gzipped`: whether the request carried Content-Encoding: gzip.
ClassifiedResponse classify_response(int status, std::string_view body,
                                     std::string_view retry_after_header, bool gzipped);

struct DeliverySettings {
  config::RetryConfig retry;
  bool gzip_fallback = true;  // compression auto: a gzip body MLflow cannot read is sent plain
};

// What the attempt may not compute itself.
struct DeliveryEnvironment {
  std::function<std::chrono::steady_clock::time_point()> now;
  std::function<double()> unit_random;  // uniform in [0, 1): the backoff's jitter
};

class DeliveryAttempt {
 public:
  // `splittable`: the request holds more than one span (or one client request), so a refusal of
  // the whole may be narrowed down to the parts MLflow refuses on their own.
  DeliveryAttempt(ExperimentRef experiment, bool splittable, DeliverySettings settings,
                  DeliveryEnvironment environment);

  DeliveryAction start() const { return first_step(); }
  DeliveryAction on_resolved(const Resolution& resolution);
  DeliveryAction on_transport_error();
  DeliveryAction on_response(const ClassifiedResponse& response);
  // After a wait: the lookup again for a name (cached, cheap), else the send.
  DeliveryAction resume() const { return first_step(); }

  const ExperimentRef& experiment() const { return experiment_; }
  const std::string& experiment_id() const { return experiment_id_; }
  bool gzip_allowed() const { return !gzip_refused_; }
  unsigned failures() const { return failures_; }
  unsigned transient_failures() const { return transient_failures_; }
  bool reresolved() const { return reresolved_; }

 private:
  DeliveryAction first_step() const;
  DeliveryAction wait(DeliveryCause cause, std::string reason,
                      std::optional<std::chrono::milliseconds> retry_after);
  DeliveryAction give_up(DeliveryCause cause, std::string reason) const;
  DeliveryAction on_refusal(const ClassifiedResponse& response);

  ExperimentRef experiment_;
  bool splittable_;
  DeliverySettings settings_;
  DeliveryEnvironment environment_;
  std::string experiment_id_;   // resolved (names) or given (ids)
  unsigned failures_ = 0;       // every retried failure: drives the backoff
  unsigned transient_failures_ = 0;  // 422 "database is locked" and other 5xx: bounded
  bool reresolved_ = false;     // the name was looked up again after MLflow did not know its id
  bool gzip_refused_ = false;   // from now on the request goes plain
  int last_status_ = 0;
};

}  // namespace proxy::exporter
