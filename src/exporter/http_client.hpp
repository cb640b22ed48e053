// One keep-alive HTTP/1.1 connection to MLflow, used by one coroutine at a time. Connects
// lazily, reconnects after errors, and retries once on a fresh connection when a reused one turns
// out to be closed (uvicorn drops idle keep-alive connections after 5 s).
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include "exporter/upstream_url.hpp"

namespace proxy::exporter {

namespace http = boost::beast::http;

struct HttpResult {
  boost::system::error_code error;  // transport failure; `response` is meaningless then
  std::string failed_step;          // "resolve", "connect", "write", "read"
  http::response<http::string_body> response;
};

struct HttpClientOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{30000};
  std::string authorization;  // full Authorization header value, or empty
};

class HttpClient {
 public:
  HttpClient(boost::asio::any_io_executor executor, UpstreamUrl upstream, HttpClientOptions options);

  // Sends `request` (target, method, body and content headers set by the caller; Host, User-Agent
  // and Authorization are added here).
  boost::asio::awaitable<HttpResult> send(http::request<http::string_body> request);

  const UpstreamUrl& upstream() const { return upstream_; }

 private:
  boost::asio::awaitable<HttpResult> send_once(http::request<http::string_body>& request);
  void close();

  boost::asio::any_io_executor executor_;
  UpstreamUrl upstream_;
  HttpClientOptions options_;
  std::optional<boost::beast::tcp_stream> stream_;
  boost::beast::flat_buffer buffer_;
};

// "Basic ..." or "Bearer ..." from MLflow's own credential settings, or empty.
std::string authorization_header(const std::string& username, const std::string& password,
                                 const std::string& token);

}  // namespace proxy::exporter
