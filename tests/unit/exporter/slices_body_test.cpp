#include <sstream>
#include <string>
#include <vector>

#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>

#include "exporter/slices_body.hpp"

namespace http = boost::beast::http;
using proxy::exporter::SlicesBody;

namespace {

std::string written(http::request<SlicesBody>& request) {
  request.prepare_payload();
  std::ostringstream out;
  out << request;
  return out.str();
}

std::string body_of(const std::string& message) { return message.substr(message.find("\r\n\r\n") + 4); }

}  // namespace

TEST_CASE("a slices body is sent as the concatenation of its slices, with their total length",
          "[exporter]") {
  const std::vector<std::string> payloads = {std::string("\x0a\x03" "abc", 5), "", "second",
                                             std::string(70000, 'x')};
  http::request<SlicesBody> request{http::verb::post, "/v1/traces", 11};
  std::string expected;
  for (const std::string& payload : payloads) {
    request.body().emplace_back(payload.data(), payload.size());
    expected += payload;
  }
  const std::string message = written(request);
  CHECK(request[http::field::content_length] == std::to_string(expected.size()));
  CHECK(body_of(message) == expected);
}

TEST_CASE("an empty slices body is a request with Content-Length 0", "[exporter]") {
  http::request<SlicesBody> request{http::verb::post, "/v1/traces", 11};
  const std::string message = written(request);
  CHECK(request[http::field::content_length] == "0");
  CHECK(body_of(message).empty());
}
