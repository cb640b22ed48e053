#include "exporter/http_client.hpp"

#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/detail/base64.hpp>

namespace proxy::exporter {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;
constexpr auto kNoThrow = net::experimental::as_tuple(net::use_awaitable);

std::string authorization_header(const std::string& username, const std::string& password,
                                 const std::string& token) {
  if (!token.empty()) return "Bearer " + token;
  if (username.empty() && password.empty()) return {};
  const std::string credentials = username + ":" + password;
  std::string encoded(beast::detail::base64::encoded_size(credentials.size()), '\0');
  encoded.resize(beast::detail::base64::encode(encoded.data(), credentials.data(), credentials.size()));
  return "Basic " + encoded;
}

HttpClient::HttpClient(net::any_io_executor executor, UpstreamUrl upstream, HttpClientOptions options)
    : executor_(std::move(executor)), upstream_(std::move(upstream)), options_(std::move(options)) {}

void HttpClient::close() {
  if (stream_) {
    beast::error_code ignored;
    stream_->socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.reset();
  }
  buffer_.clear();
}

net::awaitable<HttpResult> HttpClient::send(http::request<http::string_body> request) {
  request.version(11);
  request.set(http::field::host, upstream_.host_header());
  request.set(http::field::user_agent, "otlp-mlflow-proxy/" PROXY_VERSION);
  if (!options_.authorization.empty()) request.set(http::field::authorization, options_.authorization);
  request.keep_alive(true);
  request.prepare_payload();

  const bool reused = stream_.has_value();
  HttpResult result = co_await send_once(request);
  // A reused connection the server had already closed fails at write or at the first read;
  // the request never reached MLflow (or is idempotent there), so one fresh try is safe.
  if (result.error && reused && result.error != beast::error::timeout &&
      result.failed_step != "resolve" && result.failed_step != "connect") {
    result = co_await send_once(request);
  }
  co_return result;
}

net::awaitable<HttpResult> HttpClient::send_once(http::request<http::string_body>& request) {
  HttpResult result;
  if (!stream_) {
    tcp::resolver resolver(executor_);
    auto [resolve_ec, endpoints] = co_await resolver.async_resolve(upstream_.host, upstream_.port, kNoThrow);
    if (resolve_ec) {
      result.error = resolve_ec;
      result.failed_step = "resolve";
      co_return result;
    }
    stream_.emplace(executor_);
    stream_->expires_after(options_.connect_timeout);
    auto [connect_ec, endpoint] = co_await stream_->async_connect(endpoints, kNoThrow);
    if (connect_ec) {
      close();
      result.error = connect_ec;
      result.failed_step = "connect";
      co_return result;
    }
    stream_->socket().set_option(tcp::no_delay(true));
  }
  stream_->expires_after(options_.request_timeout);
  auto [write_ec, written] = co_await http::async_write(*stream_, request, kNoThrow);
  if (write_ec) {
    close();
    result.error = write_ec;
    result.failed_step = "write";
    co_return result;
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  auto [read_ec, read] = co_await http::async_read(*stream_, buffer_, parser, kNoThrow);
  if (read_ec) {
    close();
    result.error = read_ec;
    result.failed_step = "read";
    co_return result;
  }
  result.response = parser.release();
  if (!result.response.keep_alive()) close();
  co_return result;
}

}  // namespace proxy::exporter
