// One keep-alive HTTP/1.1 connection to MLflow, plaintext or TLS (https://), used by one
// coroutine at a time. Connects lazily, reconnects after errors, and retries once on a fresh
// connection when a reused one turns out to be closed (uvicorn drops idle keep-alive connections
// after 5 s).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "config/config.hpp"
#include "exporter/upstream_url.hpp"

namespace proxy::exporter {

namespace http = boost::beast::http;

// Which step of an exchange with MLflow failed, as an error code of its own category ("connect",
// "TLS handshake"...), beside the transport error that made it fail.
enum class HttpStep { resolve = 1, connect, tls_handshake, write, read };
const boost::system::error_category& http_step_category();
inline boost::system::error_code make_error_code(HttpStep step) {
  return {static_cast<int>(step), http_step_category()};
}

struct HttpResult {
  boost::system::error_code error;        // transport failure; `response` is meaningless then
  boost::system::error_code failed_step;  // an HttpStep when `error` is set
  std::string error_detail;         // why, when error.message() is not enough (handshakes)
  // A TLS failure: the handshake, or an alert right after it (with TLS 1.3 a server that
  // refuses the client's certificate says so only once the client has finished its part).
  bool tls_failed = false;
  http::response<http::string_body> response;

  // "connect: Connection refused", "TLS handshake: certificate verify failed: ...".
  std::string describe_error() const {
    return failed_step.message() + ": " + (error_detail.empty() ? error.message() : error_detail);
  }
};

// The TLS side of an https:// upstream, built once and shared by every connection.
struct UpstreamTls {
  std::shared_ptr<boost::asio::ssl::context> context;
  bool verify = true;  // false: mlflow.tls.insecure_skip_verify
};

// Throws config::ConfigError naming the setting and the file when a CA file, certificate or key
// cannot be used (missing, unreadable, not PEM, key not matching the certificate).
std::shared_ptr<const UpstreamTls> make_upstream_tls(const config::MlflowTlsConfig& tls);

struct HttpClientOptions {
  std::chrono::milliseconds connect_timeout{5000};  // TCP connect, then the TLS handshake
  std::chrono::milliseconds request_timeout{30000};
  std::string authorization;  // full Authorization header value, or empty
  std::shared_ptr<const UpstreamTls> tls;  // set for an https:// upstream
};

class HttpClient {
 public:
  HttpClient(boost::asio::any_io_executor executor, UpstreamUrl upstream, HttpClientOptions options);

  // Sends `request` (target, method, body and content headers set by the caller; Host, User-Agent
  // and Authorization are added here). Body: http::string_body, or SlicesBody for a body sent
  // from buffers the caller keeps alive until the result.
  template <class Body>
  boost::asio::awaitable<HttpResult> send(http::request<Body> request);

  const UpstreamUrl& upstream() const { return upstream_; }

 private:
  using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

  template <class Body>
  boost::asio::awaitable<HttpResult> send_once(http::request<Body>& request);
  boost::asio::awaitable<HttpResult> connect();
  boost::asio::awaitable<HttpResult> resolve(boost::asio::ip::tcp::resolver::results_type& endpoints);
  template <class Stream, class Body>
  boost::asio::awaitable<HttpResult> exchange(Stream& stream, http::request<Body>& request);
  static boost::asio::awaitable<boost::beast::error_code> read_pending_alert(TlsStream& stream);
  bool connected() const { return plain_stream_.has_value() || tls_stream_.has_value(); }
  void close();

  boost::asio::any_io_executor executor_;
  UpstreamUrl upstream_;
  HttpClientOptions options_;
  // One of them while connected: plaintext for http://, TLS for https://.
  std::optional<boost::beast::tcp_stream> plain_stream_;
  std::optional<TlsStream> tls_stream_;
  boost::beast::flat_buffer buffer_;
};

// The Authorization header from MLflow's own credential settings, chosen as MLflow's client
// does: Basic when both username and password are set, else Bearer with a token, else Basic
// with what there is (credentials in the URL), else empty.
std::string authorization_header(const std::string& username, const std::string& password,
                                 const std::string& token);

}  // namespace proxy::exporter

template <>
struct boost::system::is_error_code_enum<proxy::exporter::HttpStep> : std::true_type {};
