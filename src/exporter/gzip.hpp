// gzip for request bodies sent to MLflow (Content-Encoding: gzip, 3.7 and newer).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace proxy::exporter {

// The level the exporter compresses at: libdeflate's 1 compresses agent spans about 3.9:1 at a
// fraction of the CPU of zlib's default (bench-decode-floor prints both). MLflow is usually next
// door; CPU is the scarce part.
inline constexpr int kUpstreamGzipLevel = 1;

// The gzip member (RFC 1952) of `input`, compressed whole by libdeflate with one compressor per
// thread (allocating one costs more than compressing a small batch); nullopt when no compressor
// can be allocated, and the caller then sends the body uncompressed. `level` is 1..12.
std::optional<std::string> gzip_compress(std::string_view input, int level = kUpstreamGzipLevel);

}  // namespace proxy::exporter
