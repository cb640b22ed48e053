// bench-decode-floor: the protobuf floor under the proxy's hot path, on the very bodies
// bench-loadgen sends. Per step, spans per CPU-second on one thread:
//   parse         ExportTraceServiceRequest parsed into a reused arena (what the proxy does first)
//   parse+encode  the same, then serialized again (the least a proxy that rewrites spans does)
//   parse+gunzip  gzip bodies: the proxy's decompression, then parse
//   gzip L6 / L1  deflate of the plain bodies at zlib's default level and at level 1 (the cost of
//                 compressing batches on the way to MLflow, per span)
//   proxy gzip    the proxy's own upstream gzip (libdeflate at exporter::kUpstreamGzipLevel)
//
//   bench-decode-floor [--spans-per-request K] [--mix koog|openinference|both] [--seconds S]
//
// Output: one JSON line, {"spans_per_request","body_bytes","parse_spans_per_s",
// "parse_encode_spans_per_s","gunzip_parse_spans_per_s","gzip6_spans_per_s","gzip1_spans_per_s",
// "gzip6_ratio","gzip1_ratio","proxy_gzip_spans_per_s","proxy_gzip_ratio"}.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <google/protobuf/arena.h>
#include <zlib.h>

#include "agent_traffic.hpp"
#include "thread_cpu.hpp"
#include "receiver/decompress.hpp"

namespace {

// The proxy's own request decompression (receiver::decompress, with its default limits).
bool gunzip(const std::string& in, std::string& out) {
  out.clear();
  return proxy::receiver::decompress(proxy::receiver::ContentEncoding::gzip, in, out, 16u << 20, 100)
             .status == proxy::receiver::DecompressResult::Status::ok;
}

// Spans per CPU-second of step(body) over the pool.
template <typename Step>
double measure(const std::vector<std::string>& pool, int spans_per_request, double seconds, Step step) {
  return bench::spans_per_cpu_second(pool, spans_per_request, seconds, "bench-decode-floor", 64, step);
}

}  // namespace

int main(int argc, char** argv) {
  int spans_per_request = 50;
  double seconds = 2;
  bench::Mix mix = bench::Mix::both;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) {
      std::cerr << "usage: bench-decode-floor [--spans-per-request K] [--mix koog|openinference|both] [--seconds S]\n";
      return 2;
    }
    const std::string value = argv[++i];
    if (flag == "--spans-per-request") spans_per_request = std::max(1, std::atoi(value.c_str()));
    else if (flag == "--seconds") seconds = std::max(0.1, std::atof(value.c_str()));
    else if (flag == "--mix") mix = value == "koog" ? bench::Mix::koog : value == "openinference" ? bench::Mix::openinference : bench::Mix::both;
    else {
      std::cerr << "bench-decode-floor: unknown flag " << flag << "\n";
      return 2;
    }
  }
  bench::TraceSource source(mix, 0x5eed'0f'a9e47ULL);
  std::vector<std::string> pool;
  std::vector<std::string> gzipped;
  std::size_t bytes = 0;
  const std::size_t count = std::max<std::size_t>(64, static_cast<std::size_t>(16384 / spans_per_request));
  for (std::size_t i = 0; i < count; ++i) {
    pool.push_back(bench::encode_request(source, spans_per_request));
    gzipped.push_back(bench::gzip(pool.back()));
    bytes += pool.back().size();
  }

  // The proxy's arena: a reused first block, so a typical request decodes without malloc.
  std::vector<char> block(256 * 1024);
  auto parse_into = [&](const std::string& body, auto&& then) {
    google::protobuf::ArenaOptions options;
    options.initial_block = block.data();
    options.initial_block_size = block.size();
    google::protobuf::Arena arena(options);
    auto* request = google::protobuf::Arena::CreateMessage<bench::ExportRequest>(&arena);
    return request->ParseFromString(body) && then(*request);
  };
  const double parse = measure(pool, spans_per_request, seconds, [&](const std::string& body) {
    return parse_into(body, [](const bench::ExportRequest&) { return true; });
  });
  std::string out;
  const double parse_encode = measure(pool, spans_per_request, seconds, [&](const std::string& body) {
    return parse_into(body, [&](const bench::ExportRequest& request) { return request.SerializeToString(&out); });
  });
  std::string inflated;
  const double gunzip_parse = measure(gzipped, spans_per_request, seconds, [&](const std::string& body) {
    return gunzip(body, inflated) && parse_into(inflated, [](const bench::ExportRequest&) { return true; });
  });
  std::size_t compressed[2] = {0, 0};
  std::uint64_t compressions[2] = {0, 0};
  auto deflate_at = [&](int level, int slot) {
    return [&, level, slot](const std::string& body) {
      z_stream z{};
      if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return false;
      out.resize(deflateBound(&z, body.size()));
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body.data()));
      z.avail_in = static_cast<uInt>(body.size());
      z.next_out = reinterpret_cast<Bytef*>(out.data());
      z.avail_out = static_cast<uInt>(out.size());
      const int rc = deflate(&z, Z_FINISH);
      compressed[slot] += z.total_out;
      ++compressions[slot];
      deflateEnd(&z);
      return rc == Z_STREAM_END;
    };
  };
  const double gzip6 = measure(pool, spans_per_request, seconds, deflate_at(Z_DEFAULT_COMPRESSION, 0));
  const double gzip1 = measure(pool, spans_per_request, seconds, deflate_at(Z_BEST_SPEED, 1));
  // The proxy's upstream gzip (libdeflate, one compressor per thread) at its level.
  std::size_t proxy_compressed = 0;
  std::uint64_t proxy_compressions = 0;
  const double proxy_gzip = measure(pool, spans_per_request, seconds, [&](const std::string& body) {
    const auto gzipped_body = proxy::exporter::gzip_compress(body);
    if (!gzipped_body) return false;
    proxy_compressed += gzipped_body->size();
    ++proxy_compressions;
    return true;
  });
  const double body_bytes = static_cast<double>(bytes) / static_cast<double>(pool.size());
  std::printf("{\"spans_per_request\":%d,\"body_bytes\":%zu,\"parse_spans_per_s\":%.0f,"
              "\"parse_encode_spans_per_s\":%.0f,\"gunzip_parse_spans_per_s\":%.0f,"
              "\"gzip6_spans_per_s\":%.0f,\"gzip1_spans_per_s\":%.0f,\"gzip6_ratio\":%.2f,\"gzip1_ratio\":%.2f,"
              "\"proxy_gzip_spans_per_s\":%.0f,\"proxy_gzip_ratio\":%.2f}\n",
              spans_per_request, bytes / pool.size(), parse, parse_encode, gunzip_parse, gzip6, gzip1,
              body_bytes / (static_cast<double>(compressed[0]) / static_cast<double>(compressions[0])),
              body_bytes / (static_cast<double>(compressed[1]) / static_cast<double>(compressions[1])),
              proxy_gzip,
              body_bytes / (static_cast<double>(proxy_compressed) / static_cast<double>(proxy_compressions)));
  return 0;
}
