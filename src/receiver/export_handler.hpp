// OTLP trace ingestion without sockets. ingest() is the protocol-neutral pipeline both front
// doors share: decode, validate, route (with policy), enqueue, and an IngestOutcome saying what
// happened. handle() is the OTLP/HTTP door around it: header checks, decompression, and the
// HTTP response for the outcome; the gRPC door (grpc_server.cpp) maps the same outcome to a
// gRPC status.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include <boost/beast/http.hpp>

#include "common/rate_limited_log.hpp"
#include "config/config.hpp"
#include "otlp/attribute_limits.hpp"
#include "otlp/protobuf.hpp"
#include "otlp/response.hpp"
#include "queue/span_queue.hpp"
#include "queue/spool.hpp"
#include "receiver/decompress.hpp"
#include "receiver/received_body.hpp"
#include "receiver/stats.hpp"
#include "routing/experiment_selector.hpp"
#include "routing/router.hpp"

namespace proxy::receiver {

namespace http = boost::beast::http;

using Request = http::request<ReceivedBody>;
using Response = http::response<http::string_body>;

inline constexpr std::string_view kTracesPath = "/v1/traces";

// OTLP logs and metrics: clients configured with a base endpoint (OTEL_EXPORTER_OTLP_ENDPOINT)
// send them next to traces. MLflow has nowhere to put them, and a 404 makes exporters retry or
// log errors forever, so they are answered 200 and counted.
enum class OtherSignal { none, logs, metrics };

// What check_header() learned from a header it lets through. handle() goes on from it, so a
// request's header is parsed once, not once per stage.
struct AcceptedHeader {
  otlp::BodyEncoding encoding = otlp::BodyEncoding::protobuf;
  ContentEncoding content_encoding = ContentEncoding::identity;
  OtherSignal signal = OtherSignal::none;  // POST /v1/logs or /v1/metrics
};

// check_header()'s verdict: the answer to a refused request, or what to read the body with.
using HeaderCheck = std::variant<Response, AcceptedHeader>;

// What the pipeline did with one request, whatever protocol carried it.
struct IngestOutcome {
  enum class Kind {
    accepted,       // spans owned by the proxy (some may have been rejected: partial success)
    bad_request,    // undecodable, every span invalid, or a routing error: do not retry
    too_large,      // over a per-request limit (spans per request): send smaller batches
    queue_full,     // memory or disk budget reached: retry after queue.retry_after
    draining,       // shutting down: retry (against the replacement)
    storage_error,  // the spool could not write: retry later
  };
  // A constructor rather than aggregate initialisation: clang's -Wmissing-field-initializers
  // would otherwise flag every {kind, message} that leaves the accepted-only fields out.
  IngestOutcome() = default;
  IngestOutcome(Kind kind_, std::string message_, std::int64_t rejected_spans_ = 0,
                std::string warning_ = {})
      : kind(kind_),
        message(std::move(message_)),
        rejected_spans(rejected_spans_),
        warning(std::move(warning_)) {}

  Kind kind = Kind::accepted;
  std::string message;            // why, for every kind but accepted
  std::int64_t rejected_spans = 0;  // invalid spans dropped (accepted: partial_success)
  std::string warning;            // accepted: partial_success.error_message, may be empty
  // accepted: the spans queued; refused after decoding: the spans the client must send again.
  std::uint64_t spans = 0;
};

// Steps 1 to 3 of ExportHandler::ingest() on an uncompressed body: decode into `out`, then,
// unless the request is over max_spans_per_request, cut attributes over the limits and remove
// the spans MLflow cannot store. Shared with `otlp-mlflow-proxy explain`, which shows what the
// later stages do to exactly this result.
struct CheckedRequest {
  otlp::DecodeResult decoded;    // not ok: nothing else was done
  std::size_t received = 0;      // spans decoded
  bool too_many_spans = false;   // over max_spans_per_request: neither trimmed nor validated
  otlp::TrimmedAttributes trimmed;
  otlp::InvalidSpans invalid;
  std::size_t valid = 0;         // spans left
};
CheckedRequest decode_and_check(std::string_view body, otlp::BodyEncoding encoding,
                                const config::ReceiverConfig& limits, otlp::ExportRequest& out);

// An accepted request whose spool write is under way (durability: disk): the door answers, and
// counts the request, once `ticket` completes (false: storage_error).
struct PendingCommit {
  std::shared_ptr<queue::CommitTicket> ticket;
  ReceiverStats::Encoding encoding = ReceiverStats::kProtobuf;
  IngestOutcome outcome;
};

// An HTTP export's answer: `canned`, when not empty, is the whole answer as bytes (the 200 with
// an empty ExportTraceServiceResponse nearly every export gets: building and serializing a Beast
// Response for it costs more than the rest of a one-span request's answer); else `response`.
struct HttpAnswer {
  std::string_view canned;
  Response response;
};

class ExportHandler {
 public:
  ExportHandler(const config::ReceiverConfig& receiver, const config::QueueConfig& queue_config,
                routing::ExperimentSelector selector, queue::SpanQueue& queue, ReceiverStats& stats);

  // Checks what can be checked from the header alone, so a request that will be refused is
  // answered before its body is read. An AcceptedHeader: read the body and call handle().
  HeaderCheck check_header(const http::request_header<>& header, std::string_view peer);

