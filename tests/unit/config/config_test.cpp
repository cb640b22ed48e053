#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

#include "config/config.hpp"
#include "config/load.hpp"
#include "config/values.hpp"
#include "support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using proxy::config::Action;
using proxy::testing::TempDir;
using proxy::config::Config;
using proxy::config::ConfigError;
using proxy::config::Endpoint;
using proxy::config::Environment;
using proxy::config::LoadedConfig;
using proxy::config::LogFormat;
using proxy::config::NormalizeConfig;
using proxy::config::ResourceTarget;
using proxy::config::ValueError;

const std::string kExampleConfig = PROXY_TEST_DATA_DIR "/../../config/otlp-mlflow-proxy.yaml";
const std::string kEveryKeyConfig = PROXY_TEST_DATA_DIR "/config/every-key.yaml";
// The built-in defaults, default-initialized once. Not `Config{}`: GCC 12 at -O3 warns that the
// exception cleanup of that nested aggregate initialization may destroy admin.listen.host
// uninitialized (-Wmaybe-uninitialized; a false positive that broke Release builds).
// The implicit constructor runs the same member initializers; static storage zeroes the rest.
const Config kDefaultConfig;


LoadedConfig load_yaml(const std::string& yaml, const Environment& env = {},
                       std::vector<std::string> args = {}) {
  TempDir dir;
  args.insert(args.begin(), {"--config", dir.write("proxy.yaml", yaml)});
  return proxy::config::load(args, env);
}

std::string error_of(const std::vector<std::string>& args, const Environment& env = {}) {
  try {
    proxy::config::load(args, env);
  } catch (const ConfigError& e) {
    return e.what();
  }
  FAIL("expected a ConfigError");
  return {};
}

// The error for a YAML text, with the temporary file's path shortened to "proxy.yaml".
std::string yaml_error(const std::string& yaml, const Environment& env = {}) {
  TempDir dir;
  std::string file = dir.write("proxy.yaml", yaml);
  std::string message = error_of({"--config", file}, env);
  if (message.starts_with(file)) message = "proxy.yaml" + message.substr(file.size());
  return message;
}

template <class Parse>
std::string value_error(Parse parse) {
  try {
    parse();
  } catch (const ValueError& e) {
    return e.what();
  }
  FAIL("expected a ValueError");
  return {};
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Every field, through Config's defaulted operator==, so a field added to any section is
// compared without a line here. The renderings first, for a readable message when they differ
// (they hide secrets, so equal renderings alone would prove less).
void require_same(const Config& a, const Config& b) {
  CHECK(proxy::config::render_effective(a) == proxy::config::render_effective(b));
  CHECK(a == b);
}

}  // namespace

// ---- single values -----------------------------------------------------------------------------

TEST_CASE("Endpoint::to_string brackets IPv6 hosts only", "[config]") {
  CHECK(Endpoint{"127.0.0.1", 4318}.to_string() == "127.0.0.1:4318");
  CHECK(Endpoint{"localhost", 1}.to_string() == "localhost:1");
  CHECK(Endpoint{"::1", 4318}.to_string() == "[::1]:4318");
}

TEST_CASE("sizes accept binary and decimal units", "[config][values]") {
  using proxy::config::parse_size;
  CHECK(parse_size("64MiB") == 64 * proxy::config::kMiB);
  CHECK(parse_size("64 MiB") == 64 * proxy::config::kMiB);
  CHECK(parse_size("16KiB") == 16 * 1024);
  CHECK(parse_size("1GiB") == 1024 * 1024 * 1024);
  CHECK(parse_size("512KB") == 512'000);
  CHECK(parse_size("3MB") == 3'000'000);
  CHECK(parse_size("2GB") == 2'000'000'000);
  CHECK(parse_size("100B") == 100);
  CHECK(parse_size("1024") == 1024);
}

TEST_CASE("bad sizes say what a size looks like", "[config][values]") {
  using proxy::config::parse_size;
  const std::string units = " (units: B, KiB, MiB, GiB, or KB, MB, GB)";
  for (std::string text : {"lots", "", "64XB", "64mib", "-1", "1.5GiB", "MiB", "64MiB "}) {
    INFO(text);
    CHECK(value_error([&] { parse_size(text); }) ==
          "expected a size such as 64MiB, got \"" + text + "\"" + units);
  }
  CHECK(value_error([] { parse_size("0"); }) == "must be greater than 0, got \"0\"");
  CHECK(value_error([] { parse_size("0MiB"); }) == "must be greater than 0, got \"0MiB\"");
  CHECK(value_error([] { parse_size("2GiB", 1024 * proxy::config::kMiB); }) ==
        "must be at most 1GiB, got \"2GiB\"");
  CHECK(value_error([] { parse_size("99999999999999999999999"); }) ==
        "must be at most 18446744073709551615, got \"99999999999999999999999\"");
  CHECK(value_error([] { parse_size("99999999999GiB"); }) ==
        "must be at most 18446744073709551615, got \"99999999999GiB\"");
}

TEST_CASE("durations need a unit", "[config][values]") {
  using proxy::config::parse_duration;
  CHECK(parse_duration("500ms", 0ms, 24h) == 500ms);
  CHECK(parse_duration("30s", 0ms, 24h) == 30s);
  CHECK(parse_duration("2m", 0ms, 24h) == 2min);
  CHECK(parse_duration("1h", 0ms, 24h) == 1h);
  CHECK(parse_duration("0s", 0ms, 24h) == 0ms);
  CHECK(value_error([] { parse_duration("30", 0ms, 24h); }) ==
        "expected a duration such as 30s or 500ms, got \"30\" (a bare number is ambiguous: "
        "add a unit, ms, s, m or h)");
  for (std::string text : {"", "s", "1d", "1.5s", "-1s", "30 sec", "1h30m"}) {
    INFO(text);
    CHECK(value_error([&] { parse_duration(text, 0ms, 24h); }) ==
          "expected a duration such as 30s or 500ms, got \"" + text + "\" (units: ms, s, m, h)");
  }
  CHECK(value_error([] { parse_duration("25h", 0ms, 24h); }) == "must be at most 24h, got \"25h\"");
  CHECK(value_error([] { parse_duration("99999999999999999999h", 0ms, 24h); }) ==
        "must be at most 24h, got \"99999999999999999999h\"");
  CHECK(value_error([] { parse_duration("0s", 1ms, 24h); }) == "must be at least 1ms, got \"0s\"");
  CHECK(proxy::config::parse_seconds("2m", 1s, 24h) == 120s);
  CHECK(value_error([] { proxy::config::parse_seconds("1500ms", 1s, 24h); }) ==
        "must be a whole number of seconds, got \"1500ms\"");
}

TEST_CASE("sizes and durations print in the largest exact unit", "[config][values]") {
  using proxy::config::format_duration;
  using proxy::config::format_size;
  CHECK(format_size(64 * proxy::config::kMiB) == "64MiB");
  CHECK(format_size(16 * 1024) == "16KiB");
  CHECK(format_size(proxy::config::kGiB) == "1GiB");
  CHECK(format_size(1000) == "1000");
  CHECK(format_size(1536 * 1024) == "1536KiB");
  CHECK(format_duration(30s) == "30s");
  CHECK(format_duration(200ms) == "200ms");
  CHECK(format_duration(1500ms) == "1500ms");
  CHECK(format_duration(120s) == "2m");
  CHECK(format_duration(2h) == "2h");
  CHECK(format_duration(0ms) == "0s");
}

TEST_CASE("endpoints are HOST:PORT or [IPv6]:PORT", "[config][values]") {
  using proxy::config::parse_endpoint;
  auto v4 = parse_endpoint("0.0.0.0:4318");
  CHECK(v4.host == "0.0.0.0");
  CHECK(v4.port == 4318);
  auto v6 = parse_endpoint("[::1]:4318");
  CHECK(v6.host == "::1");
  CHECK(v6.port == 4318);
  CHECK(parse_endpoint("localhost:65535").port == 65535);
  for (std::string text : {"4318x", "4318", "localhost", ":4318", "", "[::1]", "[::1]4318",
                           "[zz zz]:1", "[::1:4318", "a b:1"}) {
    INFO(text);
    CHECK(value_error([&] { parse_endpoint(text); }) == "expected HOST:PORT, got \"" + text + "\"");
  }
  for (std::string text :
       {"host:0", "host:65536", "host:", "host:99999999", "host:port", "host:-1"}) {
    INFO(text);
    CHECK(value_error([&] { parse_endpoint(text); }) ==
          "expected HOST:PORT, got \"" + text + "\" (the port must be from 1 to 65535)");
  }
  CHECK(value_error([] { parse_endpoint("::1:4318"); }) ==
        "expected HOST:PORT, got \"::1:4318\" (write an IPv6 address in brackets, such as "
        "[::1]:4318)");
}

TEST_CASE("MLflow URLs are http or https with a host", "[config][values]") {
  using proxy::config::parse_url;
  CHECK(parse_url("http://127.0.0.1:5000") == "http://127.0.0.1:5000");
  CHECK(parse_url("HTTPS://mlflow.example.com/") == "https://mlflow.example.com");
  CHECK(parse_url("http://mlflow/prefix//") == "http://mlflow/prefix");
  CHECK(parse_url("http://[::1]:5000") == "http://[::1]:5000");
  CHECK(parse_url("http://u:p@host") == "http://u:p@host");
  const std::string shape = "expected an http:// or https:// URL with a host, got ";
  for (std::string text : {"ftp://host", "databricks", "sqlite:///mlflow.db", "http://",
                           "http:///x", "http://:5000", "host:5000", "", "http//host"}) {
    INFO(text);
    CHECK(value_error([&] { parse_url(text); }) == shape + "\"" + text + "\"");
  }
  CHECK(value_error([] { parse_url("http://host:0"); }) ==
        shape + "\"http://host:0\" (the port must be from 1 to 65535)");
  CHECK(value_error([] { parse_url("http://host:x"); }) ==
        shape + "\"http://host:x\" (the port must be from 1 to 65535)");
  CHECK(value_error([] { parse_url("http://host/?a=1"); }) ==
        shape + "\"http://host/?a=1\" (no query or fragment)");
  CHECK(value_error([] { parse_url("http://host/#x"); }) ==
        shape + "\"http://host/#x\" (no query or fragment)");
  CHECK(value_error([] { parse_url("http://ho st"); }) ==
        shape + "\"http://ho st\" (no spaces or control characters)");
  // A bad URL is echoed without its password.
  CHECK(value_error([] { parse_url("http://u:secret@:1"); }) ==
        shape + "\"http://u:<hidden>@:1\"");
}

TEST_CASE("URL passwords are hidden, user names kept", "[config][values]") {
  using proxy::config::hide_url_password;
  CHECK(hide_url_password("http://u:p@host") == "http://u:<hidden>@host");
  CHECK(hide_url_password("https://u:p@ss@host:1/x@y") == "https://u:<hidden>@host:1/x@y");
  CHECK(hide_url_password("http://u@host") == "http://u@host");
  CHECK(hide_url_password("http://host:5000/a:b@c") == "http://host:5000/a:b@c");
  CHECK(hide_url_password("databricks") == "databricks");
}

TEST_CASE("integers, numbers, booleans, levels and formats", "[config][values]") {
  using namespace proxy::config;
  CHECK(parse_integer("64", 1, 64) == 64);
  CHECK(value_error([] { parse_integer("65", 1, 64); }) ==
        "expected a whole number from 1 to 64, got \"65\"");
  CHECK(value_error([] { parse_integer("2.5", 1, 64); }) ==
        "expected a whole number from 1 to 64, got \"2.5\"");
  CHECK(value_error([] { parse_integer("99999999999999999999999", 0, 10); }) ==
        "expected a whole number from 0 to 10, got \"99999999999999999999999\"");
  CHECK(parse_number("1.5", 1.0) == 1.5);
  CHECK(parse_number("2", 1.0) == 2.0);
  for (std::string text : {"0.5", "fast", "nan", "inf", "", "1.5x"}) {
    INFO(text);
    CHECK(value_error([&] { parse_number(text, 1.0); }) ==
          "expected a number of at least 1, got \"" + text + "\"");
  }
  CHECK(parse_bool("true"));
  CHECK_FALSE(parse_bool("False"));
  CHECK(value_error([] { parse_bool("yes"); }) == "expected true or false, got \"yes\"");
  CHECK(parse_log_level("WARN") == "warn");
  CHECK(value_error([] { parse_log_level("loud"); }) ==
        "expected one of trace, debug, info, warn, error, critical, off, got \"loud\"");
  CHECK(parse_log_format("json") == LogFormat::json);
  CHECK(value_error([] { parse_log_format("xml"); }) == "expected text or json, got \"xml\"");
  CHECK(value_error([] { parse_experiment_id("12a"); }) ==
        "expected a numeric experiment id (MLflow experiment ids are digits, such as 123), got "
        "\"12a\" (to select by name, use the experiment name)");
  CHECK(quoted("a\"b\n") == "\"a\\\"b\\x0a\"");
}

// ---- flags -------------------------------------------------------------------------------------

TEST_CASE("no arguments: run with the defaults", "[config][flags]") {
  LoadedConfig loaded = proxy::config::load({}, {});
  CHECK(loaded.action == Action::run);
  CHECK(loaded.config_file.empty());
  require_same(loaded.config, kDefaultConfig);
}

TEST_CASE("flags take --flag value and --flag=value", "[config][flags]") {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--listen", "[::1]:9000", "--mlflow-url", "https://m:1/", "--experiment-id", "7",
            "--experiment-name", "x", "--log-level", "debug", "--log-format", "json"},
           {"--listen=[::1]:9000", "--mlflow-url=https://m:1/", "--experiment-id=7",
            "--experiment-name=x", "--log-level=debug", "--log-format=json"},
       }) {
    Config c = proxy::config::load(args, {}).config;
    CHECK(c.receiver.listen.host == "::1");
    CHECK(c.receiver.listen.port == 9000);
    CHECK(c.mlflow.url == "https://m:1");
    CHECK(c.mlflow.experiment_id == "7");
    CHECK(c.mlflow.experiment_name == "x");
    CHECK(c.log.level == "debug");
    CHECK(c.log.format == LogFormat::json);
  }
  // An experiment name may contain '='; only the first one splits.
  CHECK(proxy::config::load({"--experiment-name=a=b"}, {}).config.mlflow.experiment_name == "a=b");
}

