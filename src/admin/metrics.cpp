#include "admin/metrics.hpp"

#include <deque>
#include <iterator>
#include <limits>
#include <sstream>

#include <prometheus/text_serializer.h>

#include "config/values.hpp"
#include "policy/content_keys.hpp"

namespace proxy::admin {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

// The receiver's reject counters, one `reason` label each. New reject counters go here.
struct RejectReason {
  std::string_view reason;
  receiver::ReceiverStats::Counter receiver::ReceiverStats::*counter;
};
constexpr RejectReason kRejectReasons[] = {
    {"not_found", &receiver::ReceiverStats::rejected_not_found},
    {"method", &receiver::ReceiverStats::rejected_method},
    {"content_type", &receiver::ReceiverStats::rejected_content_type},
    {"content_encoding", &receiver::ReceiverStats::rejected_encoding},
    {"body_too_large", &receiver::ReceiverStats::rejected_too_large},
    {"header_too_large", &receiver::ReceiverStats::rejected_header_too_large},
    {"bad_body", &receiver::ReceiverStats::rejected_bad_body},
    {"invalid_spans", &receiver::ReceiverStats::rejected_invalid_spans},
    {"routing", &receiver::ReceiverStats::rejected_routing},
    {"queue_full", &receiver::ReceiverStats::rejected_queue_full},
    {"storage_error", &receiver::ReceiverStats::rejected_storage_error},
    {"draining", &receiver::ReceiverStats::rejected_draining},
    {"connection_limit", &receiver::ReceiverStats::rejected_connection_limit},
    {"unauthenticated", &receiver::ReceiverStats::rejected_unauthenticated},
    {"deadline", &receiver::ReceiverStats::rejected_deadline},
    {"header_count", &receiver::ReceiverStats::rejected_header_count},
    {"decompression_ratio", &receiver::ReceiverStats::rejected_decompression_ratio},
    {"too_many_spans", &receiver::ReceiverStats::rejected_too_many_spans},
    {"read_timeout", &receiver::ReceiverStats::read_timeouts},
};

constexpr std::string_view kEncodingNames[] = {"protobuf", "json", "other"};

std::uint64_t load(const std::atomic<std::uint64_t>& counter) {
  return counter.load(std::memory_order_relaxed);
}

// Builds one family at a time: name, help and type, then samples.
class Families {
 public:
  MetricFamily& family(std::string_view name, std::string help, MetricType type) {
    families_.push_back({std::string(kMetricPrefix) + std::string(name), std::move(help), type, {}});
    return families_.back();
  }

  void counter(std::string_view name, std::string help, double value, Labels labels = {}) {
    add(family(name, std::move(help), MetricType::Counter), value, std::move(labels));
  }

  void gauge(std::string_view name, std::string help, double value, Labels labels = {}) {
    add(family(name, std::move(help), MetricType::Gauge), value, std::move(labels));
  }

  static void add(MetricFamily& family, double value, Labels labels = {}) {
    ClientMetric metric;
    metric.label = std::move(labels);
    if (family.type == MetricType::Counter) metric.counter.value = value;
    else metric.gauge.value = value;
    family.metric.push_back(std::move(metric));
  }

  std::vector<MetricFamily> take() {
    return {std::make_move_iterator(families_.begin()), std::make_move_iterator(families_.end())};
  }

