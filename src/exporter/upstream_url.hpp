// The MLflow tracking URL, split into what a connection and request targets need.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace proxy::exporter {

struct UpstreamUrl {
  bool tls = false;
  std::string host;
  std::string port;       // always set: 80/443 when the URL has none
  std::string base_path;  // without trailing slash, "" for the root ("/mlflow" behind a router)
  std::string username;   // from http://user:password@host, percent-decoded; sent as Basic auth
  std::string password;

  // Host header value: host, plus :port when not the scheme's default.
  std::string host_header() const;
  std::string target(std::string_view path) const { return base_path + std::string(path); }
};

// nullopt with `error` set when the URL is not http(s)://host[:port][/path].
std::optional<UpstreamUrl> parse_upstream_url(std::string_view url, std::string& error);

}  // namespace proxy::exporter
