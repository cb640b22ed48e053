#include "receiver/http_server.hpp"

#include <array>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <variant>

#include <openssl/ssl.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <spdlog/spdlog.h>

#include "common/rate_limited_log.hpp"
#include "common/tls.hpp"
#include "queue/async_commit.hpp"

namespace proxy::receiver {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
constexpr auto kNoThrow = net::experimental::as_tuple(net::use_awaitable);

std::shared_ptr<ssl::context> make_server_tls_context(const config::ReceiverTlsConfig& tls) {
  if (!tls.enabled()) return nullptr;
  auto context = proxy::tls::make_context(ssl::context::tls_server);
  auto error = proxy::tls::load_certificate_and_key(*context, tls.cert_file, "receiver.tls.cert_file",
                                                    tls.key_file, "receiver.tls.key_file");
  if (!error && !tls.client_ca_file.empty()) {
    error = proxy::tls::load_trusted_cas(*context, tls.client_ca_file, "receiver.tls.client_ca_file");
    if (!error) {
      context->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
      // Tells clients which CA's certificate to present.
      SSL_CTX_set_client_CA_list(context->native_handle(), SSL_load_client_CA_file(tls.client_ca_file.c_str()));
    }
  }
  if (error) throw config::ConfigError(error->message);
  return context;
}

namespace {

using Clock = net::steady_timer::clock_type;

// A connection's keep-alive idle timeout on one timer, armed when a wait starts while it is
// idle and re-armed when it fires early: at most once per idle_timeout, where the stream's own
// timeout would arm and cancel a timer (and a timerfd) for every request.
class IdleWatch : public std::enable_shared_from_this<IdleWatch> {
 public:
  IdleWatch(net::any_io_executor executor, tcp::socket& socket, std::chrono::milliseconds timeout)
      : timer_(std::move(executor)), socket_(&socket), timeout_(timeout) {}

  void start_wait() {
    deadline_ = Clock::now() + timeout_;
    expired_ = false;
    if (!armed_) arm(*deadline_);
  }
  void end_wait() { deadline_.reset(); }
  // Whether the last wait ended because it timed out (the watch cancelled its read).
  bool expired() const { return expired_; }
  // The connection is over: a late firing must not touch its socket.
  void stop() {
    socket_ = nullptr;
    timer_.cancel();
  }

 private:
  void arm(Clock::time_point at) {
    armed_ = true;
    timer_.expires_at(at);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) { self->fired(ec); });
  }
  void fired(boost::system::error_code ec) {
    armed_ = false;
    if (ec || socket_ == nullptr || !deadline_) return;  // no wait under way: the next one arms
    if (Clock::now() < *deadline_) {
      arm(*deadline_);
      return;
    }
    // Cancel, not close: a read that completed in this same turn keeps its bytes and its request
    // is served; a pending one ends with operation_aborted, and the caller closes.
    expired_ = true;
    boost::system::error_code ignored;
    socket_->cancel(ignored);
  }

  net::steady_timer timer_;
  tcp::socket* socket_;
  const std::chrono::milliseconds timeout_;
  std::optional<Clock::time_point> deadline_;  // of the wait under way
  bool armed_ = false;
  bool expired_ = false;
};

}  // namespace

struct HttpServer::State : std::enable_shared_from_this<HttpServer::State> {
  State(net::io_context& io_context, const config::ReceiverConfig& receiver_config,
        ExportHandler& export_handler, ReceiverStats& receiver_stats, unsigned io_threads)
      : io(io_context),
        one_io_thread(io_threads == 1),
        config(receiver_config),
        handler(export_handler),
        stats(receiver_stats),
        acceptor(net::make_strand(io_context)),
        tls_context(make_server_tls_context(receiver_config.tls)) {}

  net::io_context& io;
  const bool one_io_thread;
  const config::ReceiverConfig& config;
  ExportHandler& handler;
  ReceiverStats& stats;
  tcp::acceptor acceptor;
  std::shared_ptr<ssl::context> tls_context;  // null: plaintext
  std::atomic<std::size_t> open_connections{0};
  RateLimitedLog tls_log{5};

