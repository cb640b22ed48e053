#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "admin/admin_server.hpp"

namespace {

namespace http = boost::beast::http;
using proxy::admin::AdminHandlers;
using proxy::admin::AdminRequest;
using proxy::admin::answer_admin_request;
using proxy::admin::Readiness;

AdminHandlers handlers(bool ready) {
  return {[ready] {
            Readiness readiness;
            readiness.ready = ready;
            if (!ready) readiness.reasons.push_back("MLflow is down");
            return readiness;
          },
          [] { return std::string("# TYPE x counter\nx 1\n"); }};
}

AdminRequest request(http::verb method, std::string target) {
  AdminRequest req{method, target, 11};
  return req;
}

}  // namespace

TEST_CASE("healthz, readyz and metrics answer GET", "[admin][http]") {
  auto health = answer_admin_request(request(http::verb::get, "/healthz"), handlers(false));
  CHECK(health.result() == http::status::ok);
  CHECK(health.body() == "ok\n");

  auto ready = answer_admin_request(request(http::verb::get, "/readyz"), handlers(true));
  CHECK(ready.result() == http::status::ok);
  CHECK(ready.body() == "ready\n");

  auto not_ready = answer_admin_request(request(http::verb::get, "/readyz?verbose"), handlers(false));
  CHECK(not_ready.result() == http::status::service_unavailable);
  CHECK(not_ready.body() == "not ready\nMLflow is down\n");

  auto metrics = answer_admin_request(request(http::verb::get, "/metrics"), handlers(true));
  CHECK(metrics.result() == http::status::ok);
  CHECK(metrics[http::field::content_type] == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(metrics.body() == "# TYPE x counter\nx 1\n");
}

TEST_CASE("HEAD has the headers and no body; other methods and paths are refused", "[admin][http]") {
  auto head = answer_admin_request(request(http::verb::head, "/metrics"), handlers(true));
  CHECK(head.result() == http::status::ok);
  CHECK(head.body().empty());
  CHECK(head[http::field::content_length] == "21");

  auto post = answer_admin_request(request(http::verb::post, "/healthz"), handlers(true));
  CHECK(post.result() == http::status::method_not_allowed);
  CHECK(post[http::field::allow] == "GET, HEAD");

  auto missing = answer_admin_request(request(http::verb::get, "/v1/traces"), handlers(true));
  CHECK(missing.result() == http::status::not_found);
}

TEST_CASE("the admin server answers over TCP and stops cleanly", "[admin][http]") {
  proxy::admin::AdminServer server({"127.0.0.1", 0}, {}, handlers(true));
  server.start();
  const auto endpoint = server.local_endpoint();
  REQUIRE(endpoint.port() != 0);

  boost::asio::io_context io;
  boost::beast::tcp_stream stream(io);
  stream.connect(endpoint);
  boost::beast::flat_buffer buffer;
  // Two requests on one keep-alive connection.
  for (const char* target : {"/healthz", "/readyz"}) {
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "localhost");
    http::write(stream, req);
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    CHECK(res.result() == http::status::ok);
  }
  // A request with a body is refused, not read.
  http::request<http::string_body> with_body{http::verb::get, "/metrics", 11};
  with_body.body() = "unexpected";
  with_body.prepare_payload();
  http::write(stream, with_body);
  http::response<http::string_body> refused;
  http::read(stream, buffer, refused);
  CHECK(refused.result() == http::status::bad_request);
  server.stop();
  server.stop();  // idempotent
}

namespace {

// GET /healthz on a fresh connection: its status, or 0 when the server closed it unanswered.
int healthz_status(const boost::asio::ip::tcp::endpoint& endpoint) {
  boost::asio::io_context io;
  boost::beast::tcp_stream stream(io);
  stream.connect(endpoint);
  http::request<http::empty_body> req{http::verb::get, "/healthz", 11};
  req.set(http::field::host, "localhost");
  boost::beast::error_code ec;
  http::write(stream, req, ec);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> res;
  if (!ec) http::read(stream, buffer, res, ec);
  return ec ? 0 : static_cast<int>(res.result_int());
}

}  // namespace

TEST_CASE("the admin server caps its connections and frees a slot when one closes",
          "[admin][http]") {
  proxy::admin::AdminLimits limits;
  limits.max_connections = 1;
  proxy::admin::AdminServer server({"127.0.0.1", 0}, limits, handlers(true));
  server.start();
  const auto endpoint = server.local_endpoint();
  {
    boost::asio::io_context io;
    boost::beast::tcp_stream holder(io);
    holder.connect(endpoint);  // idle, holds the only slot
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK(healthz_status(endpoint) == 0);
    CHECK(server.refused_connections() == 1);
  }
  int status = 0;
  for (int attempt = 0; attempt < 50 && status == 0; ++attempt) {
    status = healthz_status(endpoint);
    if (status == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(status == 200);
  server.stop();
}

TEST_CASE("an idle admin connection is closed after the idle timeout", "[admin][http]") {
  proxy::admin::AdminLimits limits;
  limits.idle_timeout = std::chrono::milliseconds(200);
  proxy::admin::AdminServer server({"127.0.0.1", 0}, limits, handlers(true));
  server.start();
  boost::asio::io_context io;
  boost::beast::tcp_stream stream(io);
  stream.connect(server.local_endpoint());
  const auto started = std::chrono::steady_clock::now();
  char byte = 0;
  boost::beast::error_code ec;
  stream.socket().read_some(boost::asio::buffer(&byte, 1), ec);
  CHECK(ec == boost::asio::error::eof);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
  server.stop();
}
