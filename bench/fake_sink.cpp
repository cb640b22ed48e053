// bench-fake-sink: a fast fake MLflow for benchmarks, so that the proxy (or the Collector) is
// what is measured. It decodes every export as MLflow would, counts it, and answers at once.
//
//   bench-fake-sink [--listen 127.0.0.1:PORT] [--port-file PATH] [--require-header NAME]
//                   [--threads N]
//
// POST /v1/traces  gunzips (Content-Encoding: gzip), decodes ExportTraceServiceRequest and counts
//                  requests, spans and body bytes (as received); answers 200 with an empty
//                  ExportTraceServiceResponse. A body that does not decode gets 400 and is
//                  counted in decode_errors; without the required header, 400 and bad_header.
// GET /stats       {"requests","spans","bytes","bad_header","decode_errors"} (accepted only)
// GET /version     3.7.0 (the MLflow version the proxy probes)
// GET /health      OK
// Anything else gets 404. Port 0 picks a free port; --port-file receives the bound port.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <google/protobuf/arena.h>
#include <zlib.h>

#include "otlp/types.hpp"

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
constexpr auto kNoThrow = net::experimental::as_tuple(net::use_awaitable);

struct Options {
  std::string host = "127.0.0.1";
  std::string port = "0";
  std::string port_file;
  std::string require_header;
  int threads = 1;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "bench-fake-sink: " << why << "\n"
            << "usage: bench-fake-sink [--listen HOST:PORT] [--port-file PATH] [--require-header NAME] [--threads N]\n";
  std::exit(2);
}

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--listen") {
      const std::string listen = value();
      const auto colon = listen.rfind(':');
      if (colon == std::string::npos) usage("--listen: expected HOST:PORT, got '" + listen + "'");
      options.host = listen.substr(0, colon);
      options.port = listen.substr(colon + 1);
      if (options.host.size() > 2 && options.host.front() == '[') options.host = options.host.substr(1, options.host.size() - 2);
    } else if (flag == "--port-file") options.port_file = value();
    else if (flag == "--require-header") options.require_header = value();
    else if (flag == "--threads") {
      options.threads = std::atoi(value().c_str());
      if (options.threads < 1 || options.threads > 64) usage("--threads: expected 1 to 64");
    } else if (flag == "--help" || flag == "-h") usage("fake MLflow OTLP sink");
    else usage("unknown flag " + flag);
  }
  return options;
}

struct Stats {
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> spans{0};
  std::atomic<std::uint64_t> bytes{0};
  std::atomic<std::uint64_t> bad_header{0};
  std::atomic<std::uint64_t> decode_errors{0};
};

// gzip (or zlib) to plain bytes with one inflater per connection (inflateInit allocates its
// window; once per request would dominate small one-span requests). False on a corrupt stream.
class Inflater {
 public:
  Inflater() {
    if (inflateInit2(&z_, 15 + 32) != Z_OK) throw std::runtime_error("inflateInit2 failed");
  }
  ~Inflater() { inflateEnd(&z_); }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  bool gunzip(const std::string& in, std::string& out) {
    inflateReset(&z_);
    out.resize(std::max<std::size_t>(in.size() * 4, 4096));
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z_.avail_in = static_cast<uInt>(in.size());
    std::size_t produced = 0;
    int rc = Z_OK;
    while (rc == Z_OK) {
      if (produced == out.size()) out.resize(out.size() * 2);
      z_.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
      z_.avail_out = static_cast<uInt>(out.size() - produced);
      rc = inflate(&z_, Z_NO_FLUSH);
      produced = out.size() - z_.avail_out;
      if (rc == Z_BUF_ERROR && z_.avail_out > 0) break;  // truncated input
      if (rc == Z_BUF_ERROR) rc = Z_OK;                  // out of room: grow and go on
    }
    out.resize(produced);
    return rc == Z_STREAM_END;
  }

 private:
  z_stream z_{};
};

