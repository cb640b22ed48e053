// gzip for request bodies sent to MLflow (Content-Encoding: gzip, 3.7 and newer).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace proxy::exporter {

// The gzip member (RFC 1952) of `input` at zlib's fastest level (1); nullopt if zlib fails (out of
// memory), and the caller then sends the body uncompressed.
std::optional<std::string> gzip_compress(std::string_view input);

}  // namespace proxy::exporter
