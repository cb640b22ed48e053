#include "exporter/http_client.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/detail/base64.hpp>

#include "common/error_category.hpp"
#include "common/tls.hpp"
#include "exporter/slices_body.hpp"

namespace proxy::exporter {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
constexpr auto kNoThrow = net::experimental::as_tuple(net::use_awaitable);

namespace {

std::string_view describe(HttpStep step) {
  switch (step) {
    case HttpStep::resolve: return "resolve";
    case HttpStep::connect: return "connect";
    case HttpStep::tls_handshake: return "TLS handshake";
    case HttpStep::write: return "write";
    case HttpStep::read: return "read";
  }
  return {};
}

}  // namespace

const boost::system::error_category& http_step_category() {
  static const common::EnumErrorCategory<HttpStep> category("mlflow http step", describe);
  return category;
}

std::string authorization_header(const std::string& username, const std::string& password,
                                 const std::string& token) {
  const auto basic = [&] {
    const std::string credentials = username + ":" + password;
    std::string encoded(beast::detail::base64::encoded_size(credentials.size()), '\0');
    encoded.resize(beast::detail::base64::encode(encoded.data(), credentials.data(), credentials.size()));
    return "Basic " + encoded;
  };
  if (!username.empty() && !password.empty()) return basic();
  if (!token.empty()) return "Bearer " + token;
  if (username.empty() && password.empty()) return {};
  return basic();
}

std::shared_ptr<const UpstreamTls> make_upstream_tls(const config::MlflowTlsConfig& settings) {
  auto tls = std::make_shared<UpstreamTls>();
  tls->context = tls::make_context(ssl::context::tls_client);
  tls->verify = !settings.insecure_skip_verify;
  if (settings.insecure_skip_verify && !settings.ca_file.empty()) {
    throw config::ConfigError("mlflow.tls: ca_file and insecure_skip_verify exclude each other; set one");
  }
  std::optional<tls::LoadError> error;
  if (!settings.ca_file.empty()) {
    error = tls::load_trusted_cas(*tls->context, settings.ca_file,
                                  "mlflow.tls.ca_file (MLFLOW_TRACKING_SERVER_CERT_PATH)");
  } else {
    boost::system::error_code ec;
    tls->context->set_default_verify_paths(ec);
    if (ec) throw config::ConfigError("mlflow.tls: cannot load the system's CA certificates: " + ec.message());
  }
  if (!error && !settings.client_cert_file.empty()) {
    const bool key_apart = !settings.client_key_file.empty();
    error = tls::load_certificate_and_key(
        *tls->context, settings.client_cert_file,
        "mlflow.tls.client_cert_file (MLFLOW_TRACKING_CLIENT_CERT_PATH)",
        key_apart ? settings.client_key_file : settings.client_cert_file,
        key_apart ? "mlflow.tls.client_key_file"
                  : "mlflow.tls.client_cert_file (no client_key_file: the key must be in it)");
  }
  if (error) throw config::ConfigError(error->message);
  return tls;
}

HttpClient::HttpClient(net::any_io_executor executor, UpstreamUrl upstream, HttpClientOptions options)
    : executor_(std::move(executor)), upstream_(std::move(upstream)), options_(std::move(options)) {}

void HttpClient::close() {
  // No TLS close_notify exchange: the connection is abandoned after an error or a server's
  // "Connection: close", and MLflow's uvicorn does not wait for one either.
  beast::error_code ignored;
  if (plain_stream_) plain_stream_->socket().shutdown(tcp::socket::shutdown_both, ignored);
  if (tls_stream_) beast::get_lowest_layer(*tls_stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
  plain_stream_.reset();
  tls_stream_.reset();
  buffer_.clear();
}

template <class Body>
net::awaitable<HttpResult> HttpClient::send(http::request<Body> request) {
  request.version(11);
  request.set(http::field::host, upstream_.host_header());
  request.set(http::field::user_agent, "otlp-mlflow-proxy/" PROXY_VERSION);
  if (!options_.authorization.empty()) request.set(http::field::authorization, options_.authorization);
  request.keep_alive(true);
  request.prepare_payload();

  const bool reused = connected();
  HttpResult result = co_await send_once(request);
  // A reused connection the server had already closed fails at write or at the first read;
  // the request never reached MLflow (or is idempotent there), so one fresh try is safe.
  if (result.error && reused && result.error != beast::error::timeout &&
      (result.failed_step == HttpStep::write || result.failed_step == HttpStep::read)) {
    result = co_await send_once(request);
  }
  co_return result;
}

namespace {

// One name lookup, shared with its completion handler: getaddrinfo runs on a thread of asio's
// and cannot be interrupted, so a lookup that outlives its deadline finishes into this, unread.
struct PendingLookup {
  explicit PendingLookup(const net::any_io_executor& executor) : resolver(executor), timer(executor) {}
  tcp::resolver resolver;
  net::steady_timer timer;
  boost::system::error_code error;
  tcp::resolver::results_type endpoints;
  bool done = false;
};

}  // namespace

// The name lookup, bounded by connect_timeout: a DNS server that stops answering would
// otherwise hold every reconnect for the resolver's own timeouts (tens of seconds).
net::awaitable<HttpResult> HttpClient::resolve(tcp::resolver::results_type& endpoints) {
  auto lookup = std::make_shared<PendingLookup>(executor_);
  lookup->timer.expires_after(options_.connect_timeout);
  // Handler and timer run on executor_ (the exporter's single thread): no lock needed.
  lookup->resolver.async_resolve(upstream_.host, upstream_.port,
                                 [lookup](const boost::system::error_code& ec,
                                          tcp::resolver::results_type found) {
                                   lookup->error = ec;
                                   lookup->endpoints = std::move(found);
                                   lookup->done = true;
                                   lookup->timer.cancel();
                                 });
  co_await lookup->timer.async_wait(kNoThrow);
  HttpResult result;
  if (!lookup->done) {
    lookup->resolver.cancel();
    result.error = net::error::timed_out;
    result.failed_step = HttpStep::resolve;
    result.error_detail = "no answer for " + upstream_.host + " within connect_timeout (" +
                          std::to_string(options_.connect_timeout.count()) + " ms)";
  } else if (lookup->error) {
    result.error = lookup->error;
    result.failed_step = HttpStep::resolve;
  } else {
    endpoints = lookup->endpoints;
  }
  co_return result;
}

net::awaitable<HttpResult> HttpClient::connect() {
  tcp::resolver::results_type endpoints;
  HttpResult result = co_await resolve(endpoints);
  if (result.error) co_return result;
  beast::tcp_stream* tcp_layer = nullptr;
  if (options_.tls) {
    tls_stream_.emplace(executor_, *options_.tls->context);
    tcp_layer = &beast::get_lowest_layer(*tls_stream_);
  } else {
    plain_stream_.emplace(executor_);
    tcp_layer = &*plain_stream_;
  }
  tcp_layer->expires_after(options_.connect_timeout);
  auto [connect_ec, endpoint] = co_await tcp_layer->async_connect(endpoints, kNoThrow);
  if (connect_ec) {
    close();
    result.error = connect_ec;
    result.failed_step = HttpStep::connect;
    co_return result;
  }
  tcp_layer->socket().set_option(tcp::no_delay(true));
  if (!options_.tls) co_return result;

  SSL* ssl_handle = tls_stream_->native_handle();
  boost::system::error_code address_ec;
  net::ip::make_address(upstream_.host, address_ec);
  const bool ip_literal = !address_ec;
  // SNI names a host, never an address (RFC 6066); the certificate must name whichever it is.
  // (SSL_set_tlsext_host_name is this call behind a C cast.)
  if (!ip_literal) {
    SSL_ctrl(ssl_handle, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(upstream_.host.c_str()));
  }
  if (options_.tls->verify) {
    tls_stream_->set_verify_mode(ssl::verify_peer);
    // OpenSSL's own name check (RFC 6125), so a mismatch reports as such in the verify result.
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_handle);
    if (ip_literal) {
      X509_VERIFY_PARAM_set1_ip_asc(param, upstream_.host.c_str());
    } else {
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      X509_VERIFY_PARAM_set1_host(param, upstream_.host.c_str(), upstream_.host.size());
    }
  } else {
    tls_stream_->set_verify_mode(ssl::verify_none);
  }
  // The handshake shares the connect timeout: both are "reaching MLflow".
  auto [handshake_ec] = co_await tls_stream_->async_handshake(ssl::stream_base::client, kNoThrow);
  if (handshake_ec) {
    result.error = handshake_ec;
    result.failed_step = HttpStep::tls_handshake;
    result.error_detail = handshake_ec == beast::error::timeout
                              ? "timed out"
                              : tls::describe_handshake_error(handshake_ec, SSL_get_verify_result(ssl_handle));
    result.tls_failed = true;
    close();
  }
  co_return result;
}

// The TLS alert a peer sent before closing, if one is waiting to be read; a clean or silent
// close gives none. Bounded by a short deadline: it runs only on a connection already failing.
net::awaitable<beast::error_code> HttpClient::read_pending_alert(TlsStream& stream) {
  beast::get_lowest_layer(stream).expires_after(std::chrono::milliseconds(200));
  char byte = 0;
  auto [alert_ec, read] = co_await stream.async_read_some(net::buffer(&byte, 1), kNoThrow);
  if (alert_ec.category() == net::error::get_ssl_category() && alert_ec != ssl::error::stream_truncated) {
    co_return alert_ec;
  }
  co_return beast::error_code{};
}

template <class Stream, class Body>
net::awaitable<HttpResult> HttpClient::exchange(Stream& stream, http::request<Body>& request) {
  HttpResult result;
  beast::get_lowest_layer(stream).expires_after(options_.request_timeout);
  auto [write_ec, written] = co_await http::async_write(stream, request, kNoThrow);
  if (write_ec) {
    result.error = write_ec;
    result.failed_step = HttpStep::write;
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      // In TLS 1.3 the server judges the client's certificate after the client's handshake has
      // finished, so a refusal ("certificate required") arrives as an alert that the request's
      // write runs into as a broken pipe. Read the alert, so the log says what is wrong.
      if (write_ec != beast::error::timeout) {
        if (const auto alert = co_await read_pending_alert(stream)) {
          result.error = alert;
          result.tls_failed = true;
        }
      }
    }
    close();
    co_return result;
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  auto [read_ec, read] = co_await http::async_read(stream, buffer_, parser, kNoThrow);
  if (read_ec) {
    close();
    result.error = read_ec;
    result.failed_step = HttpStep::read;
    result.tls_failed = read_ec.category() == net::error::get_ssl_category() &&
                        read_ec != ssl::error::stream_truncated;
    co_return result;
  }
  result.response = parser.release();
  if (!result.response.keep_alive()) close();
  co_return result;
}

template <class Body>
net::awaitable<HttpResult> HttpClient::send_once(http::request<Body>& request) {
  if (!connected()) {
    HttpResult connected_result = co_await connect();
    if (connected_result.error) co_return connected_result;
  }
  if (tls_stream_) co_return co_await exchange(*tls_stream_, request);
  co_return co_await exchange(*plain_stream_, request);
}

template net::awaitable<HttpResult> HttpClient::send(http::request<http::string_body>);
template net::awaitable<HttpResult> HttpClient::send(http::request<SlicesBody>);

}  // namespace proxy::exporter
