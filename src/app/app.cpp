#include "app/app.hpp"

#include <csignal>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>

#include "app/logging.hpp"
#include "app/proxy.hpp"
#include "app/reload.hpp"
#include "config/load.hpp"
#include "exporter/exporter.hpp"
#include "exporter/replay.hpp"
#include "queue/span_queue.hpp"
#include "receiver/http_server.hpp"
#include "routing/router.hpp"

namespace proxy::app {
namespace {

// The order of a run; app::Proxy says what each step does (docs/architecture.md, "Start and
// stop").
int run_proxy(const config::Config& config, const ConfigSource& reload_source) {
  // First, so that every thread started from here on inherits the mask; only the I/O threads
  // unblock the signals. A signal sent meanwhile stays pending.
  set_handled_signals_blocked(true);
  setup_logging(config.log);
  std::signal(SIGPIPE, SIG_IGN);

  Proxy proxy(config);
  proxy.handle_signals(reload_source);  // before the ports open: an early SIGTERM drains
  if (!proxy.start()) return 1;
  proxy.log_started();
  proxy.run_io_threads();
  const int signal_number = proxy.wait_for_stop_signal();
  const Leftovers left = proxy.stop(signal_number);
  return proxy.report(left);
}

}  // namespace

int run_main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]) == "replay") {
    return exporter::replay_main(std::vector<std::string>(argv + 2, argv + argc),
                                 config::process_environment());
  }
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
        routing::Router probe_router(loaded.config);
        receiver::make_server_tls_context(loaded.config.receiver.tls);
      } catch (const config::ConfigError& e) {
        std::cerr << "otlp-mlflow-proxy: configuration error: " << e.what() << "\n";
        return 1;
      }
      std::cout << config::render_effective(loaded.config);
      return 0;
    case config::Action::run:
      break;
  }
  const std::vector<std::string> args(argv + 1, argv + argc);
  const config::Environment environment = config::process_environment();
  const ConfigSource reload_source = [args, environment] {
    return config::load(args, environment).config;
  };
  try {
    return run_proxy(loaded.config, reload_source);
  } catch (const config::ConfigError& e) {
    std::cerr << "otlp-mlflow-proxy: configuration error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    spdlog::critical("fatal: {}", e.what());
    return 1;
  }
}

}  // namespace proxy::app