  net::awaitable<void> accept_loop();
  // Each connection's executor: a strand when several threads run the io_context. With one, that
  // thread already runs a connection's handlers one at a time, and a strand would only add a
  // queue, a lock and an extra hop per completion.
  net::any_io_executor connection_executor() const {
    if (one_io_thread) return io.get_executor();
    return net::make_strand(io);
  }
  template <class Stream>
  net::awaitable<void> serve(Stream stream, std::string peer);
  // serve()'s steps for one request; each says whether the connection carries another.
  using Parser = http::request_parser<ReceivedBody>;
  template <class Stream>
  net::awaitable<bool> await_request(Stream& stream, beast::flat_buffer& buffer, IdleWatch& watch,
                                     const std::string& peer);
  template <class Stream>
  net::awaitable<bool> serve_request(Stream& stream, beast::flat_buffer& buffer, std::string& body,
                                     const std::string& peer);
  std::optional<Response> header_error_response(const Parser& parser, boost::system::error_code ec,
                                                const std::string& peer);
  template <class Stream>
  net::awaitable<bool> read_body(Stream& stream, beast::flat_buffer& buffer, Parser& parser,
                                 const std::string& peer);
  net::awaitable<HttpAnswer> handle(const Parser& parser, const AcceptedHeader& header,
                                    const std::string& peer);
  template <class Stream>
  net::awaitable<bool> write_answer(Stream& stream, const HttpAnswer& answer);
  template <class Stream>
  net::awaitable<void> close_connection(Stream& stream);
  net::awaitable<void> serve_tls(beast::tcp_stream stream, std::string peer);
  net::awaitable<void> refuse(beast::tcp_stream stream, std::string peer);
  template <class Stream>
  net::awaitable<void> linger_close(Stream& stream);
};

namespace {

// Stops a connection's IdleWatch however serve() ends.
struct StopWatchOnExit {
  std::shared_ptr<IdleWatch> watch;
  ~StopWatchOnExit() { watch->stop(); }
};

template <typename Socket>
std::string describe(const Socket& socket) {
  boost::system::error_code ec;
  const auto endpoint = socket.remote_endpoint(ec);
  if (ec) return "unknown peer";
  return endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
}

// A request whose header could not be parsed: answered with a plain 400 and closed.
Response bad_request_response(std::string message) {
  Response response{http::status::bad_request, 11};
  response.set(http::field::content_type, "text/plain");
  response.set(http::field::server, "otlp-mlflow-proxy");
  response.body() = std::move(message);
  response.keep_alive(false);
  response.prepare_payload();
  return response;
}

}  // namespace

HttpServer::HttpServer(net::io_context& io, const config::ReceiverConfig& config,
                       ExportHandler& handler, ReceiverStats& stats, unsigned io_threads)
    : state_(std::make_shared<State>(io, config, handler, stats, io_threads)) {}

HttpServer::~HttpServer() { stop_accepting(); }

void HttpServer::start() {
  boost::system::error_code ec;
  const auto address = net::ip::make_address(state_->config.listen.host, ec);
  if (ec) {
    throw std::system_error(ec, "invalid listen address " + state_->config.listen.to_string());
  }
  const tcp::endpoint endpoint{address, state_->config.listen.port};
  auto& acceptor = state_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::system_error(ec, "cannot listen on " + state_->config.listen.to_string());
  }
  net::co_spawn(acceptor.get_executor(), state_->accept_loop(), net::detached);
}

void HttpServer::stop_accepting() {
  net::post(state_->acceptor.get_executor(), [state = state_] {
    boost::system::error_code ignored;
    state->acceptor.close(ignored);
  });
}

tcp::endpoint HttpServer::local_endpoint() const {
  boost::system::error_code ec;
  return state_->acceptor.local_endpoint(ec);
}

net::awaitable<void> HttpServer::State::accept_loop() {
  auto self = shared_from_this();
  while (acceptor.is_open()) {
    auto [ec, socket] = co_await acceptor.async_accept(connection_executor(), kNoThrow);
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor.is_open()) break;
      // Out of descriptors and similar: log, pause briefly, keep accepting.
      spdlog::error("accept on {} failed: {}", config.listen.to_string(), ec.message());
      net::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(50));
      co_await pause.async_wait(kNoThrow);
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    std::string peer = describe(socket);
    auto executor = socket.get_executor();
    if (open_connections.load(std::memory_order_relaxed) >= config.max_connections) {
      bump(stats.rejected_connection_limit);
      net::co_spawn(executor, refuse(beast::tcp_stream(std::move(socket)), std::move(peer)),
                    net::detached);
      continue;
    }
    open_connections.fetch_add(1, std::memory_order_relaxed);
    auto done = [self](std::exception_ptr error) {
      self->open_connections.fetch_sub(1, std::memory_order_relaxed);
      if (!error) return;
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        spdlog::error("connection handler failed: {}", e.what());
      }
    };
    if (tls_context) {
      net::co_spawn(executor, serve_tls(beast::tcp_stream(std::move(socket)), std::move(peer)),
                    std::move(done));
    } else {
      net::co_spawn(executor, serve(beast::tcp_stream(std::move(socket)), std::move(peer)),
                    std::move(done));
    }
  }
}

