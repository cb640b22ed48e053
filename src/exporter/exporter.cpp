#include "exporter/exporter.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "common/rate_limited_log.hpp"
#include "common/thread_name.hpp"
#include "config/values.hpp"
#include "exporter/gzip.hpp"
#include "exporter/mlflow_version.hpp"
#include "exporter/request_split.hpp"
#include "exporter/slices_body.hpp"

namespace proxy::exporter {

namespace net = boost::asio;
constexpr auto kNoThrow = net::experimental::as_tuple(net::use_awaitable);

namespace {

// An idle worker looks at the queue at least this often, in case a wake-up was missed.
constexpr std::chrono::milliseconds kIdlePoll{250};

RateLimitedLog& retry_log() {
  static RateLimitedLog log{5};
  return log;
}

// A certificate problem repeats identically on every retry: once a second says it.
RateLimitedLog& tls_failure_log() {
  static RateLimitedLog log{1};
  return log;
}

RateLimitedLog& split_log() {
  static RateLimitedLog log{5};
  return log;
}

RateLimitedLog& missing_experiment_log() {
  static RateLimitedLog log{1};
  return log;
}

// What to check, for the certificate problems an operator meets first.
std::string tls_hint(const std::string& detail) {
  if (detail.find("mismatch") != std::string::npos) {
    return "; the server's certificate does not name the host of mlflow.url (use the name it "
           "was issued for)";
  }
  if (detail.find("issuer") != std::string::npos || detail.find("self-signed") != std::string::npos ||
      detail.find("self signed") != std::string::npos) {
    return "; set mlflow.tls.ca_file (or MLFLOW_TRACKING_SERVER_CERT_PATH) to the CA that signed "
           "MLflow's certificate";
  }
  if (detail.find("expired") != std::string::npos || detail.find("not yet valid") != std::string::npos) {
    return "; check MLflow's certificate dates and this host's clock";
  }
  if (detail.find("certificate required") != std::string::npos ||
      detail.find("handshake failure") != std::string::npos) {
    return "; if MLflow requires a client certificate, set mlflow.tls.client_cert_file (or "
           "MLFLOW_TRACKING_CLIENT_CERT_PATH)";
  }
  return {};
}

std::size_t spans_in(const std::vector<queue::QueueItem>& batch) {
  std::size_t spans = 0;
  for (const auto& item : batch) spans += item.span_count;
  return spans;
}

UpstreamUrl parse_or_throw(const std::string& url) {
  std::string error;
  auto parsed = parse_upstream_url(url, error);
  if (!parsed) throw config::ConfigError("mlflow.url: " + error);
  return *parsed;
}

// Credentials from the settings (MLflow's variables or the file), else from the URL's userinfo;
// TLS for an https:// URL (the files are loaded here, so a bad one fails the start).
HttpClientOptions client_options_for(const config::MlflowConfig& mlflow, const UpstreamUrl& upstream) {
  HttpClientOptions options;
  options.connect_timeout = mlflow.connect_timeout;
  options.request_timeout = mlflow.request_timeout;
  options.authorization = mlflow.username.empty() && mlflow.password.empty() && mlflow.token.empty()
                              ? authorization_header(upstream.username, upstream.password, {})
                              : authorization_header(mlflow.username, mlflow.password, mlflow.token);
  if (upstream.tls) options.tls = make_upstream_tls(mlflow.tls);
  return options;
}

}  // namespace

Exporter::Exporter(const config::Config& config, queue::SpanQueue& queue,
                   DeadLetterWriter* dead_letters, const RouteDirectory* routes)
    : config_(config),
      queue_(queue),
      dead_letters_(dead_letters),
      routes_(routes),
      upstream_(parse_or_throw(config.mlflow.url)),
      client_options_(client_options_for(config.mlflow, upstream_)),
      shown_url_(config::hide_url_password(config.mlflow.url)) {
  resolver_ = std::make_unique<ExperimentResolver>(io_.get_executor(), upstream_, client_options_,
                                                   config.mlflow.experiment_cache_ttl);
  for (unsigned i = 0; i < config.exporter.concurrency; ++i) {
    wake_timers_.push_back(std::make_unique<net::steady_timer>(io_));
  }
  in_flight_batches_.resize(config.exporter.concurrency, nullptr);
}

Exporter::~Exporter() {
  queue_.unsubscribe(*this);
  if (thread_.joinable()) {
    io_.stop();
    thread_.join();
  }
}

// A worker waiting for a fuller batch already knows when its linger ends: waking it for every
// request cost a thread switch per request (most of the exporter's share with one span per
// request). It looks again when a push starts a linger (nothing was available: the worker may be
// in its idle poll, or waiting out a hold) or fills a batch.
void Exporter::on_available(const queue::PushLevel& level) {
  if (idle_workers_.load(std::memory_order_acquire) == 0) return;
  if (level.was_empty ||
      queue::fills_batch(level.queued_spans, level.queued_bytes, config_.exporter.max_batch_spans,
                         config_.exporter.max_batch_bytes)) {
    wake_workers();
  }
}

void Exporter::start() {
  if (upstream_.tls && config_.mlflow.tls.insecure_skip_verify) {
    spdlog::warn("TLS to MLflow at {} is NOT verified (mlflow.tls.insecure_skip_verify or "
                 "MLFLOW_TRACKING_INSECURE_TLS): anyone on the path can read and change the spans "
                 "and credentials; set mlflow.tls.ca_file instead",
                 shown_url_);
  } else if (!upstream_.tls && config_.mlflow.tls.configured()) {
    spdlog::warn("mlflow.tls settings (or MLFLOW_TRACKING_*_CERT_PATH / _INSECURE_TLS) are ignored: "
                 "MLflow at {} is plain http://",
                 shown_url_);
  }
  queue_.subscribe(*this);
  for (unsigned i = 0; i < config_.exporter.concurrency; ++i) {
    net::co_spawn(io_, worker(i), [](std::exception_ptr error) {
      if (!error) return;
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        spdlog::critical("exporter worker failed: {}", e.what());
      }
    });
  }
  // Never blocks the start: until /version answers, requests go out uncompressed.
  net::co_spawn(io_, version_loop(), [](std::exception_ptr error) {
    if (!error) return;
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      spdlog::error("reading MLflow's version failed: {}", e.what());
    }
  });
  if (config_.admin.enabled) {
    net::co_spawn(io_, probe_loop(), [](std::exception_ptr error) {
      if (!error) return;
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        spdlog::error("MLflow health probe failed: {}", e.what());
      }
    });
  }
  thread_ = std::thread([this] {
    name_this_thread("proxy-exporter");
    io_.run();
  });
}

