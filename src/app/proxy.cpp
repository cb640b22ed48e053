#include "app/proxy.hpp"

#include <pthread.h>

#include <csignal>
#include <string>
#include <system_error>

#include <spdlog/spdlog.h>

#include "app/cpu_budget.hpp"
#include "app/systemd_notify.hpp"
#include "common/thread_name.hpp"
#include "config/values.hpp"

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

// Opens the spool (durability: disk) and pushes what it recovers into the queue; null in memory
// mode.
std::unique_ptr<queue::Spool> open_spool(const config::QueueConfig& config,
                                         queue::SpanQueue& span_queue) {
  if (config.durability != config::Durability::disk) return nullptr;
  auto spool = std::make_unique<queue::Spool>(spool_options(config), span_queue);
  const queue::RecoveryReport recovered = spool->open();
  spdlog::info("spool {}: {} undelivered spans in {} records recovered from {} segments ({} "
               "records already done); {} torn tails truncated, {} corrupt records skipped",
               config.state_dir, recovered.spans, recovered.records, recovered.segments,
               recovered.already_done, recovered.torn_tails, recovered.corrupt_records);
  return spool;
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

std::uint64_t spans_in(const std::vector<queue::QueueItem>& items) {
  std::uint64_t spans = 0;
  for (const auto& item : items) spans += item.span_count;
  return spans;
}

void log_spool_totals(const queue::Spool& spool) {
  const auto& written = spool.stats();
  spdlog::info("spool: {} records written in {} flushes; {} segments deleted; {} requests "
               "refused for disk budget, {} write errors",
               written.records_written.load(), written.syncs.load(),
               written.segments_deleted.load(), written.rejected_disk_full.load(),
               written.write_errors.load());
}

}  // namespace

// A signal the kernel hands to a thread asleep in a raw futex (gRPC's and the exporter's
// threads) can wait there until that thread wakes, which under TSan (it defers signals to the
// next intercepted call) meant a SIGTERM that nobody saw for over 30 s.
void set_handled_signals_blocked(bool blocked) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(blocked ? SIG_BLOCK : SIG_UNBLOCK, &signals, nullptr);
}

Proxy::Proxy(const config::Config& config)
    : config_(config),
      queue_(config.queue.max_bytes),
      preview_cache_(std::make_shared<normalize::PreviewCache>(config.preview_cache)),
      preview_holds_(preview_cache_),
      selector_(config.mlflow),
      handler_(config.receiver, config.queue, selector_, queue_, receiver_stats_),
      live_routes_(handler_),
      dead_letters_(dead_letter_path(config)),
      exporter_(config, queue_, &dead_letters_, &live_routes_),
      spool_(open_spool(config.queue, queue_)),
      router_(std::make_shared<const routing::Router>(config, preview_cache_)),
      cpus_(available_cpus()),
      io_thread_count_(io_thread_count(config.receiver.io_threads, cpus_)),
      io_(static_cast<int>(io_thread_count_)),  // a hint of 1 also drops the scheduler's locking
      collector_({&receiver_stats_, &queue_, spool_.get(), &exporter_, &routing_totals_,
                  [this] { return readiness().ready; }, &reload_stats_.applied,
                  &reload_stats_.rejected, preview_cache_.get()}),
      http_server_(io_, config.receiver, handler_, receiver_stats_, io_thread_count_),
      stop_signals_(io_, SIGTERM, SIGINT),
      reload_signals_(io_, SIGHUP),
      watchdog_(io_) {
  queue_.subscribe(preview_holds_);
  handler_.set_spool(spool_.get());
  handler_.set_router(router_);
  routing_totals_.set_current(router_);
  if (config.admin.enabled) {
    admin_server_ = std::make_unique<admin::AdminServer>(
        config.admin.listen, admin::admin_limits(config),
        admin::AdminHandlers{[this] { return readiness(); },
                             [this] { return admin::serialize_metrics(collector_); }});
  }
  if (config.receiver.grpc.enabled) {
    grpc_server_ = std::make_unique<receiver::GrpcServer>(config.receiver, handler_, receiver_stats_);
  }
}

