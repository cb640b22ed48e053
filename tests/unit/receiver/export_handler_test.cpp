#include <catch2/catch.hpp>

#include <sstream>
#include <string>
#include <variant>

#include <zlib.h>

#include "otlp/types.hpp"
#include "receiver/export_handler.hpp"

using namespace proxy;
namespace http = boost::beast::http;

namespace {

struct Fixture {
  config::ReceiverConfig receiver_config;
  config::QueueConfig queue_config;
  config::MlflowConfig mlflow_config;
  queue::SpanQueue span_queue{1 << 20};
  receiver::ReceiverStats stats;
  receiver::ExportHandler handler;

  explicit Fixture(std::size_t max_body = 1 << 20)
      : receiver_config(make_receiver_config(max_body)),
        mlflow_config(make_mlflow_config()),
        handler(receiver_config, queue_config, routing::ExperimentSelector(mlflow_config),
                span_queue, stats) {}

  static config::ReceiverConfig make_receiver_config(std::size_t max_body) {
    config::ReceiverConfig c;
    c.max_body_bytes = max_body;
    return c;
  }
  static config::MlflowConfig make_mlflow_config() {
    config::MlflowConfig c;
    c.experiment_name = "agents";
    return c;
  }
};

otlp::ExportRequest one_span_request(std::string trace_id = std::string(16, '\x01'),
                                     std::string span_id = std::string(8, '\x02')) {
  otlp::ExportRequest request;
  auto* span = request.add_resource_spans()->add_scope_spans()->add_spans();
  span->set_trace_id(std::move(trace_id));
  span->set_span_id(std::move(span_id));
  span->set_name("chat gpt-4o");
  return request;
}

receiver::Request post(std::string body, std::string content_type = "application/x-protobuf") {
  receiver::Request request{http::verb::post, "/v1/traces", 11};
  request.set(http::field::content_type, content_type);
  request.body() = std::move(body);
  request.prepare_payload();
  return request;
}

otlp::RpcStatus status_of(const receiver::Response& response) {
  otlp::RpcStatus status;
  REQUIRE(status.ParseFromString(response.body()));
  return status;
}

std::string gzip(const std::string& input) {
  z_stream stream{};
  REQUIRE(deflateInit2(&stream, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&stream, input.size()) + 64, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
  stream.avail_in = static_cast<uInt>(input.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&stream, Z_FINISH) == Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

}  // namespace

TEST_CASE("a valid protobuf export is queued and answered 200 with an empty response", "[handler]") {
  Fixture f;
  const auto response = f.handler.handle(post(one_span_request().SerializeAsString()), "test");
  CHECK(response.result() == http::status::ok);
  CHECK(response[http::field::content_type] == "application/x-protobuf");
  otlp::ExportResponse parsed;
  REQUIRE(parsed.ParseFromString(response.body()));
  CHECK_FALSE(parsed.has_partial_success());
  const auto batch = f.span_queue.pop_batch(1 << 20, 1000);
  REQUIRE(batch.size() == 1);
  CHECK(batch[0].span_count == 1);
  CHECK(batch[0].experiment == ExperimentRef::by_name("agents"));
  otlp::ExportRequest queued;
  REQUIRE(queued.ParseFromString(batch[0].payload));
  CHECK(queued.resource_spans(0).scope_spans(0).spans(0).name() == "chat gpt-4o");
}

// The bytes Beast writes for `response`.
std::string serialized(const receiver::Response& response) {
  std::ostringstream out;
  out << response;
  return out.str();
}

receiver::HttpAnswer respond(Fixture& f, const receiver::Request& request) {
  auto checked = f.handler.check_header(request.base(), "test");
  REQUIRE(std::holds_alternative<receiver::AcceptedHeader>(checked));
  return f.handler.respond(request, std::get<receiver::AcceptedHeader>(checked), "test");
}

TEST_CASE("a plain 200 is canned as the bytes Beast writes for it; other answers are built",
          "[handler]") {
  Fixture f;
  const std::string body = one_span_request().SerializeAsString();
  const auto protobuf = respond(f, post(body));
  CHECK(protobuf.canned == serialized(f.handler.built(post(body).base(), receiver::HttpAnswer(protobuf), "test")));
  CHECK(protobuf.canned == serialized(f.handler.handle(post(body), "test")));
  const auto json = respond(f, post(R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"01010101010101010101010101010101","spanId":"0202020202020202","name":"x"}]}]}]})", "application/json"));
  CHECK_THAT(std::string(json.canned), Catch::EndsWith("\r\n\r\n{}"));
  CHECK(json.canned == serialized(f.handler.built(post("", "application/json").base(), receiver::HttpAnswer(json), "test")));

  auto closing = post(body);
  closing.keep_alive(false);
  CHECK(respond(f, closing).canned.empty());
  auto old = post(body);
  old.version(10);
  CHECK(respond(f, old).canned.empty());
  const auto warned = respond(f, post(otlp::ExportRequest().SerializeAsString()));  // no spans: a warning
  CHECK(warned.canned.empty());
  CHECK(warned.response.result() == http::status::ok);
}