// While exports flow, their answers say whether MLflow is up; when none went out for a probe
// interval (no traffic, or the workers are backing off), GET /health tells /readyz instead.
net::awaitable<void> Exporter::probe_loop() {
  const auto interval = config_.admin.probe_interval;
  HttpClientOptions options = client_options_;
  options.request_timeout = std::min(options.request_timeout, std::max(interval, std::chrono::milliseconds(1000)));
  HttpClient client(io_.get_executor(), upstream_, options);
  for (;;) {
    if (stopping_.load()) co_return;
    if (std::chrono::steady_clock::now() - health_.last_contact() >= interval) {
      http::request<http::string_body> request{http::verb::get, upstream_.target("/health"), 11};
      const HttpResult result = co_await client.send(std::move(request));
      if (result.error) {
        health_.record_unreachable("MLflow at " + shown_url_ + " is unreachable (" +
                                   result.describe_error() + ")");
      } else if (result.response.result_int() / 100 == 2) {
        health_.record_accepting();
      } else {
        health_.record_refusing("MLflow at " + shown_url_ + " answered GET /health with " +
                                std::to_string(result.response.result_int()));
      }
    }
    co_await pause(interval);
  }
}

// GET /version at start, and again once MLflow answers after an outage (it may have been
// upgraded or replaced meanwhile), at the health probe's interval until it answers.
net::awaitable<void> Exporter::version_loop() {
  const auto interval = config_.admin.probe_interval;
  HttpClientOptions options = client_options_;
  options.request_timeout = std::min(options.request_timeout, std::max(interval, std::chrono::milliseconds(1000)));
  HttpClient client(io_.get_executor(), upstream_, options);
  bool told_unknown = false;
  for (;;) {
    if (stopping_.load()) co_return;
    const std::uint64_t outages = health_.outages();
    if (version_.needs_reading(outages)) {
      http::request<http::string_body> request{http::verb::get, upstream_.target("/version"), 11};
      const HttpResult result = co_await client.send(std::move(request));
      const int status = result.error ? 0 : result.response.result_int();
      if (result.error || status == 429 || status >= 500) {
        // Down or busy: /readyz and the export log say so; here only that gzip waits.
        if (!told_unknown) {
          spdlog::info("MLflow's version at {} is not known yet (GET /version: {}); sending "
                       "uncompressed until it answers",
                       shown_url_,
                       result.error ? result.describe_error() : "HTTP " + std::to_string(status));
          told_unknown = true;
        }
      } else {
        record_version(result, outages);
        told_unknown = false;
      }
    }
    co_await pause(interval);
  }
}

