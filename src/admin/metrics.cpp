#include "admin/metrics.hpp"

#include <algorithm>
#include <deque>
#include <iterator>
#include <limits>
#include <sstream>
#include <utility>

#include <prometheus/text_serializer.h>

#include "config/values.hpp"
#include "policy/content_keys.hpp"

namespace proxy::admin {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;
using Counter = std::atomic<std::uint64_t>;
using receiver::ReceiverStats;

double value_of(const Counter& counter) {
  return static_cast<double>(counter.load(std::memory_order_relaxed));
}
double value_of(std::uint64_t value) { return static_cast<double>(value); }

// A metric with one sample, read from a field of a stages' stats struct (an atomic counter or a
// plain total). Most of /metrics is tables of these.
template <typename Stats, typename Field = Counter>
struct Scalar {
  std::string_view name;
  std::string_view help;
  MetricType type;
  Field Stats::*field;
};

// One sample of a labelled family, read from a field.
template <typename Stats>
struct Sample {
  std::string_view label_value;
  Counter Stats::*field;
};

// Builds one family at a time: name, help and type, then samples.
class Families {
 public:
  MetricFamily& family(std::string_view name, std::string_view help, MetricType type) {
    families_.push_back(
        {std::string(kMetricPrefix) + std::string(name), std::string(help), type, {}});
    return families_.back();
  }

  void single(std::string_view name, std::string_view help, MetricType type, double value,
              Labels labels = {}) {
    add(family(name, help, type), value, std::move(labels));
  }

  template <typename Stats, typename Field, std::size_t N>
  void scalars(const Stats& stats, const Scalar<Stats, Field> (&table)[N]) {
    for (const auto& scalar : table) {
      single(scalar.name, scalar.help, scalar.type, value_of(stats.*scalar.field));
    }
  }