net::awaitable<void> HttpServer::State::refuse(beast::tcp_stream stream, std::string peer) {
  spdlog::warn("refusing connection from {}: {} connections open (receiver.max_connections)", peer,
               config.max_connections);
  if (tls_context) co_return;  // a TLS client could not read a plaintext answer: just close
  http::request_header<> header;
  header.version(11);
  Response response = handler.error(header, http::status::service_unavailable,
                                    "too many connections; retry later", peer);
  response.keep_alive(false);
  stream.expires_after(std::chrono::seconds(1));
  co_await http::async_write(stream, response, kNoThrow);
  co_await linger_close(stream);
}

// After answering a request whose body was not read, the client is often still sending it;
// closing at once would reset the connection and destroy the answer in the client's receive
// buffer. So: stop sending, read and discard for a bounded time and volume, then close. The
// discarded bytes are read below TLS: there is no need to decrypt them.
template <class Stream>
net::awaitable<void> HttpServer::State::linger_close(Stream& stream) {
  constexpr std::size_t kMaxDiscardBytes = 256 * 1024 * 1024;
  beast::tcp_stream& tcp_layer = beast::get_lowest_layer(stream);
  boost::system::error_code ignored;
  tcp_layer.socket().shutdown(tcp::socket::shutdown_send, ignored);
  tcp_layer.expires_after(std::chrono::seconds(2));
  std::array<char, 64 * 1024> sink{};
  std::size_t discarded = 0;
  while (discarded < kMaxDiscardBytes) {
    auto [ec, bytes] = co_await tcp_layer.async_read_some(net::buffer(sink), kNoThrow);
    if (ec) break;
    discarded += bytes;
  }
}

// The handshake is bounded by tls.handshake_timeout (a client that connects and stalls holds a
// connection slot only that long); a failure is counted, logged at most a few times a second,
// and closes this connection only. A plaintext HTTP request gets a plaintext 400 that says so.
net::awaitable<void> HttpServer::State::serve_tls(beast::tcp_stream tcp_layer, std::string peer) {
  TlsStream stream(std::move(tcp_layer), *tls_context);
  beast::get_lowest_layer(stream).expires_after(config.tls.handshake_timeout);
  auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, kNoThrow);
  if (!ec) {
    co_await serve(std::move(stream), std::move(peer));
    co_return;
  }
  if (ec == ssl::error::stream_truncated || ec == net::error::eof ||
      ec == net::error::connection_reset) {
    // Closed without a word: a TCP health check or port probe, not a TLS problem.
    spdlog::debug("connection from {} closed before its TLS handshake", peer);
    co_return;
  }
  std::string why;
  if (ec == beast::error::timeout) {
    bump(stats.tls_handshake_timeouts);
    why = "not completed within " + std::to_string(config.tls.handshake_timeout.count()) +
          " ms (receiver.tls.handshake_timeout)";
  } else if (proxy::tls::is_plain_http_request(ec)) {
    bump(stats.rejected_plaintext_on_tls);
    why = "the client sent plaintext HTTP to this TLS port (it should use https://)";
  } else {
    bump(stats.tls_handshake_failures);
    why = proxy::tls::describe_handshake_error(ec, SSL_get_verify_result(stream.native_handle()));
  }
  std::uint64_t suppressed = 0;
  if (tls_log.allow(suppressed)) {
    spdlog::warn("TLS handshake with {} on {} failed: {} ({} similar lines not logged)", peer,
                 config.listen.to_string(), why, suppressed);
  }
  if (proxy::tls::is_plain_http_request(ec)) {
    // Written below TLS, so an http:// exporter sees why instead of a reset connection.
    beast::tcp_stream& plain = beast::get_lowest_layer(stream);
    Response response = bad_request_response(
        "this port expects TLS: send OTLP to https://" + config.listen.to_string() + "/v1/traces\n");
    plain.expires_after(std::chrono::seconds(2));
    co_await http::async_write(plain, response, kNoThrow);
    co_await linger_close(stream);
  }
  boost::system::error_code ignored;
  beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
}

