// The OTLP/HTTP listener: Boost.Beast HTTP/1.1 with keep-alive, one coroutine per connection on
// its own strand, limits on header size, body size, read and idle time and connection count.
// With receiver.tls the same code runs over TLS (optionally requiring client certificates).
#pragma once

#include <atomic>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "config/config.hpp"
#include "receiver/export_handler.hpp"

namespace proxy::receiver {

// The listener's TLS context from receiver.tls, or null when TLS is off. Throws
// config::ConfigError naming the setting and file when one cannot be used.
std::shared_ptr<boost::asio::ssl::context> make_server_tls_context(const config::ReceiverTlsConfig& tls);

class HttpServer {
 public:
  // Throws config::ConfigError when receiver.tls names unusable files. `io_threads`: how many
  // threads run `io` (with one, connections need no strand).
  HttpServer(boost::asio::io_context& io, const config::ReceiverConfig& config,
             ExportHandler& handler, ReceiverStats& stats, unsigned io_threads);
  ~HttpServer();

  // Binds and starts accepting. Throws std::system_error naming the address on failure.
  void start();

  // Stops accepting new connections; open ones finish their current request.
  void stop_accepting();

  boost::asio::ip::tcp::endpoint local_endpoint() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace proxy::receiver
