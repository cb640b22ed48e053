#include "exporter/response_classifier.hpp"

#include <algorithm>
#include <cctype>

namespace proxy::exporter {
namespace {

bool contains_nocase(std::string_view text, std::string_view needle) {
  return std::search(text.begin(), text.end(), needle.begin(), needle.end(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b));
         }) != text.end();
}

std::string with_body(int status, std::string_view body) {
  return "MLflow answered " + std::to_string(status) + ": " + std::string(body.substr(0, 500));
}

}  // namespace

ExportVerdict classify_export_response(int status, std::string_view body) {
  if (status >= 200 && status < 300) return {ExportAction::delivered, {}};
  switch (status) {
    case 429:
    case 502:
    case 503:
    case 504:
      return {ExportAction::retry, with_body(status, body)};
    case 401:
    case 403:
      return {ExportAction::hold_not_ready,
              with_body(status, body) +
                  " (check MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN, and that "
                  "MLflow's --allowed-hosts admits the proxy's Host header)"};
    case 501:
      return {ExportAction::hold_not_ready,
              with_body(status, body) +
                  " (MLflow runs on a file store, which cannot hold OTLP traces; start it with a "
                  "SQL backend such as --backend-store-uri sqlite:///mlflow.db)"};
    default:
      break;
  }
  if (status == 422 && (contains_nocase(body, "database is locked") ||
                        contains_nocase(body, "could not serialize") ||
                        contains_nocase(body, "deadlock"))) {
    return {ExportAction::retry_transient, with_body(status, body)};
  }
  if ((status == 404 || status == 422) && contains_nocase(body, "experiment")) {
    return {ExportAction::reresolve_experiment, with_body(status, body)};
  }
  // Other 5xx: perhaps a passing fault, perhaps a span MLflow can never store; retried a
  // bounded number of times like a locked database, then dead-lettered.
  if (status >= 500) return {ExportAction::retry_transient, with_body(status, body)};
  return {ExportAction::dead_letter, with_body(status, body)};
}

}  // namespace proxy::exporter
