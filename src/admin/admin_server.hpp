// The admin listener: GET /healthz (the process serves), /readyz (evaluate_readiness, 503 with
// the reasons when not ready) and /metrics (Prometheus text). Its own io_context and thread, so
// a probe is answered even while the OTLP I/O threads are saturated, and a stuck scraper cannot
// take an I/O thread from agents. Served with Beast rather than prometheus-cpp's civetweb
// exposer: one HTTP stack in the binary, the receiver's header limit and timeouts
// (AdminLimits), a cap on open connections of its own, and health and readiness on the same
// port as the metrics.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>

#include "admin/readiness.hpp"
#include "config/config.hpp"

namespace proxy::admin {

namespace http = boost::beast::http;

struct AdminHandlers {
  std::function<Readiness()> readiness;
  std::function<std::string()> metrics;  // the exposition text
};

// What one connection may take. admin_limits() fills it from the configuration.
struct AdminLimits {
  std::size_t max_header_bytes = 16 * 1024;
  std::chrono::milliseconds read_timeout{30'000};  // one request, and writing its answer
  std::chrono::milliseconds idle_timeout{120'000};  // keep-alive with no request
  std::size_t max_connections = 16;  // more are closed as soon as they are accepted
};

// receiver.max_header_bytes, read_timeout and idle_timeout; admin.max_connections.
AdminLimits admin_limits(const config::Config& config);

using AdminRequest = http::request<http::string_body>;
using AdminResponse = http::response<http::string_body>;

// One request in, one response out; no sockets (unit-tested alone).
AdminResponse answer_admin_request(const AdminRequest& request, const AdminHandlers& handlers);

class AdminServer {
 public:
  AdminServer(config::Endpoint listen, AdminLimits limits, AdminHandlers handlers);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds and starts the admin thread. Throws std::system_error naming the address.
  void start();
  // Closes the listener and every connection, joins the thread. Idempotent.
  void stop();

  boost::asio::ip::tcp::endpoint local_endpoint() const;
  // Connections refused for admin.max_connections so far.
  std::uint64_t refused_connections() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
  std::thread thread_;
};

}  // namespace proxy::admin
