// ExportHandler::ingest on the wire path (protobuf bodies, no route normalizing) against the same
// handler with the wire path off: the same answers and the same queued items, request by request.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>

#include "differential.hpp"
#include "otlp/json.hpp"
#include "otlp/types.hpp"
#include "receiver/export_handler.hpp"
#include "routing/router.hpp"
#include "support/random_otlp.hpp"

namespace proxy::receiver {
namespace {

using testing::pick;
using testing::Random;

// Partial acceptances are logged; hundreds of them say nothing here.
struct QuietLogs {
  spdlog::level::level_enum level = spdlog::get_level();
  QuietLogs() { spdlog::set_level(spdlog::level::off); }
  ~QuietLogs() { spdlog::set_level(level); }
};

struct HmacKeyForTests {
  HmacKeyForTests() { ::setenv("OTLP_MLFLOW_PROXY_HMAC_KEY", "0123456789abcdef0123456789abcdef-wire-tests", 1); }
};

config::Config wire_config(Random& random) {
  config::Config config;
  config.mlflow.experiment_name = "agents";
  config.policies.push_back({"p", testing::policy::random_policy(random)});
  config::RouteConfig route;
  route.name = "services";
  route.match.resource.push_back({"service.name", {config::ValueMatch::Kind::glob, "*e*"}});
  route.experiment_id = "5";
  route.policy = "p";
  // Normalization (with previews) on or off per route.
  route.normalize = config::NormalizeConfig{};
  route.normalize->enabled = pick(random, 2) == 0;
  config.routes.push_back(route);
  config.default_route.normalize.enabled = pick(random, 2) == 0;
  config.receiver.max_spans_per_request = pick(random, 6) == 0 ? 3 : 65536;
  config.receiver.max_attributes_per_span = static_cast<std::size_t>(pick(random, 6));
  config.receiver.max_attributes_per_event = static_cast<std::size_t>(pick(random, 3));
  config.receiver.max_attributes_per_link = static_cast<std::size_t>(pick(random, 3));
  return config;
}

// A handler with its own queue, stats and router.
struct Door {
  config::QueueConfig queue_config;
  queue::SpanQueue queue{64 << 20};
  ReceiverStats stats;
  ExportHandler handler;

  Door(const config::Config& config, bool wire)
      : handler(config.receiver, queue_config, routing::ExperimentSelector(config.mlflow), queue, stats) {
    handler.set_router(std::make_shared<const routing::Router>(config));
    handler.set_wire_path(wire);
  }
};

std::string compare_items(std::vector<queue::QueueItem> wire, std::vector<queue::QueueItem> message) {
  if (wire.size() != message.size()) return "item counts differ";
  for (std::size_t i = 0; i < wire.size(); ++i) {
    if (wire[i].experiment.describe() != message[i].experiment.describe()) return "experiments differ";
    if (wire[i].span_count != message[i].span_count) return "span counts differ";
    if (auto difference = fuzz::parsed_difference<otlp::ExportRequest>(message[i].payload, wire[i].payload,
                                                                      fuzz::kMessageVsWire)) {
      return "item " + std::to_string(i) + " differs: " + *difference;
    }
  }
  return {};
}

}  // namespace

TEST_CASE("protobuf requests on the wire path get the message path's answers and items", "[wire][handler]") {
  static const HmacKeyForTests key;
  const google::protobuf::LogSilencer quiet;
  const QuietLogs quiet_logs;
  Random random(42);
  std::uint64_t wire_requests = 0;
  int json_requests = 0;
  int accepted = 0;
  for (int round = 0; round < 400; ++round) {
    INFO("round " << round);
    const config::Config config = wire_config(random);
    Door wire(config, true);
    Door message(config, false);
    std::string body = pick(random, 2) ? testing::policy::random_request(random) : testing::checks::random_request(random);
    // OTLP-JSON enters the wire path after its decode, so a third of the bodies are JSON.
    const otlp::BodyEncoding encoding = pick(random, 3) == 0 ? otlp::BodyEncoding::json : otlp::BodyEncoding::protobuf;
    if (encoding == otlp::BodyEncoding::json) {
      otlp::ExportRequest request;
      REQUIRE(request.ParseFromString(body));
      body = otlp::encode_json(request);
    }
    if (pick(random, 5) == 0) body = testing::corrupt(random, body);
    const std::optional<std::string_view> header =
        pick(random, 3) == 0 ? std::optional<std::string_view>(pick(random, 2) ? "12" : "x") : std::nullopt;
    const IngestOutcome a = wire.handler.ingest(body, encoding, header, "test");
    const IngestOutcome b = message.handler.ingest(body, encoding, header, "test");
    json_requests += encoding == otlp::BodyEncoding::json && wire.stats.requests_wire_path.load() > 0 ? 1 : 0;
    REQUIRE(a.kind == b.kind);
    REQUIRE(a.message == b.message);
    REQUIRE(a.rejected_spans == b.rejected_spans);
    REQUIRE(a.warning == b.warning);
    REQUIRE(a.spans == b.spans);
    REQUIRE(compare_items(wire.queue.take_all(), message.queue.take_all()) == "");
    REQUIRE(message.stats.requests_wire_path.load() == 0);
    wire_requests += wire.stats.requests_wire_path.load();
    accepted += a.kind == IngestOutcome::Kind::accepted ? 1 : 0;
  }
  CHECK(wire_requests > 300);  // the comparison is about the wire path: most requests must take it
  CHECK(json_requests > 80);
  CHECK(accepted > 200);
}

TEST_CASE("the default config, normalization included, takes the wire path", "[wire][handler]") {
  config::Config config;
  config.mlflow.experiment_name = "agents";
  Door door(config, true);
  otlp::ExportRequest request;
  otlp::Span& span = *request.add_resource_spans()->add_scope_spans()->add_spans();
  span.set_trace_id(std::string(16, '\x01'));
  span.set_span_id(std::string(8, '\x02'));
  span.set_kind(opentelemetry::proto::trace::v1::Span::SPAN_KIND_CLIENT);
  CHECK(door.handler.ingest(request.SerializeAsString(), otlp::BodyEncoding::protobuf, std::nullopt, "test").kind ==
        IngestOutcome::Kind::accepted);
  CHECK(door.stats.requests_wire_path.load() == 1);
  const std::vector<queue::QueueItem> items = door.queue.take_all();
  REQUIRE(items.size() == 1);
  otlp::ExportRequest sent;
  REQUIRE(sent.ParseFromString(items[0].payload));
  const otlp::Span& normalized = sent.resource_spans(0).scope_spans(0).spans(0);
  REQUIRE(normalized.attributes_size() > 0);
  CHECK(normalized.attributes(0).key() == "otel.span.kind");  // the normalizer ran on the wire
}

}  // namespace proxy::receiver