template <class Stream>
net::awaitable<void> HttpServer::State::serve(Stream stream, std::string peer) {
  bump(stats.connections_open);
  beast::flat_buffer buffer;
  std::string body;  // the request bodies' buffer, reused from request to request
  const StopWatchOnExit watch{std::make_shared<IdleWatch>(
      stream.get_executor(), beast::get_lowest_layer(stream).socket(), config.idle_timeout)};
  // Each co_await a statement of its own: with `while (co_await a && co_await b)`, GCC 12's
  // build went on serving a connection its client had closed.
  for (;;) {
    const bool arrived = co_await await_request(stream, buffer, *watch.watch, peer);
    if (!arrived) break;
    const bool keep_alive = co_await serve_request(stream, buffer, body, peer);
    if (!keep_alive) break;
  }
  co_await close_connection(stream);
  stats.connections_open.fetch_sub(1, std::memory_order_relaxed);
}

// Idle keep-alive wait: for the first byte of the next request, unless it is buffered already.
template <class Stream>
net::awaitable<bool> HttpServer::State::await_request(Stream& stream, beast::flat_buffer& buffer,
                                                      IdleWatch& watch, const std::string& peer) {
  if (buffer.size() != 0) co_return true;
  beast::get_lowest_layer(stream).expires_never();  // the watch times this read
  watch.start_wait();
  auto [ec, bytes] = co_await stream.async_read_some(buffer.prepare(16 * 1024), kNoThrow);
  watch.end_wait();
  if (ec && watch.expired()) {
    bump(stats.idle_timeouts);
    spdlog::debug("closing connection from {}: idle for {} ms (receiver.idle_timeout)", peer,
                  config.idle_timeout.count());
  }
  if (ec) co_return false;  // closed by the client or idle too long
  buffer.commit(bytes);
  co_return true;
}

// A connection's body buffer keeps its capacity for the next request up to this size: an
// OTel SDK's 512-span batch of agent spans fits, and an idle connection holds no more.
constexpr std::size_t kKeptBodyBytes = std::size_t{1} << 20;

template <class Stream>
net::awaitable<bool> HttpServer::State::serve_request(Stream& stream, beast::flat_buffer& buffer,
                                                      std::string& body, const std::string& peer) {
  // From the first byte on, the whole request must arrive within read_timeout.
  beast::get_lowest_layer(stream).expires_after(config.read_timeout);
  body.clear();
  Parser parser(std::piecewise_construct, std::forward_as_tuple(std::move(body)));
  parser.header_limit(static_cast<std::uint32_t>(config.max_header_bytes));
  parser.body_limit(config.max_body_bytes);

  auto [header_ec, header_bytes] = co_await http::async_read_header(stream, buffer, parser, kNoThrow);
  if (header_ec) {
    if (std::optional<Response> response = header_error_response(parser, header_ec, peer)) {
      response->keep_alive(false);
      beast::get_lowest_layer(stream).expires_after(config.read_timeout);
      co_await http::async_write(stream, *response, kNoThrow);
      co_await linger_close(stream);
    }
    co_return false;
  }
  HeaderCheck checked = handler.check_header(parser.get().base(), peer);
  if (auto* refused = std::get_if<Response>(&checked)) {
    // The body is not read, so the connection cannot carry another request.
    refused->keep_alive(false);
    co_await http::async_write(stream, *refused, kNoThrow);
    co_await linger_close(stream);
    co_return false;
  }
  const bool body_read = co_await read_body(stream, buffer, parser, peer);
  if (!body_read) co_return false;
  const HttpAnswer answer = co_await handle(parser, std::get<AcceptedHeader>(checked), peer);
  // The body's buffer goes back to the connection (the other ways out close it).
  body = std::move(parser.get().body());
  if (body.capacity() > kKeptBodyBytes) std::string().swap(body);
  const bool keep_alive = co_await write_answer(stream, answer);
  co_return keep_alive;
}

// The answer to a request whose header could not be read; none when the connection just ends
// (closed by the client, or the header did not arrive in time).
std::optional<Response> HttpServer::State::header_error_response(const Parser& parser,
                                                                 boost::system::error_code ec,
                                                                 const std::string& peer) {
  if (ec == http::error::header_limit) {
    bump(stats.rejected_header_too_large);
    return handler.error(parser.get().base(), http::status::request_header_fields_too_large,
                         "request header exceeds the limit of " +
                             std::to_string(config.max_header_bytes) + " bytes",
                         peer);
  }
  if (ec == http::error::body_limit) {
    // Content-Length alone already says the body is over the limit.
    bump(stats.rejected_too_large);
    return handler.error(parser.get().base(), http::status::payload_too_large,
                         "body of " + std::string(parser.get()[http::field::content_length]) +
                             " bytes exceeds the limit of " + std::to_string(config.max_body_bytes) +
                             " bytes",
                         peer);
  }
  if (ec == beast::error::timeout) {
    bump(stats.read_timeouts);
    spdlog::debug("closing connection from {}: request header not received within {} ms", peer,
                  config.read_timeout.count());
    return std::nullopt;
  }
  if (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset) {
    return std::nullopt;
  }
  bump(stats.rejected_bad_body);
  bump(stats.by_protocol[ReceiverStats::kHttp]
           .requests[ReceiverStats::kOtherEncoding][ReceiverStats::kRejected]);
  return bad_request_response("malformed HTTP request: " + ec.message());
}

