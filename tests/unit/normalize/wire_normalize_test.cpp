// Normalization on the wire against the message path (issue 21): random Koog-, GenAI- and
// OpenInference-shaped requests under random normalizers must parse back equal with equal
// counters and equal preview candidates; one case per rule shows each rule fires on the wire;
// refusals match.
#include <catch2/catch.hpp>

#include <string>

#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/unknown_field_set.h>

#include "normalize/normalize.hpp"
#include "normalize/wire_normalize.hpp"
#include "otlp/types.hpp"
#include "support/random_otlp.hpp"
#include "wire_normalize_differential.hpp"

namespace proxy::normalize {
namespace {

using policy::WireOutcome;
using testing::corrupt;
using testing::one_of;
using testing::pick;
using testing::random_key_values;
using testing::Random;

const char* const kKeys[] = {
    "koog.strategy.name", "koog.node.id", "koog.subgraph.id", "koog.node.input", "koog.node.output",
    "koog.subgraph.input", "koog.subgraph.output", "gen_ai.operation.name", "gen_ai.request.model",
    "gen_ai.input.messages", "gen_ai.output.messages", "system_instructions", "gen_ai.system_instructions",
    "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.conversation.id", "enduser.id",
    "session.id", "user.id", "gen_ai.system", "openinference.span.kind", "input.value", "output.value",
    "mlflow.spanType", "mlflow.spanInputs", "mlflow.spanOutputs", "otel.span.kind", "otel.scope.name",
    "otel.links", "service.name", "service.version", "deployment.environment.name", "telemetry.sdk.language",
    "traceloop.span.kind", "custom"};

const char* const kTexts[] = {
    "",
    "0",
    "12",
    "-3",
    "007",
    "12a",
    "99999999999999999999",
    "chat",
    "invoke_agent",
    "create_agent",
    "execute_tool",
    "openai",
    "gpt-4o",
    "__start__",
    "__finish__",
    "text_completion",
    "HIDDEN:non-empty",
    "h\xc3\xa9llo",
    "{not json",
    "null",
    "\"quoted\"",
    R"({"city":"Paris","days":[1,2.5,true,null]})",
    R"([{"role":"user","parts":[{"type":"text","content":"weather?"}]}])",
    R"([{"role":"System","parts":[{"type":"text","content":"be brief"}]},{"role":"user","parts":[]}])",
    R"([{"type":"text","content":"You are a weather agent"}])",
};

const char* const kNames[] = {"invoke_agent weather", "create_agent weather", "invoke_agent", "chat gpt-4o",
                              "execute_tool search", "tool search", "node-1", "strategy", "", "invoke_agents"};

// The keys and texts normalization reads, nested shallowly, with unknown fields that copies and
// rewrites must keep.
const testing::ValueTables kValues{.keys = kKeys, .texts = kTexts, .max_nesting = 2, .unknown_fields = true};

void random_links(Random& random, otlp::Span& span) {
  for (int l = pick(random, 4) == 0 ? 1 + pick(random, 2) : 0; l > 0; --l) {
    auto* link = span.add_links();
    link->set_trace_id(std::string(16, static_cast<char>(pick(random, 256))));
    link->set_span_id(std::string(8, '\x07'));
    random_key_values(random, kValues, *link->mutable_attributes(), pick(random, 3), 0);
  }
}

void random_span(Random& random, otlp::Span& span) {
  span.set_trace_id(std::string(16, static_cast<char>(1 + pick(random, 3))));
  span.set_span_id(std::string(8, static_cast<char>(1 + pick(random, 200))));
  if (pick(random, 3) != 0) span.set_parent_span_id(std::string(8, '\x01'));
  span.set_name(one_of(random, kNames));
  span.set_kind(static_cast<opentelemetry::proto::trace::v1::Span::SpanKind>(pick(random, 8)));
  span.set_start_time_unix_nano(1'700'000'000'000'000'000ULL + static_cast<unsigned>(pick(random, 1000)));
  random_key_values(random, kValues, *span.mutable_attributes(), pick(random, 10), 0);
  random_links(random, span);
  if (pick(random, 3) == 0) span.add_events()->set_name("gen_ai.choice");
  if (pick(random, 3) == 0) span.mutable_status()->set_message("failed");
}

std::string random_request(Random& random) {
  otlp::ExportRequest request;
  for (int r = 1 + pick(random, 2); r > 0; --r) {
    auto* resource_spans = request.add_resource_spans();
    if (pick(random, 5) != 0) {
      random_key_values(random, kValues, *resource_spans->mutable_resource()->mutable_attributes(), pick(random, 6), 0);
    }
    for (int s = 1 + pick(random, 2); s > 0; --s) {
      auto* scope_spans = resource_spans->add_scope_spans();
      if (pick(random, 4) != 0) scope_spans->mutable_scope()->set_name(pick(random, 2) ? "ai.koog" : "openinference");
      if (pick(random, 2) != 0) scope_spans->mutable_scope()->set_version("1.0.0");
      for (int i = 1 + pick(random, 4); i > 0; --i) random_span(random, *scope_spans->add_spans());
    }
  }
  return request.SerializeAsString();
}

config::NormalizeConfig random_config(Random& random) {
  config::NormalizeConfig config = fuzz::normalize_config_from(static_cast<std::uint8_t>(pick(random, 256)),
                                                               static_cast<std::uint8_t>(pick(random, 256)));
  if (pick(random, 4) == 0) config.resource_attributes.push_back("gen_ai.usage.output_tokens");
  if (pick(random, 4) == 0) config.resource_attributes.push_back("enduser.id");
  return config;
}

std::string describe(const std::string& body) {
  otlp::ExportRequest parsed;
  parsed.ParseFromString(body);
  return parsed.DebugString();
}

// Runs both paths, requires agreement, and returns the wire path's output and counters.
NormalizeTally agreed_tally(const Normalizer& normalizer, const std::string& body, std::string& out) {
  const fuzz::NormalizeComparison comparison = fuzz::compare_wire_normalize(normalizer, body);
  INFO(comparison.mismatch);
  REQUIRE(comparison.wire == WireOutcome::rewritten);
  REQUIRE(comparison.mismatch.empty());
  WireNormalizer wire;
  NormalizeTally tally;
  REQUIRE(wire.normalize(normalizer, body, out, tally).outcome == WireOutcome::rewritten);
  return tally;
}

TEST_CASE("normalization on the wire gives what the message path gives, on random requests and normalizers",
          "[wire]") {
  Random random(20261207);
  std::uint64_t changed = 0;
  for (int i = 0; i < 3000; ++i) {
    const Normalizer normalizer(random_config(random));
    const std::string body = random_request(random);
    INFO("case " << i << "\n" << describe(body));
    // The generator writes what protobuf writes: nothing the wire path has to leave alone, so
    // every request is rewritten.
    std::string out;
    agreed_tally(normalizer, body, out);
    changed += out != body ? 1 : 0;
  }
  CHECK(changed > 2000);  // the rules did fire, so the comparison compared changes
}

TEST_CASE("normalization on the wire refuses what protobuf refuses on corrupted random requests", "[wire]") {
  const google::protobuf::LogSilencer quiet;  // protobuf logs every string that is not UTF-8
  Random random(7);
  int malformed = 0;
  for (int i = 0; i < 3000; ++i) {
    const Normalizer normalizer(random_config(random));
    const std::string body = corrupt(random, random_request(random));
    const fuzz::NormalizeComparison comparison = fuzz::compare_wire_normalize(normalizer, body);
    INFO("case " << i);
    INFO(comparison.mismatch);
    REQUIRE(comparison.mismatch.empty());
    malformed += comparison.wire == WireOutcome::malformed ? 1 : 0;
  }
  CHECK(malformed > 300);
}

// A Koog-like request with one span the test shapes.
struct OneSpan {
  otlp::ExportRequest request;
  otlp::ResourceSpans* resource_spans = request.add_resource_spans();
  otlp::ScopeSpans* scope = resource_spans->add_scope_spans();
  otlp::Span* span = scope->add_spans();

