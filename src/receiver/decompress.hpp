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

struct DecompressResult {
  enum class Status { ok, too_large, corrupt, truncated };
  Status status = Status::ok;
  std::string message;  // for anything but ok: what is wrong, for the client
};

// Appends the decoded bytes of `input` to `out`, never holding more than `limit` bytes there.
DecompressResult decompress(ContentEncoding encoding, std::string_view input, std::string& out,
                            std::size_t limit);

}  // namespace proxy::receiver