TEST_CASE("the client's experiment header routes the spans", "[handler]") {
  Fixture f;
  auto request = post(one_span_request().SerializeAsString());
  request.set("x-mlflow-experiment-id", "42");
  CHECK(f.handler.handle(request, "test").result() == http::status::ok);
  CHECK(f.span_queue.pop_batch(1 << 20, 1000).at(0).experiment == ExperimentRef::by_id("42"));
}

TEST_CASE("a non-numeric experiment header is a 400 that says why", "[handler]") {
  Fixture f;
  auto request = post(one_span_request().SerializeAsString());
  request.set("x-mlflow-experiment-id", "my-experiment");
  const auto response = f.handler.handle(request, "test");
  CHECK(response.result() == http::status::bad_request);
  CHECK_THAT(status_of(response).message(), Catch::Contains("numeric MLflow experiment id"));
  CHECK(f.span_queue.empty());
}

TEST_CASE("wrong path, method, content type and encoding get 404, 405, 415, 415", "[handler]") {
  Fixture f;
  auto wrong_path = post("");
  wrong_path.target("/v1/profiles");
  auto r = f.handler.handle(wrong_path, "test");
  CHECK(r.result() == http::status::not_found);
  CHECK(status_of(r).code() == 5);
  CHECK_THAT(status_of(r).message(), Catch::Contains("/v1/profiles"));

  auto wrong_method = post("");
  wrong_method.method(http::verb::get);
  r = f.handler.handle(wrong_method, "test");
  CHECK(r.result() == http::status::method_not_allowed);
  CHECK(r[http::field::allow] == "POST");

  r = f.handler.handle(post("x", "text/plain"), "test");
  CHECK(r.result() == http::status::unsupported_media_type);
  CHECK_THAT(status_of(r).message(), Catch::Contains("text/plain"));

  auto brotli = post("x");
  brotli.set(http::field::content_encoding, "br");
  r = f.handler.handle(brotli, "test");
  CHECK(r.result() == http::status::unsupported_media_type);
  CHECK_THAT(status_of(r).message(), Catch::Contains("Content-Encoding \"br\""));
}

TEST_CASE("a query string and content-type parameters are accepted", "[handler]") {
  Fixture f;
  auto request = post(one_span_request().SerializeAsString(), "application/x-protobuf; charset=binary");
  request.target("/v1/traces?source=test");
  CHECK(f.handler.handle(request, "test").result() == http::status::ok);
}

