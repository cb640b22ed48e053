#include <catch2/catch.hpp>

#include "exporter/request_split.hpp"
#include "otlp/types.hpp"

using namespace proxy;
using namespace proxy::exporter;

namespace {

otlp::ResourceSpans& add_resource(otlp::ExportRequest& request, const std::string& service) {
  otlp::ResourceSpans& resource_spans = *request.add_resource_spans();
  auto& attribute = *resource_spans.mutable_resource()->add_attributes();
  attribute.set_key("service.name");
  attribute.mutable_value()->set_string_value(service);
  resource_spans.set_schema_url("https://opentelemetry.io/schemas/1.26.0");
  return resource_spans;
}

void add_span(otlp::ScopeSpans& scope_spans, char trace, char span) {
  otlp::Span& added = *scope_spans.add_spans();
  added.set_trace_id(std::string(16, trace));
  added.set_span_id(std::string(8, span));
  added.set_name(std::string("span ") + span);
}

queue::QueueItem item_of(const otlp::ExportRequest& request, std::uint64_t record_id = 9) {
  std::uint32_t spans = 0;
  for (const auto& resource_spans : request.resource_spans()) {
    for (const auto& scope_spans : resource_spans.scope_spans()) spans += scope_spans.spans_size();
  }
  queue::QueueItem item;
  item.experiment = ExperimentRef::by_name("agents");
  item.payload = request.SerializeAsString();
  item.span_count = spans;
  item.record_id = record_id;
  return item;
}

otlp::ExportRequest parsed(const std::vector<queue::QueueItem>& part) {
  REQUIRE(part.size() == 1);
  otlp::ExportRequest request;
  REQUIRE(request.ParseFromString(part.front().payload));
  return request;
}

// Two services; trace 'a' spans both, trace 'b' only the first; two scopes in the first.
otlp::ExportRequest two_traces() {
  otlp::ExportRequest request;
  otlp::ResourceSpans& first = add_resource(request, "planner");
  otlp::ScopeSpans& koog = *first.add_scope_spans();
  koog.mutable_scope()->set_name("ai.koog");
  add_span(koog, 'a', '1');
  add_span(koog, 'b', '2');
  otlp::ScopeSpans& http = *first.add_scope_spans();
  http.mutable_scope()->set_name("okhttp");
  add_span(http, 'a', '3');
  otlp::ResourceSpans& second = add_resource(request, "coder");
  otlp::ScopeSpans& tools = *second.add_scope_spans();
  tools.mutable_scope()->set_name("tools");
  add_span(tools, 'a', '4');
  return request;
}

}  // namespace

TEST_CASE("a batch of several requests splits into those requests", "[exporter][split]") {
  const std::vector<queue::QueueItem> batch{item_of(two_traces(), 1), item_of(two_traces(), 2)};
  const RequestSplit split = split_request(batch);
  CHECK(split.unit == SplitUnit::request);
  REQUIRE(split.parts.size() == 2);
  CHECK(split.parts[0].front().record_id == 1);
  CHECK(split.parts[1].front().payload == batch[1].payload);
}

TEST_CASE("a request of several traces splits by trace, keeping resources and scopes",
          "[exporter][split]") {
  const RequestSplit split = split_request({item_of(two_traces())});
  CHECK(split.unit == SplitUnit::trace);
  REQUIRE(split.parts.size() == 2);

  const auto& trace_a = split.parts[0].front();
  CHECK(trace_a.span_count == 3);
  CHECK(trace_a.record_id == 9);
  CHECK(trace_a.experiment == ExperimentRef::by_name("agents"));
  const otlp::ExportRequest a = parsed(split.parts[0]);
  REQUIRE(a.resource_spans_size() == 2);
  CHECK(a.resource_spans(0).resource().attributes(0).value().string_value() == "planner");
  CHECK(a.resource_spans(0).schema_url() == "https://opentelemetry.io/schemas/1.26.0");
  REQUIRE(a.resource_spans(0).scope_spans_size() == 2);
  CHECK(a.resource_spans(0).scope_spans(0).scope().name() == "ai.koog");
  CHECK(a.resource_spans(0).scope_spans(0).spans(0).span_id() == std::string(8, '1'));
  CHECK(a.resource_spans(0).scope_spans(1).scope().name() == "okhttp");
  CHECK(a.resource_spans(1).resource().attributes(0).value().string_value() == "coder");
  CHECK(a.resource_spans(1).scope_spans(0).spans(0).span_id() == std::string(8, '4'));

  const otlp::ExportRequest b = parsed(split.parts[1]);
  CHECK(split.parts[1].front().span_count == 1);
  REQUIRE(b.resource_spans_size() == 1);
  REQUIRE(b.resource_spans(0).scope_spans_size() == 1);
  CHECK(b.resource_spans(0).scope_spans(0).scope().name() == "ai.koog");
  CHECK(b.resource_spans(0).scope_spans(0).spans(0).span_id() == std::string(8, '2'));
}

TEST_CASE("one trace splits by span", "[exporter][split]") {
  otlp::ExportRequest request;
  otlp::ScopeSpans& scope = *add_resource(request, "planner").add_scope_spans();
  for (char span : {'1', '2', '3'}) add_span(scope, 'a', span);
  const RequestSplit split = split_request({item_of(request)});
  CHECK(split.unit == SplitUnit::span);
  REQUIRE(split.parts.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    const otlp::ExportRequest part = parsed(split.parts[i]);
    CHECK(split.parts[i].front().span_count == 1);
    CHECK(part.resource_spans(0).resource().attributes(0).value().string_value() == "planner");
    CHECK(part.resource_spans(0).scope_spans(0).spans(0).span_id() ==
          std::string(8, static_cast<char>('1' + i)));
  }
}

TEST_CASE("a single span or a payload that does not parse cannot split", "[exporter][split]") {
  otlp::ExportRequest request;
  add_span(*add_resource(request, "planner").add_scope_spans(), 'a', '1');
  CHECK(split_request({item_of(request)}).parts.empty());

  queue::QueueItem garbage;
  garbage.payload = "\xff\xff\xff";
  garbage.span_count = 5;
  CHECK(split_request({garbage}).parts.empty());
  CHECK(split_request({}).parts.empty());
}
