#include "exporter/upstream_url.hpp"

#include <algorithm>
#include <charconv>

namespace proxy::exporter {
namespace {

std::string percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    unsigned value = 0;
    if (text[i] == '%' && i + 2 < text.size() &&
        std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16).ptr == text.data() + i + 3) {
      out.push_back(static_cast<char>(value));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

}  // namespace

std::string UpstreamUrl::host_header() const {
  const bool default_port = (tls && port == "443") || (!tls && port == "80");
  const bool ipv6 = host.find(':') != std::string::npos;
  const std::string shown = ipv6 ? "[" + host + "]" : host;
  return default_port ? shown : shown + ":" + port;
}

std::optional<UpstreamUrl> parse_upstream_url(std::string_view url, std::string& error) {
  UpstreamUrl result;
  std::string_view rest;
  if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else if (url.starts_with("https://")) {
    result.tls = true;
    rest = url.substr(8);
  } else {
    error = "MLflow URL must start with http:// or https://, got \"" + std::string(url) + "\"";
    return std::nullopt;
  }
  const std::size_t path_start = rest.find('/');
  std::string_view authority = rest.substr(0, path_start);
  std::string_view path = path_start == std::string_view::npos ? "" : rest.substr(path_start);
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    // Credentials in the URL travel as Basic auth, as Python's requests (MLflow's client) does.
    const std::string_view userinfo = authority.substr(0, at);
    const auto colon = userinfo.find(':');
    result.username = percent_decode(userinfo.substr(0, colon));
    if (colon != std::string_view::npos) result.password = percent_decode(userinfo.substr(colon + 1));
    authority = authority.substr(at + 1);
  }
  std::string_view port;
  if (authority.starts_with("[")) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "MLflow URL has an unterminated IPv6 address: \"" + std::string(url) + "\"";
      return std::nullopt;
    }
    result.host = std::string(authority.substr(1, close - 1));
    if (authority.size() > close + 1 && authority[close + 1] == ':') port = authority.substr(close + 2);
  } else {
    const auto colon = authority.rfind(':');
    result.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (result.host.empty()) {
    error = "MLflow URL has no host: \"" + std::string(url) + "\"";
    return std::nullopt;
  }
  if (!port.empty()) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      error = "MLflow URL has an invalid port \"" + std::string(port) + "\"";
      return std::nullopt;
    }
  }
  result.port = port.empty() ? (result.tls ? "443" : "80") : std::string(port);
  if (const auto query = path.find_first_of("?#"); query != std::string_view::npos) {
    path = path.substr(0, query);
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  result.base_path = std::string(path);
  return result;
}

}  // namespace proxy::exporter
