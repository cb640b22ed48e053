// render_effective: the configuration as YAML in the schema load() reads, secrets hidden.
#include <string>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "config/load.hpp"
#include "config/values.hpp"

namespace proxy::config {

namespace {

constexpr std::string_view kHidden = "<hidden>";

// Strings are always quoted so "123" stays a string and "[::1]:4318" stays a scalar.
void string_value(YAML::Emitter& out, std::string_view key, std::string_view value) {
  out << YAML::Key << std::string(key) << YAML::Value << YAML::DoubleQuoted << std::string(value);
}

void plain_value(YAML::Emitter& out, std::string_view key, const std::string& value) {
  out << YAML::Key << std::string(key) << YAML::Value << value;
}

template <class Integer>
void integer_value(YAML::Emitter& out, std::string_view key, Integer value) {
  out << YAML::Key << std::string(key) << YAML::Value << value;
}

void secret_value(YAML::Emitter& out, std::string_view key, const std::string& value) {
  string_value(out, key, value.empty() ? std::string_view{} : kHidden);
}

void begin_section(YAML::Emitter& out, std::string_view key) {
  out << YAML::Key << std::string(key) << YAML::Value << YAML::BeginMap;
}

}  // namespace

std::string render_effective(const Config& config) {
  YAML::Emitter out;
  out << YAML::BeginMap;

  const ReceiverConfig& receiver = config.receiver;
  begin_section(out, "receiver");
  string_value(out, "listen", receiver.listen.to_string());
  integer_value(out, "io_threads", receiver.io_threads);
  plain_value(out, "max_body_bytes", format_size(receiver.max_body_bytes));
  plain_value(out, "max_header_bytes", format_size(receiver.max_header_bytes));
  plain_value(out, "read_timeout", format_duration(receiver.read_timeout));
  plain_value(out, "idle_timeout", format_duration(receiver.idle_timeout));
  integer_value(out, "max_connections", receiver.max_connections);
  out << YAML::EndMap;

  const MlflowConfig& mlflow = config.mlflow;
  begin_section(out, "mlflow");
  string_value(out, "url", hide_url_password(mlflow.url));
  string_value(out, "experiment_id", mlflow.experiment_id);
  string_value(out, "experiment_name", mlflow.experiment_name);
  plain_value(out, "create_experiments", mlflow.create_experiments ? "true" : "false");
  plain_value(out, "request_timeout", format_duration(mlflow.request_timeout));
  plain_value(out, "connect_timeout", format_duration(mlflow.connect_timeout));
  plain_value(out, "experiment_cache_ttl", format_duration(mlflow.experiment_cache_ttl));
  string_value(out, "username", mlflow.username);
  secret_value(out, "password", mlflow.password);
  secret_value(out, "token", mlflow.token);
  out << YAML::EndMap;

  begin_section(out, "queue");
  plain_value(out, "max_bytes", format_size(config.queue.max_bytes));
  plain_value(out, "retry_after", format_duration(config.queue.retry_after));
  plain_value(out, "durability", std::string(format_durability(config.queue.durability)));
  string_value(out, "state_dir", config.queue.state_dir);
  plain_value(out, "max_disk_bytes", format_size(config.queue.max_disk_bytes));
  plain_value(out, "fsync", std::string(format_fsync(config.queue.fsync)));
  plain_value(out, "fsync_interval", format_duration(config.queue.fsync_interval));
  out << YAML::EndMap;

  const ExporterConfig& exporter = config.exporter;
  begin_section(out, "exporter");
  integer_value(out, "concurrency", exporter.concurrency);
  plain_value(out, "max_batch_bytes", format_size(exporter.max_batch_bytes));
  integer_value(out, "max_batch_spans", exporter.max_batch_spans);
  plain_value(out, "batch_linger", format_duration(exporter.batch_linger));
  string_value(out, "dead_letter_file", exporter.dead_letter_file);
  begin_section(out, "retry");
  plain_value(out, "initial_backoff", format_duration(exporter.retry.initial_backoff));
  plain_value(out, "max_backoff", format_duration(exporter.retry.max_backoff));
  plain_value(out, "multiplier", format_number(exporter.retry.multiplier));
  integer_value(out, "max_transient_422_retries", exporter.retry.max_transient_422_retries);
  out << YAML::EndMap << YAML::EndMap;

  begin_section(out, "log");
  string_value(out, "level", config.log.level);
  string_value(out, "format", format_log_format(config.log.format));
  out << YAML::EndMap;

  plain_value(out, "shutdown_timeout", format_duration(config.shutdown_timeout));
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace proxy::config
