// bench-loadgen: realistic agent traffic over OTLP/HTTP protobuf, at a fixed open-loop rate or
// as fast as the server answers, with exact latency percentiles. bench/compare.py drives it.
//
//   bench-loadgen --url http://127.0.0.1:4318/v1/traces [--rate SPANS_PER_S] [--duration S]
//                 [--warmup S] [--spans-per-request K] [--connections C] [--threads T] [--gzip]
//                 [--mix koog|openinference|both] [--content short|long] [--header NAME=VALUE]...
//                 [--seed N] [--distinct-requests N]
//
// Traffic: Koog-shaped traces (create_agent, invoke_agent, strategy, nodes, LLM calls with
// prompts and completions, tool calls with arguments and results; gen_ai.* and koog.* keys) and
// OpenInference-shaped traces (llm.input_messages.*, input.value/output.value,
// openinference.span.kind), GenAI spans of 1 to 2 KB (--content long, the default) or of a few
// hundred bytes (--content short: every content value a sixteenth as long). A pool of distinct request bodies (distinct
// trace and span ids), each a complete HTTP/1.1 request with its headers, is encoded (and
// gzipped) before the clock starts, so generation never limits the rate. Beyond the pool the ids
// repeat; --distinct-requests N makes the pool at least N requests, for runs into a real MLflow,
// which keys spans by id and would store a repeat as nothing new.
//
// Timing: at --rate N request i of the run is due at start + i * K / N whatever happened before
// (open loop); its latency runs from that due time to the last byte of the answer, so a server
// that stalls is charged for every request queued behind the stall (coordinated omission
// corrected). At --rate 0 each connection sends its next request as soon as the previous one
// is answered and latency runs from the actual send. Only requests due (or sent) after the
// warm-up and before the end of --duration are counted; the run then waits for them to finish.
//
// Output: one JSON line on stdout:
//   {"requests","spans","ok","errors","status":{"200":n,...},"seconds","spans_per_s",
//    "requests_per_s","latency_us":{"p50","p99","p999","max"},"client_cpu_s"}
// requests/spans: counted requests and the spans in them; ok: answered 2xx; errors: the rest
// (other statuses, which "status" breaks down, and transport failures); spans_per_s and
// requests_per_s count ok requests only, over "seconds" (the measured window, stretched to the
// last counted answer). Latency percentiles are exact (sorted samples) over every counted
// request that got an answer. client_cpu_s: this process's own CPU time (user+sys) while
// sending, warm-up included, to show it is not the bottleneck. Diagnostics go to stderr.
#include <algorithm>
#include <cmath>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

#include <sys/resource.h>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include "agent_traffic.hpp"

namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using bench::Content;
using bench::Mix;
using bench::TraceSource;
constexpr auto kNoThrow = net::experimental::as_tuple(net::use_awaitable);

// ---- command line ---------------------------------------------------------------------------

struct Options {
  std::string host;
  std::string port;
  std::string target;
  double rate = 0;  // spans per second; 0: as fast as possible
  double duration = 10;
  double warmup = 1;
  int spans_per_request = 50;
  int connections = 4;
  int threads = 1;
  bool gzip = false;
  Mix mix = Mix::both;
  Content content = Content::long_text;
  std::vector<std::pair<std::string, std::string>> headers;
  // Seeds the trace source: runs with different seeds send different trace and span ids (a real
  // MLflow keys traces by id, so two runs into one server must not repeat them).
  std::uint64_t seed = 0x5eed'0f'a9e47ULL;
  std::size_t distinct_requests = 0;  // 0: about 16 MB of bodies (64 to 4096)
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "bench-loadgen: " << why << "\n"
            << "usage: bench-loadgen --url http://HOST:PORT/v1/traces [--rate SPANS_PER_S] [--duration S]\n"
               "       [--warmup S] [--spans-per-request K] [--connections C] [--threads T] [--gzip]\n"
               "       [--mix koog|openinference|both] [--content short|long] [--header NAME=VALUE]...\n"
               "       [--seed N] [--distinct-requests N]\n";
  std::exit(2);
}

double parse_number(const std::string& flag, const std::string& text, double min) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(value >= min)) usage(flag + ": expected a number >= " + std::to_string(min) + ", got '" + text + "'");
  return value;
}