TEST_CASE("garbage protobuf is a 400 with a protobuf Status body", "[handler]") {
  Fixture f;
  const auto response = f.handler.handle(post("\xff\xff\xff\xff garbage"), "test");
  CHECK(response.result() == http::status::bad_request);
  const auto status = status_of(response);
  CHECK(status.code() == 3);
  CHECK_THAT(status.message(), Catch::Contains("not a valid protobuf ExportTraceServiceRequest"));
}

TEST_CASE("errors to a JSON request come back as JSON", "[handler]") {
  Fixture f;
  const auto response = f.handler.handle(post("{not json", "application/json"), "test");
  CHECK(response.result() == http::status::bad_request);
  CHECK(response[http::field::content_type] == "application/json");
  CHECK_THAT(response.body(), Catch::Contains("\"code\":3"));
}

TEST_CASE("gzip bodies are decoded; a truncated one is a 400", "[handler]") {
  Fixture f;
  const std::string compressed = gzip(one_span_request().SerializeAsString());
  auto request = post(compressed);
  request.set(http::field::content_encoding, "gzip");
  CHECK(f.handler.handle(request, "test").result() == http::status::ok);

  auto truncated = post(compressed.substr(0, compressed.size() - 5));
  truncated.set(http::field::content_encoding, "gzip");
  const auto response = f.handler.handle(truncated, "test");
  CHECK(response.result() == http::status::bad_request);
  CHECK_THAT(status_of(response).message(), Catch::Contains("truncated"));
}

TEST_CASE("a body over the limit after decompression is a 413", "[handler]") {
  Fixture f(4096);
  auto request = post(gzip(std::string(100000, '\0')));
  request.set(http::field::content_encoding, "gzip");
  const auto response = f.handler.handle(request, "test");
  CHECK(response.result() == http::status::payload_too_large);
  CHECK_FALSE(response.keep_alive());
  CHECK(f.stats.rejected_too_large == 1);
}

TEST_CASE("invalid spans are dropped with partial_success; all invalid is a 400", "[handler]") {
  Fixture f;
  auto request = one_span_request();
  auto* bad = request.mutable_resource_spans(0)->mutable_scope_spans(0)->add_spans();
  bad->set_trace_id("short");
  bad->set_span_id(std::string(8, '\x03'));
  auto response = f.handler.handle(post(request.SerializeAsString()), "test");
  CHECK(response.result() == http::status::ok);
  otlp::ExportResponse parsed;
  REQUIRE(parsed.ParseFromString(response.body()));
  CHECK(parsed.partial_success().rejected_spans() == 1);
  CHECK_THAT(parsed.partial_success().error_message(), Catch::Contains("traceId must be 16 bytes, got 5"));
  CHECK(f.span_queue.pop_batch(1 << 20, 100).at(0).span_count == 1);

  response = f.handler.handle(post(one_span_request(std::string(16, '\0')).SerializeAsString()), "test");
  CHECK(response.result() == http::status::bad_request);
  CHECK_THAT(status_of(response).message(), Catch::Contains("all zero"));
}

TEST_CASE("an empty request is acknowledged with a warning and queues nothing", "[handler]") {
  Fixture f;
  const auto response = f.handler.handle(post(""), "test");
  CHECK(response.result() == http::status::ok);
  otlp::ExportResponse parsed;
  REQUIRE(parsed.ParseFromString(response.body()));
  CHECK(parsed.partial_success().rejected_spans() == 0);
  CHECK(parsed.partial_success().error_message() == "request contained no spans");
  CHECK(f.span_queue.empty());
}

TEST_CASE("a full queue answers 429 with Retry-After; draining answers 503", "[handler]") {
  Fixture f;
  const std::string body = one_span_request().SerializeAsString();
  queue::SpanQueue tiny(body.size() / 2);
  receiver::ExportHandler handler(f.receiver_config, f.queue_config,
                                  routing::ExperimentSelector(f.mlflow_config), tiny, f.stats);
  auto response = handler.handle(post(body), "test");
  CHECK(response.result() == http::status::too_many_requests);
  CHECK(response[http::field::retry_after] == "2");
  CHECK(status_of(response).code() == 8);

  handler.set_draining();
  response = handler.handle(post(body), "test");
  CHECK(response.result() == http::status::service_unavailable);
  CHECK(response[http::field::retry_after] == "2");
  CHECK(status_of(response).code() == 14);
}

