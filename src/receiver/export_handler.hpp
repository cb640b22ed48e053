// OTLP/HTTP trace ingestion without sockets: request in, response out. Runs the pipeline from
// decompression to the queue: decompress, decode, validate, route, enqueue, answer.
#pragma once

#include <atomic>
#include <optional>
#include <string_view>

#include <boost/beast/http.hpp>

#include "common/rate_limited_log.hpp"
#include "config/config.hpp"
#include "queue/span_queue.hpp"
#include "queue/spool.hpp"
#include "receiver/stats.hpp"
#include "routing/experiment_selector.hpp"
#include "routing/router.hpp"

namespace proxy::receiver {

namespace http = boost::beast::http;

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

inline constexpr std::string_view kTracesPath = "/v1/traces";

class ExportHandler {
 public:
  ExportHandler(const config::ReceiverConfig& receiver, const config::QueueConfig& queue_config,
                routing::ExperimentSelector selector, queue::SpanQueue& queue, ReceiverStats& stats);

  // Checks what can be checked from the header alone, so a request that will be refused is
  // answered before its body is read. nullopt: read the body and call handle().
  std::optional<Response> check_header(const http::request_header<>& header,
                                       std::string_view peer);

  // With a spool (durability: disk) the 200 may only be sent once the spans are stored: then
  // `commit` receives a ticket to await before answering (without `commit`, handle() waits).
  Response handle(const Request& request, std::string_view peer,
                  std::shared_ptr<queue::CommitTicket>* commit = nullptr);

  // durability: disk: requests go to the spool, which feeds the queue once they are written.
  void set_spool(queue::Spool* spool) { spool_ = spool; }

  // Routes and policies (the proxy always has them; without, spans go unchanged to the
  // selector's experiment). A shared_ptr so that a reload can swap it.
  void set_router(std::shared_ptr<const routing::Router> router) { router_ = std::move(router); }

  // An error response for a request that could not be read (header too large, body over the
  // limit): HTTP status and a message, encoded as the request asked where known.
  Response error(const http::request_header<>& header, http::status status, std::string message,
                 std::string_view peer);

  // While draining, every new request gets 503 with Retry-After.
  void set_draining() { draining_.store(true, std::memory_order_relaxed); }
  bool draining() const { return draining_.load(std::memory_order_relaxed); }

 private:
  std::variant<std::vector<queue::QueueItem>, routing::RoutingError> route(
      otlp::ExportRequest& request, std::optional<std::string_view> header) const;

  const config::ReceiverConfig& receiver_;
  const config::QueueConfig& queue_config_;
  routing::ExperimentSelector selector_;
  queue::SpanQueue& queue_;
  queue::Spool* spool_ = nullptr;
  std::shared_ptr<const routing::Router> router_;
  ReceiverStats& stats_;
  std::atomic<bool> draining_{false};
  RateLimitedLog reject_log_;
  RateLimitedLog other_signal_log_{1};
};

}  // namespace proxy::receiver
