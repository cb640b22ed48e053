// bench-fake-sink: a fast fake MLflow for benchmarks, so that the proxy (or the Collector) is
// what is measured. It decodes every export, counts its spans, and answers at once.
//
//   bench-fake-sink [--listen 127.0.0.1:PORT] [--port-file PATH] [--require-header NAME]
//                   [--threads N] [--decode walk|full] [--keep-first PATH]
//
// POST /v1/traces  gunzips (Content-Encoding: gzip), decodes ExportTraceServiceRequest and counts
//                  requests, spans and body bytes (as received); answers 200 with an empty
//                  ExportTraceServiceResponse. A body that does not decode gets 400 and is
//                  counted in decode_errors; without the required header, 400 and bad_header.
//                  --decode walk (the default) walks the wire format without building messages:
//                  the framing of every field of the request, its resource and scope spans, every
//                  span and every span attribute, and a 16-byte trace id and 8-byte span id on
//                  every span. A full parse (--decode full) costs the sink about what the system
//                  under test spends per span, and the sink shares a core with the load generator:
//                  it would fall behind a system that does 1M spans per CPU-second.
//                  --keep-first PATH writes the first accepted body (gunzipped) to PATH, for a
//                  look at what the system under test sent (compare.py checks its masking).
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
#include <limits>
#include <memory>
#include <optional>
#include <exception>
#include <string>
#include <string_view>
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
#include <google/protobuf/io/coded_stream.h>

#include "otlp/types.hpp"
#include "receiver/decompress.hpp"

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
constexpr auto kNoThrow = net::experimental::as_tuple(net::use_awaitable);
constexpr std::size_t kMaxBody = std::size_t{1} << 30;  // a request's body, and a gunzipped one

struct Options {
  std::string host = "127.0.0.1";
  std::string port = "0";
  std::string port_file;
  std::string require_header;
  int threads = 1;
  bool full_parse = false;
  std::string keep_first;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "bench-fake-sink: " << why << "\n"
            << "usage: bench-fake-sink [--listen HOST:PORT] [--port-file PATH] [--require-header NAME] [--threads N]\n"
               "                       [--decode walk|full] [--keep-first PATH]\n";
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
    } else if (flag == "--decode") {
      const std::string mode = value();
      if (mode != "walk" && mode != "full") usage("--decode: expected walk or full, got '" + mode + "'");
      options.full_parse = mode == "full";
    } else if (flag == "--keep-first") options.keep_first = value();
    else if (flag == "--help" || flag == "-h") usage("fake MLflow OTLP sink");
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
  std::atomic<bool> kept{false};
};

// Written whole under another name first, so a reader never sees a partial file.
bool write_file(const std::string& path, std::string_view content) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    if (!out) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

// ---- the wire walk ------------------------------------------------------------------------------
// Field numbers of opentelemetry/proto/collector/trace/v1/trace_service.proto, trace/v1/trace.proto
// and common/v1/common.proto, with their wire type (2: length-delimited).
constexpr std::uint32_t kLengthDelimited = 2;
constexpr std::uint32_t tag_of(std::uint32_t field) { return field << 3 | kLengthDelimited; }
constexpr std::uint32_t kResourceSpansTag = tag_of(1);  // ExportTraceServiceRequest.resource_spans
constexpr std::uint32_t kScopeSpansTag = tag_of(2);     // ResourceSpans.scope_spans
constexpr std::uint32_t kSpanTag = tag_of(2);           // ScopeSpans.spans
constexpr std::uint32_t kTraceIdTag = tag_of(1);        // Span.trace_id
constexpr std::uint32_t kSpanIdTag = tag_of(2);         // Span.span_id
constexpr std::uint32_t kAttributeTag = tag_of(9);      // Span.attributes
constexpr std::uint32_t kKeyTag = tag_of(1);            // KeyValue.key

using google::protobuf::io::CodedInputStream;

// Reads a length prefix that fits the stream's int sizes.
bool read_length(CodedInputStream& in, int& length) {
  std::uint32_t value = 0;
  if (!in.ReadVarint32(&value) || value > static_cast<std::uint32_t>(std::numeric_limits<int>::max())) return false;
  length = static_cast<int>(value);
  return true;
}

// Skips one field's value, checking it is framed as its wire type says (groups are not OTLP).
bool skip_value(CodedInputStream& in, std::uint32_t tag) {
  int length = 0;
  std::uint64_t ignored = 0;
  switch (tag & 7) {
    case 0: return in.ReadVarint64(&ignored);
    case 1: return in.Skip(8);
    case kLengthDelimited: return read_length(in, length) && in.Skip(length);
    case 5: return in.Skip(4);
    default: return false;
  }
}

