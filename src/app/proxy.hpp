// The running proxy: owns every stage and starts and stops them in one stated order
// (docs/architecture.md, "Start and stop"). Members are declared in dependency order, so they
// are built in it and destroyed in reverse: the queue outlives everything that pushes to or
// pops from it, the listeners go before the handler they call.
//
// Start: admin (a liveness probe sees the process while the OTLP ports open), gRPC, HTTP (once
// it answers, both are up), then the exporter; only then ready. Stop: refuse new requests and
// close the queue (on the signal), finish gRPC calls in flight, drain the exporter until
// shutdown_timeout, stop the I/O threads and the admin listener, then spool or dead-letter
// what is left and close the spool.
#pragma once

#include <atomic>
#include <cstdint>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "admin/admin_server.hpp"
#include "admin/metrics.hpp"
#include "admin/readiness.hpp"
#include "admin/routing_totals.hpp"
#include "app/live_routes.hpp"
#include "app/reload.hpp"
#include "config/config.hpp"
#include "exporter/dead_letter.hpp"
#include "exporter/exporter.hpp"
#include "normalize/preview_cache.hpp"
#include "queue/span_queue.hpp"
#include "queue/spool.hpp"
#include "receiver/export_handler.hpp"
#include "receiver/grpc_server.hpp"
#include "receiver/http_server.hpp"
#include "receiver/stats.hpp"
#include "routing/experiment_selector.hpp"
#include "routing/router.hpp"

namespace proxy::app {

// SIGTERM, SIGINT and SIGHUP are handled by the I/O threads only: blocked everywhere else (set
// before any thread starts, so every thread inherits the mask).
void set_handled_signals_blocked(bool blocked);

// What stop() left undelivered once shutdown_timeout passed.
struct Leftovers {
  std::uint64_t kept_in_spool = 0;   // disk: not acknowledged, the next start sends them
  std::uint64_t dead_lettered = 0;   // memory: written to the dead-letter file
};

class Proxy {
 public:
  // Builds every stage and recovers the spool. Throws config::ConfigError for settings only the
  // stages can check, std::runtime_error for an unusable spool directory.
  explicit Proxy(const config::Config& config);
  ~Proxy();
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // SIGTERM/SIGINT (drain) and SIGHUP (reload from `source`). Before start(): a SIGTERM right
  // after the port opens must drain, not kill.
  void handle_signals(const ConfigSource& source);
  // Opens the listeners and starts the exporter. False (logged) when a port cannot be opened.
  bool start();
  // The start-up lines: listeners, upstream, routes.
  void log_started() const;
  void run_io_threads();
  // Blocks until SIGTERM or SIGINT; returns which.
  int wait_for_stop_signal();
  // Drains until shutdown_timeout and stops every stage.
  Leftovers stop(int signal_number);
  // The final report; returns the exit code (1 when spans were dead-lettered at shutdown).
  int report(const Leftovers& left) const;

 private:
  admin::Readiness readiness() const;
  void await_reload();
  void log_listeners() const;

  const config::Config& config_;
  queue::SpanQueue queue_;
  // Right after the queue, so that they outlive every stage that may push to it. The cache
  // outlives every router (SIGHUP swaps routers, not the cache); the queue asks it, through
  // preview_holds_, when a root held for its preview may go.
  std::shared_ptr<normalize::PreviewCache> preview_cache_;
  routing::PreviewHolds preview_holds_;
  receiver::ReceiverStats receiver_stats_;
  routing::ExperimentSelector selector_;
  receiver::ExportHandler handler_;
  // The exporter names the routes in force (after a SIGHUP, the new ones): the handler's.
  const LiveRoutes live_routes_;
  exporter::DeadLetterWriter dead_letters_;
  exporter::Exporter exporter_;
  std::unique_ptr<queue::Spool> spool_;  // durability: disk only
  std::shared_ptr<const routing::Router> router_;  // the one built at start
  admin::RoutingTotals routing_totals_;
  unsigned cpus_;
  unsigned io_thread_count_;
  boost::asio::io_context io_;
  std::atomic<bool> listening_{false};
  ReloadStats reload_stats_;
  admin::ProxyCollector collector_;
  std::unique_ptr<admin::AdminServer> admin_server_;
  receiver::HttpServer http_server_;
  std::unique_ptr<receiver::GrpcServer> grpc_server_;
  boost::asio::signal_set stop_signals_;
  boost::asio::signal_set reload_signals_;
  ConfigSource reload_source_;
  std::promise<int> stop_signal_;
  boost::asio::steady_timer watchdog_;
  std::vector<std::thread> io_threads_;
};

}  // namespace proxy::app
