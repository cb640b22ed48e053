#include <catch2/catch.hpp>

#include <boost/asio/error.hpp>

#include "exporter/http_client.hpp"

using proxy::exporter::HttpResult;
using proxy::exporter::HttpStep;

TEST_CASE("a failed exchange names its step as an error code, compared as a value", "[exporter][http]") {
  HttpResult result;
  CHECK_FALSE(result.failed_step);
  result.error = boost::asio::error::connection_refused;
  result.failed_step = HttpStep::connect;
  CHECK(result.failed_step == HttpStep::connect);
  CHECK(result.failed_step != HttpStep::read);
  CHECK(result.failed_step.category() == proxy::exporter::http_step_category());
  CHECK(result.describe_error() == "connect: " + result.error.message());

  result.failed_step = HttpStep::tls_handshake;
  result.error_detail = "certificate verify failed: Hostname mismatch";
  CHECK(result.describe_error() == "TLS handshake: certificate verify failed: Hostname mismatch");
}
