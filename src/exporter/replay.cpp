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

// The command line: where to send what, and for how long.
struct ReplayArgs {
  std::string url;
  std::string source;
  std::chrono::milliseconds timeout = std::chrono::minutes(5);
  bool help = false;
};

// Throws config::ConfigError on a bad command line.
ReplayArgs parse_replay_args(const std::vector<std::string>& args, const config::Environment& env) {
  ReplayArgs parsed;
  parsed.url = env_value(env, "MLFLOW_TRACKING_URI");
  for (std::size_t i = 0; i < args.size() && !parsed.help; ++i) {
    const std::string& arg = args[i];
    const auto value = [&]() -> std::string {
      if (const auto eq = arg.find('='); eq != std::string::npos) return arg.substr(eq + 1);
      if (i + 1 >= args.size()) throw config::ConfigError(arg + ": missing value");
      return args[++i];
    };
    if (arg == "--help" || arg == "-h") {
      parsed.help = true;
    } else if (arg.starts_with("--mlflow-url")) {
      parsed.url = value();
    } else if (arg.starts_with("--timeout")) {
      parsed.timeout = config::parse_duration(value(), std::chrono::milliseconds(1), std::chrono::hours(24));
    } else if (arg.starts_with("-") || !parsed.source.empty()) {
      throw config::ConfigError("unexpected argument \"" + arg + "\"");
    } else {
      parsed.source = arg;
    }
  }
  if (parsed.help) return parsed;
  if (parsed.source.empty()) throw config::ConfigError("name a dead-letter file or a spool directory");
  if (parsed.url.empty()) throw config::ConfigError("--mlflow-url (or MLFLOW_TRACKING_URI) is required");
  parsed.url = config::parse_url(parsed.url);
  return parsed;
}

// The exporter's configuration for a replay: no linger, short backoffs. Throws
// config::ConfigError on a bad MLflow client environment.
config::Config replay_config(const std::string& url, const config::Environment& env) {
  config::Config config;
  config.mlflow.url = url;
  config::apply_mlflow_client_environment(env, config.mlflow);
  config.exporter.batch_linger = std::chrono::milliseconds(0);
  config.exporter.retry.max_backoff = std::chrono::seconds(5);
  return config;
}

// What a replay sends, now in the queue, and where what MLflow rejects again goes.
struct ReplaySource {
  std::unique_ptr<queue::Spool> spool;  // null for a dead-letter file
  std::string rejected_path;
  std::uint64_t spans_to_send = 0;
};

ReplaySource open_spool(const std::string& directory, queue::SpanQueue& span_queue) {
  ReplaySource source;
  queue::SpoolOptions options;
  options.directory = directory;
  options.max_disk_bytes = SIZE_MAX / 2;
  source.spool = std::make_unique<queue::Spool>(options, span_queue);
  const queue::RecoveryReport report = source.spool->open();
  source.spans_to_send = report.spans;
  std::cout << "spool " << directory << ": " << report.records << " records (" << report.spans
            << " spans) to send; " << report.torn_tails << " torn tails, " << report.corrupt_records
            << " corrupt records skipped\n";
  source.rejected_path = (fs::path(directory) / "dead-letter.otlpdl").string();
  return source;
}

ReplaySource open_dead_letters(const std::string& path, queue::SpanQueue& span_queue) {
  ReplaySource source;
  std::string error;
  const auto data = queue::read_whole_file(path, error);
  if (!data) throw std::runtime_error(error);
  DeadLetterFile file;
  if (!parse_dead_letters(*data, file)) {
    throw std::runtime_error(path + " is not a dead-letter file (no OMPDLQ01 header)");
  }
  std::vector<queue::QueueItem> items;
  for (auto& letter : file.records) {
    source.spans_to_send += letter.item.span_count;
    items.push_back(std::move(letter.item));
  }
  std::cout << "dead-letter file " << path << ": " << items.size() << " records ("
            << source.spans_to_send << " spans) to send; " << (file.torn_tail ? 1 : 0)
            << " torn tail, " << file.corrupt_records << " corrupt records skipped\n";
  span_queue.push_recovered(std::move(items));
  source.rejected_path = path + ".rejected";
  return source;
}

// Throws std::runtime_error when the source cannot be read.
ReplaySource open_source(const std::string& path, queue::SpanQueue& span_queue) {
  return fs::is_directory(path) ? open_spool(path, span_queue) : open_dead_letters(path, span_queue);
}

struct ReplayOutcome {
  std::uint64_t left = 0;
  std::uint64_t delivered = 0;
  std::uint64_t dead_lettered = 0;
};

// Throws when the exporter cannot start (an unusable URL or TLS setting).
ReplayOutcome deliver_all(const config::Config& config, queue::SpanQueue& span_queue,
                          DeadLetterWriter& rejected, std::chrono::milliseconds timeout) {
  Exporter exporter(config, span_queue, &rejected);
  exporter.start();
  ReplayOutcome outcome;
  outcome.left = exporter.drain_and_stop(std::chrono::steady_clock::now() + timeout);
  outcome.delivered = exporter.stats().spans_delivered.load();
  outcome.dead_lettered = exporter.stats().spans_dead_lettered.load();
  return outcome;
}

int replay_failed(const std::exception& e) {
  std::cerr << "otlp-mlflow-proxy replay: " << e.what() << "\n";
  return 2;
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
  ReplayArgs parsed;
  try {
    parsed = parse_replay_args(args, env);
  } catch (const std::exception& e) {
    std::cerr << "otlp-mlflow-proxy replay: " << e.what() << "\n" << replay_usage();
    return 2;
  }
  if (parsed.help) {
    std::cout << replay_usage();
    return 0;
  }
  config::Config config;
  queue::SpanQueue span_queue(SIZE_MAX);
  ReplaySource source;
  ReplayOutcome outcome;
  try {
    config = replay_config(parsed.url, env);
    source = open_source(parsed.source, span_queue);
    DeadLetterWriter rejected(source.rejected_path);
    outcome = deliver_all(config, span_queue, rejected, parsed.timeout);
  } catch (const std::exception& e) {
    return replay_failed(e);
  }
  if (source.spool) source.spool->close();
  std::cout << "replayed to " << config::hide_url_password(parsed.url) << ": " << outcome.delivered
            << " of " << source.spans_to_send << " spans delivered, " << outcome.dead_lettered
            << " rejected again"
            << (outcome.dead_lettered > 0 ? " (written to " + source.rejected_path + ")" : std::string{})
            << ", " << outcome.left << " not sent before the timeout\n";
  return outcome.left == 0 && outcome.dead_lettered == 0 ? 0 : 1;
}

}  // namespace proxy::exporter
