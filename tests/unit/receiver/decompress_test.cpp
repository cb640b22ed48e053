#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>

#include <zlib.h>
#include <zstd.h>

#include "receiver/decompress.hpp"

using proxy::receiver::ContentEncoding;
using proxy::receiver::decompress;
using proxy::receiver::DecompressResult;
using proxy::receiver::parse_content_encoding;
using Status = DecompressResult::Status;

namespace {

// window_bits: 15+16 gzip, 15 zlib, -15 raw deflate.
std::string zlib_compress(const std::string& input, int window_bits) {
  z_stream stream{};
  REQUIRE(deflateInit2(&stream, Z_BEST_COMPRESSION, Z_DEFLATED, window_bits, 9, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&stream, input.size()) + 64, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
  stream.avail_in = static_cast<uInt>(input.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&stream, Z_FINISH) == Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

std::string gzip(const std::string& input) { return zlib_compress(input, 15 + 16); }

std::string zstd_compress(const std::string& input) {
  std::string out(ZSTD_compressBound(input.size()), '\0');
  const std::size_t size = ZSTD_compress(out.data(), out.size(), input.data(), input.size(), 3);
  REQUIRE_FALSE(ZSTD_isError(size));
  out.resize(size);
  return out;
}

std::string random_text(std::size_t size) {
  std::mt19937 random(42);
  std::string text(size, '\0');
  for (auto& c : text) c = static_cast<char>('a' + random() % 26);
  return text;
}

}  // namespace

TEST_CASE("Content-Encoding values map to decoders, case-insensitively", "[decompress]") {
  CHECK(parse_content_encoding("") == ContentEncoding::identity);
  CHECK(parse_content_encoding("identity") == ContentEncoding::identity);
  CHECK(parse_content_encoding("GZIP") == ContentEncoding::gzip);
  CHECK(parse_content_encoding(" gzip ") == ContentEncoding::gzip);
  CHECK(parse_content_encoding("x-gzip") == ContentEncoding::gzip);
  CHECK(parse_content_encoding("deflate") == ContentEncoding::deflate);
  CHECK(parse_content_encoding("zstd") == ContentEncoding::zstd);
  CHECK_FALSE(parse_content_encoding("br"));
  CHECK_FALSE(parse_content_encoding("gzip, gzip"));
  CHECK_FALSE(parse_content_encoding("compress"));
}

TEST_CASE("gzip, zlib deflate, raw deflate and zstd bodies round-trip", "[decompress]") {
  const std::string original = random_text(300000) + std::string(100000, 'x');
  for (const auto& [encoding, compressed] :
       {std::pair{ContentEncoding::gzip, gzip(original)},
        std::pair{ContentEncoding::deflate, zlib_compress(original, 15)},
        std::pair{ContentEncoding::deflate, zlib_compress(original, -15)},
        std::pair{ContentEncoding::zstd, zstd_compress(original)}}) {
    std::string out;
    const auto result = decompress(encoding, compressed, out, 1 << 20);
    CHECK(result.status == Status::ok);
    CHECK(out == original);
  }
}

TEST_CASE("concatenated gzip members decode as one body", "[decompress]") {
  std::string out;
  const auto result = decompress(ContentEncoding::gzip, gzip("hello ") + gzip("world"), out, 1024);
  CHECK(result.status == Status::ok);
  CHECK(out == "hello world");
}

TEST_CASE("a gzip trailer whose size lies never decides what is decoded or allocated", "[decompress]") {
  const std::string original = random_text(20000);
  const std::string honest = gzip(original);
  // The trailer's last four bytes are the size (mod 2^32): claim less, then more, than the truth.
  for (const std::uint32_t claimed : {100u, 4000000u}) {
    std::string lying = honest;
    for (int i = 0; i < 4; ++i) {
      lying[lying.size() - 4 + static_cast<std::size_t>(i)] = static_cast<char>((claimed >> (8 * i)) & 0xff);
    }
    std::string out;
    const auto result = decompress(ContentEncoding::gzip, lying, out, 1u << 20);
    CHECK(result.status == Status::corrupt);
    CHECK(out.capacity() < (1u << 20) + 64 * 1024 + 64);
  }
  // The honest body decodes, also into a buffer that already holds bytes.
  std::string out = "kept:";
  CHECK(decompress(ContentEncoding::gzip, honest, out, 1u << 20).status == Status::ok);
  CHECK(out == "kept:" + original);
}

TEST_CASE("a body exactly at the limit is accepted, one byte more is too large", "[decompress]") {
  const std::string original(4096, 'a');
  std::string out;
  CHECK(decompress(ContentEncoding::gzip, gzip(original), out, 4096).status == Status::ok);
  out.clear();
  const auto result = decompress(ContentEncoding::gzip, gzip(original), out, 4095);
  CHECK(result.status == Status::too_large);
  CHECK_THAT(result.message, Catch::Contains("limit of 4095 bytes"));
  out.clear();
  CHECK(decompress(ContentEncoding::identity, original, out, 4095).status == Status::too_large);
}

TEST_CASE("a gzip bomb stops at the limit without allocating what it claims", "[decompress]") {
  // 1 GiB of zeros compresses to about 1 MiB; the decoder must stop after limit + 1 bytes.
  const std::string bomb = gzip(std::string(256u << 20, '\0'));
  REQUIRE(bomb.size() < 1u << 20);
  std::string out;
  const std::size_t limit = 8u << 20;
  const auto result = decompress(ContentEncoding::gzip, bomb, out, limit);
  CHECK(result.status == Status::too_large);
  CHECK(out.capacity() <= limit + 64 * 1024 + 64);
}

TEST_CASE("a zstd bomb stops at the limit too", "[decompress]") {
  const std::string bomb = zstd_compress(std::string(64u << 20, '\0'));
  std::string out;
  const auto result = decompress(ContentEncoding::zstd, bomb, out, 1u << 20);
  CHECK(result.status == Status::too_large);
  CHECK(out.size() <= (1u << 20) + 1);
}

TEST_CASE("a truncated gzip body is reported as truncated", "[decompress]") {
  const std::string compressed = gzip(random_text(10000));
  std::string out;
  const auto result = decompress(ContentEncoding::gzip, compressed.substr(0, compressed.size() / 2), out, 1 << 20);
  CHECK(result.status == Status::truncated);
  CHECK_THAT(result.message, Catch::Contains("gzip body is truncated"));
}

TEST_CASE("an empty gzip or zstd body is truncated, not a crash", "[decompress]") {
  std::string out;
  CHECK(decompress(ContentEncoding::gzip, "", out, 1024).status == Status::truncated);
  CHECK(decompress(ContentEncoding::zstd, "", out, 1024).status == Status::truncated);
}

TEST_CASE("garbage declared as gzip, deflate or zstd is corrupt", "[decompress]") {
  std::string out;
  const auto gz = decompress(ContentEncoding::gzip, "this is not gzip at all", out, 1024);
  CHECK(gz.status == Status::corrupt);
  CHECK_THAT(gz.message, Catch::Contains("gzip body is corrupt"));
  CHECK(decompress(ContentEncoding::zstd, "not zstd", out, 1024).status == Status::corrupt);
  CHECK(decompress(ContentEncoding::deflate, std::string("\xff\xff\xff\xff", 4), out, 1024).status != Status::ok);
}

TEST_CASE("trailing junk after a deflate stream is corrupt", "[decompress]") {
  std::string out;
  const auto result = decompress(ContentEncoding::deflate, zlib_compress("abc", 15) + "junk", out, 1024);
  CHECK(result.status == Status::corrupt);
  CHECK_THAT(result.message, Catch::Contains("trailing data"));
}

TEST_CASE("a body expanding past max_ratio is refused as a bomb below the absolute limit",
          "[decompress][limits]") {
  const std::string original(8u << 20, '\0');  // 8 MiB of zeros: about 8 KiB of gzip, 1:1000
  for (const auto& [encoding, compressed] :
       {std::pair{ContentEncoding::gzip, gzip(original)},
        std::pair{ContentEncoding::zstd, zstd_compress(original)}}) {
    std::string out;
    const auto result = decompress(encoding, compressed, out, 64u << 20, 100);
    CHECK(result.status == Status::ratio_exceeded);
    CHECK_THAT(result.message, Catch::Contains("expands more than 100 times"));
    CHECK_THAT(result.message, Catch::Contains("decompression bomb"));
    // Stopped at the ratio's bound (kRatioFreeBytes here), not at 64 MiB.
    CHECK(out.size() <= proxy::receiver::kRatioFreeBytes + 1);
    out.clear();
    CHECK(decompress(encoding, compressed, out, 64u << 20, 0).status == Status::ok);  // 0: off
    CHECK(out == original);
  }
}

TEST_CASE("the ratio is not checked on bodies under kRatioFreeBytes, and binds above them",
          "[decompress][limits]") {
  // 512 KiB of zeros in about 500 bytes of gzip: a ratio of 1000, but small, so accepted.
  const std::string small(512u << 10, '\0');
  std::string out;
  CHECK(decompress(ContentEncoding::gzip, gzip(small), out, 64u << 20, 100).status == Status::ok);
  // Random text expands about 1.6x: far under the ratio at any size.
  const std::string text = random_text(3u << 20);
  out.clear();
  CHECK(decompress(ContentEncoding::gzip, gzip(text), out, 64u << 20, 2).status == Status::ok);
  // With a ratio of 1 the same body is refused once past kRatioFreeBytes.
  out.clear();
  CHECK(decompress(ContentEncoding::gzip, gzip(text), out, 64u << 20, 1).status ==
        Status::ratio_exceeded);
}

TEST_CASE("the absolute limit still applies when it is tighter than the ratio", "[decompress][limits]") {
  const std::string original(4u << 20, 'a');
  std::string out;
  const auto result = decompress(ContentEncoding::gzip, gzip(original), out, 2u << 20, 1000000);
  CHECK(result.status == Status::too_large);
  CHECK_THAT(result.message, Catch::Contains("limit of 2097152 bytes"));
}
