#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "admin/metrics.hpp"
#include "admin/routing_totals.hpp"
#include "config/config.hpp"
#include "exporter/exporter.hpp"
#include "queue/span_queue.hpp"
#include "receiver/stats.hpp"
#include "routing/router.hpp"

using namespace proxy;

namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.starts_with(line + "\n");
}

// One span per request with a GenAI prompt, so the default policy masks one value per span.
otlp::ExportRequest request_with_spans(int spans) {
  otlp::ExportRequest request;
  auto* scope_spans = request.add_resource_spans()->add_scope_spans();
  for (int i = 0; i < spans; ++i) {
    auto* span = scope_spans->add_spans();
    span->set_trace_id(std::string(16, '\x01'));
    span->set_span_id(std::string(7, '\x02') + static_cast<char>(i + 1));
    span->set_name("chat");
    auto* content = span->add_attributes();
    content->set_key("gen_ai.input.messages");
    content->mutable_value()->set_string_value("a prompt");
  }
  return request;
}

std::size_t route(const routing::Router& router, int spans) {
  auto request = request_with_spans(spans);
  auto routed = router.route(request, std::nullopt);
  return std::get<std::vector<queue::QueueItem>>(routed).size();
}

}  // namespace

TEST_CASE("the collector exposes the stages' counters with exact values", "[admin][metrics]") {
  config::Config config;
  config.mlflow.experiment_id = "7";
  receiver::ReceiverStats receiver_stats;
  using R = receiver::ReceiverStats;
  auto& http = receiver_stats.by_protocol[R::kHttp];
  auto& grpc = receiver_stats.by_protocol[R::kGrpc];
  receiver::bump(http.requests[R::kJson][R::kAccepted], 3);
  receiver::bump(http.spans[R::kJson][R::kSpansAccepted], 12);
  receiver::bump(http.requests[R::kOtherEncoding][R::kRejected]);
  receiver::bump(grpc.requests[R::kProtobuf][R::kAccepted], 5);
  receiver::bump(grpc.spans[R::kProtobuf][R::kSpansAccepted], 50);
  receiver::bump(grpc.spans[R::kProtobuf][R::kSpansRefused], 7);
  receiver::bump(receiver_stats.rejected_content_type);
  receiver::bump(receiver_stats.rejected_queue_full, 2);
  receiver::bump(receiver_stats.rejected_too_many_spans, 5);

  queue::SpanQueue span_queue(1000);
  std::vector<queue::QueueItem> items;
  items.push_back({ExperimentRef::by_id("7"), std::string(100, 'x'), 4});
  REQUIRE(span_queue.push(std::move(items)) == queue::PushResult::accepted);

  exporter::Exporter span_exporter(config, span_queue);
  auto router = std::make_shared<const routing::Router>(config);
  admin::RoutingTotals totals;
  totals.set_current(router);
  REQUIRE(route(*router, 2) == 1);

  admin::ProxyCollector collector({&receiver_stats, &span_queue, nullptr, &span_exporter, &totals,
                                   [] { return false; }, nullptr, nullptr,
                                   &router->preview_cache()});
  const std::string text = admin::serialize_metrics(collector);
  INFO(text);
  CHECK(has_line(text, "otlp_mlflow_proxy_build_info{version=\"" PROXY_VERSION "\"} 1"));
  CHECK(has_line(text, "otlp_mlflow_proxy_ready 0"));
  CHECK(has_line(text, "# TYPE otlp_mlflow_proxy_receiver_requests_total counter"));
  CHECK(has_line(text, "otlp_mlflow_proxy_receiver_requests_total{protocol=\"http\","
                       "encoding=\"json\",result=\"accepted\"} 3"));
  CHECK(has_line(text, "otlp_mlflow_proxy_receiver_requests_total{protocol=\"http\","
                       "encoding=\"other\",result=\"rejected\"} 1"));
  CHECK(has_line(text, "otlp_mlflow_proxy_receiver_spans_total{protocol=\"http\","
                       "encoding=\"json\",result=\"accepted\"} 12"));
  CHECK(has_line(text, "otlp_mlflow_proxy_receiver_requests_total{protocol=\"grpc\","
                       "encoding=\"protobuf\",result=\"accepted\"} 5"));
  CHECK(has_line(text, "otlp_mlflow_proxy_receiver_spans_total{protocol=\"grpc\","
                       "encoding=\"protobuf\",result=\"accepted\"} 50"));
  CHECK(has_line(text, "otlp_mlflow_proxy_receiver_spans_total{protocol=\"grpc\","
                       "encoding=\"protobuf\",result=\"refused\"} 7"));
  // gRPC is protobuf only: no JSON series for it
  CHECK(text.find("protocol=\"grpc\",encoding=\"json\"") == std::string::npos);
  CHECK(has_line(text, "otlp_mlflow_proxy_receiver_rejects_total{reason=\"queue_full\"} 2"));
  CHECK(has_line(text, "otlp_mlflow_proxy_receiver_rejects_total{reason=\"content_type\"} 1"));
  CHECK(has_line(text, "otlp_mlflow_proxy_receiver_rejects_total{reason=\"too_many_spans\"} 5"));
  CHECK(has_line(text, "otlp_mlflow_proxy_queue_bytes 100"));
  CHECK(has_line(text, "otlp_mlflow_proxy_queue_spans 4"));
  CHECK(has_line(text, "otlp_mlflow_proxy_queue_max_bytes 1000"));
  CHECK(has_line(text, "otlp_mlflow_proxy_routed_spans_total{route=\"default\",experiment=\"7\"} 2"));
  CHECK(has_line(text, "otlp_mlflow_proxy_policy_actions_total{mode=\"mask\",family=\"genai\"} 2"));
  CHECK(has_line(text, "otlp_mlflow_proxy_upstream_requests_total{status=\"error\"} 0"));
  CHECK(has_line(text, "otlp_mlflow_proxy_upstream_request_duration_seconds_count 0"));
  CHECK(has_line(text, "otlp_mlflow_proxy_upstream_request_duration_seconds_bucket{le=\"+Inf\"} 0"));
  CHECK(has_line(text, "otlp_mlflow_proxy_upstream_up 0"));
  // The two spans get no type (no operation, no model); both are roots without outputs, so both
  // looked for a preview and found none.
  CHECK(has_line(text, "otlp_mlflow_proxy_normalize_spans_total 2"));
  CHECK(has_line(text, "otlp_mlflow_proxy_normalize_changes_total{rule=\"span_type\"} 0"));
  CHECK(has_line(text, "otlp_mlflow_proxy_normalize_typed_spans_total{rule=\"koog_graph\","
                       "type=\"CHAIN\"} 0"));
  CHECK(has_line(text, "otlp_mlflow_proxy_preview_cache_entries 0"));
  CHECK(has_line(text, "otlp_mlflow_proxy_preview_cache_max_bytes 16777216"));
  CHECK(has_line(text, "otlp_mlflow_proxy_preview_cache_lookups_total{result=\"miss\"} 2"));
  CHECK(has_line(text, "otlp_mlflow_proxy_preview_cache_evictions_total{reason=\"ttl\"} 0"));
  CHECK(has_line(text, "otlp_mlflow_proxy_preview_hold_releases_total{result=\"filled\"} 0"));
  CHECK(has_line(text, "otlp_mlflow_proxy_queue_held_items 0"));
  // No spool in memory mode.
  CHECK(text.find("otlp_mlflow_proxy_spool_") == std::string::npos);
}

