// The proxy's whole configuration as plain structs: parsed once at start (YAML < environment <
// flags), validated, then only read. Defaults live here, in one place.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace proxy::config {

using namespace std::chrono_literals;

inline constexpr std::size_t kMiB = 1024 * 1024;

struct Endpoint {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;

  std::string to_string() const;
};

struct ReceiverConfig {
  Endpoint listen{"127.0.0.1", 4318};
  unsigned io_threads = 2;
  std::size_t max_body_bytes = 64 * kMiB;   // after decompression; 413 beyond it
  std::size_t max_header_bytes = 16 * 1024;  // request line plus headers; 431 beyond it
  std::chrono::milliseconds read_timeout = 30s;   // one whole request, headers and body
  std::chrono::milliseconds idle_timeout = 120s;  // keep-alive connection with no request
  std::size_t max_connections = 1024;
};

// Where spans go in MLflow. Secrets (password, token) are never printed or logged.
struct MlflowConfig {
  std::string url = "http://127.0.0.1:5000";
  std::string experiment_id;    // empty: not configured
  std::string experiment_name;  // empty: not configured
  bool create_experiments = true;  // create an experiment by name when it is missing
  std::chrono::milliseconds request_timeout = 30s;
  std::chrono::milliseconds connect_timeout = 5s;
  std::chrono::seconds experiment_cache_ttl = 300s;
  std::string username;  // MLFLOW_TRACKING_USERNAME
  std::string password;  // MLFLOW_TRACKING_PASSWORD
  std::string token;     // MLFLOW_TRACKING_TOKEN
};

struct QueueConfig {
  std::size_t max_bytes = 256 * kMiB;  // bytes of encoded spans held; 429 beyond it
  std::chrono::seconds retry_after = 2s;  // Retry-After sent with 429/503
};

struct RetryConfig {
  std::chrono::milliseconds initial_backoff = 200ms;
  std::chrono::milliseconds max_backoff = 30s;
  double multiplier = 2.0;
  unsigned max_transient_422_retries = 5;  // "database is locked" and similar
};

struct ExporterConfig {
  unsigned concurrency = 2;  // concurrent requests to MLflow (SQLite serializes writers)
  std::size_t max_batch_bytes = 4 * kMiB;
  std::size_t max_batch_spans = 8192;
  RetryConfig retry;
};

enum class LogFormat { text, json };

struct LogConfig {
  std::string level = "info";  // trace, debug, info, warn, error, critical, off
  LogFormat format = LogFormat::text;
};

struct Config {
  ReceiverConfig receiver;
  MlflowConfig mlflow;
  QueueConfig queue;
  ExporterConfig exporter;
  LogConfig log;
  std::chrono::milliseconds shutdown_timeout = 15s;  // drain deadline on SIGTERM
};

// A configuration error: what is wrong and where (YAML path with line and column, a variable
// name or a flag). Thrown only while loading, never on the hot path.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace proxy::config