TEST_CASE("actions", "[config][flags]") {
  using proxy::config::load;
  CHECK(load({"--check-config"}, {}).action == Action::check_config);
  CHECK(load({"--version"}, {}).action == Action::print_version);
  CHECK(load({"--help"}, {}).action == Action::print_help);
  CHECK(load({"-h"}, {}).action == Action::print_help);
  CHECK(load({"--version", "--help"}, {}).action == Action::print_help);
  // Help and version work even when the configuration is broken.
  CHECK(load({"--help", "--config", "/nonexistent/proxy.yaml"}, {}).action == Action::print_help);
  CHECK(load({"--version"}, {{"OTLP_MLFLOW_PROXY_LISTEN", "bad"}}).action ==
        Action::print_version);
  // --check-config still validates.
  CHECK(error_of({"--check-config"}, {{"OTLP_MLFLOW_PROXY_LISTEN", "bad"}}) ==
        "OTLP_MLFLOW_PROXY_LISTEN: expected HOST:PORT, got \"bad\"");
}

TEST_CASE("flag errors name the flag", "[config][flags]") {
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  const std::vector<Case> cases{
      {{"--bogus"}, "--bogus: unknown flag (see --help)"},
      {{"--bogus=1"}, "--bogus: unknown flag (see --help)"},
      {{"-x"}, "-x: unknown flag (see --help)"},
      {{"--LISTEN", "a:1"}, "--LISTEN: unknown flag (see --help)"},
      {{"config.yaml"}, "unexpected argument \"config.yaml\" (see --help)"},
      {{"-"}, "unexpected argument \"-\" (see --help)"},
      {{"--listen"}, "--listen: missing value (expected HOST:PORT)"},
      {{"--listen="}, "--listen: missing value (expected HOST:PORT)"},
      {{"--listen", ""}, "--listen: missing value (expected HOST:PORT)"},
      {{"--config"}, "--config: missing value (expected FILE)"},
      {{"--config", "--check-config"}, "--config: missing value (expected FILE)"},
      {{"--mlflow-url"}, "--mlflow-url: missing value (expected URL)"},
      {{"--experiment-id"}, "--experiment-id: missing value (expected ID)"},
      {{"--experiment-name="}, "--experiment-name: missing value (expected NAME)"},
      {{"--log-level"}, "--log-level: missing value (expected LEVEL)"},
      {{"--log-format"}, "--log-format: missing value (expected FORMAT)"},
      {{"--listen", "4318x"}, "--listen: expected HOST:PORT, got \"4318x\""},
      {{"--listen=localhost:0"},
       "--listen: expected HOST:PORT, got \"localhost:0\" (the port must be from 1 to 65535)"},
      {{"--mlflow-url", "localhost:5000"},
       "--mlflow-url: expected an http:// or https:// URL with a host, got \"localhost:5000\""},
      {{"--experiment-id", "abc"},
       "--experiment-id: expected a numeric experiment id (MLflow experiment ids are digits, such "
       "as 123), got \"abc\" (to select by name, use the experiment name)"},
      {{"--log-level", "verbose"},
       "--log-level: expected one of trace, debug, info, warn, error, critical, off, got "
       "\"verbose\""},
      {{"--log-format=xml"}, "--log-format: expected text or json, got \"xml\""},
      {{"--check-config=yes"}, "--check-config: takes no value, got \"yes\""},
      {{"--version=1"}, "--version: takes no value, got \"1\""},
      {{"--help=me"}, "--help: takes no value, got \"me\""},
  };
  for (const Case& c : cases) {
    INFO(c.args.front());
    CHECK(error_of(c.args) == c.error);
  }
}

// ---- environment -------------------------------------------------------------------------------

