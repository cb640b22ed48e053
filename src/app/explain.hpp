// `otlp-mlflow-proxy explain [--config FILE] [--header ID] [--json] [TRACE] ...`: shows what
// the proxy would do to a saved trace before a policy ships. The trace goes through the daemon's
// own ingest path (decode, limits, validation, routing, policy, normalization, the queue and its
// preview holds) in this process; nothing is sent, resolved in MLflow or written. Exit 0 when
// shown, 1 when the trace or the configuration cannot be read, decoded or routed, 2 for wrong
// usage.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "config/load.hpp"

namespace proxy::app {

// `args` are the words after "explain"; `in` is read when the trace is stdin.
int explain_main(const std::vector<std::string>& args, const config::Environment& env,
                 std::istream& in, std::ostream& out, std::ostream& err);

std::string explain_usage();

}  // namespace proxy::app
