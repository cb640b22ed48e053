// `otlp-mlflow-proxy replay [--mlflow-url URL] [--timeout DURATION] FILE|SPOOL_DIR`: sends a
// dead-letter file, or what a spool directory still holds, to an MLflow server with the
// exporter's own batching, experiment resolution and retries. What MLflow rejects again goes to
// FILE.rejected (or SPOOL_DIR/dead-letter.otlpdl). Exit 0 when everything was delivered.
#pragma once

#include <string>
#include <vector>

#include "config/load.hpp"

namespace proxy::exporter {

int replay_main(const std::vector<std::string>& args, const config::Environment& env);

std::string replay_usage();

}  // namespace proxy::exporter