  // A request whose header check_header() accepted as `accepted`. With a spool (durability:
  // disk) the 200 may only be sent once the spans are stored: then `pending` receives a ticket
  // to await before answering and counting (without `pending`, handle() waits). Counts the
  // request (protocol http) unless it is left pending.
  Response handle(const Request& request, const AcceptedHeader& accepted, std::string_view peer,
                  PendingCommit* pending = nullptr);
  // handle() as HttpServer writes its answer: the common 200 as canned bytes, unbuilt.
  HttpAnswer respond(const Request& request, const AcceptedHeader& accepted, std::string_view peer,
                     PendingCommit* pending = nullptr);
  // `answer` as a Response (the canned 200 built by Beast), e.g. to change its keep-alive.
  Response built(const http::request_header<>& header, HttpAnswer&& answer, std::string_view peer);
  // check_header() and then the above: a whole request at once (tests, embedders).
  Response handle(const Request& request, std::string_view peer, PendingCommit* pending = nullptr);

  // The HTTP answer to an ingest outcome (not counted: see count()).
  Response answer(const http::request_header<>& header, const IngestOutcome& outcome,
                  std::string_view peer);

  // Counts one answered request of a door in the by-protocol counters, from its final outcome.
  // The doors call it (not ingest()), because only they know the protocol and when the answer
  // is final (after a spool commit).
  void count(ReceiverStats::Protocol protocol, ReceiverStats::Encoding encoding,
             const IngestOutcome& outcome);

  // The shared pipeline, from an uncompressed body on: decode (as `encoding`), validate, route
  // with `experiment_header` (x-mlflow-experiment-id, from an HTTP header or gRPC metadata),
  // enqueue. With a spool and `commit`, an accepted outcome is final only once the ticket in
  // `commit` completes with true (false: storage_error); without `commit` it waits here.
  IngestOutcome ingest(std::string_view body, otlp::BodyEncoding encoding,
                       std::optional<std::string_view> experiment_header, std::string_view peer,
                       std::shared_ptr<queue::CommitTicket>* commit = nullptr);

  // Inbound authentication (receiver.auth): true when no token is configured or `authorization`
  // is "Bearer <token>". Compared in constant time.
  bool authorized(std::string_view authorization) const;

  // The client's retry delay for queue_full, draining and storage_error.
  std::chrono::seconds retry_after() const { return queue_config_.retry_after; }

  // durability: disk: requests go to the spool, which feeds the queue once they are written.
  void set_spool(queue::Spool* spool) { spool_ = spool; }

  // Routes and policies (the proxy always has them; without, spans go unchanged to the
  // selector's experiment). Safe to call while requests run (SIGHUP reload): each request keeps
  // the router it started with until it is done.
  void set_router(std::shared_ptr<const routing::Router> router) {
    std::lock_guard lock(router_mutex_);
    router_ = std::move(router);
  }
  std::shared_ptr<const routing::Router> router() const {
    std::lock_guard lock(router_mutex_);
    return router_;
  }

  // An error response for a request that could not be read (header too large, body over the
  // limit): HTTP status and a message, encoded as the request asked where known. Counted as a
  // rejected HTTP request.
  Response error(const http::request_header<>& header, http::status status, std::string message,
                 std::string_view peer);

  // Whether protobuf bodies may take the wire path when no route normalizes (on by default): off,
  // every request is decoded into messages. The answers and items are the same either way.
  void set_wire_path(bool enabled) { wire_path_.store(enabled, std::memory_order_relaxed); }

  // While draining, every new request gets 503 with Retry-After.
  void set_draining() { draining_.store(true, std::memory_order_relaxed); }
  bool draining() const { return draining_.load(std::memory_order_relaxed); }

 private:
  Response error_response(const http::request_header<>& header, http::status status,
                          std::string message, std::string_view peer);
  // Step 5 of ingest(): nullopt when the items are queued (or, with `commit`, being written);
  // else the refusal.
  std::optional<IngestOutcome> enqueue(std::vector<queue::QueueItem>&& items,
                                       std::shared_ptr<queue::CommitTicket>* commit);
  IngestOutcome accepted(const CheckedRequest& checked, std::string_view peer);
  using Routed = std::variant<std::vector<queue::QueueItem>, routing::RoutingError>;
  Routed route(otlp::ExportRequest& request, std::optional<std::string_view> header) const;
  // ingest()'s steps shared by the message path and the wire path.
  std::optional<IngestOutcome> ingest_wire(std::string_view body, otlp::BodyEncoding encoding,
                                           std::optional<std::string_view> experiment_header,
                                           std::string_view peer, std::shared_ptr<queue::CommitTicket>* commit);
  static std::optional<std::string_view> protobuf_bytes(std::string_view body, otlp::BodyEncoding encoding);
  std::optional<IngestOutcome> refused(const CheckedRequest& checked);
  IngestOutcome deliver(const CheckedRequest& checked, Routed&& routed,
                        std::shared_ptr<queue::CommitTicket>* commit, std::string_view peer);

  const config::ReceiverConfig& receiver_;
  const config::QueueConfig& queue_config_;
  routing::ExperimentSelector selector_;
  queue::SpanQueue& queue_;
  queue::Spool* spool_ = nullptr;
  // A mutex, not std::atomic<std::shared_ptr>: held for a pointer copy, uncontended in practice
  // (one lock per request, not per span), and understood by every sanitizer.
  mutable std::mutex router_mutex_;
  std::shared_ptr<const routing::Router> router_;
  ReceiverStats& stats_;
  std::atomic<bool> draining_{false};
  std::atomic<bool> wire_path_{true};
  RateLimitedLog reject_log_;
  RateLimitedLog other_signal_log_{1};
};

}  // namespace proxy::receiver