template <class Stream>
net::awaitable<bool> HttpServer::State::read_body(Stream& stream, beast::flat_buffer& buffer,
                                                  Parser& parser, const std::string& peer) {
  if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
    http::response<http::empty_body> proceed{http::status::continue_, 11};
    auto [continue_ec, continue_bytes] = co_await http::async_write(stream, proceed, kNoThrow);
    if (continue_ec) co_return false;
  }
  auto [body_ec, body_bytes] = co_await http::async_read(stream, buffer, parser, kNoThrow);
  if (!body_ec) co_return true;
  if (body_ec == http::error::body_limit) {
    bump(stats.rejected_too_large);
    Response response = handler.error(
        parser.get().base(), http::status::payload_too_large,
        "body exceeds the limit of " + std::to_string(config.max_body_bytes) + " bytes", peer);
    response.keep_alive(false);
    co_await http::async_write(stream, response, kNoThrow);
    co_await linger_close(stream);
  } else if (body_ec == beast::error::timeout) {
    bump(stats.read_timeouts);
    spdlog::warn("closing connection from {}: request body not received within {} ms", peer,
                 config.read_timeout.count());
  } else {
    spdlog::debug("connection from {} failed while reading the body: {}", peer, body_ec.message());
  }
  co_return false;
}

net::awaitable<HttpAnswer> HttpServer::State::handle(const Parser& parser, const AcceptedHeader& header,
                                                     const std::string& peer) {
  PendingCommit pending;
  HttpAnswer answer = handler.respond(parser.get(), header, peer, &pending);
  if (pending.ticket) {
    // durability: disk: answer (and count) once the spool has the spans, without holding an
    // I/O thread.
    const bool stored =
        co_await queue::async_wait_commit(std::move(pending.ticket), net::use_awaitable);
    if (!stored) {
      bump(stats.rejected_storage_error);
      const std::uint64_t spans = pending.outcome.spans;
      pending.outcome = {IngestOutcome::Kind::storage_error,
                         "the proxy could not write the spans to its spool; retry later",
                         pending.outcome.rejected_spans};
      pending.outcome.spans = spans;
      answer = {{}, handler.answer(parser.get().base(), pending.outcome, peer)};
    }
    handler.count(ReceiverStats::kHttp, pending.encoding, pending.outcome);
  }
  if (handler.draining()) {
    Response closing = handler.built(parser.get().base(), std::move(answer), peer);
    closing.keep_alive(false);
    answer = {{}, std::move(closing)};
  }
  co_return answer;
}

template <class Stream>
net::awaitable<bool> HttpServer::State::write_answer(Stream& stream, const HttpAnswer& answer) {
  const std::string_view canned = answer.canned;
  if (canned.empty()) {
    auto [write_ec, written] = co_await http::async_write(stream, answer.response, kNoThrow);
    co_return !write_ec && answer.response.keep_alive();
  }
  std::size_t sent = 0;
  if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
    // A small answer nearly always fits the socket's send buffer: write it at once, without
    // arming the stream's timer; only what does not fit waits, under the read timeout.
    auto& socket = stream.socket();
    boost::system::error_code write_ec;
    if (!socket.non_blocking()) socket.non_blocking(true, write_ec);
    if (!write_ec) sent = socket.write_some(net::buffer(canned), write_ec);
    if (write_ec && write_ec != net::error::would_block) co_return false;
  }
  if (sent < canned.size()) {
    auto [write_ec, written] =
        co_await net::async_write(stream, net::buffer(canned.substr(sent)), kNoThrow);
    if (write_ec) co_return false;
  }
  co_return true;  // a canned answer is a keep-alive one
}

template <class Stream>
net::awaitable<void> HttpServer::State::close_connection(Stream& stream) {
  beast::tcp_stream& tcp_layer = beast::get_lowest_layer(stream);
  if constexpr (std::is_same_v<Stream, TlsStream>) {
    // close_notify, briefly: a client that does not answer it still gets the TCP close.
    tcp_layer.expires_after(std::chrono::seconds(1));
    co_await stream.async_shutdown(kNoThrow);
  }
  boost::system::error_code ignored;
  tcp_layer.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

}  // namespace proxy::receiver
