#include "exporter/replay.hpp"

#include <filesystem>
#include <iostream>
#include <memory>

#include <spdlog/spdlog.h>

#include "config/load.hpp"
#include "config/values.hpp"
#include "exporter/dead_letter.hpp"
#include "exporter/exporter.hpp"
#include "queue/record_file.hpp"
#include "queue/spool.hpp"

namespace proxy::exporter {
namespace {

namespace fs = std::filesystem;

std::string env_value(const config::Environment& env, const std::string& name) {
  const auto it = env.find(name);
  return it == env.end() ? std::string{} : it->second;
}

}  // namespace

std::string replay_usage() {
  return "Usage: otlp-mlflow-proxy replay [--mlflow-url URL] [--timeout DURATION] FILE|SPOOL_DIR\n"
         "Sends a dead-letter file, or the undelivered records of a spool directory (with no\n"
         "proxy running on it), to MLflow. URL defaults to $MLFLOW_TRACKING_URI; credentials come\n"
         "from MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN, TLS (https://) from\n"
         "MLFLOW_TRACKING_SERVER_CERT_PATH, MLFLOW_TRACKING_CLIENT_CERT_PATH and\n"
         "MLFLOW_TRACKING_INSECURE_TLS, as for MLflow's own client. Spans MLflow rejects\n"
         "again are written to FILE.rejected (SPOOL_DIR/dead-letter.otlpdl). Exit 0 when all\n"
         "were delivered. --timeout defaults to 5m.\n";
}

int replay_main(const std::vector<std::string>& args, const config::Environment& env) {
  std::string url = env_value(env, "MLFLOW_TRACKING_URI");
  std::string source;
  std::chrono::milliseconds timeout = std::chrono::minutes(5);
  try {
    for (std::size_t i = 0; i < args.size(); ++i) {
      const std::string& arg = args[i];
      const auto value = [&]() -> std::string {
        if (const auto eq = arg.find('='); eq != std::string::npos) return arg.substr(eq + 1);
        if (i + 1 >= args.size()) throw config::ConfigError(arg + ": missing value");
        return args[++i];
      };
      if (arg == "--help" || arg == "-h") {
        std::cout << replay_usage();
        return 0;
      } else if (arg.starts_with("--mlflow-url")) {
        url = value();
      } else if (arg.starts_with("--timeout")) {
        timeout = config::parse_duration(value(), std::chrono::milliseconds(1), std::chrono::hours(24));
      } else if (arg.starts_with("-") || !source.empty()) {
        throw config::ConfigError("unexpected argument \"" + arg + "\"");
      } else {
        source = arg;
      }
    }
    if (source.empty()) throw config::ConfigError("name a dead-letter file or a spool directory");
    if (url.empty()) throw config::ConfigError("--mlflow-url (or MLFLOW_TRACKING_URI) is required");
    url = config::parse_url(url);
  } catch (const std::exception& e) {
    std::cerr << "otlp-mlflow-proxy replay: " << e.what() << "\n" << replay_usage();
    return 2;
  }

  config::Config config;
  config.mlflow.url = url;
  try {
    config::apply_mlflow_client_environment(env, config.mlflow);
  } catch (const config::ConfigError& e) {
    std::cerr << "otlp-mlflow-proxy replay: " << e.what() << "\n";
    return 2;
  }
  config.exporter.batch_linger = std::chrono::milliseconds(0);
  config.exporter.retry.max_backoff = std::chrono::seconds(5);

  queue::SpanQueue span_queue(SIZE_MAX);
  std::unique_ptr<queue::Spool> spool;
  std::string rejected_path;
  std::uint64_t spans_to_send = 0;
  try {
    if (fs::is_directory(source)) {
      queue::SpoolOptions options;
      options.directory = source;
      options.max_disk_bytes = SIZE_MAX / 2;
      spool = std::make_unique<queue::Spool>(options, span_queue);
      const queue::RecoveryReport report = spool->open();
      spans_to_send = report.spans;
      std::cout << "spool " << source << ": " << report.records << " records (" << report.spans
                << " spans) to send; " << report.torn_tails << " torn tails, "
                << report.corrupt_records << " corrupt records skipped\n";
      rejected_path = (fs::path(source) / "dead-letter.otlpdl").string();
    } else {
      std::string error;
      const auto data = queue::read_whole_file(source, error);
      if (!data) throw std::runtime_error(error);
      DeadLetterFile file;
      if (!parse_dead_letters(*data, file)) {
        throw std::runtime_error(source + " is not a dead-letter file (no OMPDLQ01 header)");
      }
      std::vector<queue::QueueItem> items;
      for (auto& letter : file.records) {
        spans_to_send += letter.item.span_count;
        items.push_back(std::move(letter.item));
      }
      std::cout << "dead-letter file " << source << ": " << items.size() << " records ("
                << spans_to_send << " spans) to send; " << (file.torn_tail ? 1 : 0)
                << " torn tail, " << file.corrupt_records << " corrupt records skipped\n";
      span_queue.push_recovered(std::move(items));
      rejected_path = source + ".rejected";
    }
  } catch (const std::exception& e) {
    std::cerr << "otlp-mlflow-proxy replay: " << e.what() << "\n";
    return 2;
  }

  DeadLetterWriter rejected(rejected_path);
  std::uint64_t left = 0;
  std::uint64_t delivered = 0;
  std::uint64_t dead_lettered = 0;
  try {
    Exporter exporter(config, span_queue, &rejected);
    exporter.start();
    left = exporter.drain_and_stop(std::chrono::steady_clock::now() + timeout);
    delivered = exporter.stats().spans_delivered.load();
    dead_lettered = exporter.stats().spans_dead_lettered.load();
  } catch (const std::exception& e) {
    std::cerr << "otlp-mlflow-proxy replay: " << e.what() << "\n";
    return 2;
  }
  if (spool) spool->close();
  std::cout << "replayed to " << config::hide_url_password(url) << ": " << delivered << " of "
            << spans_to_send << " spans delivered, " << dead_lettered << " rejected again"
            << (dead_lettered > 0 ? " (written to " + rejected_path + ")" : std::string{}) << ", "
            << left << " not sent before the timeout\n";
  return left == 0 && dead_lettered == 0 ? 0 : 1;
}

}  // namespace proxy::exporter