Proxy::~Proxy() = default;

admin::Readiness Proxy::readiness() const {
  admin::ReadinessInputs inputs;
  inputs.listening = listening_.load();
  inputs.draining = handler_.draining();
  inputs.upstream = exporter_.health().snapshot();
  inputs.upstream_url = config::hide_url_password(config_.mlflow.url);
  const queue::QueueStats queued = queue_.stats();
  inputs.queue_bytes = queued.bytes;
  inputs.queue_max_bytes = queued.max_bytes;
  add_spool_readiness(inputs, spool_.get());
  inputs.queue_high_water = config_.admin.queue_high_water;
  return admin::evaluate_readiness(inputs);
}

void Proxy::handle_signals(const ConfigSource& source) {
  stop_signals_.async_wait([this](const boost::system::error_code& ec, int signal_number) {
    if (ec) return;
    // Stop taking work before draining: new requests get 503 with Retry-After, never a reset.
    notify_stopping("draining " + std::to_string(queue_.stats().queued_spans) + " queued spans");
    handler_.set_draining();
    http_server_.stop_accepting();
    queue_.close();
    stop_signal_.set_value(signal_number);
  });
  reload_source_ = source;
  await_reload();
}

// SIGHUP: new routes and policies, on an I/O thread (loading takes milliseconds).
void Proxy::await_reload() {
  reload_signals_.async_wait([this](const boost::system::error_code& ec, int) {
    if (ec) return;
    reload_routing(reload_source_, config_, handler_, routing_totals_, reload_stats_);
    await_reload();
  });
}

bool Proxy::start() {
  try {
    if (admin_server_) admin_server_->start();
    if (grpc_server_) grpc_server_->start();
    http_server_.start();
  } catch (const std::system_error& e) {
    spdlog::critical("{}", e.what());
    return false;
  } catch (const std::runtime_error& e) {  // the gRPC listener; ConfigError is caught above us
    if (dynamic_cast<const config::ConfigError*>(&e) != nullptr) throw;
    spdlog::critical("{}", e.what());
    return false;
  }
  exporter_.start();
  listening_.store(true);
  return true;
}

void Proxy::log_started() const {
  if (admin_server_) {
    spdlog::info("admin endpoint on http://{} (/healthz, /readyz, /metrics)",
                 config_.admin.listen.to_string());
  }
  notify_ready("accepting OTLP/HTTP on " + config_.receiver.listen.to_string());
  log_listeners();
  for (const std::string& line : router_->describe()) spdlog::info("{}", line);
}

void Proxy::log_listeners() const {
  const auto& receiver = config_.receiver;
  if (receiver.tls.enabled()) {
    spdlog::info("OTLP/HTTP on {} requires TLS{}", receiver.listen.to_string(),
                 receiver.tls.client_ca_file.empty()
                     ? ""
                     : " and a client certificate signed by receiver.tls.client_ca_file");
  }
  spdlog::info("otlp-mlflow-proxy {} accepting OTLP/HTTP on {} (/v1/traces); forwarding to MLflow "
               "at {}, experiment {} unless the client sends x-mlflow-experiment-id",
               PROXY_VERSION, receiver.listen.to_string(),
               config::hide_url_password(config_.mlflow.url), selector_.configured().describe());
  if (!grpc_server_) return;
  spdlog::info("accepting OTLP/gRPC on {} (TraceService/Export{}{})", receiver.grpc.listen.to_string(),
               receiver.tls.enabled()
                   ? (receiver.tls.client_ca_file.empty() ? ", TLS" : ", mutual TLS")
                   : ", plaintext",
               receiver.auth.enabled() ? ", bearer token required" : "");
}

