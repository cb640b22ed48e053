// Delivers queued spans to MLflow: a few worker coroutines on the exporter's own thread, each with
// a keep-alive connection, taking one experiment's batch at a time and retrying per the status
// table until the batch is delivered or dead-lettered.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/latency_histogram.hpp"
#include "config/config.hpp"
#include "exporter/dead_letter.hpp"
#include "exporter/delivery_attempt.hpp"
#include "exporter/experiment_resolver.hpp"
#include "exporter/http_client.hpp"
#include "exporter/route_directory.hpp"
#include "exporter/upstream_health.hpp"
#include "exporter/upstream_version.hpp"
#include "queue/span_queue.hpp"

namespace proxy::exporter {

struct ExporterStats {
  using Counter = std::atomic<std::uint64_t>;
  Counter requests_delivered{0};
  Counter spans_delivered{0};
  Counter retries{0};
  Counter transport_errors{0};
  Counter tls_handshake_failures{0};  // of those: TLS to MLflow failed (certificate, protocol)
  Counter spans_dead_lettered{0};
  // Of those: the experiment name does not exist and the route may not create it.
  Counter spans_missing_experiment{0};
  Counter dead_letter_write_failures{0};
  // A request MLflow refused as a whole, sent again in parts (requests, traces, then spans)
  // to find the culprit.
  Counter batches_split{0};
  Counter spans_abandoned_at_shutdown{0};
  Counter requests_gzipped{0};  // POST /v1/traces sent with Content-Encoding: gzip
  // gzip bodies MLflow answered 400/415 to under compression: auto, re-sent uncompressed.
  Counter gzip_refused{0};
  std::atomic<bool> upstream_not_ready{false};
  // MLflow's answers to POST /v1/traces by HTTP status (index: the status code), for /metrics.
  static constexpr int kMaxStatus = 600;
  std::array<Counter, kMaxStatus> responses_by_status{};
  LatencyHistogram upstream_latency;  // POST /v1/traces, sent to answered (or failed)
};

// A request's body, built once for all its attempts.
struct RequestBody;

class Exporter : private queue::QueueObserver {
 public:
  // Throws config::ConfigError when the MLflow URL is unusable.
  // `dead_letters` may be null (configuration checks): rejected spans are then only logged.
  // `routes`: the routes in force, named in the reason of a missing experiment; may be null.
  Exporter(const config::Config& config, queue::SpanQueue& queue,
           DeadLetterWriter* dead_letters = nullptr, const RouteDirectory* routes = nullptr);
  ~Exporter();

  void start();

  // Waits until everything queued is delivered or `deadline` passes, then stops the workers.
  // Returns the number of spans left undelivered (logged and counted, never silent).
  std::uint64_t drain_and_stop(std::chrono::steady_clock::time_point deadline);

  // After drain_and_stop: what was neither delivered nor dead-lettered, queued or in flight.
  // Their queue budget is still held (release them once dealt with).
  std::vector<queue::QueueItem> take_undelivered();

  // Dead-letters `items` (logged, counted) and releases them from the queue and spool.
  void dead_letter(const std::vector<queue::QueueItem>& items, int status, const std::string& reason);

  const ExporterStats& stats() const { return stats_; }
  const UpstreamHealth& health() const { return health_; }
  const UpstreamVersion& upstream_version() const { return version_; }

 private:
  // Wakes a waiting worker when a push starts a batch's linger or fills a batch.
  void on_available(const queue::PushLevel& level) override;
  boost::asio::awaitable<void> worker(unsigned index);
  // Delivers or dead-letters `batch` (or a part of one), performing its DeliveryAttempt's
  // actions; the caller releases it from the queue afterwards.
  boost::asio::awaitable<void> deliver(HttpClient& client, const std::vector<queue::QueueItem>& batch);
  boost::asio::awaitable<DeliveryAction> resolve(DeliveryAttempt& attempt, DeliveryStep step,
                                                 std::size_t spans);
  boost::asio::awaitable<DeliveryAction> send(HttpClient& client, DeliveryAttempt& attempt,
                                              RequestBody& body, std::size_t spans);
  boost::asio::awaitable<void> deliver_parts(HttpClient& client,
                                             const std::vector<queue::QueueItem>& batch,
                                             const DeliveryAction& refused);
  DeliveryAttempt new_attempt(const std::vector<queue::QueueItem>& batch);
  void report_lookup_failure(const Resolution& resolution, const DeliveryAction& action,
                             const ExperimentRef& experiment, std::size_t spans);
  void report_transport_error(const HttpResult& result, const DeliveryAction& action,
                              const std::string& experiment_id, std::size_t spans);
  void report_answer(const ClassifiedResponse& response, const DeliveryAction& action,
                     const std::string& experiment_id, std::size_t spans);
  void report_retry(const ClassifiedResponse& response, const DeliveryAction& action,
                    const std::string& experiment_id, std::size_t spans);
  void report_delivered(const std::string& experiment_id, std::size_t spans);
  boost::asio::awaitable<void> pause(std::chrono::milliseconds delay);
  boost::asio::awaitable<void> pause_until(std::chrono::steady_clock::time_point until);
  boost::asio::awaitable<void> probe_loop();
  boost::asio::awaitable<void> version_loop();
  void record_version(const HttpResult& result, std::uint64_t outages);
  bool use_gzip() const;
  void wake_workers();
  void release(const std::vector<queue::QueueItem>& batch);
  // Writes (or logs the loss of) the spans and counts them; does not release them.
  void write_dead_letter(const std::vector<queue::QueueItem>& items, int status,
                         const std::string& reason, bool log_success);
  void dead_letter_missing(const std::vector<queue::QueueItem>& batch, const std::string& name);
  // The routes that send to an experiment name, for the log line of a missing experiment.
  std::string routes_to(const std::string& name) const;

  const config::Config& config_;
  queue::SpanQueue& queue_;
  DeadLetterWriter* dead_letters_;
  const RouteDirectory* routes_;
  // Each worker's batch while it is being delivered, for take_undelivered() after a stop.
  std::mutex in_flight_mutex_;
  std::vector<std::vector<queue::QueueItem>*> in_flight_batches_;
  UpstreamUrl upstream_;
  HttpClientOptions client_options_;
  std::string shown_url_;  // mlflow.url with any password hidden, for logs and /readyz
  boost::asio::io_context io_;
  std::unique_ptr<ExperimentResolver> resolver_;
  std::vector<std::unique_ptr<boost::asio::steady_timer>> wake_timers_;
  std::atomic<int> idle_workers_{0};
  std::atomic<std::size_t> in_flight_spans_{0};
  std::atomic<bool> stopping_{false};
  std::mt19937_64 random_{std::random_device{}()};
  std::thread thread_;
  ExporterStats stats_;
  UpstreamHealth health_;
  UpstreamVersion version_;
};

}  // namespace proxy::exporter