http::response<http::string_body> answer(const http::request<http::string_body>& request, const Options& options,
                                         Stats& stats, google::protobuf::Arena& arena, Inflater& inflater,
                                         std::string& inflated) {
  http::response<http::string_body> response(http::status::ok, request.version());
  response.keep_alive(request.keep_alive());
  auto text = [&](http::status status, std::string body) {
    response.result(status);
    response.set(http::field::content_type, "text/plain");
    response.body() = std::move(body);
  };
  const std::string_view target = request.target();
  if (request.method() == http::verb::post && target == "/v1/traces") {
    if (!options.require_header.empty() && request.find(options.require_header) == request.end()) {
      stats.bad_header.fetch_add(1, std::memory_order_relaxed);
      text(http::status::bad_request, "missing header " + options.require_header + "\n");
      return response;
    }
    const std::string* body = &request.body();
    if (beast::iequals(request[http::field::content_encoding], "gzip")) {
      if (!inflater.gunzip(request.body(), inflated)) {
        stats.decode_errors.fetch_add(1, std::memory_order_relaxed);
        text(http::status::bad_request, "corrupt gzip body\n");
        return response;
      }
      body = &inflated;
    }
    arena.Reset();
    auto* decoded = google::protobuf::Arena::CreateMessage<proxy::otlp::ExportRequest>(&arena);
    if (!decoded->ParseFromString(*body)) {
      stats.decode_errors.fetch_add(1, std::memory_order_relaxed);
      text(http::status::bad_request, "body is not an ExportTraceServiceRequest\n");
      return response;
    }
    std::uint64_t spans = 0;
    for (const auto& resource_spans : decoded->resource_spans())
      for (const auto& scope_spans : resource_spans.scope_spans()) spans += static_cast<std::uint64_t>(scope_spans.spans_size());
    stats.requests.fetch_add(1, std::memory_order_relaxed);
    stats.spans.fetch_add(spans, std::memory_order_relaxed);
    stats.bytes.fetch_add(request.body().size(), std::memory_order_relaxed);
    response.set(http::field::content_type, "application/x-protobuf");
    response.body() = proxy::otlp::ExportResponse().SerializeAsString();
  } else if (request.method() == http::verb::get && target == "/stats") {
    response.set(http::field::content_type, "application/json");
    response.body() = "{\"requests\":" + std::to_string(stats.requests.load()) + ",\"spans\":" + std::to_string(stats.spans.load()) +
                      ",\"bytes\":" + std::to_string(stats.bytes.load()) + ",\"bad_header\":" + std::to_string(stats.bad_header.load()) +
                      ",\"decode_errors\":" + std::to_string(stats.decode_errors.load()) + "}\n";
  } else if (request.method() == http::verb::get && target == "/version") {
    text(http::status::ok, "3.7.0");
  } else if (request.method() == http::verb::get && target == "/health") {
    text(http::status::ok, "OK");
  } else {
    text(http::status::not_found, "not found\n");
  }
  return response;
}

net::awaitable<void> serve(tcp::socket socket, const Options& options, Stats& stats) {
  socket.set_option(tcp::no_delay(true));
  beast::flat_buffer buffer;
  google::protobuf::Arena arena;
  Inflater inflater;
  std::string inflated;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(1 << 20);
    parser.body_limit(1ULL << 30);
    auto [read_ec, read] = co_await http::async_read(socket, buffer, parser, kNoThrow);
    if (read_ec) co_return;  // closed by the client, or garbage: nothing to answer
    auto response = answer(parser.get(), options, stats, arena, inflater, inflated);
    response.prepare_payload();
    auto [write_ec, written] = co_await http::async_write(socket, response, kNoThrow);
    if (write_ec || !response.keep_alive()) co_return;
  }
}

net::awaitable<void> accept_loop(tcp::acceptor& acceptor, std::vector<std::unique_ptr<net::io_context>>& ios,
                                 const Options& options, Stats& stats) {
  std::size_t next = 0;
  for (;;) {
    // Connections are spread over the threads' io_contexts round robin.
    auto& io = *ios[next++ % ios.size()];
    auto [ec, socket] = co_await acceptor.async_accept(io, kNoThrow);
    if (ec == net::error::operation_aborted) co_return;
    if (ec) continue;
    net::co_spawn(io, serve(std::move(socket), options, stats), net::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse_options(argc, argv);
  std::vector<std::unique_ptr<net::io_context>> ios;
  for (int t = 0; t < options.threads; ++t) ios.push_back(std::make_unique<net::io_context>(1));
  Stats stats;

  tcp::acceptor acceptor(*ios[0]);
  try {
    tcp::resolver resolver(*ios[0]);
    const tcp::endpoint endpoint = *resolver.resolve(options.host, options.port, tcp::resolver::passive).begin();
    acceptor.open(endpoint.protocol());
    acceptor.set_option(net::socket_base::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen(net::socket_base::max_listen_connections);
  } catch (const std::exception& error) {
    std::cerr << "bench-fake-sink: cannot listen on " << options.host << ":" << options.port << ": " << error.what() << "\n";
    return 1;
  }
  const unsigned short port = acceptor.local_endpoint().port();
  if (!options.port_file.empty()) {
    // Written whole under another name first, so a reader never sees a partial number.
    const std::string tmp = options.port_file + ".tmp";
    std::ofstream(tmp) << port << "\n";
    if (std::rename(tmp.c_str(), options.port_file.c_str()) != 0) {
      std::cerr << "bench-fake-sink: cannot write " << options.port_file << "\n";
      return 1;
    }
  }
  std::cerr << "bench-fake-sink: listening on " << options.host << ":" << port << "\n";

  net::signal_set signals(*ios[0], SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int) {
    acceptor.close();
    for (auto& io : ios) io->stop();
  });
  net::co_spawn(*ios[0], accept_loop(acceptor, ios, options, stats), net::detached);

  std::vector<std::thread> threads;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
  for (auto& io : ios) guards.push_back(net::make_work_guard(*io));
  for (std::size_t t = 1; t < ios.size(); ++t) threads.emplace_back([&io = *ios[t]] { io.run(); });
  ios[0]->run();
  for (auto& thread : threads) thread.join();
  std::cerr << "bench-fake-sink: " << stats.requests.load() << " requests, " << stats.spans.load() << " spans, "
            << stats.bytes.load() << " bytes, " << stats.bad_header.load() << " without the header, "
            << stats.decode_errors.load() << " undecodable\n";
  return 0;
}
