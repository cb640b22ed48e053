#include "exporter/delivery_attempt.hpp"

#include "exporter/retry_policy.hpp"

namespace proxy::exporter {
namespace {

// An answer to a gzip body that means "cannot read it" rather than "bad spans": 415, or the 400
// MLflow gives a body that is no protobuf ("Invalid OpenTelemetry protobuf format", which is
// what 3.6 says to gzip). Other 400s are about the spans and go the usual way.
bool refuses_gzip(int status, std::string_view body) {
  return status == 415 || (status == 400 && body.find("protobuf") != std::string_view::npos);
}

}  // namespace

ClassifiedResponse classify_response(int status, std::string_view body,
                                     std::string_view retry_after_header, bool gzipped) {
  return {status, classify_export_response(status, body), parse_retry_after(retry_after_header),
          gzipped && refuses_gzip(status, body)};
}

DeliveryAttempt::DeliveryAttempt(ExperimentRef experiment, bool splittable,
                                 DeliverySettings settings, DeliveryEnvironment environment)
    : experiment_(std::move(experiment)),
      splittable_(splittable),
      settings_(settings),
      environment_(std::move(environment)) {
  if (experiment_.kind == ExperimentRef::Kind::id) experiment_id_ = experiment_.value;
}

DeliveryAction DeliveryAttempt::first_step() const {
  DeliveryAction action;
  action.step = experiment_.kind == ExperimentRef::Kind::name ? DeliveryStep::resolve
                                                              : DeliveryStep::send;
  action.status = last_status_;
  return action;
}

DeliveryAction DeliveryAttempt::wait(DeliveryCause cause, std::string reason,
                                     std::optional<std::chrono::milliseconds> retry_after) {
  DeliveryAction action;
  action.step = DeliveryStep::wait;
  action.cause = cause;
  action.delay = next_retry_delay(settings_.retry, ++failures_, environment_.unit_random(), retry_after);
  action.until = environment_.now() + action.delay;
  action.status = last_status_;
  action.reason = std::move(reason);
  return action;
}

DeliveryAction DeliveryAttempt::give_up(DeliveryCause cause, std::string reason) const {
  DeliveryAction action;
  action.step = DeliveryStep::dead_letter;
  action.cause = cause;
  action.status = last_status_;
  action.reason = std::move(reason);
  return action;
}

DeliveryAction DeliveryAttempt::on_resolved(const Resolution& resolution) {
  if (!resolution.experiment_id.empty()) {
    experiment_id_ = resolution.experiment_id;
    DeliveryAction action;
    action.step = DeliveryStep::send;
    action.status = last_status_;
    return action;
  }
  if (resolution.missing) {
    // Holding the spans would block every route behind them until someone creates it.
    DeliveryAction action = give_up(DeliveryCause::experiment_missing, resolution.error);
    action.status = 404;
    return action;
  }
  if (!resolution.retryable) return give_up(DeliveryCause::lookup_refused, resolution.error);
  return wait(DeliveryCause::lookup_failed, resolution.error, std::nullopt);
}

DeliveryAction DeliveryAttempt::on_transport_error() {
  return wait(DeliveryCause::transport_failed, {}, std::nullopt);
}

DeliveryAction DeliveryAttempt::on_response(const ClassifiedResponse& response) {
  last_status_ = response.status;
  if (response.refuses_gzip && settings_.gzip_fallback && !gzip_refused_) {
    // The version said gzip, the server says no (a router in front of MLflow answering
    // /version, or a build without gzip): the same request again, plain.
    gzip_refused_ = true;
    DeliveryAction action = first_step();
    action.cause = DeliveryCause::gzip_refused;
    return action;
  }
  const ExportVerdict& verdict = response.verdict;
  switch (verdict.action) {
    case ExportAction::delivered: {
      DeliveryAction action;
      action.step = DeliveryStep::delivered;
      action.cause = DeliveryCause::answered;
      action.status = response.status;
      return action;
    }
    case ExportAction::retry_transient:
      if (++transient_failures_ > settings_.retry.max_transient_422_retries) {
        return give_up(DeliveryCause::answered,
                       verdict.reason + " (still failing after " +
                           std::to_string(transient_failures_) + " attempts)");
      }
      return wait(DeliveryCause::answered, verdict.reason, response.retry_after);
    case ExportAction::retry:
    case ExportAction::hold_not_ready:
      return wait(DeliveryCause::answered, verdict.reason, response.retry_after);
    case ExportAction::reresolve_experiment:
    case ExportAction::dead_letter:
      return on_refusal(response);
  }
  return give_up(DeliveryCause::answered, verdict.reason);
}

// MLflow will not take the request as it is: an unknown experiment id is looked up once more;
// a request refused as a whole is narrowed down to the parts refused on their own.
DeliveryAction DeliveryAttempt::on_refusal(const ClassifiedResponse& response) {
  const ExportVerdict& verdict = response.verdict;
  DeliveryAction action = give_up(DeliveryCause::answered, verdict.reason);
  if (verdict.action == ExportAction::reresolve_experiment) {
    if (experiment_.kind == ExperimentRef::Kind::name && !reresolved_) {
      reresolved_ = true;
      action.step = DeliveryStep::reresolve;
    }
    return action;
  }
  if (splittable_) action.step = DeliveryStep::split;
  return action;
}

}  // namespace proxy::exporter
