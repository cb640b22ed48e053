// The fused wire pass (Router::route_wire) against decode_and_check + Router::route on random
// requests, routes, policies and limits, and on corrupted bytes: the same refusals, counters and
// items (issue 21: routing splits as byte ranges, the checks fused with the policy pass).
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>

#include <google/protobuf/stubs/logging.h>

#include "config/config.hpp"
#include "otlp/types.hpp"
#include "normalize/normalize.hpp"
#include "routing/router.hpp"
#include "routing/wire_route.hpp"
#include "support/random_otlp.hpp"
#include "wire_normalize_differential.hpp"
#include "wire_route_differential.hpp"

namespace proxy::routing {
namespace {

using Outcome = WireRouted::Outcome;
using testing::one_of;
using testing::pick;
using testing::Random;

struct HmacKeyForTests {
  HmacKeyForTests() { ::setenv("OTLP_MLFLOW_PROXY_HMAC_KEY", "0123456789abcdef0123456789abcdef-wire-tests", 1); }
};

const char* const kServices[] = {"svc1", "svc22", "other", ""};
const char* const kScopes[] = {"ai.koog", "ai.other", "x"};

config::ValueMatch random_match(Random& random, const char* exact, const char* glob, const char* regex) {
  switch (pick(random, 3)) {
    case 0: return {config::ValueMatch::Kind::exact, exact};
    case 1: return {config::ValueMatch::Kind::glob, glob};
    default: return {config::ValueMatch::Kind::regex, regex};
  }
}

// Normalization for a route: off, or a random normalizer (previews held or not).
config::NormalizeConfig random_normalize(Random& random, bool normalizing) {
  config::NormalizeConfig config;
  config.enabled = false;
  if (!normalizing || pick(random, 4) == 0) return config;
  config = fuzz::normalize_config_from(static_cast<std::uint8_t>(pick(random, 256)),
                                       static_cast<std::uint8_t>(pick(random, 256)));
  config.preview_hold = std::chrono::milliseconds(pick(random, 2) * 500);
  return config;
}

config::RouteConfig random_route(Random& random, int index, bool normalizing) {
  config::RouteConfig route;
  route.name = "r" + std::to_string(index);
  if (pick(random, 3) != 0) route.match.resource.push_back({"service.name", random_match(random, "svc1", "svc*", "svc[0-9]+")});
  if (pick(random, 5) == 0) route.match.resource.push_back({"tier", random_match(random, "7", "tr*", "true|7")});
  if (pick(random, 3) == 0) route.match.scope_name = random_match(random, "ai.koog", "ai.*", "ai\\..*r");
  route.match.header = pick(random, 2) ? config::HeaderCondition::any : static_cast<config::HeaderCondition>(pick(random, 4));
  route.match.header_value = "12";
  if (pick(random, 2)) route.experiment_id = std::to_string(100 + index);
  else route.experiment_name = "exp" + std::to_string(index);
  route.policy = "p" + std::to_string(pick(random, 3));
  route.header = static_cast<config::HeaderMode>(pick(random, 3));
  route.normalize = random_normalize(random, normalizing);
  return route;
}

config::Config random_config(Random& random, bool normalizing = false) {
  config::Config config;
  config.mlflow.experiment_name = "configured";
  for (int p = 0; p < 3; ++p) config.policies.push_back({"p" + std::to_string(p), testing::policy::random_policy(random)});
  for (int r = 1 + pick(random, 3); r > 0; --r) config.routes.push_back(random_route(random, r, normalizing));
  config.default_route.policy = "p" + std::to_string(pick(random, 3));
  config.default_route.header = static_cast<config::HeaderMode>(pick(random, 3));
  config.default_route.normalize = random_normalize(random, normalizing);
  config.receiver.max_spans_per_request = pick(random, 5) == 0 ? static_cast<std::size_t>(pick(random, 12)) : 65536;
  config.receiver.max_attributes_per_span = static_cast<std::size_t>(pick(random, 9));
  config.receiver.max_attributes_per_event = static_cast<std::size_t>(pick(random, 4));
  config.receiver.max_attributes_per_link = static_cast<std::size_t>(pick(random, 3));
  return config;
}

void random_resource(Random& random, opentelemetry::proto::resource::v1::Resource& resource) {
  testing::random_key_values(random, testing::policy::kValues, *resource.mutable_attributes(), pick(random, 3), 0);
  if (pick(random, 4) != 0) {
    otlp::KeyValue& service = *resource.add_attributes();
    service.set_key("service.name");
    service.mutable_value()->set_string_value(one_of(random, kServices));
  }
  if (pick(random, 3) == 0) {
    otlp::KeyValue& tier = *resource.add_attributes();
    tier.set_key("tier");
    if (pick(random, 2)) tier.mutable_value()->set_int_value(7);
    else tier.mutable_value()->set_bool_value(true);
  }
}

std::string random_request(Random& random) {
  otlp::ExportRequest request;
  for (int r = pick(random, 4); r > 0; --r) {
    otlp::ResourceSpans& resource_spans = *request.add_resource_spans();
    if (pick(random, 5) != 0) random_resource(random, *resource_spans.mutable_resource());
    for (int s = pick(random, 3); s > 0; --s) {
      otlp::ScopeSpans& scope_spans = *resource_spans.add_scope_spans();
      scope_spans.mutable_scope()->set_name(one_of(random, kScopes));
      for (int i = pick(random, 4); i > 0; --i) {
        otlp::Span& span = *scope_spans.add_spans();
        testing::policy::random_span(random, span);
        if (pick(random, 5) == 0) span.set_span_id(testing::checks::random_id(random, 8));
        if (pick(random, 9) == 0) span.set_trace_id(testing::checks::random_id(random, 16));
      }
    }
  }
  return request.SerializeAsString();
}

// Koog-shaped traces for normalization and previews: few trace ids, so roots, invoke_agent spans
// and LLM calls of one trace meet within a request and across requests; roots come before and
// after their trace's invoke_agent.
const char* const kSpanNames[] = {"create_agent weather", "invoke_agent weather", "chat gpt-4o", "node-1",
                                  "execute_tool search", "strategy"};
const char* const kMessages[] = {
    R"([{"role":"user","parts":[{"type":"text","content":"weather in Paris?"}]}])",
    R"([{"role":"assistant","parts":[{"type":"text","content":"sunny"}]}])",
    R"([{"role":"system","parts":[{"type":"text","content":"be brief"}]}])", "not json"};

// The Koog attributes first, so the attribute limits cut the random ones after them.
void koog_span(Random& random, otlp::Span& span) {
  testing::policy::random_span(random, span);
  google::protobuf::RepeatedPtrField<otlp::KeyValue> random_attributes;
  random_attributes.Swap(span.mutable_attributes());
  span.set_trace_id(std::string(16, static_cast<char>(1 + pick(random, 4))));
  if (pick(random, 3) != 0) span.set_parent_span_id(std::string(8, '\x01'));
  span.set_name(one_of(random, kSpanNames));
  span.set_end_time_unix_nano(span.start_time_unix_nano() + static_cast<unsigned>(pick(random, 1000)));
  for (const char* key : {"gen_ai.input.messages", "gen_ai.output.messages", "koog.node.input", "mlflow.spanInputs"}) {
    if (pick(random, 3) != 0) continue;
    otlp::KeyValue& attribute = *span.add_attributes();
    attribute.set_key(key);
    attribute.mutable_value()->set_string_value(one_of(random, kMessages));
  }
  if (pick(random, 2) == 0) {
    otlp::KeyValue& operation = *span.add_attributes();
    operation.set_key("gen_ai.operation.name");
    operation.mutable_value()->set_string_value(span.name().substr(0, span.name().find(' ')));
  }
  for (otlp::KeyValue& attribute : random_attributes) *span.add_attributes() = std::move(attribute);
}

std::string koog_request(Random& random) {
  otlp::ExportRequest request;
  for (int r = 1 + pick(random, 2); r > 0; --r) {
    otlp::ResourceSpans& resource_spans = *request.add_resource_spans();
    if (pick(random, 5) != 0) random_resource(random, *resource_spans.mutable_resource());
    if (pick(random, 6) == 0) resource_spans.set_schema_url("https://opentelemetry.io/schemas/1.21.0");
    for (int s = 1 + pick(random, 2); s > 0; --s) {
      otlp::ScopeSpans& scope_spans = *resource_spans.add_scope_spans();
      if (pick(random, 5) != 0) scope_spans.mutable_scope()->set_name(one_of(random, kScopes));
      for (int i = 1 + pick(random, 5); i > 0; --i) koog_span(random, *scope_spans.add_spans());
    }
  }
  return request.SerializeAsString();
}

std::optional<std::string_view> random_header(Random& random) {
  const char* const kHeaders[] = {"12", " 7 ", "abc", ""};
  if (pick(random, 2) == 0) return std::nullopt;
  return std::string_view(one_of(random, kHeaders));
}

struct Tally {
  int routed = 0;
  int split = 0;
  int refused = 0;
  int malformed = 0;
  int unsupported = 0;
};

// One round: both paths on `body` under a fresh config; fails the test on a mismatch.
void round_trip(Random& random, const std::string& body, Tally& tally) {
  const config::Config config = random_config(random);
  const Router message_router(config);
  const Router wire_router(config);
  const auto header = random_header(random);
  const fuzz::WireRouteComparison comparison =
      fuzz::compare_wire_routes(message_router, wire_router, config.receiver, body, header);
  REQUIRE(comparison.mismatch == "");
  tally.routed += comparison.wire == Outcome::routed ? 1 : 0;
  tally.split += wire_router.stats().requests_split.load() > 0 ? 1 : 0;
  tally.refused += comparison.wire != Outcome::routed && comparison.wire != Outcome::unsupported ? 1 : 0;
  tally.malformed += comparison.wire == Outcome::malformed ? 1 : 0;
  tally.unsupported += comparison.wire == Outcome::unsupported ? 1 : 0;
}

}  // namespace

TEST_CASE("the fused wire pass routes, checks and rewrites random requests as the message path does", "[wire]") {
  static const HmacKeyForTests key;
  Random random(20261207);
  Tally tally;
  for (int round = 0; round < 600; ++round) {
    INFO("round " << round);
    round_trip(random, random_request(random), tally);
  }
  INFO("routed " << tally.routed << ", split " << tally.split << ", refused " << tally.refused);
  CHECK(tally.unsupported == 0);  // the generator writes what protobuf writes
  CHECK(tally.routed > 400);  // every branch exercised, not only refusals
  CHECK(tally.split > 20);
  CHECK(tally.refused > 40);
}

TEST_CASE("the wire path normalizes and fills previews as the message path does, request after request",
          "[wire][previews]") {
  static const HmacKeyForTests key;
  Random random(20261208);
  int routed = 0;
  std::uint64_t filled = 0;
  std::uint64_t held = 0;
  std::uint64_t stored = 0;
  std::uint64_t hits = 0;
  for (int config_round = 0; config_round < 120; ++config_round) {
    const config::Config config = random_config(random, true);
    const Router message_router(config);
    const Router wire_router(config);
    for (int round = 0; round < 12; ++round) {
      INFO("config " << config_round << ", request " << round);
      const std::string body = pick(random, 8) == 0 ? testing::corrupt(random, koog_request(random)) : koog_request(random);
      const auto header = random_header(random);
      const fuzz::WireRouteComparison comparison =
          fuzz::compare_wire_routes(message_router, wire_router, config.receiver, body, header);
      REQUIRE(comparison.mismatch == "");
      routed += comparison.wire == Outcome::routed ? 1 : 0;
    }
    filled += wire_router.normalize_stats().count(normalize::Rule::preview);
    held += wire_router.preview_cache().stats().held.load();
    stored += wire_router.preview_cache().stats().stored.load();
    hits += wire_router.preview_cache().stats().hits.load();
  }
  INFO("routed " << routed << ", previews filled " << filled << ", roots held " << held << ", stored " << stored
                  << ", hits " << hits);
  CHECK(routed > 800);
  CHECK(filled > 20);
  CHECK(held > 20);
}

namespace {

otlp::Span& add_koog_span(otlp::ScopeSpans& scope_spans, const char* name, const char* operation, bool root) {
  otlp::Span& span = *scope_spans.add_spans();
  span.set_trace_id(std::string(16, '\x05'));
  span.set_span_id(std::string(8, root ? '\x01' : '\x02'));
  if (!root) span.set_parent_span_id(std::string(8, '\x01'));
  span.set_name(name);
  otlp::KeyValue& kind = *span.add_attributes();
  kind.set_key("gen_ai.operation.name");
  kind.mutable_value()->set_string_value(operation);
  return span;
}

}  // namespace

TEST_CASE("the wire path gives a Koog root its trace's preview, or holds it until invoke_agent arrives",
          "[wire][previews]") {
  config::Config config;
  config.mlflow.experiment_id = "1";
  config.default_route.normalize.preview_hold = std::chrono::milliseconds(500);
  const Router router(config);
  otlp::ExportRequest request;
  otlp::ScopeSpans& scope_spans = *request.add_resource_spans()->add_scope_spans();
  add_koog_span(scope_spans, "create_agent weather", "create_agent", true);
  otlp::Span& agent = add_koog_span(scope_spans, "invoke_agent weather", "invoke_agent", false);
  otlp::KeyValue& input = *agent.add_attributes();
  input.set_key("gen_ai.input.messages");
  input.mutable_value()->set_string_value(R"([{"role":"user","parts":[{"type":"text","content":"weather?"}]}])");

  // The root and its invoke_agent in one request: filled at once, in one item.
  const WireRouted together = router.route_wire(request.SerializeAsString(), std::nullopt, {}, 100);
  REQUIRE(together.outcome == Outcome::routed);
  REQUIRE(together.items.size() == 1);
  CHECK(together.items[0].span_count == 2);
  otlp::ExportRequest sent;
  REQUIRE(sent.ParseFromString(together.items[0].payload));
  const otlp::Span& root = sent.resource_spans(0).scope_spans(0).spans(0);
  REQUIRE(normalize::find_attribute(root, normalize::kSpanInputs) != nullptr);
  const std::string inputs = normalize::find_attribute(root, normalize::kSpanInputs)->ShortDebugString();
  INFO(inputs);
  CHECK(inputs.find("[masked: 8 bytes]") != std::string::npos);  // the masked user message
  CHECK(inputs.find("weather?") == std::string::npos);
  CHECK(router.normalize_stats().count(normalize::Rule::preview) == 1);

  // The root alone, before its invoke_agent: held in an item of its own.
  otlp::ExportRequest alone = request;
  alone.mutable_resource_spans(0)->mutable_scope_spans(0)->mutable_spans()->RemoveLast();
  alone.mutable_resource_spans(0)->mutable_scope_spans(0)->mutable_spans(0)->set_trace_id(std::string(16, '\x06'));
  const WireRouted held = router.route_wire(alone.SerializeAsString(), std::nullopt, {}, 100);
  REQUIRE(held.outcome == Outcome::routed);
  REQUIRE(held.items.size() == 1);
  REQUIRE(held.items[0].hold != nullptr);
  CHECK(held.items[0].hold->traces == std::vector<std::string>{std::string(16, '\x06')});
  CHECK(router.preview_cache().stats().held.load() == 1);
}

TEST_CASE("the fused wire pass refuses what the message path refuses on corrupted random requests", "[wire]") {
  static const HmacKeyForTests key;
  const google::protobuf::LogSilencer quiet;
  Random random(7);
  Tally tally;
  for (int round = 0; round < 600; ++round) {
    INFO("round " << round);
    round_trip(random, testing::corrupt(random, random_request(random)), tally);
  }
  INFO("malformed " << tally.malformed << ", unsupported " << tally.unsupported);
  CHECK(tally.malformed > 300);
  CHECK(tally.unsupported * 5 < tally.malformed);  // groups and odd tags: the reader leaves them to protobuf
}

TEST_CASE("the fused wire pass writes each ResourceSpans to its route's item", "[wire]") {
  config::Config config;
  config::RouteConfig route;
  route.name = "koog";
  route.match.resource.push_back({"service.name", {config::ValueMatch::Kind::exact, "svc1"}});
  route.experiment_id = "5";
  route.normalize = config::NormalizeConfig{};
  route.normalize->enabled = false;
  config.routes.push_back(route);
  config.mlflow.experiment_id = "9";
  config.default_route.normalize.enabled = false;
  otlp::ExportRequest request;
  for (const char* service : {"other", "svc1", "svc1"}) {
    otlp::ResourceSpans& resource_spans = *request.add_resource_spans();
    otlp::KeyValue& name = *resource_spans.mutable_resource()->add_attributes();
    name.set_key("service.name");
    name.mutable_value()->set_string_value(service);
    otlp::Span& span = *resource_spans.add_scope_spans()->add_spans();
    span.set_trace_id(std::string(16, '\x01'));
    span.set_span_id(std::string(8, '\x02'));
  }
  const Router router(config);
  const WireRouted routed = router.route_wire(request.SerializeAsString(), std::nullopt, {}, 100);
  REQUIRE(routed.outcome == Outcome::routed);
  REQUIRE(routed.items.size() == 2);
  CHECK(routed.items[0].experiment.describe() == ExperimentRef::by_id("5").describe());
  CHECK(routed.items[0].span_count == 2);
  otlp::ExportRequest first;
  REQUIRE(first.ParseFromString(routed.items[0].payload));
  CHECK(first.resource_spans_size() == 2);
  CHECK(routed.items[1].span_count == 1);
  CHECK(router.stats().requests_split.load() == 1);
}

TEST_CASE("the fused wire pass counts spans before it rewrites and leaves repeated resources to protobuf", "[wire]") {
  config::Config config;
  config.default_route.normalize.enabled = false;
  const Router router(config);
  otlp::ExportRequest request;
  otlp::ScopeSpans& scope_spans = *request.add_resource_spans()->add_scope_spans();
  for (int i = 0; i < 3; ++i) scope_spans.add_spans()->set_name("s");
  const WireRouted over = router.route_wire(request.SerializeAsString(), std::nullopt, {}, 2);
  CHECK(over.outcome == Outcome::too_many_spans);
  CHECK(over.checks.received == 3);
  // resource_spans { resource {} resource {} scope_spans { spans {} } }
  const std::string twice("\x0a\x08\x0a\x00\x0a\x00\x12\x02\x12\x00", 10);
  CHECK(router.route_wire(twice, std::nullopt, {}, 100).outcome == Outcome::unsupported);
}

}  // namespace proxy::routing
