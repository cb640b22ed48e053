#include "app/app.hpp"

#include <csignal>
#include <future>
#include <iostream>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>

#include "app/logging.hpp"
#include "config/load.hpp"
#include "exporter/exporter.hpp"
#include "queue/span_queue.hpp"
#include "receiver/export_handler.hpp"
#include "receiver/http_server.hpp"
#include "routing/experiment_selector.hpp"

namespace proxy::app {
namespace {

namespace net = boost::asio;

int run_proxy(const config::Config& config) {
  setup_logging(config.log);
  std::signal(SIGPIPE, SIG_IGN);

  queue::SpanQueue span_queue(config.queue.max_bytes);
  exporter::Exporter span_exporter(config, span_queue);

  receiver::ReceiverStats receiver_stats;
  routing::ExperimentSelector selector(config.mlflow);
  receiver::ExportHandler handler(config.receiver, config.queue, selector, span_queue, receiver_stats);
  net::io_context io(static_cast<int>(config.receiver.io_threads));
  receiver::HttpServer server(io, config.receiver, handler, receiver_stats);
  // Before the port opens: a SIGTERM right after start must drain, not kill.
  net::signal_set signals(io, SIGTERM, SIGINT);
  std::promise<int> stop_signal;
  signals.async_wait([&](const boost::system::error_code& ec, int signal_number) {
    if (ec) return;
    // Stop taking work before draining: new requests get 503 with Retry-After, never a reset.
    handler.set_draining();
    server.stop_accepting();
    span_queue.close();
    stop_signal.set_value(signal_number);
  });

  try {
    server.start();
  } catch (const std::system_error& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  span_exporter.start();
  spdlog::info("otlp-mlflow-proxy {} accepting OTLP/HTTP on {} (/v1/traces); forwarding to MLflow "
               "at {}, experiment {} unless the client sends x-mlflow-experiment-id",
               PROXY_VERSION, config.receiver.listen.to_string(), config.mlflow.url,
               selector.configured().describe());

  std::vector<std::thread> io_threads;
  for (unsigned i = 0; i < config.receiver.io_threads; ++i) io_threads.emplace_back([&io] { io.run(); });
  const int received_signal = stop_signal.get_future().get();

  spdlog::info("received {}, draining: {} spans queued, deadline {} ms",
               received_signal == SIGTERM ? "SIGTERM" : "SIGINT", span_queue.stats().queued_spans,
               config.shutdown_timeout.count());
  const auto deadline = std::chrono::steady_clock::now() + config.shutdown_timeout;
  const std::uint64_t left = span_exporter.drain_and_stop(deadline);
  io.stop();
  for (auto& thread : io_threads) thread.join();

  const auto& exported = span_exporter.stats();
  spdlog::info("stopped: accepted {} spans in {} requests, delivered {} spans, dead-lettered {}, "
               "rejected {} invalid spans",
               receiver_stats.spans_accepted.load(), receiver_stats.requests_accepted.load(),
               exported.spans_delivered.load(), exported.spans_dead_lettered.load(),
               receiver_stats.spans_rejected_invalid.load());
  if (left > 0) {
    spdlog::error("shutdown_timeout of {} ms passed with {} acknowledged spans not delivered to "
                  "MLflow; they are lost (memory queue)",
                  config.shutdown_timeout.count(), left);
    return 1;
  }
  return 0;
}

}  // namespace

int run_main(int argc, char** argv) {
  config::LoadedConfig loaded;
  try {
    loaded = config::load(std::vector<std::string>(argv + 1, argv + argc), config::process_environment());
  } catch (const config::ConfigError& e) {
    std::cerr << "otlp-mlflow-proxy: configuration error: " << e.what() << "\n"
              << "Run with --help for usage.\n";
    return 1;
  }
  switch (loaded.action) {
    case config::Action::print_help:
      std::cout << config::usage();
      return 0;
    case config::Action::print_version:
      std::cout << "otlp-mlflow-proxy " << PROXY_VERSION << "\n";
      return 0;
    case config::Action::check_config:
      try {
        // Parts checked only when the stages are built (such as the MLflow URL) are checked here too.
        queue::SpanQueue probe_queue(1);
        exporter::Exporter probe(loaded.config, probe_queue);
      } catch (const config::ConfigError& e) {
        std::cerr << "otlp-mlflow-proxy: configuration error: " << e.what() << "\n";
        return 1;
      }
      std::cout << config::render_effective(loaded.config);
      return 0;
    case config::Action::run:
      break;
  }
  try {
    return run_proxy(loaded.config);
  } catch (const config::ConfigError& e) {
    std::cerr << "otlp-mlflow-proxy: configuration error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    spdlog::critical("fatal: {}", e.what());
    return 1;
  }
}

}  // namespace proxy::app
