#include "receiver/export_handler.hpp"

#include <algorithm>
#include <cctype>
#include <iterator>
#include <string>

#include <google/protobuf/arena.h>
#include <spdlog/spdlog.h>

#include "otlp/attribute_limits.hpp"
#include "otlp/json.hpp"
#include "otlp/protobuf.hpp"
#include "otlp/response.hpp"
#include "receiver/decompress.hpp"

namespace proxy::receiver {
namespace {

using otlp::BodyEncoding;

constexpr std::string_view kDrainingMessage =
    "the proxy is shutting down; retry against its replacement";
constexpr std::string_view kStorageErrorMessage =
    "the proxy could not write the spans to its spool; retry later";

// Arena first block, reused per I/O thread: a typical agent request decodes without malloc.
constexpr std::size_t kArenaBlockBytes = 256 * 1024;
// A decompression buffer that grew past this for one large request is given back afterwards.
constexpr std::size_t kKeptBufferBytes = 8 * 1024 * 1024;

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

// HTTP tokens are ASCII: Beast's case-insensitive compare folds ASCII inline, where std::tolower
// is a locale-aware library call per character (1.4% of a one-span request's CPU in perf).
using boost::beast::iequals;

// The media type without parameters (charset and the like are allowed).
std::optional<BodyEncoding> parse_content_type(std::string_view header) {
  const std::string_view media = trim(header.substr(0, header.find(';')));
  if (iequals(media, "application/x-protobuf") || iequals(media, "application/protobuf")) {
    return BodyEncoding::protobuf;
  }
  if (iequals(media, "application/json")) return BodyEncoding::json;
  return std::nullopt;
}

ReceiverStats::Encoding stats_encoding(const http::request_header<>& header) {
  const auto encoding = parse_content_type(header[http::field::content_type]);
  if (!encoding) return ReceiverStats::kOtherEncoding;
  return *encoding == BodyEncoding::json ? ReceiverStats::kJson : ReceiverStats::kProtobuf;
}

// Errors are answered in the request's encoding when it is one we speak, else protobuf.
BodyEncoding answer_encoding(const http::request_header<>& header) {
  return parse_content_type(header[http::field::content_type]).value_or(BodyEncoding::protobuf);
}

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

inline constexpr std::string_view kLogsPath = "/v1/logs";
inline constexpr std::string_view kMetricsPath = "/v1/metrics";

OtherSignal other_signal(std::string_view path) {
  if (path == kLogsPath) return OtherSignal::logs;
  if (path == kMetricsPath) return OtherSignal::metrics;
  return OtherSignal::none;
}

// google.rpc.Code for an HTTP status, as OTLP/HTTP error bodies carry.
int grpc_code_for(http::status status) {
  switch (status) {
    case http::status::bad_request:
    case http::status::unsupported_media_type:
      return 3;  // INVALID_ARGUMENT
    case http::status::not_found:
      return 5;  // NOT_FOUND
    case http::status::method_not_allowed:
      return 12;  // UNIMPLEMENTED
    case http::status::payload_too_large:
    case http::status::request_header_fields_too_large:
    case http::status::too_many_requests:
      return 8;  // RESOURCE_EXHAUSTED
    case http::status::unauthorized:
      return 16;  // UNAUTHENTICATED
    case http::status::service_unavailable:
      return 14;  // UNAVAILABLE
    default:
      return 2;  // UNKNOWN
  }
}

Response make_response(http::status status, BodyEncoding encoding, std::string body,
                       unsigned version, bool keep_alive) {
  Response response{status, version};
  response.set(http::field::server, "otlp-mlflow-proxy");
  response.set(http::field::content_type, otlp::content_type_of(encoding));
  response.body() = std::move(body);
  response.keep_alive(keep_alive);
  response.prepare_payload();
  return response;
}

// Message::keep_alive() for a bare header: HTTP/1.1 unless "Connection: close", HTTP/1.0 only
// with "Connection: keep-alive".
bool wants_keep_alive(const http::request_header<>& header) {
  http::token_list connection{header[http::field::connection]};
  if (header.version() >= 11) return !connection.exists("close");
  return connection.exists("keep-alive");
}

// An accepted outcome whose answer carries no partial_success: an empty ExportTraceServiceResponse.
bool is_plain_success(const IngestOutcome& outcome) {
  return outcome.kind == IngestOutcome::Kind::accepted && outcome.rejected_spans == 0 &&
         outcome.warning.empty();
}

// The bytes Beast writes for make_response(ok, encoding, the empty response, 11, keep-alive).
std::string_view canned_success(BodyEncoding encoding) {
  static constexpr std::string_view kProtobuf =
      "HTTP/1.1 200 OK\r\nServer: otlp-mlflow-proxy\r\nContent-Type: application/x-protobuf\r\n"
      "Content-Length: 0\r\n\r\n";
  static constexpr std::string_view kJson =
      "HTTP/1.1 200 OK\r\nServer: otlp-mlflow-proxy\r\nContent-Type: application/json\r\n"
      "Content-Length: 2\r\n\r\n{}";
  return encoding == BodyEncoding::json ? kJson : kProtobuf;
}

struct ArenaBlock {
  std::unique_ptr<char[]> bytes{new char[kArenaBlockBytes]};
};

}  // namespace

CheckedRequest decode_and_check(std::string_view body, BodyEncoding encoding,
                                const config::ReceiverConfig& limits, otlp::ExportRequest& out) {
  CheckedRequest checked;
  checked.decoded = encoding == BodyEncoding::json ? otlp::decode_json(body, out)
                                                   : otlp::decode_protobuf(body, out);
  if (!checked.decoded.ok()) return checked;
  // Too many spans refuse the whole request (splitting it would tear traces apart and the
  // client could not tell which spans to resend); too many attributes are cut.
  checked.received = otlp::count_spans(out);
  if (checked.received > limits.max_spans_per_request) {
    checked.too_many_spans = true;
    return checked;
  }
  checked.trimmed = otlp::trim_attributes(
      out, {limits.max_attributes_per_span, limits.max_attributes_per_event,
            limits.max_attributes_per_link});
  // Spans MLflow cannot store are rejected, the rest go on.
  checked.invalid = otlp::remove_invalid_spans(out);
  checked.valid = otlp::count_spans(out);
  return checked;
}

ExportHandler::ExportHandler(const config::ReceiverConfig& receiver,
                             const config::QueueConfig& queue_config,
                             routing::ExperimentSelector selector, queue::SpanQueue& queue,
                             ReceiverStats& stats)
    : receiver_(receiver),
      queue_config_(queue_config),
      selector_(std::move(selector)),
      queue_(queue),
      stats_(stats) {}

std::variant<std::vector<queue::QueueItem>, routing::RoutingError> ExportHandler::route(
    otlp::ExportRequest& request, std::optional<std::string_view> header) const {
  if (const auto router = this->router()) return router->route(request, header);
  // Without a router (the handler tested alone): the selector's experiment, spans unchanged.
  auto selected = selector_.select(header);
  if (auto* routing_error = std::get_if<routing::RoutingError>(&selected)) return *routing_error;
  std::vector<queue::QueueItem> items;
  if (const std::size_t spans = otlp::count_spans(request); spans > 0) {
    items.push_back({std::get<ExperimentRef>(selected), request.SerializeAsString(),
                     static_cast<std::uint32_t>(spans)});
  }
  return items;
}

Response ExportHandler::error(const http::request_header<>& header, http::status status,
                              std::string message, std::string_view peer) {
  bump(stats_.by_protocol[ReceiverStats::kHttp].requests[stats_encoding(header)][ReceiverStats::kRejected]);
  return error_response(header, status, std::move(message), peer);
}

Response ExportHandler::error_response(const http::request_header<>& header, http::status status,
                                       std::string message, std::string_view peer) {
  std::uint64_t suppressed = 0;
  if (reject_log_.allow(suppressed)) {
    spdlog::warn("rejected {} {} from {}: {} {} ({} similar rejections not logged)",
                 std::string(header.method_string()), std::string(header.target()), peer,
                 static_cast<unsigned>(status), message, suppressed);
  }
  const BodyEncoding encoding = answer_encoding(header);
  // Answers to a request whose body was not (fully) read close the connection: the rest of
  // the body would otherwise be taken for the next request.
  const bool keep_alive = wants_keep_alive(header) && status != http::status::payload_too_large &&
                          status != http::status::request_header_fields_too_large;
  Response response = make_response(status, encoding,
                                    otlp::encode_error_status(encoding, grpc_code_for(status), message),
                                    header.version(), keep_alive);
  if (status == http::status::method_not_allowed) response.set(http::field::allow, "POST");
  if (status == http::status::unauthorized) response.set(http::field::www_authenticate, "Bearer");
  if (status == http::status::too_many_requests || status == http::status::service_unavailable) {
    response.set(http::field::retry_after, std::to_string(queue_config_.retry_after.count()));
  }
  return response;
}

HeaderCheck ExportHandler::check_header(const http::request_header<>& header,
                                        std::string_view peer) {
  if (const auto fields = static_cast<std::size_t>(std::distance(header.begin(), header.end()));
      fields > receiver_.max_header_count) {
    bump(stats_.rejected_header_count);
    return error(header, http::status::request_header_fields_too_large,
                 "request has " + std::to_string(fields) + " header fields; the limit is " +
                     std::to_string(receiver_.max_header_count),
                 peer);
  }
  const std::string_view path = path_of(header.target());
  const OtherSignal signal = other_signal(path);
  if (path != kTracesPath && signal == OtherSignal::none) {
    bump(stats_.rejected_not_found);
    return error(header, http::status::not_found,
                 "no such path " + std::string(path.substr(0, 256)) +
                     "; OTLP traces are accepted at POST /v1/traces",
                 peer);
  }
  if (header.method() != http::verb::post) {
    bump(stats_.rejected_method);
    return error(header, http::status::method_not_allowed,
                 "method " + std::string(header.method_string()) +
                     " not allowed on " + std::string(path) + "; use POST",
                 peer);
  }
  // Without a token there is nothing to check: skip the header lookup, a walk of the fields.
  if (!receiver_.auth.bearer_token.empty() && !authorized(header[http::field::authorization])) {
    bump(stats_.rejected_unauthenticated);
    return error(header, http::status::unauthorized,
                 "missing or wrong \"Authorization: Bearer <token>\" header (receiver.auth)",
                 peer);
  }
  const std::string_view content_type = header[http::field::content_type];
  const std::optional<BodyEncoding> encoding = parse_content_type(content_type);
  if (!encoding) {
    bump(stats_.rejected_content_type);
    return error(header, http::status::unsupported_media_type,
                 "unsupported Content-Type \"" + std::string(content_type.substr(0, 128)) +
                     "\"; use application/x-protobuf or application/json",
                 peer);
  }
  const std::string_view content_encoding_header = header[http::field::content_encoding];
  const std::optional<ContentEncoding> content_encoding =
      parse_content_encoding(content_encoding_header);
  if (!content_encoding) {
    bump(stats_.rejected_encoding);
    return error(header, http::status::unsupported_media_type,
                 "unsupported Content-Encoding \"" +
                     std::string(content_encoding_header.substr(0, 128)) +
                     "\"; use gzip, deflate, zstd or none",
                 peer);
  }
  if (draining()) {
    bump(stats_.rejected_draining);
    return error(header, http::status::service_unavailable, std::string(kDrainingMessage), peer);
  }
  return AcceptedHeader{*encoding, *content_encoding, signal};
}

IngestOutcome ExportHandler::ingest(std::string_view body, BodyEncoding encoding,
                                    std::optional<std::string_view> experiment_header,
                                    std::string_view peer,
                                    std::shared_ptr<queue::CommitTicket>* commit) {
  using Kind = IngestOutcome::Kind;
  if (draining()) {
    bump(stats_.rejected_draining);
    return {Kind::draining, std::string(kDrainingMessage)};
  }

  if (auto outcome = ingest_wire(body, encoding, experiment_header, peer, commit)) return std::move(*outcome);

  // 1-3. Decode into an arena whose first block is reused by this thread, then limits and
  // validation.
  thread_local ArenaBlock arena_block;
  google::protobuf::ArenaOptions arena_options;
  arena_options.initial_block = arena_block.bytes.get();
  arena_options.initial_block_size = kArenaBlockBytes;
  google::protobuf::Arena arena(arena_options);
  auto* export_request = google::protobuf::Arena::CreateMessage<otlp::ExportRequest>(&arena);
  const CheckedRequest checked = decode_and_check(body, encoding, receiver_, *export_request);
  if (auto refusal = refused(checked)) return std::move(*refusal);

  // 4. Route, applying each route's policy: one queue item per route (so per experiment).
  return deliver(checked, route(*export_request, experiment_header), commit, peer);
}

// The wire path (routing::Router::route_wire): steps 1 to 4 on a protobuf body's bytes (an
// OTLP-JSON body after its decode). nullopt: the message path takes the request (bytes the wire
// path leaves to protobuf, and malformed bodies, which the message path refuses in its words).
std::optional<IngestOutcome> ExportHandler::ingest_wire(std::string_view body, BodyEncoding encoding,
                                                        std::optional<std::string_view> experiment_header,
                                                        std::string_view peer,
                                                        std::shared_ptr<queue::CommitTicket>* commit) {
  using Outcome = routing::WireRouted::Outcome;
  const auto router = this->router();
  if (!wire_path_.load(std::memory_order_relaxed) || !router) return std::nullopt;
  const std::optional<std::string_view> bytes = protobuf_bytes(body, encoding);
  if (!bytes) return std::nullopt;
  routing::WireRouted routed = router->route_wire(
      *bytes, experiment_header,
      {receiver_.max_attributes_per_span, receiver_.max_attributes_per_event, receiver_.max_attributes_per_link},
      receiver_.max_spans_per_request);
  if (routed.outcome == Outcome::malformed || routed.outcome == Outcome::unsupported) return std::nullopt;
  bump(stats_.requests_wire_path);
  CheckedRequest checked;
  checked.received = routed.checks.received;
  checked.too_many_spans = routed.outcome == Outcome::too_many_spans;
  checked.trimmed = std::move(routed.checks.trimmed);
  checked.invalid = std::move(routed.checks.invalid);
  checked.valid = routed.checks.valid;
  if (auto refusal = refused(checked)) return refusal;
  if (routed.outcome == Outcome::routing_error) {
    return deliver(checked, routing::RoutingError{std::move(routed.error)}, commit, peer);
  }
  return deliver(checked, std::move(routed.items), commit, peer);
}

// The protobuf encoding the wire path reads: the body itself, or an OTLP-JSON body decoded and
// serialized (valid until the thread's next call). nullopt: a JSON body that does not decode,
// which the message path refuses with its own words.
std::optional<std::string_view> ExportHandler::protobuf_bytes(std::string_view body, BodyEncoding encoding) {
  if (encoding == BodyEncoding::protobuf) return body;
  thread_local ArenaBlock arena_block;
  thread_local std::string serialized;
  google::protobuf::ArenaOptions arena_options;
  arena_options.initial_block = arena_block.bytes.get();
  arena_options.initial_block_size = kArenaBlockBytes;
  google::protobuf::Arena arena(arena_options);
  auto* request = google::protobuf::Arena::CreateMessage<otlp::ExportRequest>(&arena);
  if (!otlp::decode_json(body, *request).ok()) return std::nullopt;
  serialized.clear();
  if (!request->SerializeToString(&serialized)) return std::nullopt;
  return serialized;
}

// Steps 1 to 3's refusals: an undecodable body, too many spans, every span invalid.
std::optional<IngestOutcome> ExportHandler::refused(const CheckedRequest& checked) {
  using Kind = IngestOutcome::Kind;
  if (!checked.decoded.ok()) {
    bump(stats_.rejected_bad_body);
    return IngestOutcome{Kind::bad_request, checked.decoded.message};
  }
  if (checked.too_many_spans) {
    bump(stats_.rejected_too_many_spans);
    IngestOutcome outcome{Kind::too_large, "request carries " + std::to_string(checked.received) +
                                               " spans; the limit is " +
                                               std::to_string(receiver_.max_spans_per_request) +
                                               " per request: send smaller batches"};
    outcome.spans = checked.received;
    return outcome;
  }
  const otlp::InvalidSpans& invalid = checked.invalid;
  const std::size_t span_count = checked.valid;
  if (span_count == 0 && invalid.rejected > 0) {
    bump(stats_.rejected_invalid_spans);
    return IngestOutcome{Kind::bad_request,
                         "all " + std::to_string(invalid.rejected) + " spans are invalid; first: " +
                             invalid.first_problem,
                         static_cast<std::int64_t>(invalid.rejected)};
  }
  return std::nullopt;
}

// Steps 4 to 6 from the routed request: a routing error, else enqueue and answer.
IngestOutcome ExportHandler::deliver(const CheckedRequest& checked, Routed&& routed,
                                     std::shared_ptr<queue::CommitTicket>* commit, std::string_view peer) {
  using Kind = IngestOutcome::Kind;
  const otlp::InvalidSpans& invalid = checked.invalid;
  const std::size_t span_count = checked.valid;
  if (const auto* routing_error = std::get_if<routing::RoutingError>(&routed)) {
    bump(stats_.rejected_routing);
    IngestOutcome outcome{Kind::bad_request, routing_error->message,
                          static_cast<std::int64_t>(invalid.rejected)};
    outcome.spans = span_count;
    return outcome;
  }

  // 5. Enqueue: once this succeeds the spans are acknowledged and the proxy owns them. A refusal
  // from here on: the valid spans are the client's to send again.
  if (span_count > 0) {
    if (auto refusal = enqueue(std::get<std::vector<queue::QueueItem>>(std::move(routed)), commit)) {
      refusal->rejected_spans = static_cast<std::int64_t>(invalid.rejected);
      refusal->spans = span_count;
      return std::move(*refusal);
    }
  }

  // 6. The answer: partial_success tells the client what was dropped or cut.
  return accepted(checked, peer);
}

std::optional<IngestOutcome> ExportHandler::enqueue(std::vector<queue::QueueItem>&& items,
                                                    std::shared_ptr<queue::CommitTicket>* commit) {
  using Kind = IngestOutcome::Kind;
  queue::Admission admission = spool_ != nullptr
                                   ? spool_->submit(std::move(items))
                                   : queue::Admission{queue_.push(std::move(items)), nullptr};
  if (admission.commit && commit != nullptr) {
    *commit = std::move(admission.commit);
  } else if (admission.commit && !admission.commit->wait()) {
    bump(stats_.rejected_storage_error);
    return IngestOutcome{Kind::storage_error, std::string(kStorageErrorMessage)};
  }
  switch (admission.result) {
    case queue::PushResult::accepted:
      break;
    case queue::PushResult::full:
      bump(stats_.rejected_queue_full);
      return IngestOutcome{Kind::queue_full,
                           "the proxy's queue is full (MLflow is slower than the incoming spans or "
                           "unreachable); retry after " +
                               std::to_string(queue_config_.retry_after.count()) + "s"};
    case queue::PushResult::closed:
      bump(stats_.rejected_draining);
      return IngestOutcome{Kind::draining, std::string(kDrainingMessage)};
  }
  return std::nullopt;
}

// The answer: partial_success tells the client what was dropped (rejected spans) or cut
// (attributes: rejected_spans stays 0, the message is a warning).
IngestOutcome ExportHandler::accepted(const CheckedRequest& checked, std::string_view peer) {
  const otlp::InvalidSpans& invalid = checked.invalid;
  const otlp::TrimmedAttributes& trimmed = checked.trimmed;
  IngestOutcome outcome{IngestOutcome::Kind::accepted, {}, static_cast<std::int64_t>(invalid.rejected),
                        {}};
  outcome.spans = checked.valid;
  std::string& warning = outcome.warning;
  if (invalid.rejected > 0) {
    warning = std::to_string(invalid.rejected) + " invalid spans rejected; first: " +
              invalid.first_problem;
  } else if (checked.valid == 0) {
    warning = "request contained no spans";
  }
  if (trimmed.attributes > 0) {
    bump(stats_.spans_attributes_trimmed, trimmed.spans);
    bump(stats_.attributes_dropped, trimmed.attributes);
    if (!warning.empty()) warning += "; ";
    warning += std::to_string(trimmed.attributes) + " attributes over the limits dropped from " +
               std::to_string(trimmed.spans) +
               " spans (counted in dropped_attributes_count); first: " + trimmed.first;
  }
  if (invalid.rejected > 0 || trimmed.attributes > 0) {
    std::uint64_t suppressed = 0;
    if (reject_log_.allow(suppressed)) {
      spdlog::warn("partially accepted request from {}: {} ({} similar not logged)", peer, warning,
                   suppressed);
    }
  }
  return outcome;
}

bool ExportHandler::authorized(std::string_view authorization) const {
  const std::string& token = receiver_.auth.bearer_token;
  if (token.empty()) return true;
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() < kScheme.size() ||
      !iequals(authorization.substr(0, kScheme.size()), kScheme)) {
    return false;
  }
  const std::string_view given = trim(authorization.substr(kScheme.size()));
  // Constant time in the token's content: every byte is compared whatever differs first.
  unsigned char difference = given.size() == token.size() ? 0 : 1;
  for (std::size_t i = 0; i < token.size(); ++i) {
    const unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    difference |= static_cast<unsigned char>(g ^ static_cast<unsigned char>(token[i]));
  }
  return difference == 0;
}