// One of the named choices, or the usage message naming them.
template <class T>
T parse_choice(const std::string& flag, const std::string& text, std::initializer_list<std::pair<std::string_view, T>> choices) {
  std::string names;
  for (const auto& [name, value] : choices) {
    if (text == name) return value;
    names += (names.empty() ? "" : ", ") + std::string(name);
  }
  usage(flag + ": expected one of " + names + ", got '" + text + "'");
}

// The flags that take a value; false for a flag it does not know.
bool parse_valued(Options& options, std::string& url, const std::string& flag, const std::string& value) {
  if (flag == "--url") url = value;
  else if (flag == "--rate") options.rate = parse_number(flag, value, 0);
  else if (flag == "--duration") options.duration = parse_number(flag, value, 0.001);
  else if (flag == "--warmup") options.warmup = parse_number(flag, value, 0);
  else if (flag == "--spans-per-request") options.spans_per_request = static_cast<int>(parse_number(flag, value, 1));
  else if (flag == "--connections") options.connections = static_cast<int>(parse_number(flag, value, 1));
  else if (flag == "--threads") options.threads = static_cast<int>(parse_number(flag, value, 1));
  else if (flag == "--mix") options.mix = parse_choice<Mix>(flag, value, {{"koog", Mix::koog}, {"openinference", Mix::openinference}, {"both", Mix::both}});
  else if (flag == "--content") options.content = parse_choice<Content>(flag, value, {{"short", Content::short_text}, {"long", Content::long_text}});
  else if (flag == "--header") {
    const auto eq = value.find('=');
    if (eq == std::string::npos || eq == 0) usage("--header: expected NAME=VALUE, got '" + value + "'");
    options.headers.emplace_back(value.substr(0, eq), value.substr(eq + 1));
  } else if (flag == "--seed") {
    char* end = nullptr;
    options.seed = std::strtoull(value.c_str(), &end, 0);
    if (value.empty() || *end != '\0') usage("--seed: expected an unsigned integer, got '" + value + "'");
  } else if (flag == "--distinct-requests") {
    options.distinct_requests = static_cast<std::size_t>(parse_number(flag, value, 1));
  } else {
    return false;
  }
  return true;
}

// http://HOST[:PORT][/PATH] into the options' host, port and target.
void parse_url(Options& options, const std::string& url) {
  const std::string_view scheme = "http://";
  if (url.rfind(scheme, 0) != 0) usage("--url: expected http://HOST:PORT/PATH, got '" + url + "'");
  const std::string rest = url.substr(scheme.size());
  const auto slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  options.target = slash == std::string::npos ? "/v1/traces" : rest.substr(slash);
  const auto colon = authority.rfind(':');
  if (colon == std::string::npos) {
    options.host = authority;
    options.port = "80";
  } else {
    options.host = authority.substr(0, colon);
    options.port = authority.substr(colon + 1);
  }
  if (options.host.size() > 2 && options.host.front() == '[') options.host = options.host.substr(1, options.host.size() - 2);
}

Options parse_options(int argc, char** argv) {
  Options options;
  std::string url;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--gzip") options.gzip = true;
    else if (flag == "--help" || flag == "-h") usage("OTLP/HTTP load generator");
    else if (flag.rfind("--", 0) != 0) usage("unknown flag " + flag);
    else if (i + 1 >= argc) usage(flag + " needs a value");
    else if (!parse_valued(options, url, flag, argv[++i])) usage("unknown flag " + flag);
  }
  parse_url(options, url);
  if (options.connections < options.threads) options.connections = options.threads;
  return options;
}

struct Body {
  std::string wire;  // the whole HTTP request: headers and (compressed) body
  std::uint32_t spans = 0;
};