  // A counter family with one label, one sample per table row.
  template <typename Stats, std::size_t N>
  void labelled(std::string_view name, std::string_view help, std::string_view label,
                const Stats& stats, const Sample<Stats> (&table)[N]) {
    MetricFamily& counters = family(name, help, MetricType::Counter);
    for (const auto& sample : table) {
      add(counters, value_of(stats.*sample.field),
          {{std::string(label), std::string(sample.label_value)}});
    }
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

constexpr auto kCounter = MetricType::Counter;
constexpr auto kGauge = MetricType::Gauge;

// ---- receiver ----

// The receiver's reject counters, one `reason` label each. New reject counters go here.
constexpr Sample<ReceiverStats> kRejectReasons[] = {
    {"not_found", &ReceiverStats::rejected_not_found},
    {"method", &ReceiverStats::rejected_method},
    {"content_type", &ReceiverStats::rejected_content_type},
    {"content_encoding", &ReceiverStats::rejected_encoding},
    {"body_too_large", &ReceiverStats::rejected_too_large},
    {"header_too_large", &ReceiverStats::rejected_header_too_large},
    {"bad_body", &ReceiverStats::rejected_bad_body},
    {"invalid_spans", &ReceiverStats::rejected_invalid_spans},
    {"routing", &ReceiverStats::rejected_routing},
    {"queue_full", &ReceiverStats::rejected_queue_full},
    {"storage_error", &ReceiverStats::rejected_storage_error},
    {"draining", &ReceiverStats::rejected_draining},
    {"connection_limit", &ReceiverStats::rejected_connection_limit},
    {"unauthenticated", &ReceiverStats::rejected_unauthenticated},
    {"deadline", &ReceiverStats::rejected_deadline},
    {"header_count", &ReceiverStats::rejected_header_count},
    {"decompression_ratio", &ReceiverStats::rejected_decompression_ratio},
    {"too_many_spans", &ReceiverStats::rejected_too_many_spans},
    {"read_timeout", &ReceiverStats::read_timeouts},
    {"tls_handshake", &ReceiverStats::tls_handshake_failures},
    {"tls_handshake_timeout", &ReceiverStats::tls_handshake_timeouts},
    {"plaintext_on_tls", &ReceiverStats::rejected_plaintext_on_tls},
};

constexpr Sample<ReceiverStats> kDiscardedSignals[] = {
    {"logs", &ReceiverStats::logs_requests_discarded},
    {"metrics", &ReceiverStats::metrics_requests_discarded},
};

constexpr Scalar<ReceiverStats> kReceiverScalars[] = {
    {"receiver_compressed_requests_total", "Requests with a Content-Encoding", kCounter,
     &ReceiverStats::requests_compressed},
    {"receiver_wire_path_requests_total",
     "Protobuf requests checked, routed and rewritten on their bytes (no route normalizes)", kCounter,
     &ReceiverStats::requests_wire_path},
    {"receiver_connections", "Open OTLP/HTTP client connections", kGauge,
     &ReceiverStats::connections_open},
    {"receiver_trimmed_spans_total", "Spans kept with attributes cut to the receiver's limits",
     kCounter, &ReceiverStats::spans_attributes_trimmed},
    {"receiver_dropped_attributes_total",
     "Attributes cut by the receiver's limits (also in dropped_attributes_count)", kCounter,
     &ReceiverStats::attributes_dropped},
    {"receiver_idle_timeouts_total", "Keep-alive connections closed for idling", kCounter,
     &ReceiverStats::idle_timeouts},
    {"receiver_discarded_bytes_total", "Body bytes of discarded logs and metrics exports",
     kCounter, &ReceiverStats::other_signal_bytes_discarded},
};

constexpr std::string_view kProtocolNames[] = {"http", "grpc"};
constexpr std::string_view kEncodingNames[] = {"protobuf", "json", "other"};
constexpr std::string_view kRequestResultNames[] = {"accepted", "rejected"};
constexpr std::string_view kSpanResultNames[] = {"accepted", "invalid", "refused"};
static_assert(std::size(kProtocolNames) == ReceiverStats::kProtocolCount);
static_assert(std::size(kEncodingNames) == ReceiverStats::kEncodingCount);
static_assert(std::size(kSpanResultNames) == ReceiverStats::kSpanResultCount);

void collect_receiver(Families& out, const ReceiverStats& stats) {
  auto& requests = out.family("receiver_requests_total",
                              "OTLP trace exports answered, by protocol, encoding and result",
                              kCounter);
  auto& spans = out.family("receiver_spans_total",
                           "Spans received, by protocol, encoding and result (accepted: queued and "
                           "acknowledged; invalid: dropped with partial_success or a 400; "
                           "refused: the whole request was refused, the client may send them again)",
                           kCounter);
  for (std::size_t p = 0; p < ReceiverStats::kProtocolCount; ++p) {
    const ClientMetric::Label protocol{"protocol", std::string(kProtocolNames[p])};
    const auto& door = stats.by_protocol[p];
    for (std::size_t e = 0; e < ReceiverStats::kEncodingCount; ++e) {
      // gRPC carries protobuf only; a request of another content type is never decoded.
      if (p == ReceiverStats::kGrpc && e != ReceiverStats::kProtobuf) continue;
      const ClientMetric::Label encoding{"encoding", std::string(kEncodingNames[e])};
      for (std::size_t r = 0; r < ReceiverStats::kRequestResultCount; ++r) {
        Families::add(requests, value_of(door.requests[e][r]),
                      {protocol, encoding, {"result", std::string(kRequestResultNames[r])}});
      }
      if (e == ReceiverStats::kOtherEncoding) continue;
      for (std::size_t r = 0; r < ReceiverStats::kSpanResultCount; ++r) {
        Families::add(spans, value_of(door.spans[e][r]),
                      {protocol, encoding, {"result", std::string(kSpanResultNames[r])}});
      }
    }
  }
  out.labelled("receiver_rejects_total",
               "Requests refused (HTTP and gRPC; and HTTP read timeouts), by reason", "reason",
               stats, kRejectReasons);
  out.scalars(stats, kReceiverScalars);
  out.labelled("receiver_discarded_requests_total",
               "OTLP logs and metrics exports answered 200 and dropped (MLflow stores traces "
               "only), by signal",
               "signal", stats, kDiscardedSignals);
}

// ---- routing, policy, normalize ----

constexpr Scalar<RoutingCounts, std::uint64_t> kRoutingScalars[] = {
    {"routing_split_requests_total", "Requests split across several routes", kCounter,
     &RoutingCounts::requests_split},
    {"routing_overridden_headers_total",
     "Client x-mlflow-experiment-id headers replaced by a route's experiment", kCounter,
     &RoutingCounts::headers_overridden},
    {"policy_redaction_matches_total", "Secrets and PII replaced by redact", kCounter,
     &RoutingCounts::redaction_matches},
    {"policy_depth_rejected_total", "Values nested deeper than max_depth, replaced", kCounter,
     &RoutingCounts::depth_rejected},
    {"policy_koog_hidden_total", "Koog's HIDDEN:non-empty values passed through", kCounter,
     &RoutingCounts::koog_hidden},
    {"policy_structured_values_total", "JSON content values masked leaf by leaf (structure: keep)",
     kCounter, &RoutingCounts::structured},
    {"policy_spans_total", "Spans the policy stage walked", kCounter, &RoutingCounts::policy_spans},
    {"normalize_spans_total", "Spans the normalize stage walked (routes with normalize on)",
     kCounter, &RoutingCounts::normalize_spans},
};

// The span type each built-in rule gives; user rules may give any.
constexpr std::pair<normalize::TypeSource, std::size_t> kBuiltinTypes[] = {
    {normalize::TypeSource::koog_graph, 1},  // CHAIN
    {normalize::TypeSource::agent_name, 2},  // AGENT
    {normalize::TypeSource::model, 0},       // LLM
};

void collect_routing(Families& out, const RoutingCounts& counts) {
  auto& routed = out.family("routed_spans_total",
                            "Spans routed, by route and the route's experiment (a client header "
                            "may pick another on header: honor routes)",
                            kCounter);
  for (const auto& [labels, spans] : counts.route_spans) {
    Families::add(routed, value_of(spans), {{"route", labels.first}, {"experiment", labels.second}});
  }
  auto& values = out.family("policy_actions_total",
                            "Attribute values changed by the policy, by mode and key family",
                            kCounter);
  for (std::size_t mode = 0; mode < policy::kModeCount; ++mode) {
    if (static_cast<config::PolicyMode>(mode) == config::PolicyMode::verbose) continue;
    const std::string mode_name(config::format_policy_mode(static_cast<config::PolicyMode>(mode)));
    for (std::size_t family = 0; family < policy::kFamilyCount; ++family) {
      Families::add(values, value_of(counts.policy_values[mode][family]),
                    {{"mode", mode_name},
                     {"family", std::string(policy::family_name(static_cast<policy::Family>(family)))}});
    }
  }
  out.scalars(counts, kRoutingScalars);
  auto& fallbacks = out.family("policy_structure_fallbacks_total",
                               "JSON-looking content given the whole-value mode instead, by reason",
                               kCounter);
  for (std::size_t i = 1; i < policy::kFallbackCount; ++i) {
    Families::add(fallbacks, value_of(counts.structure_fallbacks[i]),
                  {{"reason", std::string(policy::fallback_name(static_cast<policy::Fallback>(i)))}});
  }

  auto& changes = out.family("normalize_changes_total",
                             "Spans changed by a normalize rule, by rule (preview: roots given "
                             "their trace's preview at once; see preview_hold_releases_total)",
                             kCounter);
  for (std::size_t rule = 0; rule < normalize::kRuleCount; ++rule) {
    Families::add(changes, value_of(counts.normalize_changes[rule]),
                  {{"rule", std::string(normalize::rule_name(static_cast<normalize::Rule>(rule)))}});
  }
  auto& typed = out.family("normalize_typed_spans_total",
                           "Spans given an mlflow.spanType, by the rule that matched and the type",
                           kCounter);
  for (std::size_t source = 0; source < normalize::kTypeSourceCount; ++source) {
    const auto type_source = static_cast<normalize::TypeSource>(source);
    for (std::size_t type = 0; type < normalize::kSpanTypeCount; ++type) {
      const bool builtin = std::ranges::find(kBuiltinTypes, std::pair{type_source, type}) !=
                           std::end(kBuiltinTypes);
      const std::uint64_t n = counts.normalize_typed[source][type];
      if (!builtin && n == 0) continue;  // user rules: the types they gave
      Families::add(typed, value_of(n),
                    {{"rule", std::string(normalize::type_source_name(type_source))},
                     {"type", std::string(config::kSpanTypes[type])}});
    }
  }
}

// ---- trace previews ----

using normalize::PreviewCacheStats;
constexpr Sample<PreviewCacheStats> kPreviewLookups[] = {
    {"hit", &PreviewCacheStats::hits},
    {"miss", &PreviewCacheStats::misses},
};
constexpr Sample<PreviewCacheStats> kPreviewEvictions[] = {
    {"size", &PreviewCacheStats::evicted_size},
    {"ttl", &PreviewCacheStats::evicted_ttl},
    {"oversize", &PreviewCacheStats::evicted_oversize},
};
constexpr Sample<PreviewCacheStats> kHoldReleases[] = {
    {"filled", &PreviewCacheStats::filled_after_hold},
    {"unfilled", &PreviewCacheStats::released_unfilled},
};
constexpr Scalar<PreviewCacheStats> kPreviewScalars[] = {
    {"preview_cache_stored_total", "Traces whose preview candidates were cached", kCounter,
     &PreviewCacheStats::stored},
    {"preview_holds_total",
     "Agent roots held (normalize.preview_hold) because their trace's invoke_agent had not "
     "arrived",
     kCounter, &PreviewCacheStats::held},
};

void collect_previews(Families& out, const normalize::PreviewCache& cache) {
  const PreviewCacheStats& stats = cache.stats();
  out.single("preview_cache_entries", "Traces with a cached preview", kGauge,
             value_of(cache.entries()));
  out.single("preview_cache_bytes", "Bytes the cached previews count against max_bytes", kGauge,
             value_of(cache.bytes()));
  out.single("preview_cache_max_bytes", "preview_cache.max_bytes", kGauge,
             value_of(cache.config().max_bytes));
  out.scalars(stats, kPreviewScalars);
  out.labelled("preview_cache_lookups_total",
               "Roots without inputs/outputs looking up their trace's preview, by result",
               "result", stats, kPreviewLookups);
  out.labelled("preview_cache_evictions_total",
               "Cached previews dropped before their root arrived, by reason (size: the oldest, "
               "to make room; ttl: too old; oversize: bigger than the whole cache)",
               "reason", stats, kPreviewEvictions);
  out.labelled("preview_hold_releases_total",
               "Held roots exported, by whether they got a preview", "result", stats,
               kHoldReleases);
}

// ---- queue and spool ----

constexpr Scalar<queue::SpoolStats> kSpoolScalars[] = {
    {"spool_records_written_total", "Records appended to the spool", kCounter,
     &queue::SpoolStats::records_written},
    {"spool_written_bytes_total", "Bytes appended to the spool", kCounter,
     &queue::SpoolStats::bytes_written},
    {"spool_syncs_total", "fdatasync calls (one per group commit)", kCounter,
     &queue::SpoolStats::syncs},
    {"spool_segments_deleted_total", "Spool segments deleted once all delivered", kCounter,
     &queue::SpoolStats::segments_deleted},
    {"spool_recovered_spans_total", "Undelivered spans found in the spool at start", kCounter,
     &queue::SpoolStats::spans_recovered},
    {"spool_corrupt_records_total", "Records skipped at start for a bad checksum", kCounter,
     &queue::SpoolStats::corrupt_records},
    {"spool_torn_tails_total", "Partly written segment tails truncated at start", kCounter,
     &queue::SpoolStats::torn_tails},
    {"spool_reclaims_total",
     "Write errors answered by cutting back or sealing delivered segments to make room",
     kCounter, &queue::SpoolStats::reclaims},
};

void collect_spool_write_errors(Families& out, const queue::SpoolStats& stats) {
  auto& errors = out.family("spool_write_errors_total",
                            "Spool appends, flushes and segment creations that failed, by errno "
                            "(each failed request is retried once after reclaiming space)",
                            kCounter);
  for (std::size_t slot = 0; slot < queue::kWriteErrnoSlots; ++slot) {
    Families::add(errors, value_of(stats.write_errors_by_errno[slot]),
                  {{"errno", std::string(queue::write_errno_name(slot))}});
  }
}

void collect_queue(Families& out, const queue::SpanQueue& span_queue, const queue::Spool* spool) {
  const queue::QueueStats stats = span_queue.stats();
  out.single("queue_bytes", "Bytes of encoded spans held: queued, or sent and not yet confirmed",
             kGauge, value_of(stats.bytes));
  out.single("queue_max_bytes", "queue.max_bytes", kGauge, value_of(stats.max_bytes));
  out.single("queue_spans", "Spans waiting for an exporter worker", kGauge,
             value_of(stats.queued_spans));
  out.single("queue_items", "Queue items (one request's spans for one experiment) waiting",
             kGauge, value_of(stats.queued_items));
  out.single("queue_held_items", "Queue items held for a trace preview (normalize.preview_hold)",
             kGauge, value_of(stats.held_items));
  if (spool == nullptr) return;
  out.single("spool_bytes", "Bytes of spool segments on disk", kGauge, value_of(spool->disk_bytes()));
  out.single("spool_max_bytes", "queue.max_disk_bytes", kGauge,
             value_of(spool->options().max_disk_bytes));
  out.scalars(spool->stats(), kSpoolScalars);
  out.single("spool_writable", "0 while the spool cannot write (spans are refused with 503)",
             kGauge, spool->writable() ? 1 : 0);
  collect_spool_write_errors(out, spool->stats());
}

// ---- exporter ----

using exporter::ExporterStats;
constexpr Scalar<ExporterStats> kExporterScalars[] = {
    {"exported_spans_total", "Spans MLflow accepted", kCounter, &ExporterStats::spans_delivered},
    {"upstream_tls_handshake_failures_total",
     "TLS handshakes with MLflow that failed (certificate not trusted, name mismatch, client "
     "certificate refused); the spans stay queued",
     kCounter, &ExporterStats::tls_handshake_failures},
    {"export_retries_total",
     "Export attempts retried (after an error, a retryable status or an experiment lookup "
     "failure)",
     kCounter, &ExporterStats::retries},
    {"dead_lettered_spans_total", "Spans written to the dead-letter file", kCounter,
     &ExporterStats::spans_dead_lettered},
    {"dead_letter_write_failures_total",
     "Dead-letter writes that failed (those spans are lost and logged)", kCounter,
     &ExporterStats::dead_letter_write_failures},
    {"export_batches_split_total",
     "Requests MLflow refused as a whole, sent again in parts (request, trace, span)", kCounter,
     &ExporterStats::batches_split},
    {"upstream_gzip_requests_total", "POST /v1/traces sent gzip-compressed", kCounter,
     &ExporterStats::requests_gzipped},
    {"upstream_gzip_refused_total",
     "gzip bodies MLflow could not read (415, or a 400 naming the protobuf format) under "
     "compression: auto, sent again uncompressed",
     kCounter, &ExporterStats::gzip_refused},
};

void collect_exporter(Families& out, const exporter::Exporter& span_exporter) {
  const ExporterStats& stats = span_exporter.stats();
  auto& responses = out.family("upstream_requests_total",
                               "POST /v1/traces to MLflow, by HTTP status (error: no answer: "
                               "connection refused or reset, timeout)",
                               kCounter);
  for (int status = 0; status < ExporterStats::kMaxStatus; ++status) {
    const Counter& count = stats.responses_by_status[static_cast<std::size_t>(status)];
    if (count.load(std::memory_order_relaxed) > 0) {
      Families::add(responses, value_of(count), {{"status", std::to_string(status)}});
    }
  }
  Families::add(responses, value_of(stats.transport_errors), {{"status", "error"}});
  out.scalars(stats, kExporterScalars);
  const exporter::UpstreamVersion::Snapshot version = span_exporter.upstream_version().snapshot();
  out.single("upstream_mlflow_info",
             "MLflow's version from GET /version (unknown until read, and after an answer that "
             "is no version) and whether it decodes gzip request bodies (3.7 and newer)",
             kGauge, 1,
             {{"version", version.version.empty() ? "unknown" : version.version},
              {"accepts_gzip", version.gzip ? "true" : "false"}});

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
  out.single("upstream_up", "1 while MLflow's last answer (export or /health probe) accepted spans",
             kGauge, health.state == exporter::UpstreamHealth::State::accepting ? 1 : 0);
}

}  // namespace

std::vector<MetricFamily> ProxyCollector::Collect() const {
  Families out;
  out.single("build_info", "The proxy's version", kGauge, 1, {{"version", PROXY_VERSION}});
  if (sources_.ready) out.single("ready", "1 while /readyz answers 200", kGauge, sources_.ready() ? 1 : 0);
  if (sources_.reloads_applied != nullptr && sources_.reloads_rejected != nullptr) {
    auto& reloads = out.family("config_reloads_total",
                               "SIGHUP reloads of routes and policies, by result", kCounter);
    Families::add(reloads, value_of(*sources_.reloads_applied), {{"result", "applied"}});
    Families::add(reloads, value_of(*sources_.reloads_rejected), {{"result", "rejected"}});
  }
  if (sources_.receiver != nullptr) collect_receiver(out, *sources_.receiver);
  if (sources_.routing != nullptr) collect_routing(out, sources_.routing->snapshot());
  if (sources_.preview_cache != nullptr) collect_previews(out, *sources_.preview_cache);
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