TEST_CASE("more header fields than max_header_count is a 431 that says how many", "[handler][limits]") {
  Fixture f;
  f.receiver_config.max_header_count = 5;
  auto request = post(one_span_request().SerializeAsString());  // Content-Type, Content-Length
  request.set("x-a", "1");
  request.set("x-b", "2");
  request.set("x-c", "3");
  CHECK(f.handler.handle(request, "test").result() == http::status::ok);  // exactly 5
  request.set("x-d", "4");
  const auto response = f.handler.handle(request, "test");
  CHECK(response.result() == http::status::request_header_fields_too_large);
  CHECK_FALSE(response.keep_alive());
  CHECK(status_of(response).code() == 8);  // RESOURCE_EXHAUSTED
  CHECK(status_of(response).message() == "request has 6 header fields; the limit is 5");
  CHECK(f.stats.rejected_header_count == 1);
}

TEST_CASE("a request with more spans than max_spans_per_request is refused whole with 413",
          "[handler][limits]") {
  Fixture f;
  f.receiver_config.max_spans_per_request = 3;
  auto request = one_span_request();
  auto* spans = request.mutable_resource_spans(0)->mutable_scope_spans(0);
  for (char id = 3; id < 5; ++id) {
    auto* span = spans->add_spans();
    span->set_trace_id(std::string(16, '\x01'));
    span->set_span_id(std::string(8, id));
  }
  CHECK(f.handler.handle(post(request.SerializeAsString()), "test").result() == http::status::ok);
  CHECK(f.span_queue.pop_batch(1 << 20, 100).at(0).span_count == 3);

  request.add_resource_spans()->add_scope_spans()->add_spans()->set_name("fourth");
  const auto response = f.handler.handle(post(request.SerializeAsString()), "test");
  CHECK(response.result() == http::status::payload_too_large);
  CHECK(status_of(response).code() == 8);
  CHECK(status_of(response).message() ==
        "request carries 4 spans; the limit is 3 per request: send smaller batches");
  CHECK(f.span_queue.empty());
  CHECK(f.stats.rejected_too_many_spans == 1);
}

TEST_CASE("attributes over the limits are cut and counted, and the span kept", "[handler][limits]") {
  Fixture f;
  f.receiver_config.max_attributes_per_span = 2;
  f.receiver_config.max_attributes_per_event = 1;
  f.receiver_config.max_attributes_per_link = 1;
  auto request = one_span_request();
  auto* span = request.mutable_resource_spans(0)->mutable_scope_spans(0)->mutable_spans(0);
  span->set_dropped_attributes_count(1);  // the SDK already dropped one
  for (int i = 0; i < 5; ++i) {
    auto* kv = span->add_attributes();
    kv->set_key("a" + std::to_string(i));
    kv->mutable_value()->set_int_value(i);
  }
  auto* event = span->add_events();
  for (int i = 0; i < 3; ++i) event->add_attributes()->set_key("e" + std::to_string(i));
  auto* link = span->add_links();
  link->set_trace_id(std::string(16, '\x07'));
  link->set_span_id(std::string(8, '\x07'));
  for (int i = 0; i < 2; ++i) link->add_attributes()->set_key("l" + std::to_string(i));

  const auto response = f.handler.handle(post(request.SerializeAsString()), "test");
  REQUIRE(response.result() == http::status::ok);
  otlp::ExportResponse parsed;
  REQUIRE(parsed.ParseFromString(response.body()));
  CHECK(parsed.partial_success().rejected_spans() == 0);  // a warning: nothing was rejected
  CHECK_THAT(parsed.partial_success().error_message(),
             Catch::Contains("6 attributes over the limits dropped from 1 spans") &&
                 Catch::Contains("resourceSpans[0].scopeSpans[0].spans[0] (name \"chat gpt-4o\"): "
                                 "5 attributes, limit 2"));
  CHECK(f.stats.spans_attributes_trimmed == 1);
  CHECK(f.stats.attributes_dropped == 6);

  otlp::ExportRequest queued;
  REQUIRE(queued.ParseFromString(f.span_queue.pop_batch(1 << 20, 100).at(0).payload));
  const auto& kept = queued.resource_spans(0).scope_spans(0).spans(0);
  REQUIRE(kept.attributes_size() == 2);
  CHECK(kept.attributes(0).key() == "a0");  // the first ones are kept, as SDKs do
  CHECK(kept.attributes(1).key() == "a1");
  CHECK(kept.dropped_attributes_count() == 4);
  CHECK(kept.events(0).attributes_size() == 1);
  CHECK(kept.events(0).dropped_attributes_count() == 2);
  CHECK(kept.links(0).attributes_size() == 1);
  CHECK(kept.links(0).dropped_attributes_count() == 1);
}