std::vector<Body> build_pool(const Options& options) {
  TraceSource source(options.mix, options.seed, options.content);
  std::vector<Body> pool;
  // About 16 MB of bodies (at least 64, at most 4096): distinct ids for the run's first requests
  // without growing the loadgen's cache footprint far beyond the server's.
  std::size_t target = 64;
  std::size_t bytes = 0;
  std::size_t protobuf_bytes = 0;
  for (std::size_t i = 0; i < target; ++i) {
    std::string body = bench::encode_request(source, options.spans_per_request);
    protobuf_bytes += body.size();
    if (options.gzip) body = bench::gzip(body);
    std::string wire = "POST " + options.target + " HTTP/1.1\r\nHost: " + options.host + ":" + options.port +
                       "\r\nContent-Type: application/x-protobuf\r\nUser-Agent: bench-loadgen\r\n";
    if (options.gzip) wire += "Content-Encoding: gzip\r\n";
    for (const auto& [name, value] : options.headers) wire += name + ": " + value + "\r\n";
    wire += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    wire += body;
    bytes += wire.size();
    pool.push_back({std::move(wire), static_cast<std::uint32_t>(options.spans_per_request)});
    if (i == 0) {
      target = std::clamp<std::size_t>((16u << 20) / pool[0].wire.size(), 64, 4096);
      target = std::max(target, options.distinct_requests);
    }
  }
  std::cerr << "bench-loadgen: " << pool.size() << " distinct requests of " << options.spans_per_request
            << " spans, " << bytes / pool.size() << " bytes each on the wire" << (options.gzip ? " (gzip)" : "") << ", "
            << protobuf_bytes / pool.size() << " bytes of protobuf\n";
  return pool;
}

// ---- load ---------------------------------------------------------------------------------------

struct Tally {
  std::uint64_t requests = 0;
  std::uint64_t spans = 0;
  std::uint64_t ok = 0;
  std::uint64_t ok_spans = 0;
  std::uint64_t transport_errors = 0;
  std::map<unsigned, std::uint64_t> status;
  std::vector<std::uint64_t> latency_ns;
  Clock::time_point last_done{};
};

struct Run {
  const Options& options;
  const std::vector<Body>& pool;
  tcp::resolver::results_type endpoints;
  Clock::time_point start;          // the schedule's origin (warm-up starts here)
  Clock::time_point measure_from;   // start + warmup
  Clock::time_point measure_until;  // measure_from + duration
  std::chrono::nanoseconds interval{0};  // between due times at a fixed rate; 0 = as fast as possible
  std::atomic<std::uint64_t> next{0};
};

net::awaitable<void> connection(Run& run, Tally& tally) {
  auto executor = co_await net::this_coro::executor;
  std::optional<tcp::socket> socket;
  boost::beast::flat_buffer buffer;
  net::steady_timer timer(executor);
  const bool paced = run.interval.count() > 0;
  if (!paced && run.start > Clock::now()) {
    // Unpaced connections start together at the schedule's origin, so nothing goes uncounted.
    timer.expires_at(run.start);
    co_await timer.async_wait(kNoThrow);
  }
  for (;;) {
    const std::uint64_t index = run.next.fetch_add(1, std::memory_order_relaxed);
    Clock::time_point due = run.start + run.interval * static_cast<std::int64_t>(index);
    if (paced) {
      if (due >= run.measure_until) break;
      if (due > Clock::now()) {
        timer.expires_at(due);
        co_await timer.async_wait(kNoThrow);
      }
    } else {
      // Not before the schedule's origin: a request sent earlier would reach the server but
      // fall outside every count (warm-up included), and compare.py checks the sink against
      // what was counted.
      if (Clock::now() < run.start) {
        timer.expires_at(run.start);
        co_await timer.async_wait(kNoThrow);
      }
      due = Clock::now();
      if (due >= run.measure_until) break;
    }
    const bool counted = due >= run.measure_from;
    const Body& body = run.pool[index % run.pool.size()];
    if (!socket) {
      socket.emplace(executor);
      auto [ec, endpoint] = co_await net::async_connect(*socket, run.endpoints, kNoThrow);
      if (ec) {
        socket.reset();
        if (counted) {
          ++tally.requests;
          tally.spans += body.spans;
          ++tally.transport_errors;
        }
        std::cerr << "bench-loadgen: connect: " << ec.message() << "\n";
        timer.expires_after(std::chrono::milliseconds(10));  // no busy loop on a refused port
        co_await timer.async_wait(kNoThrow);
        continue;
      }
      socket->set_option(tcp::no_delay(true));
      buffer.clear();
    }
    auto [write_ec, written] = co_await net::async_write(*socket, net::buffer(body.wire), kNoThrow);
    unsigned status = 0;
    bool keep_alive = false;
    if (!write_ec) {
      http::response_parser<http::string_body> parser;
      parser.body_limit(1 << 20);
      auto [read_ec, read] = co_await http::async_read(*socket, buffer, parser, kNoThrow);
      if (!read_ec) {
        status = parser.get().result_int();
        keep_alive = parser.get().keep_alive();
      }
    }
    const auto done = Clock::now();
    if (status == 0 || !keep_alive) socket.reset();
    if (!counted) continue;
    ++tally.requests;
    tally.spans += body.spans;
    if (status == 0) {
      ++tally.transport_errors;
      continue;
    }
    ++tally.status[status];
    tally.latency_ns.push_back(static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(done - due).count()));
    tally.last_done = std::max(tally.last_done, done);
    if (status >= 200 && status < 300) {
      ++tally.ok;
      tally.ok_spans += body.spans;
    }
  }
}