// Calls on_field(tag) with the cursor at each field's value (on_field consumes it) up to the
// stream's current limit. False when a tag is zero or misframed, or the data ends first.
template <class OnField>
bool walk_fields(CodedInputStream& in, OnField&& on_field) {
  while (in.BytesUntilLimit() > 0) {
    const std::uint32_t tag = in.ReadTag();
    if (tag == 0 || !on_field(tag)) return false;
  }
  return true;
}

// The same over the length-delimited message at the cursor.
template <class OnField>
bool walk_message(CodedInputStream& in, OnField&& on_field) {
  int length = 0;
  if (!read_length(in, length)) return false;
  const CodedInputStream::Limit limit = in.PushLimit(length);
  const bool ok = walk_fields(in, on_field);
  in.PopLimit(limit);
  return ok;
}

bool walk_attribute(CodedInputStream& in) {
  bool keyed = false;
  const bool framed = walk_message(in, [&](std::uint32_t tag) {
    keyed = keyed || tag == kKeyTag;
    return skip_value(in, tag);
  });
  return framed && keyed;
}

bool walk_span(CodedInputStream& in) {
  int trace_id = 0;
  int span_id = 0;
  const bool framed = walk_message(in, [&](std::uint32_t tag) {
    if (tag == kTraceIdTag || tag == kSpanIdTag) {
      int& length = tag == kTraceIdTag ? trace_id : span_id;
      return read_length(in, length) && in.Skip(length);
    }
    if (tag == kAttributeTag) return walk_attribute(in);
    return skip_value(in, tag);
  });
  return framed && trace_id == 16 && span_id == 8;
}

// The spans of an ExportTraceServiceRequest, or nullopt when it does not walk.
std::optional<std::uint64_t> walk_count(std::string_view body) {
  CodedInputStream in(reinterpret_cast<const std::uint8_t*>(body.data()), static_cast<int>(body.size()));
  std::uint64_t spans = 0;
  auto scope_spans = [&](std::uint32_t tag) {
    if (tag != kSpanTag) return skip_value(in, tag);
    ++spans;
    return walk_span(in);
  };
  auto resource_spans = [&](std::uint32_t tag) {
    return tag == kScopeSpansTag ? walk_message(in, scope_spans) : skip_value(in, tag);
  };
  in.PushLimit(static_cast<int>(body.size()));
  const bool ok = walk_fields(in, [&](std::uint32_t tag) {
    return tag == kResourceSpansTag ? walk_message(in, resource_spans) : skip_value(in, tag);
  });
  if (!ok) return std::nullopt;
  return spans;
}

// The same count from a full parse into messages (--decode full).
std::optional<std::uint64_t> parse_count(std::string_view body, google::protobuf::Arena& arena) {
  arena.Reset();
  auto* decoded = google::protobuf::Arena::CreateMessage<proxy::otlp::ExportRequest>(&arena);
  if (!decoded->ParseFromArray(body.data(), static_cast<int>(body.size()))) return std::nullopt;
  std::uint64_t spans = 0;
  for (const auto& resource_spans : decoded->resource_spans())
    for (const auto& scope_spans : resource_spans.scope_spans()) spans += static_cast<std::uint64_t>(scope_spans.spans_size());
  return spans;
}

http::response<http::string_body> answer(const http::request<http::string_body>& request, const Options& options,
                                         Stats& stats, google::protobuf::Arena& arena, std::string& inflated) {
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
    std::string_view body = request.body();
    if (beast::iequals(request[http::field::content_encoding], "gzip")) {
      inflated.clear();
      if (proxy::receiver::decompress(proxy::receiver::ContentEncoding::gzip, body, inflated, kMaxBody).status !=
          proxy::receiver::DecompressResult::Status::ok) {
        stats.decode_errors.fetch_add(1, std::memory_order_relaxed);
        text(http::status::bad_request, "corrupt gzip body\n");
        return response;
      }
      body = inflated;
    }
    const std::optional<std::uint64_t> spans = options.full_parse ? parse_count(body, arena) : walk_count(body);
    if (!spans) {
      stats.decode_errors.fetch_add(1, std::memory_order_relaxed);
      text(http::status::bad_request, "body is not an ExportTraceServiceRequest\n");
      return response;
    }
    if (!options.keep_first.empty() && !stats.kept.exchange(true) && !write_file(options.keep_first, body))
      std::cerr << "bench-fake-sink: cannot write " << options.keep_first << "\n";
    stats.requests.fetch_add(1, std::memory_order_relaxed);
    stats.spans.fetch_add(*spans, std::memory_order_relaxed);
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
  std::string inflated;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(1 << 20);
    parser.body_limit(kMaxBody);
    auto [read_ec, read] = co_await http::async_read(socket, buffer, parser, kNoThrow);
    if (read_ec) co_return;  // closed by the client, or garbage: nothing to answer
    auto response = answer(parser.get(), options, stats, arena, inflated);
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
    if (!write_file(options.port_file, std::to_string(port) + "\n")) {
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
