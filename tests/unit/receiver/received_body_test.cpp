#include <catch2/catch.hpp>

#include <random>
#include <string>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>

#include "receiver/received_body.hpp"

namespace http = boost::beast::http;

namespace {

struct Parsed {
  std::string body;
  boost::beast::error_code error;
};

// Feeds `wire` to a parser of `Body` in pieces of at most `piece` bytes, as reads arrive; the
// last 7 bytes (a chunked body's "\r\n0\r\n\r\n") in one. Beast's parser asserts, in debug
// builds, when the last chunk's header and the final CRLF reach it in separate calls.
template <class Body>
Parsed parse(const std::string& wire, std::size_t piece, std::uint64_t body_limit = 1 << 20) {
  http::request_parser<Body> parser;
  parser.eager(true);
  parser.body_limit(body_limit);
  std::string pending;
  std::size_t fed = 0;
  boost::beast::error_code ec;
  while (!parser.is_done() && !ec) {
    if (fed < wire.size()) {
      const std::size_t left = wire.size() - fed;
      const std::size_t more = left <= piece + 7 ? left : piece;
      pending.append(wire, fed, more);
      fed += more;
    } else if (pending.empty()) {
      break;
    }
    const std::size_t used = parser.put(boost::asio::buffer(pending), ec);
    pending.erase(0, used);
    if (ec == http::error::need_more) ec = {};
  }
  return {parser.get().body(), ec};
}

std::string random_text(std::mt19937& random, std::size_t size) {
  std::uniform_int_distribution<int> byte(0, 255);
  std::string text(size, '\0');
  for (char& c : text) c = static_cast<char>(byte(random));
  return text;
}

std::string with_length(const std::string& body) {
  return "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string chunked(const std::string& body, std::size_t chunk) {
  std::string wire = "POST /v1/traces HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (std::size_t at = 0; at < body.size(); at += chunk) {
    const std::string part = body.substr(at, chunk);
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", part.size());
    wire += size + part + "\r\n";
  }
  return wire + "0\r\n\r\n";
}

}  // namespace

TEST_CASE("ReceivedBody reads what string_body reads, in any pieces", "[received_body]") {
  std::mt19937 random(7);
  for (const std::size_t size : {0, 1, 100, 4096, 70000}) {
    const std::string body = random_text(random, size);
    for (const std::string& wire : {with_length(body), chunked(body, 1000), chunked(body, 7)}) {
      for (const std::size_t piece : {1, 13, 4096, 1 << 20}) {
        if (piece == 1 && size > 4096) continue;  // slow and adds nothing
        const Parsed ours = parse<proxy::receiver::ReceivedBody>(wire, piece);
        const Parsed beasts = parse<http::string_body>(wire, piece);
        INFO("body " << size << " bytes, pieces of " << piece);
        REQUIRE_FALSE(beasts.error);
        REQUIRE_FALSE(ours.error);
        REQUIRE(ours.body.size() == body.size());
        REQUIRE(ours.body == body);
      }
    }
  }
}

TEST_CASE("ReceivedBody leaves the body limit to the parser", "[received_body]") {
  const std::string body(5000, 'x');
  CHECK(parse<proxy::receiver::ReceivedBody>(with_length(body), 512, 4999).error == http::error::body_limit);
  CHECK(parse<proxy::receiver::ReceivedBody>(chunked(body, 1000), 512, 4999).error == http::error::body_limit);
  CHECK_FALSE(parse<proxy::receiver::ReceivedBody>(with_length(body), 512, 5000).error);
}