TEST_CASE("a gzip body expanding past max_decompression_ratio is a 413", "[handler][limits]") {
  Fixture f(64u << 20);
  auto request = post(gzip(std::string(8u << 20, '\0')));
  request.set(http::field::content_encoding, "gzip");
  const auto response = f.handler.handle(request, "test");
  CHECK(response.result() == http::status::payload_too_large);
  CHECK_THAT(status_of(response).message(), Catch::Contains("expands more than 100 times"));
  CHECK(f.stats.rejected_decompression_ratio == 1);
  CHECK(f.stats.rejected_too_large == 0);
}

TEST_CASE("OTLP logs and metrics are answered 200 in the request's encoding, counted, not queued",
          "[handler]") {
  Fixture f;
  auto logs = post(std::string("\x0a\x02\x0a\x00", 4));  // an ExportLogsServiceRequest with one empty resource
  logs.target("/v1/logs");
  auto r = f.handler.handle(logs, "test");
  CHECK(r.result() == http::status::ok);
  CHECK(r[http::field::content_type] == "application/x-protobuf");
  CHECK(r.body().empty());  // an empty ExportLogsServiceResponse

  auto metrics = post(R"({"resourceMetrics":[]})", "application/json");
  metrics.target("/v1/metrics?x=1");
  r = f.handler.handle(metrics, "test");
  CHECK(r.result() == http::status::ok);
  CHECK(r[http::field::content_type] == "application/json");
  CHECK(r.body() == "{}");

  CHECK(f.stats.logs_requests_discarded == 1);
  CHECK(f.stats.metrics_requests_discarded == 1);
  CHECK(f.stats.other_signal_bytes_discarded == 4 + 22);
  CHECK(f.stats.total_requests(receiver::ReceiverStats::kAccepted) == 0);
  CHECK(f.span_queue.empty());

  // The same header checks as traces: method, content type.
  auto get = post("");
  get.target("/v1/logs");
  get.method(http::verb::get);
  r = f.handler.handle(get, "test");
  CHECK(r.result() == http::status::method_not_allowed);
  CHECK_THAT(status_of(r).message(), Catch::Contains("/v1/logs"));
  auto text = post("x", "text/plain");
  text.target("/v1/metrics");
  CHECK(f.handler.handle(text, "test").result() == http::status::unsupported_media_type);
}

// ---- the protocol-neutral pipeline both front doors share --------------------------------------

