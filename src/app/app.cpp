#include "app/app.hpp"

#include <pthread.h>

#include <csignal>
#include <functional>
#include <future>
#include <iostream>
#include <memory>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "admin/admin_server.hpp"
#include "admin/metrics.hpp"
#include "admin/readiness.hpp"
#include "admin/routing_totals.hpp"
#include "app/cpu_budget.hpp"
#include "app/live_routes.hpp"
#include "app/logging.hpp"
#include "app/reload.hpp"
#include "app/systemd_notify.hpp"
#include "common/thread_name.hpp"
#include "config/load.hpp"
#include "config/values.hpp"
#include "exporter/dead_letter.hpp"
#include "exporter/exporter.hpp"
#include "exporter/replay.hpp"
#include "queue/span_queue.hpp"
#include "queue/spool.hpp"
#include "receiver/export_handler.hpp"
#include "receiver/grpc_server.hpp"
#include "receiver/http_server.hpp"
#include "routing/experiment_selector.hpp"
#include "routing/router.hpp"

namespace proxy::app {
namespace {

namespace net = boost::asio;

std::string dead_letter_path(const config::Config& config) {
  if (!config.exporter.dead_letter_file.empty()) return config.exporter.dead_letter_file;
  if (!config.queue.state_dir.empty()) return config.queue.state_dir + "/dead-letter.otlpdl";
  return "otlp-mlflow-proxy.otlpdl";
}

// The spool's part of /readyz (none in memory mode).
void add_spool_readiness(admin::ReadinessInputs& inputs, const queue::Spool* spool) {
  if (spool == nullptr) return;
  inputs.spool_bytes = spool->disk_bytes();
  inputs.spool_max_bytes = spool->options().max_disk_bytes;
  inputs.spool_writable = spool->writable();
  inputs.spool_dir = spool->options().directory;
}

queue::SpoolOptions spool_options(const config::QueueConfig& queue) {
  queue::SpoolOptions options;
  options.directory = queue.state_dir;
  options.max_disk_bytes = queue.max_disk_bytes;
  options.sync = queue.fsync == config::FsyncPolicy::always     ? queue::SyncPolicy::always
                 : queue.fsync == config::FsyncPolicy::interval ? queue::SyncPolicy::interval
                                                                : queue::SyncPolicy::never;
  options.sync_interval = queue.fsync_interval;
  return options;
}

// Pings systemd's watchdog from an I/O thread: if the I/O threads hang, systemd restarts us.
void start_watchdog(net::steady_timer& timer, std::chrono::microseconds interval) {
  timer.expires_after(interval);
  timer.async_wait([&timer, interval](const boost::system::error_code& ec) {
    if (ec) return;
    notify_watchdog();
    start_watchdog(timer, interval);
  });
}

// The signals the I/O threads handle. Blocked in every other thread: a signal the kernel hands to
// a thread asleep in a raw futex (gRPC's and the exporter's threads) can wait there until that
// thread wakes, which under TSan (it defers signals to the next intercepted call) meant a SIGTERM
// that nobody saw for over 30 s.
sigset_t handled_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  return signals;
}

void set_handled_signals_blocked(bool blocked) {
  const sigset_t signals = handled_signals();
  pthread_sigmask(blocked ? SIG_BLOCK : SIG_UNBLOCK, &signals, nullptr);
}

std::uint64_t spans_in(const std::vector<queue::QueueItem>& items) {
  std::uint64_t spans = 0;
  for (const auto& item : items) spans += item.span_count;
  return spans;
}

int run_proxy(const config::Config& config, const ConfigSource& reload_source) {
  // First, so that every thread started from here on (logging, exporter, spool, gRPC, admin)
  // inherits the mask; only the I/O threads unblock them. A signal sent meanwhile stays pending.
  set_handled_signals_blocked(true);
  setup_logging(config.log);
  std::signal(SIGPIPE, SIG_IGN);

  queue::SpanQueue span_queue(config.queue.max_bytes);
  // The trace preview cache outlives every router (SIGHUP swaps routers, not the cache), and the
  // queue asks it, through preview_holds, when a root held for its preview may go.
  auto preview_cache = std::make_shared<normalize::PreviewCache>(config.preview_cache);
  routing::PreviewHolds preview_holds(preview_cache);
  span_queue.subscribe(preview_holds);
  receiver::ReceiverStats receiver_stats;
  routing::ExperimentSelector selector(config.mlflow);
  receiver::ExportHandler handler(config.receiver, config.queue, selector, span_queue, receiver_stats);
  // The exporter names the routes in force (after a SIGHUP, the new ones): the handler's.
  const LiveRoutes live_routes(handler);
  exporter::DeadLetterWriter dead_letters(dead_letter_path(config));
  exporter::Exporter span_exporter(config, span_queue, &dead_letters, &live_routes);
  std::unique_ptr<queue::Spool> spool;
  if (config.queue.durability == config::Durability::disk) {
    spool = std::make_unique<queue::Spool>(spool_options(config.queue), span_queue);
    const queue::RecoveryReport recovered = spool->open();
    spdlog::info("spool {}: {} undelivered spans in {} records recovered from {} segments ({} "
                 "records already done); {} torn tails truncated, {} corrupt records skipped",
                 config.queue.state_dir, recovered.spans, recovered.records, recovered.segments,
                 recovered.already_done, recovered.torn_tails, recovered.corrupt_records);
  }

  handler.set_spool(spool.get());
  auto router = std::make_shared<const routing::Router>(config, preview_cache);
  handler.set_router(router);
  admin::RoutingTotals routing_totals;
  routing_totals.set_current(router);
  const unsigned cpus = available_cpus();
  const unsigned io_thread_total = io_thread_count(config.receiver.io_threads, cpus);
  // A hint of 1 also lets Asio drop the scheduler's locking.
  net::io_context io(static_cast<int>(io_thread_total));

  std::atomic<bool> listening{false};
  const auto readiness = [&] {
    admin::ReadinessInputs inputs;
    inputs.listening = listening.load();
    inputs.draining = handler.draining();
    inputs.upstream = span_exporter.health().snapshot();
    inputs.upstream_url = config::hide_url_password(config.mlflow.url);
    const queue::QueueStats queued = span_queue.stats();
    inputs.queue_bytes = queued.bytes;
    inputs.queue_max_bytes = queued.max_bytes;
    add_spool_readiness(inputs, spool.get());
    inputs.queue_high_water = config.admin.queue_high_water;
    return admin::evaluate_readiness(inputs);
  };
  ReloadStats reload_stats;
  admin::ProxyCollector collector({&receiver_stats, &span_queue, spool.get(), &span_exporter,
                                   &routing_totals, [&] { return readiness().ready; },
                                   &reload_stats.applied, &reload_stats.rejected,
                                   preview_cache.get()});
  std::unique_ptr<admin::AdminServer> admin_server;
  if (config.admin.enabled) {
    admin_server = std::make_unique<admin::AdminServer>(
        config.admin.listen, admin::admin_limits(config),
        admin::AdminHandlers{readiness, [&] { return admin::serialize_metrics(collector); }});
  }
  receiver::HttpServer server(io, config.receiver, handler, receiver_stats, io_thread_total);
  std::unique_ptr<receiver::GrpcServer> grpc_server;
  if (config.receiver.grpc.enabled) {
    grpc_server = std::make_unique<receiver::GrpcServer>(config.receiver, handler, receiver_stats);
  }
  // Before the port opens: a SIGTERM right after start must drain, not kill.
  net::signal_set signals(io, SIGTERM, SIGINT);
  std::promise<int> stop_signal;
  signals.async_wait([&](const boost::system::error_code& ec, int signal_number) {
    if (ec) return;
    // Stop taking work before draining: new requests get 503 with Retry-After, never a reset.
    notify_stopping("draining " + std::to_string(span_queue.stats().queued_spans) +
                    " queued spans");
    handler.set_draining();
    server.stop_accepting();
    span_queue.close();
    stop_signal.set_value(signal_number);
  });

  // SIGHUP: new routes and policies, on an I/O thread (loading takes milliseconds).
  net::signal_set reload_signals(io, SIGHUP);
  std::function<void()> await_reload = [&] {
    reload_signals.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      reload_routing(reload_source, config, handler, routing_totals, reload_stats);
      await_reload();
    });
  };
  await_reload();

  try {
    // Admin first: a liveness probe sees the process while the OTLP port opens.
    if (admin_server) admin_server->start();
    // gRPC first: once the HTTP port answers (what start scripts and tests wait for), both are up.
    if (grpc_server) grpc_server->start();
    server.start();
  } catch (const std::system_error& e) {
    spdlog::critical("{}", e.what());
    return 1;
  } catch (const std::runtime_error& e) {  // the gRPC listener; ConfigError is caught above us
    if (dynamic_cast<const config::ConfigError*>(&e) != nullptr) throw;
    spdlog::critical("{}", e.what());
    return 1;
  }
  span_exporter.start();
  listening.store(true);
  if (admin_server) {
    spdlog::info("admin endpoint on http://{} (/healthz, /readyz, /metrics)",
                 config.admin.listen.to_string());
  }
  notify_ready("accepting OTLP/HTTP on " + config.receiver.listen.to_string());
  if (config.receiver.tls.enabled()) {
    spdlog::info("OTLP/HTTP on {} requires TLS{}", config.receiver.listen.to_string(),
                 config.receiver.tls.client_ca_file.empty() ? "" : " and a client certificate signed by receiver.tls.client_ca_file");
  }
  net::steady_timer watchdog(io);
  if (const auto interval = watchdog_interval()) start_watchdog(watchdog, *interval);
  spdlog::info("otlp-mlflow-proxy {} accepting OTLP/HTTP on {} (/v1/traces); forwarding to MLflow "
               "at {}, experiment {} unless the client sends x-mlflow-experiment-id",
               PROXY_VERSION, config.receiver.listen.to_string(),
               config::hide_url_password(config.mlflow.url),
               selector.configured().describe());
  if (grpc_server) {
    spdlog::info("accepting OTLP/gRPC on {} (TraceService/Export{}{})",
                 config.receiver.grpc.listen.to_string(),
                 config.receiver.tls.enabled()
                     ? (config.receiver.tls.client_ca_file.empty() ? ", TLS" : ", mutual TLS")
                     : ", plaintext",
                 config.receiver.auth.enabled() ? ", bearer token required" : "");
  }
  for (const std::string& line : router->describe()) spdlog::info("{}", line);

  std::vector<std::thread> io_threads;
  spdlog::info("{} I/O thread{} ({}; {} CPU{} available)", io_thread_total,
               io_thread_total == 1 ? "" : "s",
               config.receiver.io_threads == 0 ? "io_threads: auto" : "io_threads",
               cpus, cpus == 1 ? "" : "s");
  for (unsigned i = 0; i < io_thread_total; ++i) {
    io_threads.emplace_back([&io] {
      name_this_thread("proxy-io");
      set_handled_signals_blocked(false);
      io.run();
    });
  }
  const int received_signal = stop_signal.get_future().get();

  spdlog::info("received {}, draining: {} spans queued, deadline {} ms",
               received_signal == SIGTERM ? "SIGTERM" : "SIGINT", span_queue.stats().queued_spans,
               config.shutdown_timeout.count());
  const auto deadline = std::chrono::steady_clock::now() + config.shutdown_timeout;
  // gRPC calls in flight are answered (new ones get UNAVAILABLE from the draining handler or
  // from gRPC itself) before the queue is drained; a tenth of the deadline at most.
  if (grpc_server) grpc_server->shutdown(std::chrono::steady_clock::now() + config.shutdown_timeout / 10);
  const std::uint64_t left = span_exporter.drain_and_stop(deadline);
  io.stop();
  for (auto& thread : io_threads) thread.join();
  if (admin_server) admin_server->stop();
  std::uint64_t kept_in_spool = 0;
  std::uint64_t dead_lettered_at_shutdown = 0;
  if (left > 0) {
    const auto undelivered = span_exporter.take_undelivered();
    if (spool) {
      kept_in_spool = spans_in(undelivered);  // not acknowledged: the next start sends them
    } else {
      dead_lettered_at_shutdown = spans_in(undelivered);
      span_exporter.dead_letter(undelivered, 0,
                                "shutdown_timeout passed before MLflow accepted them");
    }
  }
  if (spool) {
    spool->close();
    const auto& written = spool->stats();
    spdlog::info("spool: {} records written in {} flushes; {} segments deleted; {} requests "
                 "refused for disk budget, {} write errors",
                 written.records_written.load(), written.syncs.load(),
                 written.segments_deleted.load(), written.rejected_disk_full.load(),
                 written.write_errors.load());
  }

  const auto& exported = span_exporter.stats();
  spdlog::info("stopped: accepted {} spans in {} requests, delivered {} spans, dead-lettered {}, "
               "rejected {} invalid spans",
               receiver_stats.total_spans(receiver::ReceiverStats::kSpansAccepted),
               receiver_stats.total_requests(receiver::ReceiverStats::kAccepted),
               exported.spans_delivered.load(), exported.spans_dead_lettered.load(),
               receiver_stats.total_spans(receiver::ReceiverStats::kSpansInvalid));
  spdlog::info("policy: {}", policy::summarize(router->policy_stats()));
  if (exported.spans_missing_experiment.load() > 0) {
    spdlog::warn("{} spans were dead-lettered because their experiment did not exist and their route "
                 "may not create it", exported.spans_missing_experiment.load());
  }
  if (kept_in_spool > 0) {
    spdlog::warn("shutdown_timeout of {} ms passed: {} undelivered spans kept in the spool {}; "
                 "the next start delivers them",
                 config.shutdown_timeout.count(), kept_in_spool, config.queue.state_dir);
    return 0;
  }
  if (dead_lettered_at_shutdown > 0) {
    spdlog::error("shutdown_timeout of {} ms passed: {} undelivered spans dead-lettered to {} "
                  "(memory queue); send them with: otlp-mlflow-proxy replay --mlflow-url {} {}",
                  config.shutdown_timeout.count(), dead_lettered_at_shutdown,
                  dead_letters.path(), config::hide_url_password(config.mlflow.url),
                  dead_letters.path());
    return 1;
  }
  spdlog::info("drained: every acknowledged span was delivered or dead-lettered");
  return 0;
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