void Exporter::record_version(const HttpResult& result, std::uint64_t outages) {
  const int status = result.response.result_int();
  const std::optional<MlflowVersion> version =
      status / 100 == 2 ? parse_mlflow_version(result.response.body()) : std::nullopt;
  const UpstreamVersion::Snapshot before = version_.snapshot();
  if (!version) {
    // Appended, not `"\"" + std::string(...)`: GCC 12 at -O3 (Release) reports a false
    // -Wrestrict there, and warnings are errors.
    std::string answer;
    if (status / 100 == 2) {
      answer.push_back('"');
      answer.append(result.response.body(), 0, 60);
      answer.push_back('"');
    } else {
      answer = "HTTP " + std::to_string(status);
    }
    for (char& c : answer) {
      if (c < 0x20) c = ' ';
    }
    spdlog::warn("MLflow at {} answered GET /version with {}, not a version; sending uncompressed "
                 "(exporter.compression: gzip forces gzip, for MLflow 3.7 and newer)",
                 shown_url_, answer);
    version_.record({}, false, outages);
    return;
  }
  const bool gzip = mlflow_accepts_gzip(*version);
  const bool gzip_ok = version_.record(version->text, gzip, outages);
  const char* sending = "uncompressed (exporter.compression: none)";
  if (config_.exporter.compression == config::UpstreamCompression::gzip) {
    sending = "gzip (exporter.compression: gzip)";
  } else if (config_.exporter.compression == config::UpstreamCompression::automatic) {
    sending = gzip_ok ? "gzip"
              : gzip  ? "uncompressed (it refused a gzip body before)"
                      : "uncompressed (MLflow before 3.7 cannot decode gzip)";
  }
  const std::string change =
      before.version.empty() || before.version == version->text ? "" : " (was " + before.version + ")";
  spdlog::info("MLflow {} at {}{}; sending {}", version->text, shown_url_, change, sending);
  if (!gzip && config_.exporter.compression == config::UpstreamCompression::gzip) {
    spdlog::warn("exporter.compression is gzip, but MLflow {} cannot decode gzip request bodies "
                 "(3.7 and newer can): its answers will be 400; use auto or none",
                 version->text);
  }
}

bool Exporter::use_gzip() const {
  switch (config_.exporter.compression) {
    case config::UpstreamCompression::gzip:
      return true;
    case config::UpstreamCompression::none:
      return false;
    case config::UpstreamCompression::automatic:
      return version_.gzip_ok(health_.outages());
  }
  return false;
}

void Exporter::wake_workers() {
  net::post(io_, [this] {
    for (auto& timer : wake_timers_) timer->cancel();
  });
}