TEST_CASE("ingest: outcomes the gRPC door maps to statuses", "[receiver][ingest]") {
  using Kind = receiver::IngestOutcome::Kind;
  Fixture f;
  const auto accepted =
      f.handler.ingest(one_span_request().SerializeAsString(), otlp::BodyEncoding::protobuf,
                       std::nullopt, "test");
  CHECK(accepted.kind == Kind::accepted);
  CHECK(accepted.rejected_spans == 0);
  CHECK(accepted.warning.empty());
  CHECK(f.span_queue.stats().queued_spans == 1);

  const auto garbage = f.handler.ingest("\x0a\xff\xff\xff\xff\x0f", otlp::BodyEncoding::protobuf,
                                        std::nullopt, "test");
  CHECK(garbage.kind == Kind::bad_request);
  CHECK_FALSE(garbage.message.empty());

  const auto bad_header =
      f.handler.ingest(one_span_request().SerializeAsString(), otlp::BodyEncoding::protobuf,
                       std::string_view("not-an-id"), "test");
  CHECK(bad_header.kind == Kind::bad_request);

  otlp::ExportRequest mixed = one_span_request();
  *mixed.mutable_resource_spans(0)->mutable_scope_spans(0)->add_spans() =
      one_span_request(std::string(16, '\x01'), std::string(8, '\0')).resource_spans(0).scope_spans(0).spans(0);
  const auto partial = f.handler.ingest(mixed.SerializeAsString(), otlp::BodyEncoding::protobuf,
                                        std::nullopt, "test");
  CHECK(partial.kind == Kind::accepted);
  CHECK(partial.rejected_spans == 1);
  CHECK(partial.warning.find("1 invalid spans rejected") != std::string::npos);

  f.handler.set_draining();
  const auto draining =
      f.handler.ingest(one_span_request().SerializeAsString(), otlp::BodyEncoding::protobuf,
                       std::nullopt, "test");
  CHECK(draining.kind == Kind::draining);
  CHECK(f.stats.rejected_draining.load() == 1);
}

TEST_CASE("requests and spans are counted by the door, by encoding and result", "[handler][stats]") {
  using R = receiver::ReceiverStats;
  Fixture f;
  // ingest() alone (what the gRPC door calls) counts nothing by protocol: the door does.
  const auto outcome = f.handler.ingest(one_span_request().SerializeAsString(),
                                        otlp::BodyEncoding::protobuf, std::nullopt, "test");
  CHECK(outcome.spans == 1);
  CHECK(f.stats.total_requests(R::kAccepted) == 0);
  f.handler.count(R::kGrpc, R::kProtobuf, outcome);

  CHECK(f.handler.handle(post(one_span_request().SerializeAsString()), "test").result() ==
        http::status::ok);
  otlp::ExportRequest mixed = one_span_request();
  *mixed.mutable_resource_spans(0)->mutable_scope_spans(0)->add_spans() =
      one_span_request(std::string(16, '\x01'), std::string(8, '\0')).resource_spans(0).scope_spans(0).spans(0);
  CHECK(f.handler.handle(post(mixed.SerializeAsString()), "test").result() == http::status::ok);
  CHECK(f.handler.handle(post("{not json", "application/json"), "test").result() ==
        http::status::bad_request);
  CHECK(f.handler.handle(post("x", "text/plain"), "test").result() ==
        http::status::unsupported_media_type);
  f.handler.set_draining();
  CHECK(f.handler.ingest(one_span_request().SerializeAsString(), otlp::BodyEncoding::protobuf,
                         std::nullopt, "test").spans == 0);  // refused before decoding

  const auto& http_door = f.stats.by_protocol[R::kHttp];
  const auto& grpc_door = f.stats.by_protocol[R::kGrpc];
  CHECK(http_door.requests[R::kProtobuf][R::kAccepted] == 2);
  CHECK(http_door.spans[R::kProtobuf][R::kSpansAccepted] == 2);
  CHECK(http_door.spans[R::kProtobuf][R::kSpansInvalid] == 1);
  CHECK(http_door.requests[R::kJson][R::kRejected] == 1);
  CHECK(http_door.requests[R::kOtherEncoding][R::kRejected] == 1);
  CHECK(grpc_door.requests[R::kProtobuf][R::kAccepted] == 1);
  CHECK(grpc_door.spans[R::kProtobuf][R::kSpansAccepted] == 1);
  CHECK(f.stats.total_spans(R::kSpansAccepted) == 3);
  CHECK(f.stats.total_requests(R::kRejected) == 2);
}