double percentile_us(const std::vector<std::uint64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return static_cast<double>(sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1]) / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse_options(argc, argv);
  const std::vector<Body> pool = build_pool(options);

  net::io_context resolver_io;
  tcp::resolver resolver(resolver_io);
  boost::system::error_code ec;
  auto endpoints = resolver.resolve(options.host, options.port, ec);
  if (ec) {
    std::cerr << "bench-loadgen: cannot resolve " << options.host << ":" << options.port << ": " << ec.message() << "\n";
    return 1;
  }

  Run run{options, pool, endpoints, {}, {}, {}, {}, {}};
  if (options.rate > 0)
    run.interval = std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 * options.spans_per_request / options.rate));
  run.start = Clock::now() + std::chrono::milliseconds(20);
  run.measure_from = run.start + std::chrono::nanoseconds(static_cast<std::int64_t>(options.warmup * 1e9));
  run.measure_until = run.measure_from + std::chrono::nanoseconds(static_cast<std::int64_t>(options.duration * 1e9));

  std::vector<Tally> tallies(static_cast<std::size_t>(options.connections));
  const double expected = options.rate > 0 ? options.rate / options.spans_per_request * options.duration : 2e5;
  for (auto& tally : tallies) tally.latency_ns.reserve(static_cast<std::size_t>(expected / options.connections) + 1024);

  std::vector<std::unique_ptr<net::io_context>> ios;
  for (int t = 0; t < options.threads; ++t) ios.push_back(std::make_unique<net::io_context>(1));
  for (int c = 0; c < options.connections; ++c)
    net::co_spawn(*ios[static_cast<std::size_t>(c % options.threads)], connection(run, tallies[static_cast<std::size_t>(c)]), net::detached);
  auto cpu_seconds = [] {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
           static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
  };
  const double cpu_before = cpu_seconds();
  std::vector<std::thread> threads;
  for (auto& io : ios) threads.emplace_back([&io] { io->run(); });
  for (auto& thread : threads) thread.join();
  const double client_cpu = cpu_seconds() - cpu_before;

  Tally total;
  for (auto& tally : tallies) {
    total.requests += tally.requests;
    total.spans += tally.spans;
    total.ok += tally.ok;
    total.ok_spans += tally.ok_spans;
    total.transport_errors += tally.transport_errors;
    for (const auto& [status, count] : tally.status) total.status[status] += count;
    total.latency_ns.insert(total.latency_ns.end(), tally.latency_ns.begin(), tally.latency_ns.end());
    total.last_done = std::max(total.last_done, tally.last_done);
  }
  std::sort(total.latency_ns.begin(), total.latency_ns.end());
  const double seconds = std::max(options.duration, std::chrono::duration<double>(total.last_done - run.measure_from).count());

  std::string status_json;
  for (const auto& [status, count] : total.status)
    status_json += (status_json.empty() ? "\"" : ",\"") + std::to_string(status) + "\":" + std::to_string(count);
  char line[1024];
  std::snprintf(line, sizeof line,
                "{\"requests\":%llu,\"spans\":%llu,\"ok\":%llu,\"errors\":%llu,\"status\":{%s},\"seconds\":%.3f,"
                "\"spans_per_s\":%.1f,\"requests_per_s\":%.1f,\"latency_us\":{\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f},"
                "\"client_cpu_s\":%.3f}",
                static_cast<unsigned long long>(total.requests), static_cast<unsigned long long>(total.spans),
                static_cast<unsigned long long>(total.ok), static_cast<unsigned long long>(total.requests - total.ok),
                status_json.c_str(), seconds, static_cast<double>(total.ok_spans) / seconds,
                static_cast<double>(total.ok) / seconds, percentile_us(total.latency_ns, 0.50),
                percentile_us(total.latency_ns, 0.99), percentile_us(total.latency_ns, 0.999),
                total.latency_ns.empty() ? 0.0 : static_cast<double>(total.latency_ns.back()) / 1000.0,
                client_cpu);
  std::cout << line << std::endl;
  return 0;
}