TEST_CASE("routing counters survive a reload: a retired router's counts are kept",
          "[admin][metrics][reload]") {
  config::Config config;
  config.mlflow.experiment_id = "7";
  admin::RoutingTotals totals;
  auto first = std::make_shared<const routing::Router>(config);
  totals.set_current(first);
  route(*first, 2);

  auto second = std::make_shared<const routing::Router>(config);
  totals.set_current(second);
  // A request still holding the old router counts on it after the swap.
  route(*first, 1);
  CHECK(totals.snapshot().route_spans.at({"default", "7"}) == 3);
  first.reset();  // the last request is done: the old router is folded and freed
  route(*second, 4);
  const admin::RoutingCounts counts = totals.snapshot();
  CHECK(counts.route_spans.at({"default", "7"}) == 7);
  CHECK(counts.policy_spans == 7);
  CHECK(totals.snapshot().route_spans.at({"default", "7"}) == 7);  // folding does not double
}

TEST_CASE("the latency histogram puts each observation in its bucket", "[admin][metrics]") {
  LatencyHistogram histogram;
  histogram.observe(std::chrono::microseconds(500));  // 0.0005 s: the first bucket (<= 0.001)
  histogram.observe(std::chrono::milliseconds(1));    // on a bound: that bucket (le is <=)
  histogram.observe(std::chrono::milliseconds(30));   // <= 0.05
  histogram.observe(std::chrono::seconds(60));        // +Inf
  const auto snapshot = histogram.snapshot();
  CHECK(snapshot.count == 4);
  CHECK(snapshot.counts[0] == 2);
  CHECK(snapshot.counts[5] == 1);
  CHECK(snapshot.counts.back() == 1);
  CHECK(snapshot.sum_seconds == Approx(60.0315));
}
