#include <catch2/catch.hpp>

#include <limits>
#include <string>

#include "otlp/attribute_limits.hpp"

using namespace proxy;

namespace {

otlp::ExportRequest span_with_attributes(int count) {
  otlp::ExportRequest request;
  auto* span = request.add_resource_spans()->add_scope_spans()->add_spans();
  span->set_name("s");
  for (int i = 0; i < count; ++i) span->add_attributes()->set_key("k" + std::to_string(i));
  return request;
}

}  // namespace

TEST_CASE("spans within the attribute limits are left alone", "[otlp][limits]") {
  auto request = span_with_attributes(3);
  const std::string before = request.SerializeAsString();
  const auto trimmed = otlp::trim_attributes(request, {3, 1, 1});
  CHECK(trimmed.spans == 0);
  CHECK(trimmed.attributes == 0);
  CHECK(trimmed.first.empty());
  CHECK(request.SerializeAsString() == before);
}

TEST_CASE("dropped_attributes_count saturates instead of wrapping", "[otlp][limits]") {
  auto request = span_with_attributes(10);
  auto* span = request.mutable_resource_spans(0)->mutable_scope_spans(0)->mutable_spans(0);
  span->set_dropped_attributes_count(std::numeric_limits<std::uint32_t>::max() - 2);
  const auto trimmed = otlp::trim_attributes(request, {4, 1, 1});
  CHECK(trimmed.attributes == 6);
  CHECK(span->attributes_size() == 4);
  CHECK(span->dropped_attributes_count() == std::numeric_limits<std::uint32_t>::max());
}

TEST_CASE("the first cut names the event it happened in", "[otlp][limits]") {
  auto request = span_with_attributes(1);
  auto* scope = request.mutable_resource_spans(0)->mutable_scope_spans(0);
  auto* second = scope->add_spans();
  second->set_name("tool call");
  second->add_events();
  auto* event = second->add_events();
  for (int i = 0; i < 4; ++i) event->add_attributes()->set_key("e");
  const auto trimmed = otlp::trim_attributes(request, {8, 2, 2});
  CHECK(trimmed.spans == 1);
  CHECK(trimmed.attributes == 2);
  CHECK(trimmed.first ==
        "resourceSpans[0].scopeSpans[0].spans[1].events[1] (name \"tool call\"): 4 attributes, "
        "limit 2");
}