 private:
  std::deque<MetricFamily> families_;  // a deque: family() hands out references that must stay valid
};

double as_double(std::uint64_t value) { return static_cast<double>(value); }

void collect_receiver(Families& out, const receiver::ReceiverStats& stats) {
  auto& requests = out.family("receiver_requests_total",
                              "OTLP trace exports, by encoding and result (accepted: HTTP and "
                              "gRPC; rejected: HTTP answers with an error status, every reject "
                              "of both protocols is in receiver_rejects_total)",
                              MetricType::Counter);
  auto& spans = out.family("receiver_spans_total",
                           "Spans received (HTTP and gRPC), by encoding and result (accepted: queued "
                           "and acknowledged; invalid: dropped with partial_success or a 400)",
                           MetricType::Counter);
  for (std::size_t e = 0; e < receiver::ReceiverStats::kEncodingCount; ++e) {
    const ClientMetric::Label encoding{"encoding", std::string(kEncodingNames[e])};
    Families::add(requests, as_double(load(stats.requests_accepted_by_encoding[e])),
                  {encoding, {"result", "accepted"}});
    Families::add(requests, as_double(load(stats.requests_rejected_by_encoding[e])),
                  {encoding, {"result", "rejected"}});
    if (e == receiver::ReceiverStats::kOtherEncoding) continue;  // never decoded: no spans
    Families::add(spans, as_double(load(stats.spans_accepted_by_encoding[e])),
                  {encoding, {"result", "accepted"}});
    Families::add(spans, as_double(load(stats.spans_invalid_by_encoding[e])),
                  {encoding, {"result", "invalid"}});
  }
  auto& rejects = out.family("receiver_rejects_total",
                             "Requests refused (HTTP and gRPC; and HTTP read timeouts), by reason",
                             MetricType::Counter);
  for (const RejectReason& reject : kRejectReasons) {
    Families::add(rejects, as_double(load(stats.*reject.counter)),
                  {{"reason", std::string(reject.reason)}});
  }
  out.counter("receiver_compressed_requests_total", "Requests with a Content-Encoding",
              as_double(load(stats.requests_compressed)));
  out.gauge("receiver_connections", "Open OTLP/HTTP client connections",
            as_double(load(stats.connections_open)));
  out.counter("receiver_grpc_requests_total", "OTLP/gRPC Export calls received",
              as_double(load(stats.requests_grpc)));
  out.counter("receiver_trimmed_spans_total",
              "Spans kept with attributes cut to the receiver's limits",
              as_double(load(stats.spans_attributes_trimmed)));
  out.counter("receiver_dropped_attributes_total",
              "Attributes cut by the receiver's limits (also in dropped_attributes_count)",
              as_double(load(stats.attributes_dropped)));
  out.counter("receiver_idle_timeouts_total", "Keep-alive connections closed for idling",
              as_double(load(stats.idle_timeouts)));
  auto& discarded = out.family("receiver_discarded_requests_total",
                               "OTLP logs and metrics exports answered 200 and dropped (MLflow "
                               "stores traces only), by signal",
                               MetricType::Counter);
  Families::add(discarded, as_double(load(stats.logs_requests_discarded)), {{"signal", "logs"}});
  Families::add(discarded, as_double(load(stats.metrics_requests_discarded)),
                {{"signal", "metrics"}});
  out.counter("receiver_discarded_bytes_total", "Body bytes of discarded logs and metrics exports",
              as_double(load(stats.other_signal_bytes_discarded)));
}

void collect_routing(Families& out, const RoutingCounts& counts) {
  auto& routed = out.family("routed_spans_total",
                            "Spans routed, by route and the route's experiment (a client header "
                            "may pick another on header: honor routes)",
                            MetricType::Counter);
  for (const auto& [labels, spans] : counts.route_spans) {
    Families::add(routed, as_double(spans), {{"route", labels.first}, {"experiment", labels.second}});
  }
  out.counter("routing_split_requests_total", "Requests split across several routes",
              as_double(counts.requests_split));
  out.counter("routing_overridden_headers_total",
              "Client x-mlflow-experiment-id headers replaced by a route's experiment",
              as_double(counts.headers_overridden));

  auto& values = out.family("policy_actions_total",
                            "Attribute values changed by the policy, by mode and key family",
                            MetricType::Counter);
  for (std::size_t mode = 0; mode < policy::kModeCount; ++mode) {
    if (static_cast<config::PolicyMode>(mode) == config::PolicyMode::verbose) continue;
    const std::string mode_name(config::format_policy_mode(static_cast<config::PolicyMode>(mode)));
    for (std::size_t family = 0; family < policy::kFamilyCount; ++family) {
      Families::add(values, as_double(counts.policy_values[mode][family]),
                    {{"mode", mode_name},
                     {"family", std::string(policy::family_name(static_cast<policy::Family>(family)))}});
    }
  }
  out.counter("policy_redaction_matches_total", "Secrets and PII replaced by redact",
              as_double(counts.redaction_matches));
  out.counter("policy_depth_rejected_total",
              "Values nested deeper than max_depth, replaced", as_double(counts.depth_rejected));
  out.counter("policy_koog_hidden_total", "Koog's HIDDEN:non-empty values passed through",
              as_double(counts.koog_hidden));
  out.counter("policy_spans_total", "Spans the policy stage walked", as_double(counts.policy_spans));
}

void collect_queue(Families& out, const queue::SpanQueue& span_queue, const queue::Spool* spool) {
  const queue::QueueStats stats = span_queue.stats();
  out.gauge("queue_bytes", "Bytes of encoded spans held: queued, or sent and not yet confirmed",
            as_double(stats.bytes));
  out.gauge("queue_max_bytes", "queue.max_bytes", as_double(stats.max_bytes));
  out.gauge("queue_spans", "Spans waiting for an exporter worker", as_double(stats.queued_spans));
  out.gauge("queue_items", "Queue items (one request's spans for one experiment) waiting",
            as_double(stats.queued_items));
  if (spool == nullptr) return;
  const queue::SpoolStats& written = spool->stats();
  out.gauge("spool_bytes", "Bytes of spool segments on disk", as_double(spool->disk_bytes()));
  out.gauge("spool_max_bytes", "queue.max_disk_bytes", as_double(spool->options().max_disk_bytes));
  out.counter("spool_records_written_total", "Records appended to the spool",
              as_double(load(written.records_written)));
  out.counter("spool_written_bytes_total", "Bytes appended to the spool",
              as_double(load(written.bytes_written)));
  out.counter("spool_syncs_total", "fdatasync calls (one per group commit)",
              as_double(load(written.syncs)));
  out.counter("spool_write_errors_total", "Spool writes or flushes that failed",
              as_double(load(written.write_errors)));
  out.counter("spool_segments_deleted_total", "Spool segments deleted once all delivered",
              as_double(load(written.segments_deleted)));
  out.counter("spool_recovered_spans_total", "Undelivered spans found in the spool at start",
              as_double(load(written.spans_recovered)));
  out.counter("spool_corrupt_records_total", "Records skipped at start for a bad checksum",
              as_double(load(written.corrupt_records)));
  out.counter("spool_torn_tails_total", "Partly written segment tails truncated at start",
              as_double(load(written.torn_tails)));
}

void collect_exporter(Families& out, const exporter::Exporter& span_exporter) {
  const exporter::ExporterStats& stats = span_exporter.stats();
  auto& responses = out.family("upstream_requests_total",
                               "POST /v1/traces to MLflow, by HTTP status (error: no answer: "
                               "connection refused or reset, timeout)",
                               MetricType::Counter);
  for (int status = 0; status < exporter::ExporterStats::kMaxStatus; ++status) {
    const std::uint64_t count = load(stats.responses_by_status[static_cast<std::size_t>(status)]);
    if (count > 0) Families::add(responses, as_double(count), {{"status", std::to_string(status)}});
  }
  Families::add(responses, as_double(load(stats.transport_errors)), {{"status", "error"}});

  out.counter("exported_spans_total", "Spans MLflow accepted", as_double(load(stats.spans_delivered)));
  out.counter("export_retries_total", "Export attempts retried (after an error, a retryable "
              "status or an experiment lookup failure)", as_double(load(stats.retries)));
  out.counter("dead_lettered_spans_total", "Spans written to the dead-letter file",
              as_double(load(stats.spans_dead_lettered)));
  out.counter("dead_letter_write_failures_total",
              "Dead-letter writes that failed (those spans are lost and logged)",
              as_double(load(stats.dead_letter_write_failures)));
  out.counter("export_batches_split_total", "Rejected batches retried one request at a time",
              as_double(load(stats.batches_split)));
  const exporter::UpstreamVersion::Snapshot version = span_exporter.upstream_version().snapshot();
  out.gauge("upstream_mlflow_info",
            "MLflow's version from GET /version (unknown until read, and after an answer that "
            "is no version) and whether it decodes gzip request bodies (3.7 and newer)",
            1, {{"version", version.version.empty() ? "unknown" : version.version},
                {"accepts_gzip", version.gzip ? "true" : "false"}});
  out.counter("upstream_gzip_requests_total", "POST /v1/traces sent gzip-compressed",
              as_double(load(stats.requests_gzipped)));
  out.counter("upstream_gzip_refused_total",
              "gzip bodies MLflow could not read (415, or a 400 naming the protobuf format) "
              "under compression: auto, sent again uncompressed",
              as_double(load(stats.gzip_refused)));

  const LatencyHistogram::Snapshot latency = stats.upstream_latency.snapshot();
  auto& histogram = out.family("upstream_request_duration_seconds",
                               "Time from sending POST /v1/traces to MLflow's answer or the error",
                               MetricType::Histogram);
  ClientMetric metric;
  metric.histogram.sample_count = latency.count;
  metric.histogram.sample_sum = latency.sum_seconds;
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < latency.counts.size(); ++i) {
    cumulative += latency.counts[i];
    const double bound = i < LatencyHistogram::kBounds.size()
                             ? LatencyHistogram::kBounds[i]
                             : std::numeric_limits<double>::infinity();
    metric.histogram.bucket.push_back({cumulative, bound});
  }
  histogram.metric.push_back(std::move(metric));