void ExportHandler::count(ReceiverStats::Protocol protocol, ReceiverStats::Encoding encoding,
                          const IngestOutcome& outcome) {
  ReceiverStats::DoorCounters& door = stats_.by_protocol[protocol];
  const bool accepted = outcome.kind == IngestOutcome::Kind::accepted;
  bump(door.requests[encoding][accepted ? ReceiverStats::kAccepted : ReceiverStats::kRejected]);
  if (outcome.spans > 0) {
    bump(door.spans[encoding][accepted ? ReceiverStats::kSpansAccepted : ReceiverStats::kSpansRefused],
         outcome.spans);
  }
  if (outcome.rejected_spans > 0) {
    bump(door.spans[encoding][ReceiverStats::kSpansInvalid],
         static_cast<std::uint64_t>(outcome.rejected_spans));
  }
}

Response ExportHandler::answer(const http::request_header<>& header, const IngestOutcome& outcome,
                               std::string_view peer) {
  const BodyEncoding encoding = answer_encoding(header);
  switch (outcome.kind) {
    case IngestOutcome::Kind::accepted:
      return make_response(http::status::ok, encoding,
                           otlp::encode_export_response(encoding, outcome.rejected_spans,
                                                        outcome.warning),
                           header.version(), wants_keep_alive(header));
    case IngestOutcome::Kind::bad_request:
      return error_response(header, http::status::bad_request, outcome.message, peer);
    case IngestOutcome::Kind::too_large:
      return error_response(header, http::status::payload_too_large, outcome.message, peer);
    case IngestOutcome::Kind::queue_full:
      return error_response(header, http::status::too_many_requests, outcome.message, peer);
    case IngestOutcome::Kind::draining:
    case IngestOutcome::Kind::storage_error:
      break;
  }
  return error_response(header, http::status::service_unavailable, outcome.message, peer);
}

