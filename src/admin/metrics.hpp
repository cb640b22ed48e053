// /metrics: the Prometheus text exposition of the counters the pipeline stages already keep.
// Nothing here runs on the hot path: the collector reads the stages' relaxed atomics (and the
// queue's mutex-guarded sizes) at scrape time and builds prometheus-cpp's metric model, which
// prometheus-cpp's TextSerializer writes out.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "admin/routing_totals.hpp"
#include "exporter/exporter.hpp"
#include "normalize/preview_cache.hpp"
#include "queue/span_queue.hpp"
#include "queue/spool.hpp"
#include "receiver/stats.hpp"

namespace proxy::admin {

inline constexpr std::string_view kMetricPrefix = "otlp_mlflow_proxy_";

// What the collector reads. Every pointer outlives the admin server; spool is null in memory
// mode, routing null when the proxy runs without routes (tests).
struct MetricSources {
  const receiver::ReceiverStats* receiver = nullptr;
  const queue::SpanQueue* queue = nullptr;
  const queue::Spool* spool = nullptr;
  const exporter::Exporter* exporter = nullptr;
  RoutingTotals* routing = nullptr;
  std::function<bool()> ready;  // the /readyz verdict, as a gauge
  const std::atomic<std::uint64_t>* reloads_applied = nullptr;   // SIGHUP
  const std::atomic<std::uint64_t>* reloads_rejected = nullptr;
  const normalize::PreviewCache* preview_cache = nullptr;  // shared by every router
};

class ProxyCollector final : public prometheus::Collectable {
 public:
  explicit ProxyCollector(MetricSources sources) : sources_(std::move(sources)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  MetricSources sources_;
};

// The text exposition format (version 0.0.4) of everything `collectable` reports.
std::string serialize_metrics(const prometheus::Collectable& collectable);

inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace proxy::admin