  const auto health = span_exporter.health().snapshot();
  out.gauge("upstream_up", "1 while MLflow's last answer (export or /health probe) accepted spans",
            health.state == exporter::UpstreamHealth::State::accepting ? 1 : 0);
}

}  // namespace

std::vector<MetricFamily> ProxyCollector::Collect() const {
  Families out;
  out.gauge("build_info", "The proxy's version", 1, {{"version", PROXY_VERSION}});
  if (sources_.ready) out.gauge("ready", "1 while /readyz answers 200", sources_.ready() ? 1 : 0);
  if (sources_.reloads_applied != nullptr && sources_.reloads_rejected != nullptr) {
    auto& reloads = out.family("config_reloads_total",
                               "SIGHUP reloads of routes and policies, by result",
                               MetricType::Counter);
    Families::add(reloads, as_double(load(*sources_.reloads_applied)), {{"result", "applied"}});
    Families::add(reloads, as_double(load(*sources_.reloads_rejected)), {{"result", "rejected"}});
  }
  if (sources_.receiver != nullptr) collect_receiver(out, *sources_.receiver);
  if (sources_.routing != nullptr) collect_routing(out, sources_.routing->snapshot());
  if (sources_.queue != nullptr) collect_queue(out, *sources_.queue, sources_.spool);
  if (sources_.exporter != nullptr) collect_exporter(out, *sources_.exporter);
  return out.take();
}

std::string serialize_metrics(const prometheus::Collectable& collectable) {
  std::ostringstream text;
  prometheus::TextSerializer().Serialize(text, collectable.Collect());
  return text.str();
}

}  // namespace proxy::admin