Response ExportHandler::handle(const Request& request, std::string_view peer,
                              PendingCommit* pending) {
  HeaderCheck checked = check_header(request.base(), peer);
  if (auto* refused = std::get_if<Response>(&checked)) return std::move(*refused);
  return handle(request, std::get<AcceptedHeader>(checked), peer, pending);
}

Response ExportHandler::handle(const Request& request, const AcceptedHeader& accepted,
                              std::string_view peer, PendingCommit* pending) {
  return built(request.base(), respond(request, accepted, peer, pending), peer);
}

Response ExportHandler::built(const http::request_header<>& header, HttpAnswer&& answer,
                              std::string_view peer) {
  if (answer.canned.empty()) return std::move(answer.response);
  return this->answer(header, IngestOutcome{IngestOutcome::Kind::accepted, {}}, peer);
}

HttpAnswer ExportHandler::respond(const Request& request, const AcceptedHeader& accepted,
                                  std::string_view peer, PendingCommit* pending) {
  const BodyEncoding encoding = accepted.encoding;
  if (const OtherSignal signal = accepted.signal; signal != OtherSignal::none) {
    // An empty Export{Logs,Metrics}ServiceResponse: no bytes in protobuf, {} in JSON.
    bump(signal == OtherSignal::logs ? stats_.logs_requests_discarded
                                     : stats_.metrics_requests_discarded);
    bump(stats_.other_signal_bytes_discarded, request.body().size());
    std::uint64_t suppressed = 0;
    if (other_signal_log_.allow(suppressed)) {
      spdlog::info("discarding OTLP {} from {} (MLflow stores traces only; answered 200){}",
                   signal == OtherSignal::logs ? "logs" : "metrics", peer,
                   suppressed > 0 ? " (" + std::to_string(suppressed) + " more not logged)" : "");
    }
    return {{}, make_response(http::status::ok, encoding,
                              encoding == BodyEncoding::json ? std::string("{}") : std::string(),
                              request.version(), request.keep_alive())};
  }
  const ContentEncoding content_encoding = accepted.content_encoding;

  // Decompress (bounded): HTTP carries compression in Content-Encoding, gRPC in its framing.
  thread_local std::string decompressed;
  std::string_view body = request.body();
  if (content_encoding != ContentEncoding::identity) {
    bump(stats_.requests_compressed);
    decompressed.clear();
    const DecompressResult result = decompress(content_encoding, body, decompressed,
                                               receiver_.max_body_bytes,
                                               receiver_.max_decompression_ratio);
    if (result.status != DecompressResult::Status::ok) {
      const bool too_large = result.status == DecompressResult::Status::too_large ||
                             result.status == DecompressResult::Status::ratio_exceeded;
      bump(result.status == DecompressResult::Status::too_large        ? stats_.rejected_too_large
           : result.status == DecompressResult::Status::ratio_exceeded ? stats_.rejected_decompression_ratio
                                                                        : stats_.rejected_bad_body);
      if (decompressed.capacity() > kKeptBufferBytes) std::string().swap(decompressed);
      return {{}, error(request.base(),
                        too_large ? http::status::payload_too_large : http::status::bad_request,
                        result.message, peer)};
    }
    body = decompressed;
  } else if (body.size() > receiver_.max_body_bytes) {
    bump(stats_.rejected_too_large);
    return {{}, error(request.base(), http::status::payload_too_large,
                      "body of " + std::to_string(body.size()) + " bytes exceeds the limit of " +
                          std::to_string(receiver_.max_body_bytes) + " bytes",
                      peer)};
  }

  const auto header_value = request.find(routing::kExperimentHeader);
  std::shared_ptr<queue::CommitTicket> commit;
  IngestOutcome outcome =
      ingest(body, encoding,
             header_value == request.end()
                 ? std::nullopt
                 : std::optional<std::string_view>(header_value->value()),
             peer, pending != nullptr ? &commit : nullptr);
  if (decompressed.capacity() > kKeptBufferBytes) std::string().swap(decompressed);

  const ReceiverStats::Encoding counted_as =
      encoding == BodyEncoding::json ? ReceiverStats::kJson : ReceiverStats::kProtobuf;
  HttpAnswer result;
  if (is_plain_success(outcome) && request.version() == 11 && wants_keep_alive(request.base())) {
    result.canned = canned_success(encoding);
  } else {
    result.response = answer(request.base(), outcome, peer);
  }
  if (commit) {
    *pending = {std::move(commit), counted_as, std::move(outcome)};
  } else {
    count(ReceiverStats::kHttp, counted_as, outcome);
  }
  return result;
}

}  // namespace proxy::receiver