TEST_CASE("a refused request's decoded spans are counted as refused", "[handler][stats]") {
  using R = receiver::ReceiverStats;
  config::ReceiverConfig receiver_config;
  config::QueueConfig queue_config;
  config::MlflowConfig mlflow_config;
  mlflow_config.experiment_id = "1";
  queue::SpanQueue tiny{16};
  R stats;
  receiver::ExportHandler handler(receiver_config, queue_config,
                                  routing::ExperimentSelector(mlflow_config), tiny, stats);
  CHECK(handler.handle(post(one_span_request().SerializeAsString()), "test").result() ==
        http::status::too_many_requests);
  CHECK(stats.by_protocol[R::kHttp].requests[R::kProtobuf][R::kRejected] == 1);
  CHECK(stats.by_protocol[R::kHttp].spans[R::kProtobuf][R::kSpansRefused] == 1);
  CHECK(stats.rejected_queue_full == 1);
}

TEST_CASE("ingest: a full queue is queue_full, a closed one draining", "[receiver][ingest]") {
  using Kind = receiver::IngestOutcome::Kind;
  config::ReceiverConfig receiver_config;
  config::QueueConfig queue_config;
  config::MlflowConfig mlflow_config;
  mlflow_config.experiment_id = "1";
  queue::SpanQueue tiny{64};
  receiver::ReceiverStats stats;
  receiver::ExportHandler handler(receiver_config, queue_config,
                                  routing::ExperimentSelector(mlflow_config), tiny, stats);
  otlp::ExportRequest big = one_span_request();
  big.mutable_resource_spans(0)->mutable_scope_spans(0)->mutable_spans(0)->set_name(std::string(200, 'x'));
  const auto full = handler.ingest(big.SerializeAsString(), otlp::BodyEncoding::protobuf,
                                   std::nullopt, "test");
  CHECK(full.kind == Kind::queue_full);
  CHECK(full.message.find("queue is full") != std::string::npos);
  tiny.close();
  const auto closed = handler.ingest(one_span_request().SerializeAsString(),
                                     otlp::BodyEncoding::protobuf, std::nullopt, "test");
  CHECK(closed.kind == Kind::draining);
}

TEST_CASE("inbound bearer token: HTTP 401 and authorized()", "[receiver][auth]") {
  Fixture f;
  CHECK(f.handler.authorized(""));  // no token configured: everyone
  f.receiver_config.auth.bearer_token = "tkn-123";
  CHECK_FALSE(f.handler.authorized(""));
  CHECK_FALSE(f.handler.authorized("tkn-123"));
  CHECK_FALSE(f.handler.authorized("Bearer tkn-12"));
  CHECK_FALSE(f.handler.authorized("Bearer tkn-1234"));
  CHECK_FALSE(f.handler.authorized("Basic tkn-123"));
  CHECK(f.handler.authorized("Bearer tkn-123"));
  CHECK(f.handler.authorized("bearer  tkn-123 "));

  receiver::Request request = post(one_span_request().SerializeAsString());
  receiver::Response refused = f.handler.handle(request, "test");
  CHECK(refused.result() == http::status::unauthorized);
  CHECK(refused[http::field::www_authenticate] == "Bearer");
  CHECK(status_of(refused).code() == 16);
  CHECK(status_of(refused).message().find("tkn-123") == std::string::npos);
  CHECK(f.stats.rejected_unauthenticated.load() == 1);
  request.set(http::field::authorization, "Bearer tkn-123");
  CHECK(f.handler.handle(request, "test").result() == http::status::ok);
}