TEST_CASE("environment errors name the variable", "[config][env]") {
  struct Case {
    std::string variable;
    std::string value;
    std::string error;
  };
  const std::vector<Case> cases{
      {"OTLP_MLFLOW_PROXY_LISTEN", "4318", "expected HOST:PORT, got \"4318\""},
      {"OTLP_MLFLOW_PROXY_MLFLOW_URL", "mlflow:5000",
       "expected an http:// or https:// URL with a host, got \"mlflow:5000\""},
      {"OTLP_MLFLOW_PROXY_EXPERIMENT_ID", "Default",
       "expected a numeric experiment id (MLflow experiment ids are digits, such as 123), got "
       "\"Default\" (to select by name, use the experiment name)"},
      {"OTLP_MLFLOW_PROXY_LOG_LEVEL", "chatty",
       "expected one of trace, debug, info, warn, error, critical, off, got \"chatty\""},
      {"OTLP_MLFLOW_PROXY_LOG_FORMAT", "logfmt", "expected text or json, got \"logfmt\""},
  };
  for (const Case& c : cases) {
    INFO(c.variable);
    CHECK(error_of({}, {{c.variable, c.value}}) == c.variable + ": " + c.error);
  }
}

TEST_CASE("MLflow's variables are checked only when they are used", "[config][env]") {
  const Environment bad_uri{{"MLFLOW_TRACKING_URI", "databricks"}};
  CHECK(error_of({}, bad_uri) ==
        "MLFLOW_TRACKING_URI: expected an http:// or https:// URL with a host, got "
        "\"databricks\"; the proxy needs an MLflow tracking server (set mlflow.url, "
        "OTLP_MLFLOW_PROXY_MLFLOW_URL or --mlflow-url)");
  CHECK(proxy::config::load({"--mlflow-url", "http://m"}, bad_uri).config.mlflow.url == "http://m");
  CHECK(load_yaml("mlflow:\n  url: http://y\n", bad_uri).config.mlflow.url == "http://y");
  Environment overridden = bad_uri;
  overridden["OTLP_MLFLOW_PROXY_MLFLOW_URL"] = "http://e";
  CHECK(proxy::config::load({}, overridden).config.mlflow.url == "http://e");

  // A password in a bad tracking URI is not echoed.
  CHECK_FALSE(contains(error_of({}, {{"MLFLOW_TRACKING_URI", "ftp://u:secret@h"}}), "secret"));

  const Environment bad_id{{"MLFLOW_EXPERIMENT_ID", "my-experiment"}};
  CHECK(error_of({}, bad_id) ==
        "MLFLOW_EXPERIMENT_ID: expected a numeric experiment id (MLflow experiment ids are "
        "digits, such as 123), got \"my-experiment\" (to select by name, use the experiment "
        "name)");
  Config c = proxy::config::load({"--experiment-name", "x"}, bad_id).config;
  CHECK(c.mlflow.experiment_id.empty());
  CHECK(c.mlflow.experiment_name == "x");
  CHECK(load_yaml("mlflow:\n  experiment_id: \"3\"\n", bad_id).config.mlflow.experiment_id == "3");
}

TEST_CASE("empty and unrelated variables are ignored", "[config][env]") {
  Environment env{
      {"OTLP_MLFLOW_PROXY_LISTEN", ""},
      {"OTLP_MLFLOW_PROXY_CONFIG", ""},
      {"MLFLOW_TRACKING_URI", ""},
      {"MLFLOW_EXPERIMENT_ID", ""},
      // What Kubernetes injects for a Service named otlp-mlflow-proxy.
      {"OTLP_MLFLOW_PROXY_PORT", "tcp://10.0.0.1:4318"},
      {"OTLP_MLFLOW_PROXY_SERVICE_HOST", "10.0.0.1"},
  };
  LoadedConfig loaded = proxy::config::load({}, env);
  CHECK(loaded.config_file.empty());
  require_same(loaded.config, kDefaultConfig);
}

TEST_CASE("process_environment reads environ", "[config][env]") {
  REQUIRE(::setenv("PROXY_CONFIG_TEST_VARIABLE", "a=b", 1) == 0);
  Environment env = proxy::config::process_environment();
  ::unsetenv("PROXY_CONFIG_TEST_VARIABLE");
  REQUIRE(env.count("PROXY_CONFIG_TEST_VARIABLE") == 1);
  CHECK(env.at("PROXY_CONFIG_TEST_VARIABLE") == "a=b");
}

// ---- precedence --------------------------------------------------------------------------------

