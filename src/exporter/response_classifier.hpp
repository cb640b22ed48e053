// What to do with MLflow's answer to POST /v1/traces (docs/architecture.md, "Talking to MLflow").
// Pure.
#pragma once

#include <string>
#include <string_view>

namespace proxy::exporter {

enum class ExportAction {
  delivered,             // 2xx
  retry,                 // 429, 502, 503, 504 (and transport errors, decided by the caller)
  retry_transient,       // 422 "database is locked", other 5xx: a bounded number of times
  reresolve_experiment,  // 404/422 for an unknown experiment: look the name up again, once
  hold_not_ready,        // 401/403/501: keep the spans, report not ready, retry slowly
  dead_letter,           // any other answer: retrying cannot help
};

struct ExportVerdict {
  ExportAction action;
  std::string reason;  // for logs and the dead-letter record
};

ExportVerdict classify_export_response(int status, std::string_view body);

}  // namespace proxy::exporter
