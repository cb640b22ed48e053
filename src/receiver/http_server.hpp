// The OTLP/HTTP listener: Boost.Beast HTTP/1.1 with keep-alive, one coroutine per connection on
// its own strand, limits on header size, body size, read and idle time and connection count.
#pragma once

#include <atomic>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "config/config.hpp"
#include "receiver/export_handler.hpp"

namespace proxy::receiver {

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, const config::ReceiverConfig& config,
             ExportHandler& handler, ReceiverStats& stats);
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
