#include "admin/admin_server.hpp"

#include <atomic>
#include <system_error>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <spdlog/spdlog.h>

#include "admin/metrics.hpp"
#include "common/thread_name.hpp"

namespace proxy::admin {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;
constexpr auto kNoThrow = net::experimental::as_tuple(net::use_awaitable);

namespace {

constexpr std::uint64_t kMaxBodyBytes = 0;  // probes and scrapes send none

AdminResponse text_response(http::status status, std::string body, const AdminRequest& request,
                            std::string_view content_type = "text/plain; charset=utf-8") {
  AdminResponse response{status, request.version()};
  response.set(http::field::server, "otlp-mlflow-proxy");
  response.set(http::field::content_type, content_type);
  response.set(http::field::cache_control, "no-store");
  response.keep_alive(request.keep_alive());
  response.body() = std::move(body);
  response.prepare_payload();
  if (request.method() == http::verb::head) response.body().clear();  // Content-Length stays
  return response;
}

}  // namespace

AdminLimits admin_limits(const config::Config& config) {
  AdminLimits limits;
  limits.max_header_bytes = config.receiver.max_header_bytes;
  limits.read_timeout = config.receiver.read_timeout;
  limits.idle_timeout = config.receiver.idle_timeout;
  limits.max_connections = config.admin.max_connections;
  return limits;
}

AdminResponse answer_admin_request(const AdminRequest& request, const AdminHandlers& handlers) {
  const std::string_view target = request.target();
  const std::string_view path = target.substr(0, target.find('?'));
  const bool known = path == "/healthz" || path == "/readyz" || path == "/metrics";
  if (!known) {
    return text_response(http::status::not_found,
                         "no such path; the admin endpoint serves /healthz, /readyz and /metrics\n",
                         request);
  }
  if (request.method() != http::verb::get && request.method() != http::verb::head) {
    AdminResponse response = text_response(http::status::method_not_allowed,
                                           "use GET or HEAD\n", request);
    response.set(http::field::allow, "GET, HEAD");
    return response;
  }
  if (path == "/healthz") return text_response(http::status::ok, "ok\n", request);
  if (path == "/readyz") {
    const Readiness readiness = handlers.readiness();
    return text_response(readiness.ready ? http::status::ok : http::status::service_unavailable,
                         readiness.body(), request);
  }
  return text_response(http::status::ok, handlers.metrics(), request, kMetricsContentType);
}

// No shared_from_this in the coroutines: State owns the io_context that owns their frames, so
// they must not own State back (a cycle that would leak at exit).
struct AdminServer::State {
  State(config::Endpoint endpoint, AdminLimits admin_limits, AdminHandlers admin_handlers)
      : listen(std::move(endpoint)),
        limits(admin_limits),
        handlers(std::move(admin_handlers)),
        acceptor(io) {}

  config::Endpoint listen;
  AdminLimits limits;
  AdminHandlers handlers;
  net::io_context io{1};
  tcp::acceptor acceptor;
  std::size_t open_connections = 0;  // only the admin thread touches it
  std::atomic<std::uint64_t> refused{0};

  net::awaitable<void> accept_loop();
  void admit(tcp::socket socket);
  net::awaitable<void> serve(beast::tcp_stream stream);
};

net::awaitable<void> AdminServer::State::accept_loop() {
  while (acceptor.is_open()) {
    auto [ec, socket] = co_await acceptor.async_accept(kNoThrow);
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor.is_open()) break;
      spdlog::error("admin: accept on {} failed: {}", listen.to_string(), ec.message());
      net::steady_timer pause(io, std::chrono::milliseconds(50));
      co_await pause.async_wait(kNoThrow);
      continue;
    }
    admit(std::move(socket));
  }
}

// Over the cap, a connection is closed unanswered: a probe that cannot connect fails the same
// way, and a flood of idle connections cannot pin the admin thread's descriptors.
void AdminServer::State::admit(tcp::socket socket) {
  if (open_connections >= limits.max_connections) {
    if (refused.fetch_add(1, std::memory_order_relaxed) % 100 == 0) {
      spdlog::warn("admin: refusing a connection: {} open (admin.max_connections)",
                   open_connections);
    }
    boost::system::error_code ignored;
    socket.close(ignored);
    return;
  }
  ++open_connections;
  net::co_spawn(io, serve(beast::tcp_stream(std::move(socket))), [this](std::exception_ptr error) {
    --open_connections;
    if (!error) return;
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      spdlog::error("admin: connection handler failed: {}", e.what());
    }
  });
}

net::awaitable<void> AdminServer::State::serve(beast::tcp_stream stream) {
  beast::flat_buffer buffer;
  for (;;) {
    stream.expires_after(buffer.size() == 0 ? limits.idle_timeout : limits.read_timeout);
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    parser.body_limit(kMaxBodyBytes);
    auto [read_ec, bytes] = co_await http::async_read(stream, buffer, parser, kNoThrow);
    if (read_ec) {
      if (read_ec == http::error::header_limit || read_ec == http::error::body_limit) {
        AdminRequest bare;
        bare.version(11);
        AdminResponse response = text_response(http::status::bad_request,
                                               "admin requests carry no body and small headers\n",
                                               bare);
        response.keep_alive(false);
        co_await http::async_write(stream, response, kNoThrow);
      }
      break;  // closed, idle, timed out or malformed: nothing more to say
    }
    const AdminRequest& request = parser.get();
    AdminResponse response = answer_admin_request(request, handlers);
    stream.expires_after(limits.read_timeout);
    auto [write_ec, written] = co_await http::async_write(stream, response, kNoThrow);
    if (write_ec || !response.keep_alive()) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

AdminServer::AdminServer(config::Endpoint listen, AdminLimits limits, AdminHandlers handlers)
    : state_(std::make_shared<State>(std::move(listen), limits, std::move(handlers))) {}

AdminServer::~AdminServer() { stop(); }

void AdminServer::start() {
  boost::system::error_code ec;
  const auto address = net::ip::make_address(state_->listen.host, ec);
  if (ec) throw std::system_error(ec, "invalid admin listen address " + state_->listen.to_string());
  const tcp::endpoint endpoint{address, state_->listen.port};
  auto& acceptor = state_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) throw std::system_error(ec, "cannot listen on " + state_->listen.to_string() + " (admin)");
  net::co_spawn(state_->io, state_->accept_loop(), net::detached);
  thread_ = std::thread([state = state_] {
    name_this_thread("proxy-admin");
    state->io.run();
  });
}

void AdminServer::stop() {
  if (!thread_.joinable()) return;
  state_->io.stop();  // abandons open connections: probes and scrapes just retry
  thread_.join();
  boost::system::error_code ignored;
  state_->acceptor.close(ignored);
}

std::uint64_t AdminServer::refused_connections() const {
  return state_->refused.load(std::memory_order_relaxed);
}

tcp::endpoint AdminServer::local_endpoint() const {
  boost::system::error_code ec;
  return state_->acceptor.local_endpoint(ec);
}

}  // namespace proxy::admin
