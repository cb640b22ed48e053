// Request body decompression with a hard output limit: a decompression bomb stops at the limit
// instead of allocating what it claims.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace proxy::receiver {

enum class ContentEncoding { identity, gzip, deflate, zstd };

// Content-Encoding header value (case-insensitive; empty means identity). nullopt: unsupported,
// including stacked encodings such as "gzip, gzip".
std::optional<ContentEncoding> parse_content_encoding(std::string_view header);

// Below this many decompressed bytes the ratio is not checked: small bodies of repetitive JSON
// compress far better than large ones and cost nothing to expand.
inline constexpr std::size_t kRatioFreeBytes = 1024 * 1024;

struct DecompressResult {
  // too_large: past `limit`; ratio_exceeded: past max_ratio times the compressed size.
  enum class Status { ok, too_large, ratio_exceeded, corrupt, truncated };
  Status status = Status::ok;
  std::string message;  // for anything but ok: what is wrong, for the client
};

// Appends the decoded bytes of `input` to `out`, never holding more than `limit` bytes there,
// nor (max_ratio > 0) more than max(kRatioFreeBytes, max_ratio * input.size()).
DecompressResult decompress(ContentEncoding encoding, std::string_view input, std::string& out,
                            std::size_t limit, std::size_t max_ratio = 0);

}  // namespace proxy::receiver
