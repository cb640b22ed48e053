#include <catch2/catch.hpp>

#include "exporter/http_client.hpp"
#include "exporter/response_classifier.hpp"
#include "exporter/retry_policy.hpp"
#include "exporter/upstream_url.hpp"

using namespace proxy;
using namespace proxy::exporter;
using namespace std::chrono_literals;

TEST_CASE("MLflow's answers map to the status table", "[exporter][status]") {
  CHECK(classify_export_response(200, R"({"partialSuccess":null})").action == ExportAction::delivered);
  CHECK(classify_export_response(204, "").action == ExportAction::delivered);
  for (int status : {429, 502, 503, 504}) {
    CHECK(classify_export_response(status, "").action == ExportAction::retry);
  }
  CHECK(classify_export_response(422, R"({"detail":"(sqlite3.OperationalError) database is locked"})").action ==
        ExportAction::retry_transient);
  CHECK(classify_export_response(500, "Internal Server Error").action == ExportAction::retry_transient);
  CHECK(classify_export_response(404, R"({"detail":"Experiment with id '99' not found"})").action ==
        ExportAction::reresolve_experiment);
  CHECK(classify_export_response(422, "Experiment 99 does not exist").action ==
        ExportAction::reresolve_experiment);
  const auto forbidden = classify_export_response(403, "Invalid Host header");
  CHECK(forbidden.action == ExportAction::hold_not_ready);
  CHECK_THAT(forbidden.reason, Catch::Contains("--allowed-hosts"));
  CHECK(classify_export_response(401, "").action == ExportAction::hold_not_ready);
  const auto file_store = classify_export_response(501, "not implemented");
  CHECK(file_store.action == ExportAction::hold_not_ready);
  CHECK_THAT(file_store.reason, Catch::Contains("SQL backend"));
  CHECK(classify_export_response(400, "bad").action == ExportAction::dead_letter);
  CHECK(classify_export_response(413, "").action == ExportAction::dead_letter);
  CHECK(classify_export_response(422, "conversion failed").action == ExportAction::dead_letter);
}

TEST_CASE("backoff grows exponentially to its cap, with full jitter", "[exporter][retry]") {
  config::RetryConfig policy;
  policy.initial_backoff = 100ms;
  policy.max_backoff = 1000ms;
  policy.multiplier = 2.0;
  CHECK(next_retry_delay(policy, 1, 0.999999, std::nullopt) == 99ms);
  CHECK(next_retry_delay(policy, 2, 0.999999, std::nullopt) == 199ms);
  CHECK(next_retry_delay(policy, 3, 0.5, std::nullopt) == 200ms);
  CHECK(next_retry_delay(policy, 10, 0.999999, std::nullopt) == 999ms);
  CHECK(next_retry_delay(policy, 1000, 0.5, std::nullopt) == 500ms);
  CHECK(next_retry_delay(policy, 1, 0.0, std::nullopt) == 0ms);
}

TEST_CASE("Retry-After sets the delay, longer or shorter than the backoff", "[exporter][retry]") {
  config::RetryConfig policy;
  policy.initial_backoff = 100ms;
  policy.max_backoff = 1000ms;
  CHECK(next_retry_delay(policy, 1, 0.5, 2000ms) == 2000ms);
  // After many failures the backoff ceiling is max_backoff; the server's "0" or "1" still wins.
  CHECK(next_retry_delay(policy, 30, 0.999999, 0ms) == 100ms);  // floor: no busy loop
  CHECK(next_retry_delay(policy, 30, 0.999999, 300ms) == 300ms);
  // A hostile or broken Retry-After cannot park the exporter for an hour.
  CHECK(next_retry_delay(policy, 1, 0.5, 3600000ms) == 10000ms);
  CHECK(parse_retry_after("2") == 2000ms);
  CHECK(parse_retry_after(" 10 ") == 10000ms);
  CHECK_FALSE(parse_retry_after(""));
  CHECK_FALSE(parse_retry_after("soon"));
  CHECK_FALSE(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"));
}

TEST_CASE("MLflow URLs split into host, port and base path", "[exporter][url]") {
  std::string error;
  auto url = parse_upstream_url("http://127.0.0.1:5000", error);
  REQUIRE(url);
  CHECK(url->host == "127.0.0.1");
  CHECK(url->port == "5000");
  CHECK(url->target("/v1/traces") == "/v1/traces");
  CHECK(url->host_header() == "127.0.0.1:5000");

  url = parse_upstream_url("https://mlflow.example.com/team-a/", error);
  REQUIRE(url);
  CHECK(url->tls);
  CHECK(url->port == "443");
  CHECK(url->host_header() == "mlflow.example.com");
  CHECK(url->target("/v1/traces") == "/team-a/v1/traces");

  url = parse_upstream_url("http://user:secret@[::1]:5000", error);
  REQUIRE(url);
  CHECK(url->host == "::1");
  CHECK(url->host_header() == "[::1]:5000");

  CHECK_FALSE(parse_upstream_url("ftp://x", error));
  CHECK_THAT(error, Catch::Contains("http://"));
  CHECK_FALSE(parse_upstream_url("http://:5000", error));
  CHECK_FALSE(parse_upstream_url("http://host:99999", error));
  CHECK_THAT(error, Catch::Contains("invalid port"));
}

// As MLflow's own client (mlflow/utils/rest_utils.py): Basic needs both username and password
// and then wins over a token, so a shell with all three set behaves as it does for MLflow.
TEST_CASE("credentials become Basic or Bearer as MLflow's client chooses", "[exporter][auth]") {
  CHECK(authorization_header("", "", "") == "");
  CHECK(authorization_header("alice", "s3cret", "") == "Basic YWxpY2U6czNjcmV0");
  CHECK(authorization_header("alice", "s3cret", "tok") == "Basic YWxpY2U6czNjcmV0");
  CHECK(authorization_header("alice", "", "tok") == "Bearer tok");
  CHECK(authorization_header("", "", "tok") == "Bearer tok");
  CHECK(authorization_header("alice", "", "") == "Basic YWxpY2U6");  // user@host in the URL
}

TEST_CASE("credentials in the MLflow URL are taken out of the host and percent-decoded", "[exporter][url]") {
  std::string error;
  const auto url = parse_upstream_url("http://alice:p%40ss@mlflow:5000/", error);
  REQUIRE(url);
  CHECK(url->host == "mlflow");
  CHECK(url->username == "alice");
  CHECK(url->password == "p@ss");
  CHECK(authorization_header(url->username, url->password, "") == "Basic YWxpY2U6cEBzcw==");
}
