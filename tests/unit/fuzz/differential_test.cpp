// parsed_difference, through which every differential harness reports: silent on equal messages,
// and each failure names the side that does not parse or the field that differs.
#include <catch2/catch.hpp>

#include <string>

#include "differential.hpp"
#include "otlp/types.hpp"

namespace proxy::fuzz {
namespace {

otlp::ExportRequest request_with_spans(int spans, const std::string& name) {
  otlp::ExportRequest request;
  otlp::ScopeSpans& scope = *request.add_resource_spans()->add_scope_spans();
  for (int i = 0; i < spans; ++i) scope.add_spans()->set_name(name);
  return request;
}

}  // namespace

TEST_CASE("parsed_difference is silent on equal messages", "[differential]") {
  const otlp::ExportRequest request = request_with_spans(2, "a");
  const std::string bytes = request.SerializeAsString();
  CHECK_FALSE(parsed_difference<otlp::ExportRequest>(bytes, bytes).has_value());
  CHECK_FALSE(parsed_difference(request, bytes).has_value());
}

TEST_CASE("parsed_difference names the field that differs", "[differential]") {
  const std::string expected = request_with_spans(2, "a").SerializeAsString();
  otlp::ExportRequest changed = request_with_spans(2, "a");
  changed.mutable_resource_spans(0)->mutable_scope_spans(0)->mutable_spans(1)->set_name("b");
  const auto difference = parsed_difference<otlp::ExportRequest>(expected, changed.SerializeAsString());
  REQUIRE(difference.has_value());
  CHECK(*difference == "modified: resource_spans[0].scope_spans[0].spans[1].name: \"a\" -> \"b\"\n");
}

TEST_CASE("parsed_difference names the side that does not parse", "[differential]") {
  const std::string good = request_with_spans(1, "a").SerializeAsString();
  const std::string truncated("\x0a\x05", 2);
  CHECK(parsed_difference<otlp::ExportRequest>(truncated, good, kMessageVsWire) ==
        "the message path's output does not parse");
  CHECK(parsed_difference<otlp::ExportRequest>(good, truncated, kMessageVsWire) ==
        "the wire path's output does not parse");
}

TEST_CASE("parsed_difference cuts a long report and says how much it left out", "[differential]") {
  const std::string expected = request_with_spans(200, "a").SerializeAsString();
  const std::string actual = request_with_spans(200, "b").SerializeAsString();
  const auto difference = parsed_difference<otlp::ExportRequest>(expected, actual);
  REQUIRE(difference.has_value());
  CHECK(difference->size() < kReportLimit + 40);
  CHECK_THAT(*difference, Catch::Matchers::EndsWith(" more characters)"));
}

}  // namespace proxy::fuzz