std::uint64_t Exporter::drain_and_stop(std::chrono::steady_clock::time_point deadline) {
  stopping_.store(true);
  wake_workers();
  while (std::chrono::steady_clock::now() < deadline &&
         (!queue_.empty() || in_flight_spans_.load() > 0)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  io_.stop();
  if (thread_.joinable()) thread_.join();
  const std::uint64_t left = queue_.stats().queued_spans + in_flight_spans_.load();
  stats_.spans_abandoned_at_shutdown.fetch_add(left);
  return left;
}

std::vector<queue::QueueItem> Exporter::take_undelivered() {
  // The exporter thread has stopped: the workers' suspended frames still own their batches.
  std::vector<queue::QueueItem> left;
  {
    std::lock_guard lock(in_flight_mutex_);
    for (auto*& batch : in_flight_batches_) {
      if (batch == nullptr) continue;
      for (auto& item : *batch) left.push_back(std::move(item));
      batch->clear();
      batch = nullptr;
    }
  }
  for (auto& item : queue_.take_all()) left.push_back(std::move(item));
  return left;
}

void Exporter::dead_letter(const std::vector<queue::QueueItem>& items, int status,
                           const std::string& reason) {
  write_dead_letter(items, status, reason, true);
  queue_.release(items);
}

void Exporter::write_dead_letter(const std::vector<queue::QueueItem>& items, int status,
                                 const std::string& reason, bool log_success) {
  const std::size_t spans = spans_in(items);
  const std::string where = dead_letters_ != nullptr ? dead_letters_->path() : "nowhere (no file)";
  if (dead_letters_ == nullptr || !dead_letters_->write(items, status, reason)) {
    stats_.dead_letter_write_failures.fetch_add(1);
    spdlog::critical("LOST {} spans for experiment {}: could not write them to the dead-letter "
                     "file {}; reason they were rejected: {}",
                     spans, items.empty() ? "-" : items.front().experiment.describe(), where, reason);
  } else if (log_success) {
    spdlog::error("dead-lettered {} spans for experiment {} to {}: {}", spans,
                  items.empty() ? "-" : items.front().experiment.describe(), where, reason);
  }
  stats_.spans_dead_lettered.fetch_add(spans);
}

net::awaitable<void> Exporter::pause(std::chrono::milliseconds delay) {
  net::steady_timer timer(io_, delay);
  co_await timer.async_wait(kNoThrow);
}

net::awaitable<void> Exporter::pause_until(std::chrono::steady_clock::time_point until) {
  net::steady_timer timer(io_, until);
  co_await timer.async_wait(kNoThrow);
}

void Exporter::release(const std::vector<queue::QueueItem>& batch) { queue_.release(batch); }

std::string Exporter::routes_to(const std::string& name) const {
  std::string names;
  if (routes_ != nullptr) {
    for (const std::string& route : routes_->routes_to(name)) {
      names += (names.empty() ? "\"" : ", \"") + route + "\"";
    }
  }
  return names.empty() ? "none in the current configuration" : names;
}

// Holding the spans would block every other route behind them until someone creates the
// experiment, so they go to the dead-letter file at once (replayable once it exists), and the
// log line says which experiment and route, at most once a second.
void Exporter::dead_letter_missing(const std::vector<queue::QueueItem>& batch, const std::string& name) {
  const std::size_t spans = spans_in(batch);
  const std::string reason = "experiment \"" + name + "\" does not exist in MLflow and its route (" +
                             routes_to(name) +
                             ") may not create it (create_experiment: false, or "
                             "mlflow.create_experiments: false)";
  stats_.spans_missing_experiment.fetch_add(spans);
  std::uint64_t suppressed = 0;
  if (missing_experiment_log().allow(suppressed)) {
    spdlog::error("dead-lettering {} spans: {}; create the experiment or allow creating it, then "
                  "send the dead-letter file again with `otlp-mlflow-proxy replay` ({} similar "
                  "lines not logged)",
                  spans, reason, suppressed);
  }
  write_dead_letter(batch, 404, reason, false);
}

net::awaitable<void> Exporter::worker(unsigned index) {
  HttpClient client(io_.get_executor(), upstream_, client_options_);
  auto& wake = *wake_timers_[index];
  for (;;) {
    // Idle before looking, so a push that lands after the look still wakes this worker.
    idle_workers_.fetch_add(1, std::memory_order_acq_rel);
    if (!stopping_.load()) {
      // A batch closes when full or when its oldest span has waited batch_linger.
      const auto linger = queue_.linger_left(config_.exporter.max_batch_bytes,
                                             config_.exporter.max_batch_spans,
                                             config_.exporter.batch_linger);
      if (linger > std::chrono::steady_clock::duration::zero()) {
        wake.expires_after(linger);
        co_await wake.async_wait(kNoThrow);
        idle_workers_.fetch_sub(1, std::memory_order_acq_rel);
        continue;
      }
    }
    auto batch = queue_.pop_batch(config_.exporter.max_batch_bytes, config_.exporter.max_batch_spans);
    if (batch.empty()) {
      if (stopping_.load()) {
        idle_workers_.fetch_sub(1, std::memory_order_acq_rel);
        co_return;
      }
      wake.expires_after(kIdlePoll);
      co_await wake.async_wait(kNoThrow);
      idle_workers_.fetch_sub(1, std::memory_order_acq_rel);
      continue;
    }
    idle_workers_.fetch_sub(1, std::memory_order_acq_rel);
    const std::size_t spans = spans_in(batch);
    in_flight_spans_.fetch_add(spans);
    {
      std::lock_guard lock(in_flight_mutex_);
      in_flight_batches_[index] = &batch;
    }
    co_await deliver(client, batch);
    // Delivered or dead-lettered, every part of it: its budget and spool records go.
    release(batch);
    {
      std::lock_guard lock(in_flight_mutex_);
      in_flight_batches_[index] = nullptr;
    }
    in_flight_spans_.fetch_sub(spans);
  }
}

// A batch's request body: the queued payloads as they are (serialized requests concatenate
// into one request holding all their resource spans), sent as gathered slices; gzip needs the
// bytes in one piece, so it alone joins them, once, the first time it is wanted.
struct RequestBody {
  std::vector<net::const_buffer> slices;
  std::optional<std::string> gzipped;
};

namespace {

RequestBody body_of(const std::vector<queue::QueueItem>& batch) {
  RequestBody body;
  body.slices.reserve(batch.size());
  for (const auto& item : batch) body.slices.emplace_back(item.payload.data(), item.payload.size());
  return body;
}

// The joined copy gzip reads is kept per thread up to this size, so batches of the usual size
// (exporter.max_batch_bytes' default is 4 MiB) reuse it.
constexpr std::size_t kJoinedKeepBytes = std::size_t{8} << 20;

bool compress(RequestBody& body) {
  if (body.gzipped) return true;
  thread_local std::string joined;
  joined.resize(net::buffer_size(body.slices));
  net::buffer_copy(net::buffer(joined), body.slices);
  body.gzipped = gzip_compress(joined);
  // A large batch's copy is not kept for the next one (the compressed body is).
  if (joined.capacity() > kJoinedKeepBytes) std::string().swap(joined);
  return body.gzipped.has_value();
}

http::request<SlicesBody> traces_request(const UpstreamUrl& upstream,
                                         const std::string& experiment_id,
                                         const RequestBody& body, bool gzip) {
  http::request<SlicesBody> request{http::verb::post, upstream.target("/v1/traces"), 11};
  request.set(http::field::content_type, "application/x-protobuf");
  request.set("x-mlflow-experiment-id", experiment_id);
  if (gzip) request.set(http::field::content_encoding, "gzip");
  if (gzip) {
    request.body().emplace_back(body.gzipped->data(), body.gzipped->size());
  } else {
    request.body() = body.slices;
  }
  return request;
}

// More than one span, or more than one client request: a refusal of the whole can be narrowed.
bool splittable(const std::vector<queue::QueueItem>& batch) {
  return batch.size() > 1 || spans_in(batch) > 1;
}

}  // namespace

net::awaitable<void> Exporter::deliver(HttpClient& client, const std::vector<queue::QueueItem>& batch) {
  DeliveryAttempt attempt = new_attempt(batch);
  RequestBody body = body_of(batch);
  const std::size_t spans = spans_in(batch);
  DeliveryAction action = attempt.start();
  for (;;) {
    switch (action.step) {
      case DeliveryStep::resolve:
      case DeliveryStep::reresolve:
        action = co_await resolve(attempt, action.step, spans);
        break;
      case DeliveryStep::send:
        action = co_await send(client, attempt, body, spans);
        break;
      case DeliveryStep::wait:
        co_await pause_until(action.until);
        action = attempt.resume();
        break;
      case DeliveryStep::split:
        co_await deliver_parts(client, batch, action);
        co_return;
      case DeliveryStep::dead_letter:
        if (action.cause == DeliveryCause::experiment_missing) {
          dead_letter_missing(batch, attempt.experiment().value);
        } else {
          write_dead_letter(batch, action.status, action.reason, true);
        }
        co_return;
      case DeliveryStep::delivered:
        report_delivered(attempt.experiment_id(), spans);
        co_return;
    }
  }
}

DeliveryAttempt Exporter::new_attempt(const std::vector<queue::QueueItem>& batch) {
  DeliverySettings settings{config_.exporter.retry,
                            config_.exporter.compression == config::UpstreamCompression::automatic};
  DeliveryEnvironment environment{
      [] { return std::chrono::steady_clock::now(); },
      [this] { return std::uniform_real_distribution<double>(0.0, 1.0)(random_); }};
  return DeliveryAttempt(batch.front().experiment, splittable(batch), settings, std::move(environment));
}

net::awaitable<DeliveryAction> Exporter::resolve(DeliveryAttempt& attempt, DeliveryStep step,
                                                 std::size_t spans) {
  const ExperimentRef& experiment = attempt.experiment();
  if (step == DeliveryStep::reresolve) {
    spdlog::warn("MLflow does not know experiment id {} for name \"{}\"; resolving again",
                 attempt.experiment_id(), experiment.value);
    resolver_->invalidate(experiment.value);
  }
  const Resolution resolution = co_await resolver_->resolve(experiment.value, experiment.create);
  DeliveryAction next = attempt.on_resolved(resolution);
  if (next.step == DeliveryStep::wait) report_lookup_failure(resolution, next, experiment, spans);
  co_return next;
}

net::awaitable<DeliveryAction> Exporter::send(HttpClient& client, DeliveryAttempt& attempt,
                                              RequestBody& body, std::size_t spans) {
  const bool gzip = attempt.gzip_allowed() && use_gzip() && compress(body);
  if (gzip) stats_.requests_gzipped.fetch_add(1, std::memory_order_relaxed);
  const auto sent_at = std::chrono::steady_clock::now();
  const HttpResult result =
      co_await client.send(traces_request(upstream_, attempt.experiment_id(), body, gzip));
  stats_.upstream_latency.observe(std::chrono::steady_clock::now() - sent_at);
  if (result.error) {
    DeliveryAction next = attempt.on_transport_error();
    report_transport_error(result, next, attempt.experiment_id(), spans);
    co_return next;
  }
  const int status = result.response.result_int();
  if (status >= 0 && status < ExporterStats::kMaxStatus) {
    stats_.responses_by_status[static_cast<std::size_t>(status)].fetch_add(1, std::memory_order_relaxed);
  }
  const ClassifiedResponse response = classify_response(
      status, result.response.body(), result.response[http::field::retry_after], gzip);
  DeliveryAction next = attempt.on_response(response);
  report_answer(response, next, attempt.experiment_id(), spans);
  co_return next;
}

// One bad span must not take the others down with it: the parts go one by one, each with its
// own attempt, so only what MLflow refuses on its own lands in the dead-letter file.
net::awaitable<void> Exporter::deliver_parts(HttpClient& client,
                                             const std::vector<queue::QueueItem>& batch,
                                             const DeliveryAction& refused) {
  const RequestSplit split = split_request(batch);
  if (split.parts.size() < 2) {
    write_dead_letter(batch, refused.status, refused.reason, true);
    co_return;
  }
  stats_.batches_split.fetch_add(1);
  std::uint64_t suppressed = 0;
  if (split_log().allow(suppressed)) {
    spdlog::warn("MLflow refused {} spans as a whole ({}); sending them again {} by {} ({} "
                 "parts; {} similar lines not logged)",
                 spans_in(batch), refused.reason, split_unit_name(split.unit),
                 split_unit_name(split.unit), split.parts.size(), suppressed);
  }
  for (const auto& part : split.parts) co_await deliver(client, part);
}

void Exporter::report_lookup_failure(const Resolution& resolution, const DeliveryAction& action,
                                     const ExperimentRef& experiment, std::size_t spans) {
  std::uint64_t suppressed = 0;
  if (resolution.tls_failed) {
    stats_.tls_handshake_failures.fetch_add(1);
    health_.record_unreachable("MLflow at " + shown_url_ + " is unreachable (" + resolution.error + ")");
  }
  if ((resolution.tls_failed ? tls_failure_log() : retry_log()).allow(suppressed)) {
    spdlog::log(resolution.tls_failed ? spdlog::level::err : spdlog::level::warn,
                "cannot resolve experiment {} for {} spans: {}; {} spans kept, retrying in {} ms{}",
                experiment.describe(), spans, resolution.error, spans, action.delay.count(),
                resolution.tls_failed ? tls_hint(resolution.error) : std::string());
  }
  stats_.retries.fetch_add(1);
}

void Exporter::report_transport_error(const HttpResult& result, const DeliveryAction& action,
                                      const std::string& experiment_id, std::size_t spans) {
  health_.record_unreachable("MLflow at " + shown_url_ + " is unreachable (" +
                             result.describe_error() + ")");
  stats_.transport_errors.fetch_add(1);
  stats_.retries.fetch_add(1);
  std::uint64_t suppressed = 0;
  if (result.tls_failed) {
    const std::string why = result.error_detail.empty() ? result.error.message() : result.error_detail;
    // Retrying cannot fix a certificate problem, but an operator can (CA file, clock, server
    // certificate) without losing the spans: they stay queued, so say it loudly.
    stats_.tls_handshake_failures.fetch_add(1);
    if (tls_failure_log().allow(suppressed)) {
      spdlog::error("TLS handshake with MLflow at {} failed: {}; {} spans for experiment {} "
                    "kept, retrying in {} ms{} ({} similar lines not logged)",
                    shown_url_, why, spans, experiment_id, action.delay.count(), tls_hint(why),
                    suppressed);
    }
  } else if (retry_log().allow(suppressed)) {
    spdlog::warn("sending {} spans to MLflow at {} (experiment {}) failed at {}; retrying in {} ms",
                 spans, shown_url_, experiment_id, result.describe_error(), action.delay.count());
  }
}

void Exporter::report_answer(const ClassifiedResponse& response, const DeliveryAction& action,
                             const std::string& experiment_id, std::size_t spans) {
  if (action.cause == DeliveryCause::gzip_refused) {
    stats_.gzip_refused.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("MLflow at {} answered {} to a gzip body although GET /version said {}; "
                 "sending uncompressed while it reports that version",
                 shown_url_, response.status, version_.snapshot().version);
    version_.forget();
    return;
  }
  const ExportAction verdict = response.verdict.action;
  if (verdict == ExportAction::retry || verdict == ExportAction::hold_not_ready ||
      verdict == ExportAction::retry_transient) {
    health_.record_refusing("MLflow at " + shown_url_ + " answered " +
                            std::to_string(response.status) + ": " + response.verdict.reason);
  } else {
    health_.record_accepting();
  }
  if (action.step == DeliveryStep::wait) report_retry(response, action, experiment_id, spans);
}

void Exporter::report_retry(const ClassifiedResponse& response, const DeliveryAction& action,
                            const std::string& experiment_id, std::size_t spans) {
  const bool not_ready = response.verdict.action == ExportAction::hold_not_ready;
  if (not_ready) stats_.upstream_not_ready.store(true);
  stats_.retries.fetch_add(1);
  std::uint64_t suppressed = 0;
  if (retry_log().allow(suppressed)) {
    spdlog::log(not_ready ? spdlog::level::err : spdlog::level::warn,
                "{} spans for experiment {} not accepted: {}; retrying in {} ms", spans,
                experiment_id, action.reason, action.delay.count());
  }
}

void Exporter::report_delivered(const std::string& experiment_id, std::size_t spans) {
  if (stats_.upstream_not_ready.exchange(false)) {
    spdlog::info("MLflow at {} accepts spans again", shown_url_);
  }
  stats_.requests_delivered.fetch_add(1);
  stats_.spans_delivered.fetch_add(spans);
  spdlog::debug("delivered {} spans to experiment {}", spans, experiment_id);
}

}  // namespace proxy::exporter
