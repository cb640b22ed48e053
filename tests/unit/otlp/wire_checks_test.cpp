// The receiver's checks on the wire against the message path (decode, trim_attributes,
// remove_invalid_spans) on random requests and limits, through the wire_checks fuzz target's
// comparison: equal requests parsed back, equal counts and texts, the same bytes refused.
#include <catch2/catch.hpp>

#include <string>

#include <google/protobuf/stubs/logging.h>

#include "otlp/attribute_limits.hpp"
#include "otlp/protobuf.hpp"
#include "otlp/wire_checks.hpp"
#include "support/random_otlp.hpp"
#include "wire_checks_differential.hpp"

namespace proxy::otlp::wire {
namespace {

using testing::corrupt;
using testing::pick;
using testing::Random;
using testing::checks::random_request;

AttributeLimits random_limits(Random& random) {
  return {static_cast<std::size_t>(pick(random, 14)), static_cast<std::size_t>(pick(random, 7)),
          static_cast<std::size_t>(pick(random, 7))};
}

// Empty when the two paths agree on `body`.
std::string compare(const std::string& body, const AttributeLimits& limits, ChecksOutcome& outcome) {
  const fuzz::WireChecksComparison comparison = fuzz::compare_wire_checks(body, limits);
  outcome = comparison.wire;
  return comparison.mismatch;
}

ExportRequest one_span_request() {
  ExportRequest request;
  Span& span = *request.add_resource_spans()->add_scope_spans()->add_spans();
  span.set_trace_id(std::string(16, '\x01'));
  span.set_span_id(std::string(8, '\x02'));
  span.set_name("chat");
  return request;
}

ChecksResult check(const ExportRequest& request, const AttributeLimits& limits, ExportRequest& parsed) {
  SpanChecker checker;
  std::string out;
  const ChecksResult result = checker.check(request.SerializeAsString(), limits, out);
  if (result.outcome == ChecksOutcome::rewritten) REQUIRE(parsed.ParseFromString(out));
  if (result.outcome == ChecksOutcome::unchanged) CHECK(out.empty());
  return result;
}

}  // namespace

TEST_CASE("the wire checks count, cut and remove as the message path does on random requests", "[wire]") {
  Random random(20261207);
  int rewritten = 0;
  int unchanged = 0;
  for (int round = 0; round < 2000; ++round) {
    const AttributeLimits limits = random_limits(random);
    const std::string body = random_request(random);
    ChecksOutcome outcome = ChecksOutcome::unsupported;
    INFO("round " << round);
    REQUIRE(compare(body, limits, outcome) == "");
    REQUIRE(outcome != ChecksOutcome::unsupported);
    REQUIRE(outcome != ChecksOutcome::malformed);
    rewritten += outcome == ChecksOutcome::rewritten ? 1 : 0;
    unchanged += outcome == ChecksOutcome::unchanged ? 1 : 0;
  }
  // Both branches must be exercised for the comparison to mean something.
  CHECK(rewritten > 500);
  CHECK(unchanged > 100);
}

TEST_CASE("the wire checks refuse what protobuf refuses on corrupted random requests", "[wire]") {
  const google::protobuf::LogSilencer quiet;
  Random random(7);
  int refused = 0;
  for (int round = 0; round < 2000; ++round) {
    const AttributeLimits limits = random_limits(random);
    const std::string body = corrupt(random, random_request(random));
    ChecksOutcome outcome = ChecksOutcome::unsupported;
    INFO("round " << round);
    REQUIRE(compare(body, limits, outcome) == "");
    refused += outcome == ChecksOutcome::malformed ? 1 : 0;
  }
  CHECK(refused > 300);
}

TEST_CASE("the wire checks cut span, event and link attributes past the limits into the dropped counts", "[wire]") {
  ExportRequest request = one_span_request();
  Span& span = *request.mutable_resource_spans(0)->mutable_scope_spans(0)->mutable_spans(0);
  for (int a = 0; a < 5; ++a) span.add_attributes()->set_key("a" + std::to_string(a));
  span.set_dropped_attributes_count(0xFFFFFFFEu);
  Span::Event& event = *span.add_events();
  for (int a = 0; a < 3; ++a) event.add_attributes()->set_key("e" + std::to_string(a));
  Span::Link& link = *span.add_links();
  for (int a = 0; a < 4; ++a) link.add_attributes()->set_key("l" + std::to_string(a));
  ExportRequest parsed;
  const ChecksResult result = check(request, {2, 1, 4}, parsed);
  REQUIRE(result.outcome == ChecksOutcome::rewritten);
  const Span& cut = parsed.resource_spans(0).scope_spans(0).spans(0);
  CHECK(cut.attributes_size() == 2);
  CHECK(cut.attributes(1).key() == "a1");
  CHECK(cut.dropped_attributes_count() == 0xFFFFFFFFu);  // saturated
  CHECK(cut.events(0).attributes_size() == 1);
  CHECK(cut.events(0).dropped_attributes_count() == 2);
  CHECK(cut.links(0).attributes_size() == 4);
  CHECK(result.trimmed.spans == 1);
  CHECK(result.trimmed.attributes == 5);
  CHECK(result.trimmed.first == "resourceSpans[0].scopeSpans[0].spans[0] (name \"chat\"): 5 attributes, limit 2");
}

TEST_CASE("the wire checks remove spans with unusable ids, then empty scopes and resources", "[wire]") {
  ExportRequest request = one_span_request();
  ResourceSpans& second = *request.add_resource_spans();
  Span& zero = *second.add_scope_spans()->add_spans();
  zero = request.resource_spans(0).scope_spans(0).spans(0);
  zero.set_span_id(std::string(8, '\0'));
  zero.set_name("zero");
  Span& parent = *request.mutable_resource_spans(0)->mutable_scope_spans(0)->add_spans();
  parent = zero;
  parent.set_span_id(std::string(8, '\x03'));
  parent.set_parent_span_id("abc");
  ExportRequest parsed;
  const ChecksResult result = check(request, {}, parsed);
  REQUIRE(result.outcome == ChecksOutcome::rewritten);
  CHECK(result.received == 3);
  CHECK(result.valid == 1);
  CHECK(result.invalid.rejected == 2);
  CHECK(result.invalid.first_problem ==
        "resourceSpans[0].scopeSpans[0].spans[1] (name \"zero\", spanId 0303030303030303): parentSpanId must be "
        "empty or 8 bytes, got 3");
  REQUIRE(parsed.resource_spans_size() == 1);  // the second resource had only the zero span
  CHECK(parsed.resource_spans(0).scope_spans(0).spans_size() == 1);
  CHECK(parsed.resource_spans(0).scope_spans(0).spans(0).name() == "chat");
}

TEST_CASE("the wire checks remove scopes and resources sent without spans", "[wire]") {
  ExportRequest request = one_span_request();
  request.mutable_resource_spans(0)->add_scope_spans()->mutable_scope()->set_name("empty");
  request.add_resource_spans();
  ExportRequest parsed;
  const ChecksResult result = check(request, {}, parsed);
  REQUIRE(result.outcome == ChecksOutcome::rewritten);
  CHECK(result.invalid.rejected == 0);
  CHECK(parsed.resource_spans_size() == 1);
  CHECK(parsed.resource_spans(0).scope_spans_size() == 1);
}

TEST_CASE("the wire checks write nothing for a request they leave alone", "[wire]") {
  ExportRequest request = one_span_request();
  request.mutable_resource_spans(0)->mutable_scope_spans(0)->mutable_spans(0)->add_attributes()->set_key("a");
  ExportRequest parsed;
  const ChecksResult result = check(request, {1, 1, 1}, parsed);
  CHECK(result.outcome == ChecksOutcome::unchanged);
  CHECK(result.received == 1);
  CHECK(result.valid == 1);
  CHECK(result.trimmed.attributes == 0);
}

TEST_CASE("the wire checks read a repeated id as protobuf does: the last one counts", "[wire]") {
  const ExportRequest request = one_span_request();
  // The span again with a second, all-zero span id appended.
  std::string span = request.resource_spans(0).scope_spans(0).spans(0).SerializeAsString();
  span += std::string("\x12\x08", 2) + std::string(8, '\0');
  const std::string scope = "\x12" + std::string(1, static_cast<char>(span.size())) + span;
  const std::string resource = "\x12" + std::string(1, static_cast<char>(scope.size())) + scope;
  const std::string body = "\x0a" + std::string(1, static_cast<char>(resource.size())) + resource;
  SpanChecker checker;
  std::string out;
  const ChecksResult result = checker.check(body, {}, out);
  CHECK(result.outcome == ChecksOutcome::rewritten);
  CHECK(result.invalid.rejected == 1);
  CHECK(result.valid == 0);
  CHECK(out.empty());  // nothing left: an empty request
  ChecksOutcome outcome = ChecksOutcome::unsupported;
  CHECK(compare(body, {}, outcome) == "");
}

TEST_CASE("the wire checks leave groups to the message path and refuse truncated bytes", "[wire]") {
  SpanChecker checker;
  std::string out;
  CHECK(checker.check(std::string("\x13\x14", 2), {}, out).outcome == ChecksOutcome::unsupported);
  CHECK(checker.check(std::string("\x0a\x05\x12", 3), {}, out).outcome == ChecksOutcome::malformed);
  CHECK(out.empty());
}

}  // namespace proxy::otlp::wire