  OneSpan() {
    resource("service.name", "weather");
    scope->mutable_scope()->set_name("ai.koog");
    scope->mutable_scope()->set_version("1.0.0");
    span->set_trace_id(std::string(16, '\x11'));
    span->set_span_id(std::string(8, '\x22'));
    span->set_name("node-1");
  }
  void resource(const std::string& key, const std::string& value) {
    auto* attribute = resource_spans->mutable_resource()->add_attributes();
    attribute->set_key(key);
    attribute->mutable_value()->set_string_value(value);
  }
  OneSpan& set(const std::string& key, const std::string& value) {
    auto* attribute = span->add_attributes();
    attribute->set_key(key);
    attribute->mutable_value()->set_string_value(value);
    return *this;
  }
};

NormalizeTally wire_tally(const config::NormalizeConfig& config, const OneSpan& request) {
  std::string out;
  return agreed_tally(Normalizer(config), request.request.SerializeAsString(), out);
}

TEST_CASE("each rule fires on the wire as on messages", "[wire]") {
  config::NormalizeConfig config;
  SECTION("resource attributes, kind, scope, links") {
    OneSpan request;
    request.span->set_kind(opentelemetry::proto::trace::v1::Span::SPAN_KIND_CLIENT);
    request.span->add_links()->set_trace_id(std::string(16, '\x33'));
    config.links = true;
    const NormalizeTally tally = wire_tally(config, request);
    CHECK(tally.count(Rule::resource_attribute) == 1);
    CHECK(tally.count(Rule::span_kind) == 1);
    CHECK(tally.count(Rule::scope) == 1);
    CHECK(tally.count(Rule::links) == 1);
  }
  SECTION("span types: user rule, Koog graph, agent name, model") {
    config.span_type_rules.push_back({"tool *", "", "", "TOOL"});
    OneSpan tool;
    tool.span->set_name("tool search");
    CHECK(wire_tally(config, tool).typed[0][3] == 1);
    OneSpan node;
    node.set("koog.node.id", "n1");
    CHECK(wire_tally(config, node).typed[1][1] == 1);
    OneSpan agent;
    agent.span->set_name("invoke_agent weather");
    CHECK(wire_tally(config, agent).typed[2][2] == 1);
    OneSpan model;
    model.set("gen_ai.request.model", "gpt-4o");
    CHECK(wire_tally(config, model).typed[3][0] == 1);
  }
  SECTION("Koog inputs (JSON as structure) and outputs (not JSON, as sent)") {
    OneSpan request;
    request.set("koog.node.input", R"({"city":"Paris"})").set("koog.subgraph.output", "{not json");
    const NormalizeTally tally = wire_tally(config, request);
    CHECK(tally.count(Rule::inputs) == 1);
    CHECK(tally.count(Rule::outputs) == 1);
  }
  SECTION("system instructions joined into the inputs") {
    OneSpan request;
    request.set("gen_ai.input.messages", R"([{"role":"user","parts":[]}])")
        .set("system_instructions", R"([{"type":"text","content":"be brief"}])");
    CHECK(wire_tally(config, request).count(Rule::system_instructions) == 1);
  }
  SECTION("sessions, users and token counts") {
    OneSpan request;
    request.set("gen_ai.conversation.id", "c1").set("enduser.id", "u1").set("gen_ai.usage.input_tokens", "12");
    request.set("gen_ai.usage.output_tokens", "x");
    const NormalizeTally tally = wire_tally(config, request);
    CHECK(tally.count(Rule::session) == 1);
    CHECK(tally.count(Rule::user) == 1);
    CHECK(tally.count(Rule::token_count) == 1);
  }
  SECTION("a resource attribute copied as a count is made an integer too, unknown fields kept") {
    OneSpan request;
    request.resource("gen_ai.usage.input_tokens", "5");
    auto& value = *request.resource_spans->mutable_resource()->mutable_attributes()->rbegin()->mutable_value();
    value.GetReflection()->MutableUnknownFields(&value)->AddVarint(42, 1);
    config.resource_attributes.push_back("gen_ai.usage.input_tokens");
    const NormalizeTally tally = wire_tally(config, request);
    CHECK(tally.count(Rule::resource_attribute) == 2);
    CHECK(tally.count(Rule::token_count) == 1);
  }
}

TEST_CASE("the wire path offers the preview candidates collect_previews offers", "[wire][previews]") {
  OneSpan request;  // the span: an invoke_agent under the root, then a Koog exit node
  request.span->set_parent_span_id(std::string(8, '\x01'));
  request.set("gen_ai.operation.name", "invoke_agent")
      .set("gen_ai.input.messages", R"([{"role":"user","parts":[{"type":"text","content":"weather?"}]}])");
  otlp::Span* finish = request.scope->add_spans();
  *finish = *request.span;
  finish->clear_attributes();
  finish->set_end_time_unix_nano(99);
  auto* node = finish->add_attributes();
  node->set_key("koog.node.id");
  node->mutable_value()->set_string_value("__finish__");
  auto* output = finish->add_attributes();
  output->set_key("koog.node.output");
  output->mutable_value()->set_string_value(R"("sunny")");
  const std::string body = request.request.SerializeAsString();

  const Normalizer normalizer{config::NormalizeConfig{}};
  const fuzz::NormalizeComparison comparison = fuzz::compare_wire_normalize(normalizer, body);
  INFO(comparison.mismatch);
  REQUIRE(comparison.mismatch.empty());

  PreviewCache cache{config::PreviewCacheConfig{}};
  const PreviewTarget target{"r", &cache, PreviewCache::Clock::now()};
  WireNormalizer wire;
  std::string out;
  NormalizeTally tally;
  REQUIRE(wire.normalize(normalizer, body, out, tally, &target).outcome == WireOutcome::rewritten);
  CHECK(cache.agent_seen("r", request.span->trace_id(), target.now));
  const auto preview = cache.take("r", request.span->trace_id(), target.now);
  REQUIRE(preview.has_value());
  CHECK(!preview->inputs.empty());
  CHECK(!preview->outputs.empty());

  // Spans read before the bytes turn out malformed offer nothing: the request is refused.
  PreviewCache untouched{config::PreviewCacheConfig{}};
  const PreviewTarget refused{"r", &untouched, target.now};
  out.clear();
  REQUIRE(wire.normalize(normalizer, body + std::string("\x0a\x05", 2), out, tally, &refused).outcome ==
          WireOutcome::malformed);
  CHECK(untouched.entries() == 0);
}

TEST_CASE("a request the normalizer leaves alone is copied byte for byte", "[wire]") {
  config::NormalizeConfig config;
  config.enabled = false;
  Random random(3);
  WireNormalizer wire;
  for (int i = 0; i < 50; ++i) {
    const std::string body = random_request(random);
    std::string out;
    NormalizeTally tally;
    REQUIRE(wire.normalize(Normalizer(config), body, out, tally).outcome == WireOutcome::rewritten);
    REQUIRE(out == body);
    REQUIRE(tally.spans == 0);
  }
}

TEST_CASE("normalization on the wire leaves a scope sent twice and duplicated values to the message path",
          "[wire]") {
  const Normalizer normalizer{config::NormalizeConfig{}};
  WireNormalizer wire;
  std::string out;
  NormalizeTally tally;
  // ResourceSpans { ScopeSpans { scope {name "a"} scope {name "b"} span {} } }
  const std::string twice_scoped("\x0a\x0e\x12\x0c\x0a\x03\x0a\x01\x61\x0a\x03\x0a\x01\x62\x12\x00", 16);
  CHECK(wire.normalize(normalizer, twice_scoped, out, tally).outcome == WireOutcome::unsupported);
  const std::string truncated("\x0a\x05\x12\x03\x12\x05", 6);
  CHECK(wire.normalize(normalizer, truncated, out, tally).outcome == WireOutcome::malformed);
  CHECK(out.empty());
}

}  // namespace
}  // namespace proxy::normalize