void Proxy::run_io_threads() {
  if (const auto interval = watchdog_interval()) start_watchdog(watchdog_, *interval);
  spdlog::info("{} I/O thread{} ({}; {} CPU{} available)", io_thread_count_,
               io_thread_count_ == 1 ? "" : "s",
               config_.receiver.io_threads == 0 ? "io_threads: auto" : "io_threads", cpus_,
               cpus_ == 1 ? "" : "s");
  for (unsigned i = 0; i < io_thread_count_; ++i) {
    io_threads_.emplace_back([this] {
      name_this_thread("proxy-io");
      set_handled_signals_blocked(false);
      io_.run();
    });
  }
}

int Proxy::wait_for_stop_signal() { return stop_signal_.get_future().get(); }

Leftovers Proxy::stop(int signal_number) {
  spdlog::info("received {}, draining: {} spans queued, deadline {} ms",
               signal_number == SIGTERM ? "SIGTERM" : "SIGINT", queue_.stats().queued_spans,
               config_.shutdown_timeout.count());
  const auto deadline = std::chrono::steady_clock::now() + config_.shutdown_timeout;
  // gRPC calls in flight are answered (new ones get UNAVAILABLE from the draining handler or
  // from gRPC itself) before the queue is drained; a tenth of the deadline at most.
  if (grpc_server_) {
    grpc_server_->shutdown(std::chrono::steady_clock::now() + config_.shutdown_timeout / 10);
  }
  const std::uint64_t left = exporter_.drain_and_stop(deadline);
  io_.stop();
  for (auto& thread : io_threads_) thread.join();
  if (admin_server_) admin_server_->stop();
  Leftovers leftovers;
  if (left > 0) {
    const auto undelivered = exporter_.take_undelivered();
    if (spool_) {
      leftovers.kept_in_spool = spans_in(undelivered);
    } else {
      leftovers.dead_lettered = spans_in(undelivered);
      exporter_.dead_letter(undelivered, 0, "shutdown_timeout passed before MLflow accepted them");
    }
  }
  if (spool_) {
    spool_->close();
    log_spool_totals(*spool_);
  }
  return leftovers;
}

int Proxy::report(const Leftovers& left) const {
  const auto& exported = exporter_.stats();
  spdlog::info("stopped: accepted {} spans in {} requests, delivered {} spans, dead-lettered {}, "
               "rejected {} invalid spans",
               receiver_stats_.total_spans(receiver::ReceiverStats::kSpansAccepted),
               receiver_stats_.total_requests(receiver::ReceiverStats::kAccepted),
               exported.spans_delivered.load(), exported.spans_dead_lettered.load(),
               receiver_stats_.total_spans(receiver::ReceiverStats::kSpansInvalid));
  spdlog::info("policy: {}", policy::summarize(router_->policy_stats()));
  if (exported.spans_missing_experiment.load() > 0) {
    spdlog::warn("{} spans were dead-lettered because their experiment did not exist and their "
                 "route may not create it", exported.spans_missing_experiment.load());
  }
  if (left.kept_in_spool > 0) {
    spdlog::warn("shutdown_timeout of {} ms passed: {} undelivered spans kept in the spool {}; "
                 "the next start delivers them",
                 config_.shutdown_timeout.count(), left.kept_in_spool, config_.queue.state_dir);
    return 0;
  }
  if (left.dead_lettered > 0) {
    spdlog::error("shutdown_timeout of {} ms passed: {} undelivered spans dead-lettered to {} "
                  "(memory queue); send them with: otlp-mlflow-proxy replay --mlflow-url {} {}",
                  config_.shutdown_timeout.count(), left.dead_lettered, dead_letters_.path(),
                  config::hide_url_password(config_.mlflow.url), dead_letters_.path());
    return 1;
  }
  spdlog::info("drained: every acknowledged span was delivered or dead-lettered");
  return 0;
}

}  // namespace proxy::app
