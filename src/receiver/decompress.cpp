#include "receiver/decompress.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <climits>
#include <limits>
#include <memory>

#include <libdeflate.h>
#include <zlib.h>
#include <zstd.h>

namespace proxy::receiver {
namespace {

constexpr std::size_t kChunk = 64 * 1024;
// zstd frames may ask for a window of up to 2 GiB; clients compress with at most 8 MiB windows
// at their default levels, so anything bigger is refused rather than allocated.
constexpr int kZstdMaxWindowLog = 24;

std::string lower_trimmed(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

DecompressResult too_large(std::size_t limit) {
  return {DecompressResult::Status::too_large,
          "decompressed body exceeds the limit of " + std::to_string(limit) + " bytes"};
}

// Grows `out` by up to one chunk without passing limit + 1 bytes: one byte over the limit is
// how we learn the body is too large.
std::size_t grow(std::string& out, std::size_t limit) {
  const std::size_t room = limit + 1 - std::min(out.size(), limit + 1);
  const std::size_t step = std::min(kChunk, room);
  // Geometric growth, but never a capacity past the limit: std::string's own doubling would
  // allocate up to twice the limit.
  if (out.size() + step > out.capacity()) {
    const std::size_t target = std::min(std::max(out.capacity() * 2, out.size() + step), limit + 1);
    if (target < out.capacity() * 2) {
      // libstdc++ rounds a reserve up to double the old capacity; a fresh string reserves exactly.
      std::string exact;
      exact.reserve(target);
      exact.assign(out);
      out.swap(exact);
    } else {
      out.reserve(target);
    }
  }
  out.resize(out.size() + step);
  return step;
}

struct DecompressorDeleter {
  void operator()(libdeflate_decompressor* decompressor) const {
    libdeflate_free_decompressor(decompressor);
  }
};

// The common gzip body, one member whose trailer states a size within the limit, decoded in one
// libdeflate call (two to three times faster than zlib's inflate) into exactly that many bytes.
// False, with `out` as it was, for anything else: several members, a trailer that lies, corrupt
// or truncated data. zlib then decodes it chunk by chunk and says precisely what is wrong.
bool gunzip_whole(std::string_view input, std::string& out, std::size_t limit) {
  constexpr std::size_t kSmallestMember = 18;  // 10-byte header, empty block, 8-byte trailer
  if (input.size() < kSmallestMember) return false;
  const auto* trailer = reinterpret_cast<const unsigned char*>(input.data() + input.size() - 4);
  const std::size_t stated = static_cast<std::size_t>(trailer[0]) | static_cast<std::size_t>(trailer[1]) << 8 |
                             static_cast<std::size_t>(trailer[2]) << 16 | static_cast<std::size_t>(trailer[3]) << 24;
  if (stated > limit) return false;
  thread_local std::unique_ptr<libdeflate_decompressor, DecompressorDeleter> decompressor{
      libdeflate_alloc_decompressor()};
  if (!decompressor) return false;
  const std::size_t start = out.size();
  out.resize(start + stated);
  std::size_t consumed = 0;
  std::size_t produced = 0;
  const libdeflate_result result = libdeflate_gzip_decompress_ex(
      decompressor.get(), input.data(), input.size(), out.data() + start, stated, &consumed, &produced);
  // libdeflate checks the CRC and that the trailer's size is what it produced.
  if (result == LIBDEFLATE_SUCCESS && consumed == input.size() && produced == stated) return true;
  out.resize(start);
  return false;
}

DecompressResult inflate_zlib(ContentEncoding encoding, std::string_view input, std::string& out,
                              std::size_t limit) {
  if (encoding == ContentEncoding::gzip && gunzip_whole(input, out, limit)) return {};
  const char* name = encoding == ContentEncoding::gzip ? "gzip" : "deflate";
  // gzip: a gzip wrapper. deflate: HTTP says zlib-wrapped, but some clients send raw deflate,
  // so the zlib header is detected and raw deflate accepted otherwise.
  int window_bits = 15 + 16;
  if (encoding == ContentEncoding::deflate) {
    const bool zlib_header = input.size() >= 2 && (static_cast<unsigned char>(input[0]) & 0x0f) == 8 &&
                             ((static_cast<unsigned char>(input[0]) << 8) |
                              static_cast<unsigned char>(input[1])) % 31 == 0;
    window_bits = zlib_header ? 15 : -15;
  }
  z_stream stream{};
  if (inflateInit2(&stream, window_bits) != Z_OK) {
    return {DecompressResult::Status::corrupt, std::string("cannot initialise ") + name + " decoder"};
  }
  std::unique_ptr<z_stream, decltype(&inflateEnd)> guard(&stream, &inflateEnd);
  const std::size_t start = out.size();
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
  stream.avail_in = static_cast<uInt>(std::min<std::size_t>(input.size(), UINT_MAX));
  std::size_t produced = 0;
  for (;;) {
    if (out.size() == start + produced && grow(out, start + limit) == 0) {
      out.resize(start + produced);
      return too_large(limit);
    }
    stream.next_out = reinterpret_cast<Bytef*>(out.data() + start + produced);
    stream.avail_out = static_cast<uInt>(out.size() - start - produced);
    const uInt before = stream.avail_out;
    const int rc = inflate(&stream, Z_NO_FLUSH);
    produced += before - stream.avail_out;
    if (produced > limit) {
      out.resize(start + produced);
      return too_large(limit);
    }
    if (rc == Z_STREAM_END) {
      // Concatenated gzip members are one body (RFC 1952); anything else after the end is junk.
      if (stream.avail_in > 0 && encoding == ContentEncoding::gzip) {
        if (inflateReset(&stream) != Z_OK) break;
        continue;
      }
      if (stream.avail_in > 0) {
        out.resize(start + produced);
        return {DecompressResult::Status::corrupt,
                std::string(name) + " body has " + std::to_string(stream.avail_in) +
                    " bytes of trailing data after the end of the stream"};
      }
      out.resize(start + produced);
      return {};
    }
    if (rc == Z_BUF_ERROR && stream.avail_in == 0) {
      out.resize(start + produced);
      return {DecompressResult::Status::truncated,
              std::string(name) + " body is truncated: the stream ended after " +
                  std::to_string(input.size()) + " compressed bytes without its end marker"};
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      out.resize(start + produced);
      return {DecompressResult::Status::corrupt,
              std::string(name) + " body is corrupt: " + (stream.msg ? stream.msg : "inflate failed")};
    }
  }
  out.resize(start + produced);
  return {DecompressResult::Status::corrupt, std::string(name) + " body is corrupt"};
}

DecompressResult decompress_zstd(std::string_view input, std::string& out, std::size_t limit) {
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> context(ZSTD_createDCtx(), &ZSTD_freeDCtx);
  if (!context) return {DecompressResult::Status::corrupt, "cannot initialise zstd decoder"};
  ZSTD_DCtx_setParameter(context.get(), ZSTD_d_windowLogMax, kZstdMaxWindowLog);
  const std::size_t start = out.size();
  ZSTD_inBuffer in{input.data(), input.size(), 0};
  std::size_t produced = 0;
  std::size_t last_rc = 1;
  while (in.pos < in.size || last_rc != 0) {
    if (out.size() == start + produced && grow(out, start + limit) == 0) {
      out.resize(start + produced);
      return too_large(limit);
    }
    ZSTD_outBuffer buffer{out.data() + start + produced, out.size() - start - produced, 0};
    const std::size_t in_before = in.pos;
    last_rc = ZSTD_decompressStream(context.get(), &buffer, &in);
    produced += buffer.pos;
    if (ZSTD_isError(last_rc)) {
      out.resize(start + produced);
      return {DecompressResult::Status::corrupt,
              std::string("zstd body is corrupt: ") + ZSTD_getErrorName(last_rc)};
    }
    if (produced > limit) {
      out.resize(start + produced);
      return too_large(limit);
    }
    if (last_rc != 0 && in.pos == in.size && buffer.pos == 0 && in_before == in.pos) {
      out.resize(start + produced);
      return {DecompressResult::Status::truncated,
              "zstd body is truncated: the frame ended after " + std::to_string(input.size()) +
                  " compressed bytes"};
    }
  }
  out.resize(start + produced);
  return {};
}

}  // namespace

std::optional<ContentEncoding> parse_content_encoding(std::string_view header) {
  const std::string value = lower_trimmed(header);
  if (value.empty() || value == "identity") return ContentEncoding::identity;
  if (value == "gzip" || value == "x-gzip") return ContentEncoding::gzip;
  if (value == "deflate") return ContentEncoding::deflate;
  if (value == "zstd") return ContentEncoding::zstd;
  return std::nullopt;
}

namespace {

DecompressResult decompress_within(ContentEncoding encoding, std::string_view input,
                                   std::string& out, std::size_t limit) {
  switch (encoding) {
    case ContentEncoding::identity:
      if (input.size() > limit) return too_large(limit);
      out.append(input);
      return {};
    case ContentEncoding::gzip:
    case ContentEncoding::deflate:
      return inflate_zlib(encoding, input, out, limit);
    case ContentEncoding::zstd:
      return decompress_zstd(input, out, limit);
  }
  return {DecompressResult::Status::corrupt, "unknown content encoding"};
}

}  // namespace

DecompressResult decompress(ContentEncoding encoding, std::string_view input, std::string& out,
                            std::size_t limit, std::size_t max_ratio) {
  if (max_ratio == 0 || encoding == ContentEncoding::identity) {
    return decompress_within(encoding, input, out, limit);
  }
  // The ratio is enforced as a tighter output limit, so a bomb stops at that many bytes.
  const std::size_t ratio_limit =
      input.size() > kRatioFreeBytes / max_ratio
          ? (input.size() > std::numeric_limits<std::size_t>::max() / max_ratio
                 ? std::numeric_limits<std::size_t>::max()
                 : input.size() * max_ratio)
          : kRatioFreeBytes;
  if (ratio_limit >= limit) return decompress_within(encoding, input, out, limit);
  DecompressResult result = decompress_within(encoding, input, out, ratio_limit);
  if (result.status == DecompressResult::Status::too_large) {
    const char* name = encoding == ContentEncoding::gzip      ? "gzip"
                       : encoding == ContentEncoding::deflate ? "deflate"
                                                              : "zstd";
    result = {DecompressResult::Status::ratio_exceeded,
              std::string(name) + " body of " + std::to_string(input.size()) +
                  " bytes expands more than " + std::to_string(max_ratio) +
                  " times (past " + std::to_string(ratio_limit) +
                  " bytes): refused as a likely decompression bomb"};
  }
  return result;
}

}  // namespace proxy::receiver
