// The fused wire pass (Router::route_wire) against decode_and_check + Router::route on random
// requests, routes, policies and limits, and on corrupted bytes: the same refusals, counters and
// items (issue 21: routing splits as byte ranges, the checks fused with the policy pass).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <optional>
#include <string>

#include <google/protobuf/stubs/logging.h>

#include "config/config.hpp"
#include "otlp/types.hpp"
#include "routing/router.hpp"
#include "routing/wire_route.hpp"
#include "support/random_otlp.hpp"
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

config::RouteConfig random_route(Random& random, int index) {
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
  config::NormalizeConfig off;
  off.enabled = false;
  route.normalize = off;
  return route;
}

config::Config random_config(Random& random) {
  config::Config config;
  config.mlflow.experiment_name = "configured";
  for (int p = 0; p < 3; ++p) config.policies.push_back({"p" + std::to_string(p), testing::policy::random_policy(random)});
  for (int r = 1 + pick(random, 3); r > 0; --r) config.routes.push_back(random_route(random, r));
  config.default_route.policy = "p" + std::to_string(pick(random, 3));
  config.default_route.header = static_cast<config::HeaderMode>(pick(random, 3));
  config.default_route.normalize.enabled = false;
  config.receiver.max_spans_per_request = pick(random, 5) == 0 ? static_cast<std::size_t>(pick(random, 12)) : 65536;
  config.receiver.max_attributes_per_span = static_cast<std::size_t>(pick(random, 9));
  config.receiver.max_attributes_per_event = static_cast<std::size_t>(pick(random, 4));
  config.receiver.max_attributes_per_link = static_cast<std::size_t>(pick(random, 3));
  return config;
}

void random_resource(Random& random, opentelemetry::proto::resource::v1::Resource& resource) {
  testing::policy::random_key_values(random, *resource.mutable_attributes(), pick(random, 3), 0);
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
