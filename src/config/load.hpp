// Builds a Config from, lowest precedence first: built-in defaults, MLflow's own environment
// variables (MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_ID, MLFLOW_EXPERIMENT_NAME, credentials),
// the YAML file (--config or OTLP_MLFLOW_PROXY_CONFIG), OTLP_MLFLOW_PROXY_* variables, flags.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace proxy::config {

using Environment = std::map<std::string, std::string>;

enum class Action { run, check_config, print_version, print_help };

struct LoadedConfig {
  Action action = Action::run;
  Config config;
  std::string config_file;  // empty when no YAML file was read
};

// Throws ConfigError naming the flag, variable or YAML path (with line and column).
LoadedConfig load(const std::vector<std::string>& args, const Environment& env);

// MLflow's own client variables: credentials (MLFLOW_TRACKING_USERNAME, _PASSWORD, _TOKEN) and
// TLS (MLFLOW_TRACKING_SERVER_CERT_PATH, _CLIENT_CERT_PATH, _INSECURE_TLS), applied to `mlflow`.
// load() uses it for its lowest layer; `replay`, which reads no config file, uses it alone.
void apply_mlflow_client_environment(const Environment& env, MlflowConfig& mlflow);

// The process environment as an Environment.
Environment process_environment();

// The effective configuration as YAML that load() accepts back, secrets shown as "<hidden>".
std::string render_effective(const Config& config);

std::string usage();

}  // namespace proxy::config