TEST_CASE("precedence: defaults < MLFLOW_* < YAML < OTLP_MLFLOW_PROXY_* < flags", "[config]") {
  struct Case {
    std::string name;
    Environment env;
    std::optional<std::string> yaml;
    std::vector<std::string> args;
    std::string url;
    std::string experiment_id;
    std::string experiment_name;
    std::string listen = "127.0.0.1:4318";
    std::string level = "info";
  };
  const std::string url = "http://127.0.0.1:5000";
  const std::vector<Case> cases{
      {"defaults", {}, std::nullopt, {}, url, "", ""},
      {"MLFLOW_TRACKING_URI", {{"MLFLOW_TRACKING_URI", "http://env:5000/"}}, std::nullopt, {},
       "http://env:5000", "", ""},
      {"YAML beats MLFLOW_TRACKING_URI", {{"MLFLOW_TRACKING_URI", "http://env"}},
       "mlflow: {url: 'http://yaml'}", {}, "http://yaml", "", ""},
      {"proxy variable beats YAML",
       {{"MLFLOW_TRACKING_URI", "http://env"}, {"OTLP_MLFLOW_PROXY_MLFLOW_URL", "http://proxy"}},
       "mlflow: {url: 'http://yaml'}", {}, "http://proxy", "", ""},
      {"flag beats everything",
       {{"MLFLOW_TRACKING_URI", "http://env"}, {"OTLP_MLFLOW_PROXY_MLFLOW_URL", "http://proxy"}},
       "mlflow: {url: 'http://yaml'}", {"--mlflow-url", "http://flag"}, "http://flag", "", ""},
      {"MLFLOW_EXPERIMENT_ID", {{"MLFLOW_EXPERIMENT_ID", "1"}}, std::nullopt, {}, url, "1", ""},
      {"MLflow id and name together are kept",
       {{"MLFLOW_EXPERIMENT_ID", "1"}, {"MLFLOW_EXPERIMENT_NAME", "n"}}, std::nullopt, {}, url,
       "1", "n"},
      {"YAML id replaces MLFLOW_EXPERIMENT_NAME", {{"MLFLOW_EXPERIMENT_NAME", "n"}},
       "mlflow: {experiment_id: '5'}", {}, url, "5", ""},
      {"YAML name replaces MLFLOW_EXPERIMENT_ID", {{"MLFLOW_EXPERIMENT_ID", "1"}},
       "mlflow: {experiment_name: y}", {}, url, "", "y"},
      {"YAML without experiment keys keeps MLflow's",
       {{"MLFLOW_EXPERIMENT_ID", "1"}, {"MLFLOW_EXPERIMENT_NAME", "n"}},
       "mlflow: {create_experiments: false}", {}, url, "1", "n"},
      {"YAML empty id clears MLflow's", {{"MLFLOW_EXPERIMENT_ID", "1"}},
       "mlflow: {experiment_id: ''}", {}, url, "", ""},
      {"YAML id and name together are kept", {}, "mlflow: {experiment_id: '5', experiment_name: y}",
       {}, url, "5", "y"},
      {"--experiment-name beats MLFLOW_EXPERIMENT_ID", {{"MLFLOW_EXPERIMENT_ID", "1"}},
       std::nullopt, {"--experiment-name", "X"}, url, "", "X"},
      {"proxy id variable replaces YAML name", {{"OTLP_MLFLOW_PROXY_EXPERIMENT_ID", "7"}},
       "mlflow: {experiment_name: y}", {}, url, "7", ""},
      {"proxy name variable replaces YAML id", {{"OTLP_MLFLOW_PROXY_EXPERIMENT_NAME", "z"}},
       "mlflow: {experiment_id: '5'}", {}, url, "", "z"},
      {"--experiment-id replaces the proxy name variable",
       {{"OTLP_MLFLOW_PROXY_EXPERIMENT_NAME", "z"}}, std::nullopt, {"--experiment-id", "9"}, url,
       "9", ""},
      {"flag id and name together are kept", {{"MLFLOW_EXPERIMENT_ID", "1"}}, std::nullopt,
       {"--experiment-id", "9", "--experiment-name", "w"}, url, "9", "w"},
      {"listen and level from YAML", {}, "receiver: {listen: '0.0.0.0:1'}\nlog: {level: warn}",
       {}, url, "", "", "0.0.0.0:1", "warn"},
      {"listen and level from proxy variables",
       {{"OTLP_MLFLOW_PROXY_LISTEN", "0.0.0.0:2"}, {"OTLP_MLFLOW_PROXY_LOG_LEVEL", "error"}},
       "receiver: {listen: '0.0.0.0:1'}\nlog: {level: warn}", {}, url, "", "", "0.0.0.0:2",
       "error"},
      {"listen and level from flags",
       {{"OTLP_MLFLOW_PROXY_LISTEN", "0.0.0.0:2"}, {"OTLP_MLFLOW_PROXY_LOG_LEVEL", "error"}},
       "receiver: {listen: '0.0.0.0:1'}\nlog: {level: warn}",
       {"--listen", "[::]:3", "--log-level", "trace"}, url, "", "", "[::]:3", "trace"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    Config config = c.yaml ? load_yaml(*c.yaml, c.env, c.args).config
                           : proxy::config::load(c.args, c.env).config;
    CHECK(config.mlflow.url == c.url);
    CHECK(config.mlflow.experiment_id == c.experiment_id);
    CHECK(config.mlflow.experiment_name == c.experiment_name);
    CHECK(config.receiver.listen.to_string() == c.listen);
    CHECK(config.log.level == c.level);
  }
}

TEST_CASE("precedence of log format and credentials", "[config]") {
  CHECK(load_yaml("log: {format: json}").config.log.format == LogFormat::json);
  CHECK(load_yaml("log: {format: json}", {{"OTLP_MLFLOW_PROXY_LOG_FORMAT", "text"}})
            .config.log.format == LogFormat::text);
  CHECK(load_yaml("log: {format: text}", {{"OTLP_MLFLOW_PROXY_LOG_FORMAT", "text"}},
                  {"--log-format", "json"})
            .config.log.format == LogFormat::json);

  const Environment credentials{{"MLFLOW_TRACKING_USERNAME", "env-user"},
                                {"MLFLOW_TRACKING_PASSWORD", "env-pass"},
                                {"MLFLOW_TRACKING_TOKEN", "env-token"}};
  Config from_env = proxy::config::load({}, credentials).config;
  CHECK(from_env.mlflow.username == "env-user");
  CHECK(from_env.mlflow.password == "env-pass");
  CHECK(from_env.mlflow.token == "env-token");
  Config from_yaml =
      load_yaml("mlflow:\n  username: u\n  password: p\n  token: ''\n", credentials).config;
  CHECK(from_yaml.mlflow.username == "u");
  CHECK(from_yaml.mlflow.password == "p");
  CHECK(from_yaml.mlflow.token.empty());
}

TEST_CASE("the config file comes from --config, else OTLP_MLFLOW_PROXY_CONFIG", "[config]") {
  TempDir dir;
  std::string a = dir.write("a.yaml", "log: {level: debug}\n");
  std::string b = dir.write("b.yaml", "log: {level: error}\n");
  LoadedConfig from_env = proxy::config::load({}, {{"OTLP_MLFLOW_PROXY_CONFIG", a}});
  CHECK(from_env.config_file == a);
  CHECK(from_env.config.log.level == "debug");
  LoadedConfig from_flag = proxy::config::load({"--config", b}, {{"OTLP_MLFLOW_PROXY_CONFIG", a}});
  CHECK(from_flag.config_file == b);
  CHECK(from_flag.config.log.level == "error");
  // The variable's file is not read at all when the flag names another.
  CHECK(proxy::config::load({"--config=" + b}, {{"OTLP_MLFLOW_PROXY_CONFIG", "/nonexistent"}})
            .config.log.level == "error");
}

// ---- YAML --------------------------------------------------------------------------------------

TEST_CASE("a config file that cannot be read", "[config][yaml]") {
  CHECK(error_of({"--config", "/nonexistent/proxy.yaml"}) ==
        "cannot read config file \"/nonexistent/proxy.yaml\": No such file or directory");
  CHECK(error_of({}, {{"OTLP_MLFLOW_PROXY_CONFIG", "x"}}) ==
        "cannot read config file \"x\": No such file or directory");
  TempDir dir;
  CHECK(error_of({"--config", dir.path().string()}) ==
        "cannot read config file \"" + dir.path().string() + "\": Is a directory");
}

TEST_CASE("empty files and empty sections mean defaults", "[config][yaml]") {
  for (std::string text :
       {"", "\n", "# only a comment\n", "---\n", "receiver:\nmlflow:\n  # x\n"}) {
    INFO(text);
    require_same(load_yaml(text).config, kDefaultConfig);
  }
}

TEST_CASE("io_threads is auto by default, and auto or a count when set", "[config][yaml]") {
  CHECK(kDefaultConfig.receiver.io_threads == 0);
  CHECK(load_yaml("receiver:\n  io_threads: auto\n").config.receiver.io_threads == 0);
  CHECK(load_yaml("receiver:\n  io_threads: 3\n").config.receiver.io_threads == 3);
  CHECK(proxy::config::render_effective(kDefaultConfig).find("io_threads: auto") != std::string::npos);
}

TEST_CASE("every key is read", "[config][yaml]") {
  Config c = proxy::config::load({"--config", kEveryKeyConfig}, {}).config;
  CHECK(c.receiver.listen.host == "::1");
  CHECK(c.receiver.listen.port == 14318);
  CHECK(c.receiver.io_threads == 4);
  CHECK(c.receiver.max_body_bytes == 1'000'000);
  CHECK(c.receiver.max_header_bytes == 32 * 1024);
  CHECK(c.receiver.read_timeout == 1500ms);
  CHECK(c.receiver.idle_timeout == 1h);
  CHECK(c.receiver.max_connections == 77);
  CHECK(c.receiver.max_header_count == 50);
  CHECK(c.receiver.max_decompression_ratio == 40);
  CHECK(c.receiver.max_spans_per_request == 5000);
  CHECK(c.receiver.max_attributes_per_span == 300);
  CHECK(c.receiver.max_attributes_per_event == 30);
  CHECK(c.receiver.max_attributes_per_link == 20);
  CHECK(c.receiver.grpc.enabled);
  CHECK(c.receiver.grpc.listen.to_string() == "[::1]:14317");
  CHECK(c.receiver.tls.cert_file == "/etc/proxy/server.pem");
  CHECK(c.receiver.tls.key_file == "/etc/proxy/server.key");
  CHECK(c.receiver.tls.client_ca_file == "/etc/proxy/ca.pem");
  CHECK(c.receiver.tls.handshake_timeout == 3s);
  CHECK(c.receiver.auth.bearer_token == "inbound-tkn");
  CHECK(c.mlflow.url == "https://mlflow.example.com:8443/prefix");
  CHECK(c.mlflow.experiment_id == "42");
  CHECK(c.mlflow.experiment_name == "agents");
  CHECK_FALSE(c.mlflow.create_experiments);
  CHECK(c.mlflow.request_timeout == 45s);
  CHECK(c.mlflow.connect_timeout == 250ms);
  CHECK(c.mlflow.experiment_cache_ttl == 600s);
  CHECK(c.mlflow.username == "alice");
  CHECK(c.mlflow.password == "pa55word");
  CHECK(c.mlflow.token == "tkn-1234");
  CHECK(c.mlflow.tls.ca_file == "/etc/proxy/mlflow-ca.pem");
  CHECK(c.mlflow.tls.client_cert_file == "/etc/proxy/client.pem");
  CHECK(c.mlflow.tls.client_key_file == "/etc/proxy/client.key");
  CHECK_FALSE(c.mlflow.tls.insecure_skip_verify);
  CHECK(c.queue.max_bytes == 1'000'000'000);
  CHECK(c.queue.retry_after == 7s);
  CHECK(c.queue.durability == proxy::config::Durability::disk);
  CHECK(c.queue.state_dir == "/var/lib/otlp-mlflow-proxy");
  CHECK(c.queue.max_disk_bytes == 2 * proxy::config::kGiB);
  CHECK(c.queue.fsync == proxy::config::FsyncPolicy::interval);
  CHECK(c.queue.fsync_interval == 250ms);
  CHECK(c.exporter.concurrency == 3);
  CHECK(c.exporter.max_batch_bytes == 2 * proxy::config::kMiB);
  CHECK(c.exporter.max_batch_spans == 500);
  CHECK(c.exporter.batch_linger == 5ms);
  CHECK(c.exporter.dead_letter_file == "/var/lib/otlp-mlflow-proxy/rejected.otlpdl");
  CHECK(c.exporter.retry.initial_backoff == 50ms);
  CHECK(c.exporter.retry.max_backoff == 60s);
  CHECK(c.exporter.retry.multiplier == 1.5);
  CHECK(c.exporter.retry.max_transient_422_retries == 0);
  CHECK(c.exporter.compression == proxy::config::UpstreamCompression::none);
  CHECK(c.log.level == "debug");
  CHECK(c.log.format == LogFormat::json);
  CHECK(c.shutdown_timeout == 0ms);
  CHECK(c.admin.enabled);
  CHECK(c.admin.listen.to_string() == "0.0.0.0:19133");
  CHECK(c.admin.queue_high_water == 0.5);
  CHECK(c.admin.probe_interval == 750ms);
  CHECK(c.admin.max_connections == 5);
}

TEST_CASE("the admin listener can be moved or turned off from each layer", "[config][admin]") {
  CHECK(proxy::config::load({}, {}).config.admin.listen.to_string() == "127.0.0.1:13133");
  CHECK(proxy::config::load({}, {}).config.admin.enabled);
  TempDir dir;
  const std::string off = dir.write("off.yaml", "admin:\n  listen: off\n");
  CHECK_FALSE(proxy::config::load({"--config", off}, {}).config.admin.enabled);
  // A higher layer turns it back on with an address.
  Config on = proxy::config::load({"--config", off, "--admin-listen", "127.0.0.1:1"}, {}).config;
  CHECK(on.admin.enabled);
  CHECK(on.admin.listen.port == 1);
  CHECK_FALSE(
      proxy::config::load({}, {{"OTLP_MLFLOW_PROXY_ADMIN_LISTEN", "off"}}).config.admin.enabled);
  CHECK_FALSE(proxy::config::load({"--admin-listen=off"}, {}).config.admin.enabled);
  CHECK_THROWS_WITH(proxy::config::load({"--admin-listen", "13133"}, {}),
                    Catch::Contains("--admin-listen: expected HOST:PORT"));
  const std::string bad = dir.write("bad.yaml", "admin:\n  queue_high_water: 1.5\n");
  CHECK_THROWS_WITH(proxy::config::load({"--config", bad}, {}),
                    Catch::Contains("bad.yaml:2:21: admin.queue_high_water: expected a number above "
                                    "0 and at most 1"));
  const std::string fast = dir.write("fast.yaml", "admin:\n  probe_interval: 10ms\n");
  CHECK_THROWS_WITH(proxy::config::load({"--config", fast}, {}),
                    Catch::Contains("admin.probe_interval"));
}

TEST_CASE("the example config loads and holds exactly the defaults", "[config][yaml]") {
  LoadedConfig loaded = proxy::config::load({"--config", kExampleConfig}, {});
  require_same(loaded.config, kDefaultConfig);
  CHECK(proxy::config::render_effective(loaded.config) ==
        proxy::config::render_effective(kDefaultConfig));
}

TEST_CASE("YAML structure errors give file:line:col and the path", "[config][yaml]") {
  struct Case {
    std::string yaml;
    std::string error;
  };
  const std::vector<Case> cases{
      {"- a\n- b\n", "proxy.yaml:1:1: top level: expected a mapping, got a list"},
      {"just text\n", "proxy.yaml:1:1: top level: expected a mapping, got \"just text\""},
      {"log: {level: info}\n---\nlog: {level: warn}\n",
       "proxy.yaml:3:1: expected one YAML document, found a second one"},
      {"recever:\n  listen: a:1\n",
       "proxy.yaml:1:1: recever: unknown key (expected one of: receiver, mlflow, queue, exporter, "
       "log, admin, policies, routes, default_route, preview_cache, shutdown_timeout)"},
      {"exporter:\n  concurrency: 2\n  retry:\n    initial_backoff: 1s\n    multiplyer: 3\n",
       "proxy.yaml:5:5: exporter.retry.multiplyer: unknown key (expected one of: initial_backoff, "
       "max_backoff, multiplier, max_transient_422_retries)"},
      {"receiver:\n  listen: a:1\n  port: 4318\n",
       "proxy.yaml:3:3: receiver.port: unknown key (expected one of: listen, io_threads, "
       "max_body_bytes, max_header_bytes, read_timeout, idle_timeout, max_connections, "
       "max_header_count, max_decompression_ratio, max_spans_per_request, "
       "max_attributes_per_span, max_attributes_per_event, max_attributes_per_link, "
       "grpc, tls, auth)"},
      {"mlflow:\n  uri: http://x\n",
       "proxy.yaml:2:3: mlflow.uri: unknown key (expected one of: url, experiment_id, "
       "experiment_name, create_experiments, request_timeout, connect_timeout, "
       "experiment_cache_ttl, username, password, token, tls)"},
      {"queue: {max_bytez: 1}\n",
       "proxy.yaml:1:9: queue.max_bytez: unknown key (expected one of: max_bytes, retry_after, "
       "durability, state_dir, max_disk_bytes, fsync, fsync_interval)"},
      {"log:\n  levle: info\n",
       "proxy.yaml:2:3: log.levle: unknown key (expected one of: level, format)"},
      {"log:\n  level: info\n  level: warn\n", "proxy.yaml:3:3: log.level: duplicate key"},
      {"receiver: [1, 2]\n", "proxy.yaml:1:11: receiver: expected a mapping, got a list"},
      {"exporter:\n  retry:\n    - 1s\n",
       "proxy.yaml:3:5: exporter.retry: expected a mapping, got a list"},
      {"mlflow: http://x\n", "proxy.yaml:1:9: mlflow: expected a mapping, got \"http://x\""},
      {"log:\n  ? [a]\n  : b\n", "proxy.yaml:2:5: log: expected a key name, got a list"},
      {"receiver:\n  listen: {host: a, port: 1}\n",
       "proxy.yaml:2:11: receiver.listen: expected HOST:PORT, got a mapping"},
      {"receiver:\n  io_threads:\n  listen: a:1\n",
       "proxy.yaml:2:3: receiver.io_threads: expected auto or a whole number, got nothing"},
      {"mlflow:\n  password: [a]\n",
       "proxy.yaml:2:13: mlflow.password: expected a string, got a list"},
      {"shutdown_timeout: [1s]\n",
       "proxy.yaml:1:19: shutdown_timeout: expected a duration such as 30s or 500ms, got a list"},
  };
  for (const Case& c : cases) {
    INFO(c.yaml);
    CHECK(yaml_error(c.yaml) == c.error);
  }
}

TEST_CASE("YAML syntax errors give file:line:col", "[config][yaml]") {
  CHECK(yaml_error("receiver:\n  listen: [a:1\nlog: {}\n") ==
        "proxy.yaml:3:4: invalid YAML: end of sequence flow not found");
  CHECK(yaml_error("log:\n  level: info\n    format: json\n") ==
        "proxy.yaml:3:11: invalid YAML: illegal map value");
  CHECK(yaml_error("log: {level: info\n") ==
        "proxy.yaml:2:1: invalid YAML: end of map flow not found");
}

TEST_CASE("YAML value errors give file:line:col and the path", "[config][yaml]") {
  struct Case {
    std::string yaml;
    std::string error;
  };
  const std::string integer = "expected a whole number from ";
  const std::string duration = "expected a duration such as 30s or 500ms, got ";
  const std::string bare = " (a bare number is ambiguous: add a unit, ms, s, m or h)";
  const std::vector<Case> cases{
      // receiver
      {"receiver:\n  listen: 4318x\n",
       "proxy.yaml:2:11: receiver.listen: expected HOST:PORT, got \"4318x\""},
      {"receiver:\n  listen: \"h:70000\"\n",
       "proxy.yaml:2:11: receiver.listen: expected HOST:PORT, got \"h:70000\" (the port must be "
       "from 1 to 65535)"},
      {"receiver:\n  io_threads: 0\n",
       "proxy.yaml:2:15: receiver.io_threads: expected auto or a whole number from 1 to 64, got \"0\""},
      {"receiver:\n  io_threads: 65\n",
       "proxy.yaml:2:15: receiver.io_threads: expected auto or a whole number from 1 to 64, got \"65\""},
      {"receiver:\n  io_threads: two\n",
       "proxy.yaml:2:15: receiver.io_threads: expected auto or a whole number from 1 to 64, got \"two\""},
      {"receiver:\n  listen: a:1\n  max_body_bytes: lots\n",
       "proxy.yaml:3:19: receiver.max_body_bytes: expected a size such as 64MiB, got \"lots\" "
       "(units: B, KiB, MiB, GiB, or KB, MB, GB)"},
      {"receiver:\n  max_body_bytes: 2GiB\n",
       "proxy.yaml:2:19: receiver.max_body_bytes: must be at most 1GiB, got \"2GiB\""},
      {"receiver:\n  max_body_bytes: 0\n",
       "proxy.yaml:2:19: receiver.max_body_bytes: must be greater than 0, got \"0\""},
      {"receiver:\n  max_header_bytes: 0KiB\n",
       "proxy.yaml:2:21: receiver.max_header_bytes: must be greater than 0, got \"0KiB\""},
      {"receiver:\n  max_header_bytes: 2MiB\n",
       "proxy.yaml:2:21: receiver.max_header_bytes: must be at most 1MiB, got \"2MiB\""},
      {"receiver:\n  read_timeout: 30\n",
       "proxy.yaml:2:17: receiver.read_timeout: " + duration + "\"30\"" + bare},
      {"receiver:\n  read_timeout: 0s\n",
       "proxy.yaml:2:17: receiver.read_timeout: must be at least 1ms, got \"0s\""},
      {"receiver:\n  idle_timeout: 5x\n",
       "proxy.yaml:2:17: receiver.idle_timeout: " + duration + "\"5x\" (units: ms, s, m, h)"},
      {"receiver:\n  idle_timeout: 25h\n",
       "proxy.yaml:2:17: receiver.idle_timeout: must be at most 24h, got \"25h\""},
      {"receiver:\n  max_connections: 0\n",
       "proxy.yaml:2:20: receiver.max_connections: " + integer + "1 to 1000000, got \"0\""},
      {"receiver:\n  max_header_count: 0\n",
       "proxy.yaml:2:21: receiver.max_header_count: " + integer + "1 to 1000000, got \"0\""},
      {"receiver:\n  max_decompression_ratio: -1\n",
       "proxy.yaml:2:28: receiver.max_decompression_ratio: " + integer + "0 to 1000000, got \"-1\""},
      {"receiver:\n  max_spans_per_request: 0\n",
       "proxy.yaml:2:26: receiver.max_spans_per_request: " + integer + "1 to 1000000, got \"0\""},
      {"receiver:\n  max_attributes_per_span: many\n",
       "proxy.yaml:2:28: receiver.max_attributes_per_span: " + integer + "1 to 1000000, got \"many\""},
      // mlflow
      {"mlflow:\n  url: ftp://x\n",
       "proxy.yaml:2:8: mlflow.url: expected an http:// or https:// URL with a host, "
       "got \"ftp://x\""},
      {"mlflow:\n  url: http://\n",
       "proxy.yaml:2:8: mlflow.url: expected an http:// or https:// URL with a host, "
       "got \"http://\""},
      {"mlflow:\n  url: http://u:pw@:5000\n",
       "proxy.yaml:2:8: mlflow.url: expected an http:// or https:// URL with a host, got "
       "\"http://u:<hidden>@:5000\""},
      {"mlflow:\n  experiment_id: abc\n",
       "proxy.yaml:2:18: mlflow.experiment_id: expected a numeric experiment id (MLflow "
       "experiment ids are digits, such as 123), got \"abc\" (to select by name, use the "
       "experiment name)"},
      {"mlflow:\n  create_experiments: yes\n",
       "proxy.yaml:2:23: mlflow.create_experiments: expected true or false, got \"yes\""},
      {"mlflow:\n  request_timeout: 1.5s\n",
       "proxy.yaml:2:20: mlflow.request_timeout: " + duration + "\"1.5s\" (units: ms, s, m, h)"},
      {"mlflow:\n  connect_timeout: 5\n",
       "proxy.yaml:2:20: mlflow.connect_timeout: " + duration + "\"5\"" + bare},
      {"mlflow:\n  experiment_cache_ttl: 1500ms\n",
       "proxy.yaml:2:25: mlflow.experiment_cache_ttl: must be a whole number of seconds, got "
       "\"1500ms\""},
      {"mlflow:\n  experiment_cache_ttl: 0s\n",
       "proxy.yaml:2:25: mlflow.experiment_cache_ttl: must be at least 1s, got \"0s\""},
      // queue
      {"queue:\n  max_bytes: 0\n",
       "proxy.yaml:2:14: queue.max_bytes: must be greater than 0, got \"0\""},
      {"queue:\n  retry_after: 500ms\n",
       "proxy.yaml:2:16: queue.retry_after: must be at least 1s, got \"500ms\""},
      {"queue:\n  retry_after: 2500ms\n",
       "proxy.yaml:2:16: queue.retry_after: must be a whole number of seconds, got \"2500ms\""},
      // exporter
      {"exporter:\n  compression: zstd\n",
       "proxy.yaml:2:16: exporter.compression: expected auto, gzip or none, got \"zstd\""},
      {"exporter:\n  concurrency: 0\n",
       "proxy.yaml:2:16: exporter.concurrency: " + integer + "1 to 64, got \"0\""},
      {"exporter:\n  concurrency: 100\n",
       "proxy.yaml:2:16: exporter.concurrency: " + integer + "1 to 64, got \"100\""},
      {"exporter:\n  max_batch_bytes: 2GiB\n",
       "proxy.yaml:2:20: exporter.max_batch_bytes: must be at most 1GiB, got \"2GiB\""},
      {"exporter:\n  max_batch_spans: 0\n",
       "proxy.yaml:2:20: exporter.max_batch_spans: " + integer + "1 to 1000000, got \"0\""},
      {"exporter:\n  retry:\n    initial_backoff: 0ms\n",
       "proxy.yaml:3:22: exporter.retry.initial_backoff: must be at least 1ms, got \"0ms\""},
      {"exporter:\n  retry:\n    max_backoff: 10\n",
       "proxy.yaml:3:18: exporter.retry.max_backoff: " + duration + "\"10\"" + bare},
      {"exporter:\n  retry:\n    initial_backoff: 1m\n",
       "proxy.yaml:3:5: exporter.retry: initial_backoff (1m) exceeds max_backoff (30s)"},
      {"exporter:\n  retry:\n    multiplier: 0.5\n",
       "proxy.yaml:3:17: exporter.retry.multiplier: expected a number of at least 1, got \"0.5\""},
      {"exporter:\n  retry:\n    multiplier: .nan\n",
       "proxy.yaml:3:17: exporter.retry.multiplier: expected a number of at least 1, got \".nan\""},
      {"exporter:\n  retry:\n    max_transient_422_retries: -1\n",
       "proxy.yaml:3:32: exporter.retry.max_transient_422_retries: " + integer +
           "0 to 1000, got \"-1\""},
      // log and top level
      {"log:\n  level: loud\n",
       "proxy.yaml:2:10: log.level: expected one of trace, debug, info, warn, error, critical, "
       "off, got \"loud\""},
      {"log:\n  format: xml\n", "proxy.yaml:2:11: log.format: expected text or json, got \"xml\""},
      {"shutdown_timeout: 10\n",
       "proxy.yaml:1:19: shutdown_timeout: " + duration + "\"10\"" + bare},
  };
  for (const Case& c : cases) {
    INFO(c.yaml);
    CHECK(yaml_error(c.yaml) == c.error);
  }
}

TEST_CASE("YAML accepts integer sizes, numeric ids, empty strings, any-case booleans",
          "[config][yaml]") {
  Config c = load_yaml(
                 "receiver:\n  max_body_bytes: 1048576\n  max_header_bytes: '8KiB'\n"
                 "mlflow:\n  experiment_id: 12\n  username:\n  create_experiments: TRUE\n")
                 .config;
  CHECK(c.receiver.max_body_bytes == proxy::config::kMiB);
  CHECK(c.receiver.max_header_bytes == 8 * 1024);
  CHECK(c.mlflow.experiment_id == "12");
  CHECK(c.mlflow.username.empty());
  CHECK(c.mlflow.create_experiments);
}

// ---- render_effective --------------------------------------------------------------------------

TEST_CASE("durability: disk without a state_dir is refused with its YAML position", "[config]") {
  CHECK(yaml_error("queue:\n  durability: disk\n") ==
        "proxy.yaml:2:3: queue: durability: disk needs a state_dir for the spool");
  CHECK(yaml_error("queue: {fsync: sometimes}\n") ==
        "proxy.yaml:1:16: queue.fsync: expected always, interval or never, got \"sometimes\"");
}

TEST_CASE("render_effective writes units and hides secrets", "[config][render]") {
  Config config;
  config.mlflow.url = "http://bob:hunter2@mlflow:5000";
  config.mlflow.username = "alice";
  config.mlflow.password = "s3cret-pass";
  config.mlflow.token = "tkn-abcdef";
  std::string text = proxy::config::render_effective(config);
  INFO(text);
  CHECK_FALSE(contains(text, "hunter2"));
  CHECK_FALSE(contains(text, "s3cret-pass"));
  CHECK_FALSE(contains(text, "tkn-abcdef"));
  CHECK(contains(text, "url: \"http://bob:<hidden>@mlflow:5000\""));
  CHECK(contains(text, "username: \"alice\""));
  CHECK(contains(text, "password: \"<hidden>\""));
  CHECK(contains(text, "token: \"<hidden>\""));
  CHECK(contains(text, "listen: \"127.0.0.1:4318\""));
  CHECK(contains(text, "max_body_bytes: 64MiB"));
  CHECK(contains(text, "max_header_bytes: 16KiB"));
  CHECK(contains(text, "max_header_count: 100\n"));
  CHECK(contains(text, "max_decompression_ratio: 100\n"));
  CHECK(contains(text, "max_spans_per_request: 65536\n"));
  CHECK(contains(text, "max_attributes_per_span: 1024\n"));
  CHECK(contains(text, "max_attributes_per_event: 128\n"));
  CHECK(contains(text, "max_attributes_per_link: 128\n"));
  CHECK(contains(text, "read_timeout: 30s"));
  CHECK(contains(text, "initial_backoff: 200ms"));
  CHECK(contains(text, "multiplier: 2\n"));
  CHECK(contains(text, "shutdown_timeout: 15s"));

  // Unset secrets stay visibly unset.
  std::string defaults = proxy::config::render_effective(kDefaultConfig);
  CHECK(contains(defaults, "password: \"\""));
  CHECK(contains(defaults, "token: \"\""));
}

TEST_CASE("render_effective round-trips through load", "[config][render]") {
  for (const std::string& source : {kEveryKeyConfig, kExampleConfig}) {
    INFO(source);
    Config original = proxy::config::load({"--config", source}, {}).config;
    std::string rendered = proxy::config::render_effective(original);
    INFO(rendered);
    TempDir dir;
    std::string file = dir.write("effective.yaml", rendered);
    // The rendered file is complete: MLflow's variables no longer show through.
    Config reloaded =
        proxy::config::load({"--config", file}, {{"MLFLOW_EXPERIMENT_ID", "999"},
                                                 {"MLFLOW_TRACKING_URI", "http://other"}})
            .config;
    // Secrets are rendered hidden, so they come back as the placeholder; every other field
    // must come back as it was.
    original.mlflow.password = reloaded.mlflow.password;
    original.mlflow.token = reloaded.mlflow.token;
    original.receiver.auth.bearer_token = reloaded.receiver.auth.bearer_token;
    require_same(reloaded, original);
    CHECK(proxy::config::render_effective(reloaded) == rendered);
  }
}

// ---- usage -------------------------------------------------------------------------------------

TEST_CASE("usage lists every flag and variable", "[config]") {
  std::string text = proxy::config::usage();
  for (std::string item :
       {"--config FILE", "--listen HOST:PORT", "--mlflow-url URL", "--experiment-id ID",
        "--experiment-name NAME", "--log-level LEVEL", "--log-format FORMAT", "--check-config",
        "--version", "--help", "-h", "OTLP_MLFLOW_PROXY_CONFIG", "OTLP_MLFLOW_PROXY_LISTEN",
        "--grpc-listen HOST:PORT|off", "OTLP_MLFLOW_PROXY_GRPC_LISTEN",
        "OTLP_MLFLOW_PROXY_MLFLOW_URL", "OTLP_MLFLOW_PROXY_EXPERIMENT_ID",
        "OTLP_MLFLOW_PROXY_EXPERIMENT_NAME", "OTLP_MLFLOW_PROXY_LOG_LEVEL",
        "OTLP_MLFLOW_PROXY_LOG_FORMAT", "--admin-listen HOST:PORT|off",
        "OTLP_MLFLOW_PROXY_ADMIN_LISTEN", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID",
        "MLFLOW_EXPERIMENT_NAME", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
        "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_SERVER_CERT_PATH",
        "MLFLOW_TRACKING_CLIENT_CERT_PATH", "MLFLOW_TRACKING_INSECURE_TLS"}) {
    INFO(item);
    CHECK(contains(text, item));
  }
}

TEST_CASE("the gRPC listener: default, YAML, variable, flag, off", "[config][grpc]") {
  Config defaults = proxy::config::load({}, {}).config;
  CHECK(defaults.receiver.grpc.enabled);
  CHECK(defaults.receiver.grpc.listen.to_string() == "127.0.0.1:4317");
  CHECK_FALSE(defaults.receiver.tls.enabled());
  CHECK_FALSE(defaults.receiver.auth.enabled());

  Config yaml = load_yaml("receiver: {grpc: {listen: '0.0.0.0:1'}}").config;
  CHECK(yaml.receiver.grpc.listen.to_string() == "0.0.0.0:1");
  Config from_env = load_yaml("receiver: {grpc: {listen: '0.0.0.0:1'}}",
                              {{"OTLP_MLFLOW_PROXY_GRPC_LISTEN", "[::1]:2"}})
                        .config;
  CHECK(from_env.receiver.grpc.listen.to_string() == "[::1]:2");
  Config from_flag = load_yaml("receiver: {grpc: {listen: off}}",
                               {{"OTLP_MLFLOW_PROXY_GRPC_LISTEN", "[::1]:2"}},
                               {"--grpc-listen", "127.0.0.1:3"})
                         .config;
  CHECK(from_flag.receiver.grpc.enabled);
  CHECK(from_flag.receiver.grpc.listen.to_string() == "127.0.0.1:3");

  Config off = load_yaml("receiver: {grpc: {listen: off}}").config;
  CHECK_FALSE(off.receiver.grpc.enabled);
  CHECK(contains(proxy::config::render_effective(off), "listen: \"off\""));
  CHECK_FALSE(proxy::config::load({"--grpc-listen", "off"}, {}).config.receiver.grpc.enabled);
  CHECK_FALSE(proxy::config::load({}, {{"OTLP_MLFLOW_PROXY_GRPC_LISTEN", "none"}})
                  .config.receiver.grpc.enabled);
  // "off" rendered by --check-config loads back as off.
  TempDir dir;
  const std::string rendered = dir.write("off.yaml", proxy::config::render_effective(off));
  CHECK_FALSE(proxy::config::load({"--config", rendered}, {}).config.receiver.grpc.enabled);

  CHECK(error_of({"--grpc-listen", "4317"}) == "--grpc-listen: expected HOST:PORT or off, got \"4317\"");
  CHECK(error_of({}, {{"OTLP_MLFLOW_PROXY_GRPC_LISTEN", "x"}}) ==
        "OTLP_MLFLOW_PROXY_GRPC_LISTEN: expected HOST:PORT or off, got \"x\"");
  CHECK(yaml_error("receiver:\n  grpc:\n    listen: 4317x\n") ==
        "proxy.yaml:3:13: receiver.grpc.listen: expected HOST:PORT or off, got \"4317x\"");
  CHECK(yaml_error("receiver:\n  grpc:\n    port: 1\n") ==
        "proxy.yaml:3:5: receiver.grpc.port: unknown key (expected one of: listen)");
}

TEST_CASE("receiver TLS and auth keys are checked together", "[config][grpc]") {
  CHECK(contains(yaml_error("receiver:\n  tls:\n    cert_file: a.pem\n"),
                 "receiver.tls: cert_file and key_file go together"));
  CHECK(contains(yaml_error("receiver:\n  tls:\n    client_ca_file: ca.pem\n"),
                 "receiver.tls: client_ca_file needs cert_file and key_file"));
  CHECK(contains(yaml_error("receiver:\n  auth:\n    bearer_token: a\n    bearer_token_file: b\n"),
                 "receiver.auth: set bearer_token or bearer_token_file, not both"));

  TempDir dir;
  const std::string token_file = dir.write("token", "tkn-from-file\n");
  Config from_file =
      load_yaml("receiver:\n  auth:\n    bearer_token_file: " + token_file + "\n").config;
  CHECK(from_file.receiver.auth.bearer_token == "tkn-from-file");
  std::string rendered = proxy::config::render_effective(from_file);
  CHECK_FALSE(contains(rendered, "tkn-from-file"));
  CHECK(contains(rendered, "bearer_token_file: \"" + token_file + "\""));

  Config inline_token = load_yaml("receiver:\n  auth:\n    bearer_token: tkn-inline\n").config;
  rendered = proxy::config::render_effective(inline_token);
  CHECK_FALSE(contains(rendered, "tkn-inline"));
  CHECK(contains(rendered, "bearer_token: \"<hidden>\""));

  const std::string empty = dir.write("empty", " \n");
  CHECK(contains(yaml_error("receiver:\n  auth:\n    bearer_token_file: " + empty + "\n"),
                 "receiver.auth.bearer_token_file: \"" + empty + "\" is empty"));
  CHECK(contains(yaml_error("receiver:\n  auth:\n    bearer_token_file: /nonexistent/t\n"),
                 "cannot read receiver.auth.bearer_token_file \"/nonexistent/t\""));
}

TEST_CASE("a token that cannot start a document is refused where it stands", "[config]") {
  // yaml-cpp 0.7's LoadAll allocates without bound on such input (found by fuzz/config_yaml).
  const auto dir = std::filesystem::temp_directory_path() / "proxy-config-stuck-token";
  std::filesystem::create_directories(dir);
  const auto path = (dir / "proxy.yaml").string();
  for (const auto& [text, expected] : {
           std::pair<std::string, std::string>{",a\n", ":1:1: invalid YAML: unexpected ','"},
           {"# comment\n  ,a: b}\n", ":2:3: invalid YAML: unexpected ','"},
           {"]\n", ":1:1: invalid YAML: illegal flow end"},  // yaml-cpp's scanner catches these
           {"}\n", ":1:1: invalid YAML: illegal flow end"},
           {"log: {level: info}\n---\n,x\n", ":3:1: expected one YAML document, found a second one"},
       }) {
    std::ofstream(path, std::ios::trunc) << text;
    try {
      proxy::config::load({"--config", path}, {});
      FAIL("no error for " << text);
    } catch (const proxy::config::ConfigError& e) {
      CHECK_THAT(e.what(), Catch::Contains(expected));
    }
  }
}

// ---- normalize -----------------------------------------------------------------------------------

TEST_CASE("normalize: defaults, every key, per route, rendered", "[config][normalize]") {
  const Config defaults;
  const NormalizeConfig& d = defaults.default_route.normalize;
  CHECK(d.enabled);
  CHECK(d.resource_attributes == std::vector<std::string>{"service.name", "service.version",
                                                          "deployment.environment.name",
                                                          "telemetry.sdk.language"});
  CHECK(d.resource_target == ResourceTarget::all);
  CHECK((d.span_kind && d.scope && !d.links && d.span_types && d.koog_io && d.system_instructions &&
         d.session_from_conversation && d.user_from_enduser && d.previews));
  CHECK(d.preview_hold == 50ms);
  CHECK(defaults.preview_cache.max_bytes == 16 * proxy::config::kMiB);
  CHECK(defaults.preview_cache.ttl == 600s);

  const Config every = proxy::config::load({"--config", kEveryKeyConfig}, {}).config;
  const NormalizeConfig& n = every.default_route.normalize;
  CHECK_FALSE(n.enabled);
  CHECK(n.resource_attributes == std::vector<std::string>{"service.name", "k8s.pod.name"});
  CHECK(n.resource_target == ResourceTarget::root);
  CHECK_FALSE((n.span_kind || n.scope || !n.links || n.span_types || n.koog_io ||
               n.system_instructions || n.session_from_conversation || n.user_from_enduser ||
               n.previews));
  REQUIRE(n.span_type_rules.size() == 2);
  CHECK(n.span_type_rules[0].name == "retrieve *");
  CHECK(n.span_type_rules[0].type == "RETRIEVER");  // MLflow's spelling
  CHECK(n.span_type_rules[1].attribute == "db.system");
  CHECK(n.span_type_rules[1].value == "postgresql");
  CHECK(n.preview_hold == 250ms);
  CHECK(every.preview_cache.max_bytes == proxy::config::kMiB);
  CHECK(every.preview_cache.ttl == 30s);
  const std::string rendered = proxy::config::render_effective(every);
  CHECK(contains(rendered, "resource_spans: root"));
  CHECK(contains(rendered, "span_type_rules:"));
  CHECK(contains(rendered, "{name: \"retrieve *\", type: RETRIEVER}"));
  CHECK(contains(rendered, "preview_cache:\n  max_bytes: 1MiB\n  ttl: 30s"));
  CHECK(contains(rendered, "previews: false\n    preview_hold: 250ms\n"));

  // A route's section starts from the defaults; a route without one uses default_route's.
  const Config routed = load_yaml(R"(
routes:
  - name: quiet
    match: {resource: {service.name: quiet}}
    normalize: {previews: false, resource_attributes: []}
  - name: plain
    match: {resource: {service.name: plain}}
default_route:
  normalize: {links: true}
)").config;
  REQUIRE(routed.routes.size() == 2);
  REQUIRE(routed.routes[0].normalize);
  CHECK_FALSE(routed.routes[0].normalize->previews);
  CHECK_FALSE(routed.routes[0].normalize->links);
  CHECK(routed.routes[0].normalize->resource_attributes.empty());
  CHECK_FALSE(routed.routes[1].normalize);
  CHECK(routed.default_route.normalize.links);
  CHECK(contains(proxy::config::render_effective(routed),
                 "    header: honor\n    normalize:\n      enabled: true\n      resource_attributes: []"));
}

TEST_CASE("normalize errors give file:line:col and the path", "[config][normalize]") {
  CHECK(yaml_error("default_route:\n  normalize:\n    previews: maybe\n") ==
        "proxy.yaml:3:15: default_route.normalize.previews: expected true or false, got \"maybe\"");
  CHECK(contains(yaml_error("default_route:\n  normalize:\n    resource_spans: some\n"),
                 "default_route.normalize.resource_spans: expected one of all, root, none"));
  CHECK(contains(yaml_error("default_route:\n  normalize:\n    span_type_rules:\n"
                            "      - {name: \"x*\", type: PIZZA}\n"),
                 "default_route.normalize.span_type_rules[0].type: expected one of MLflow's span types"));
  CHECK(contains(yaml_error("default_route:\n  normalize:\n    span_type_rules:\n      - {type: TOOL}\n"),
                 "span_type_rules[0]: expected a mapping with type and a name or an attribute"));
  CHECK(contains(yaml_error("default_route:\n  normalize:\n    preview_hold: 1m\n"),
                 "default_route.normalize.preview_hold: must be at most 10s, got \"1m\""));
  CHECK(contains(yaml_error("default_route:\n  normalize:\n    span_type_rules:\n"
                            "      - {name: x, value: y, type: TOOL}\n"),
                 "span_type_rules[0]: value needs an attribute"));
  CHECK(contains(yaml_error("default_route:\n  normalize:\n    colour: red\n"),
                 "default_route.normalize.colour"));
  CHECK(contains(yaml_error("preview_cache:\n  ttl: 0s\n"), "preview_cache.ttl"));
}

TEST_CASE("upstream TLS: MLflow's variables, then mlflow.tls, each part one setting", "[config][tls]") {
  CHECK_FALSE(proxy::config::load({}, {}).config.mlflow.tls.configured());
  const Environment env{{"MLFLOW_TRACKING_SERVER_CERT_PATH", "/env/ca.pem"},
                        {"MLFLOW_TRACKING_CLIENT_CERT_PATH", "/env/client-with-key.pem"}};
  Config from_env = proxy::config::load({}, env).config;
  CHECK(from_env.mlflow.tls.ca_file == "/env/ca.pem");
  CHECK(from_env.mlflow.tls.client_cert_file == "/env/client-with-key.pem");
  CHECK(from_env.mlflow.tls.client_key_file.empty());  // MLflow's file holds the key too
  CHECK_FALSE(from_env.mlflow.tls.insecure_skip_verify);

  // The file wins; naming trust (insecure) replaces the variable's CA instead of clashing with it.
  Config insecure = load_yaml("mlflow:\n  tls:\n    insecure_skip_verify: true\n", env).config;
  CHECK(insecure.mlflow.tls.insecure_skip_verify);
  CHECK(insecure.mlflow.tls.ca_file.empty());
  CHECK(insecure.mlflow.tls.client_cert_file == "/env/client-with-key.pem");
  Config own_cert = load_yaml("mlflow:\n  tls:\n    client_cert_file: c.pem\n    client_key_file: c.key\n", env).config;
  CHECK(own_cert.mlflow.tls.ca_file == "/env/ca.pem");
  CHECK(own_cert.mlflow.tls.client_cert_file == "c.pem");
  CHECK(own_cert.mlflow.tls.client_key_file == "c.key");

  for (const std::string yes : {"true", "TRUE", "1"}) {
    INFO(yes);
    CHECK(proxy::config::load({}, {{"MLFLOW_TRACKING_INSECURE_TLS", yes}}).config.mlflow.tls.insecure_skip_verify);
  }
  CHECK_FALSE(proxy::config::load({}, {{"MLFLOW_TRACKING_INSECURE_TLS", "false"}})
                  .config.mlflow.tls.insecure_skip_verify);
  CHECK(error_of({}, {{"MLFLOW_TRACKING_INSECURE_TLS", "yes please"}}) ==
        "MLFLOW_TRACKING_INSECURE_TLS: expected true or false, got \"yes please\"");
  // As in MLflow, a CA and no verification at all exclude each other.
  CHECK(contains(error_of({}, {{"MLFLOW_TRACKING_INSECURE_TLS", "true"},
                              {"MLFLOW_TRACKING_SERVER_CERT_PATH", "/ca.pem"}}),
                 "exclude each other"));
  CHECK(contains(yaml_error("mlflow:\n  tls:\n    ca_file: a.pem\n    insecure_skip_verify: true\n"),
                 "proxy.yaml:3:5: mlflow.tls: set ca_file or insecure_skip_verify: true, not both"));
  CHECK(contains(yaml_error("mlflow:\n  tls:\n    client_key_file: k.pem\n"),
                 "mlflow.tls: client_key_file needs client_cert_file"));
  CHECK(contains(yaml_error("mlflow:\n  tls:\n    verify: false\n"),
                 "mlflow.tls.verify: unknown key"));
  CHECK(contains(yaml_error("receiver:\n  tls:\n    handshake_timeout: 10\n"),
                 "receiver.tls.handshake_timeout: expected a duration"));

  // --check-config shows the file names, never a key's content (which it never reads).
  std::string rendered = proxy::config::render_effective(own_cert);
  CHECK(contains(rendered, "client_key_file: \"c.key\""));
  CHECK(contains(rendered, "insecure_skip_verify: false"));
  CHECK_FALSE(contains(proxy::config::render_effective(kDefaultConfig), "insecure_skip_verify"));
}

TEST_CASE("policies: structure, structural keys, role and part selectors, the hmac key file",
          "[config][policy]") {
  const std::string yaml = R"(policies:
  p:
    content: hmac
    structure: whole
    structural_keys: ["tool_*"]
    max_structure_bytes: 1KiB
    messages: {system: verbose, User: mask, tool: hash}
    parts: {tool_call_response: redact}
    key_file: /etc/otlp-mlflow-proxy/hmac.key
)";
  const Config config = load_yaml(yaml).config;
  REQUIRE(config.policies.size() == 1);
  const proxy::config::PolicyConfig& p = config.policies[0].policy;
  CHECK(p.content == proxy::config::PolicyMode::hmac);
  CHECK_FALSE(p.keep_structure);
  CHECK(p.structural_keys == std::vector<std::string>{"tool_*"});
  CHECK(p.max_structure_bytes == 1024);
  REQUIRE(p.messages.size() == 3);
  CHECK(p.messages[1].name == "User");
  CHECK(p.messages[2].mode == proxy::config::PolicyMode::hash);
  REQUIRE(p.parts.size() == 1);
  CHECK(p.parts[0].mode == proxy::config::PolicyMode::redact);
  CHECK(p.key_file == "/etc/otlp-mlflow-proxy/hmac.key");
  CHECK(kDefaultConfig.policies.empty());
  CHECK(proxy::config::find_policy(kDefaultConfig, "default")->keep_structure);

  // The dump names the key's file, never a key, and loads back the same.
  const std::string rendered = proxy::config::render_effective(config);
  CHECK(contains(rendered, "structure: whole"));
  CHECK(contains(rendered, "key_file: \"/etc/otlp-mlflow-proxy/hmac.key\""));
  CHECK(contains(rendered, "messages: {\"system\": verbose, \"User\": mask, \"tool\": hash}"));
  TempDir dir;
  const Config reloaded = proxy::config::load({"--config", dir.write("again.yaml", rendered)}, {}).config;
  CHECK(proxy::config::render_effective(reloaded) == rendered);

  CHECK(yaml_error("policies:\n  p:\n    messages: {user: drop}\n") ==
        "proxy.yaml:3:22: policies.p.messages.user: drop cannot apply inside a value");
  CHECK(yaml_error("policies:\n  p:\n    structure: maybe\n") ==
        "proxy.yaml:3:16: policies.p.structure: expected keep or whole, got \"maybe\"");
}
