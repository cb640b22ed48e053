#include "config/values.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>

namespace proxy::config {

namespace {

struct Unit {
  std::string_view name;
  std::uint64_t factor;
};

constexpr std::array kSizeUnits{
    Unit{"B", 1},           Unit{"KB", 1000},        Unit{"MB", 1000 * 1000},
    Unit{"GB", 1000 * 1000 * 1000}, Unit{"KiB", kKiB}, Unit{"MiB", kMiB},
    Unit{"GiB", kGiB},
};

constexpr std::array kDurationUnits{
    Unit{"ms", 1}, Unit{"s", 1000}, Unit{"m", 60 * 1000}, Unit{"h", 60 * 60 * 1000},
};

constexpr std::array<std::string_view, 7> kLogLevels{"trace", "debug", "info",    "warn",
                                                     "error", "critical", "off"};

[[noreturn]] void fail_shape(std::string_view shape, std::string_view text,
                             std::string_view hint = {}) {
  std::string message = "expected " + std::string(shape) + ", got " + quoted(text);
  if (!hint.empty()) message += " (" + std::string(hint) + ")";
  throw ValueError(message);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool all_digits(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!is_digit(c)) return false;
  }
  return true;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string to_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = lower(c);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// Decimal digits to an integer; nullopt-like false on overflow.
bool parse_digits(std::string_view digits, std::uint64_t& value) {
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  return ec == std::errc{} && end == digits.data() + digits.size();
}

// Splits "64MiB" or "64 MiB" into the digits and the unit.
std::pair<std::string_view, std::string_view> split_number_unit(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && is_digit(text[i])) ++i;
  std::string_view digits = text.substr(0, i);
  std::string_view unit = text.substr(i);
  if (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  return {digits, unit};
}

bool valid_port(std::string_view text) {
  std::uint64_t port = 0;
  return all_digits(text) && text.size() <= 5 && parse_digits(text, port) && port >= 1 &&
         port <= 65535;
}

// A host name or IPv4 address as written in HOST:PORT (no brackets, colons or URL syntax).
bool valid_plain_host(std::string_view host) {
  if (host.empty()) return false;
  for (char c : host) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == ':' || c == '/' || c == '@' || c == '[' || c == ']' ||
        c == '?' || c == '#') {
      return false;
    }
  }
  return true;
}

bool valid_v6_host(std::string_view host) {
  if (host.empty()) return false;
  for (char c : host) {
    // Hex digits, colons, dots (v4-mapped) and a zone id after '%'.
    bool ok = is_digit(c) || (lower(c) >= 'a' && lower(c) <= 'z') || c == ':' || c == '.' ||
              c == '%' || c == '-' || c == '_';
    if (!ok) return false;
  }
  return host.find(':') != std::string_view::npos;
}

// Splits "host:port" or "[v6]:port"; port may be empty when allowed. False when malformed.
bool split_host_port(std::string_view text, std::string_view& host, std::string_view& port,
                     bool& has_port) {
  has_port = false;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return false;
    host = text.substr(1, close - 1);
    if (!valid_v6_host(host)) return false;
    std::string_view rest = text.substr(close + 1);
    if (rest.empty()) return true;
    if (rest.front() != ':') return false;
    has_port = true;
    port = rest.substr(1);
    return true;
  }
  auto colon = text.find(':');
  host = text.substr(0, colon);
  if (!valid_plain_host(host)) return false;
  if (colon == std::string_view::npos) return true;
  has_port = true;
  port = text.substr(colon + 1);
  return true;
}

constexpr std::array<std::pair<std::string_view, ResourceTarget>, 3> kResourceTargets{{
    {"all", ResourceTarget::all},
    {"root", ResourceTarget::root},
    {"none", ResourceTarget::none},
}};

}  // namespace

std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      std::array<char, 8> buf{};
      std::snprintf(buf.data(), buf.size(), "\\x%02x", static_cast<unsigned>(u));
      out += buf.data();
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

std::size_t parse_size(std::string_view text, std::size_t max_bytes) {
  constexpr std::string_view kUnitsHint = "units: B, KiB, MiB, GiB, or KB, MB, GB";
  auto [digits, unit_name] = split_number_unit(text);
  std::uint64_t count = 0;
  if (digits.empty()) fail_shape(kSizeShape, text, kUnitsHint);
  std::uint64_t factor = 0;
  if (unit_name.empty()) {
    factor = 1;
  } else {
    for (const Unit& unit : kSizeUnits) {
      if (unit.name == unit_name) factor = unit.factor;
    }
  }
  if (factor == 0) fail_shape(kSizeShape, text, kUnitsHint);
  if (!parse_digits(digits, count) || count > max_bytes / factor) {
    throw ValueError("must be at most " + format_size(max_bytes) + ", got " + quoted(text));
  }
  if (count == 0) throw ValueError("must be greater than 0, got " + quoted(text));
  return static_cast<std::size_t>(count * factor);
}

std::chrono::milliseconds parse_duration(std::string_view text, std::chrono::milliseconds min,
                                         std::chrono::milliseconds max) {
  auto [digits, unit_name] = split_number_unit(text);
  if (digits.empty()) fail_shape(kDurationShape, text, "units: ms, s, m, h");
  if (unit_name.empty()) {
    fail_shape(kDurationShape, text, "a bare number is ambiguous: add a unit, ms, s, m or h");
  }
  std::uint64_t factor = 0;
  for (const Unit& unit : kDurationUnits) {
    if (unit.name == unit_name) factor = unit.factor;
  }
  if (factor == 0) fail_shape(kDurationShape, text, "units: ms, s, m, h");
  auto max_ms = static_cast<std::uint64_t>(max.count());
  std::uint64_t count = 0;
  if (!parse_digits(digits, count) || count > max_ms / factor) {
    throw ValueError("must be at most " + format_duration(max) + ", got " + quoted(text));
  }
  std::chrono::milliseconds value(static_cast<std::int64_t>(count * factor));
  if (value < min) {
    throw ValueError("must be at least " + format_duration(min) + ", got " + quoted(text));
  }
  return value;
}

std::chrono::seconds parse_seconds(std::string_view text, std::chrono::seconds min,
                                   std::chrono::seconds max) {
  auto value = parse_duration(text, min, max);
  if (value.count() % 1000 != 0) {
    throw ValueError("must be a whole number of seconds, got " + quoted(text));
  }
  return std::chrono::duration_cast<std::chrono::seconds>(value);
}

std::uint64_t parse_integer(std::string_view text, std::uint64_t min, std::uint64_t max) {
  std::uint64_t value = 0;
  if (!all_digits(text) || !parse_digits(text, value) || value < min || value > max) {
    fail_shape(std::string(kIntegerShape) + " from " + std::to_string(min) + " to " +
                   std::to_string(max),
               text);
  }
  return value;
}

unsigned parse_thread_count(std::string_view text, unsigned max) {
  if (text == "auto") return 0;
  std::uint64_t value = 0;
  if (!all_digits(text) || !parse_digits(text, value) || value < 1 || value > max) {
    fail_shape("auto or " + std::string(kIntegerShape) + " from 1 to " + std::to_string(max), text);
  }
  return static_cast<unsigned>(value);
}

double parse_number(std::string_view text, double min) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() ||
      !std::isfinite(value) || value < min) {
    fail_shape(std::string(kNumberShape) + " of at least " + format_number(min), text);
  }
  return value;
}

bool parse_bool(std::string_view text) {
  if (iequals(text, "true")) return true;
  if (iequals(text, "false")) return false;
  fail_shape(kBoolShape, text);
}

namespace {

Endpoint endpoint_of_shape(std::string_view text, std::string_view shape) {
  std::string_view host;
  std::string_view port;
  bool has_port = false;
  if (!split_host_port(text, host, port, has_port) || !has_port) {
    // A common slip: an IPv6 address without brackets.
    if (!text.starts_with('[') && text.find(':') != text.rfind(':')) {
      fail_shape(shape, text, "write an IPv6 address in brackets, such as [::1]:4318");
    }
    fail_shape(shape, text);
  }
  if (!valid_port(port)) fail_shape(shape, text, "the port must be from 1 to 65535");
  std::uint64_t number = 0;
  parse_digits(port, number);
  return Endpoint{std::string(host), static_cast<std::uint16_t>(number)};
}

}  // namespace

Endpoint parse_endpoint(std::string_view text) { return endpoint_of_shape(text, kEndpointShape); }

std::optional<Endpoint> parse_optional_endpoint(std::string_view text) {
  if (text == "off" || text == "none" || text == "disabled") return std::nullopt;
  return endpoint_of_shape(text, kOptionalEndpointShape);
}

double parse_fraction(std::string_view text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() ||
      !std::isfinite(value) || value <= 0 || value > 1) {
    fail_shape(kFractionShape, text);
  }
  return value;
}

std::string parse_url(std::string_view text) {
  auto fail = [&](std::string_view hint = {}) {
    fail_shape(kUrlShape, hide_url_password(text), hint);
  };
  std::string_view scheme;
  if (text.size() >= 7 && iequals(text.substr(0, 7), "http://")) {
    scheme = "http://";
  } else if (text.size() >= 8 && iequals(text.substr(0, 8), "https://")) {
    scheme = "https://";
  } else {
    fail();
  }
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) fail("no spaces or control characters");
  }
  std::string_view rest = text.substr(scheme.size());
  if (rest.find_first_of("?#") != std::string_view::npos) fail("no query or fragment");
  auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  auto at = authority.rfind('@');
  std::string_view host_port = at == std::string_view::npos ? authority : authority.substr(at + 1);
  std::string_view host;
  std::string_view port;
  bool has_port = false;
  if (!split_host_port(host_port, host, port, has_port)) fail();
  if (has_port && !valid_port(port)) fail("the port must be from 1 to 65535");
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  return std::string(scheme) + std::string(authority) + std::string(path);
}

std::string parse_log_level(std::string_view text) {
  std::string level = to_lower(text);
  for (std::string_view known : kLogLevels) {
    if (level == known) return level;
  }
  fail_shape(kLogLevelShape, text);
}

LogFormat parse_log_format(std::string_view text) {
  if (iequals(text, "text")) return LogFormat::text;
  if (iequals(text, "json")) return LogFormat::json;
  fail_shape(kLogFormatShape, text);
}

std::string parse_experiment_id(std::string_view text) {
  if (!all_digits(text)) {
    fail_shape(kExperimentIdShape, text, "to select by name, use the experiment name");
  }
  return std::string(text);
}

std::string parse_experiment_name(std::string_view text) {
  if (text.empty()) fail_shape("a non-empty experiment name", text);
  return std::string(text);
}

std::string format_size(std::size_t bytes) {
  if (bytes == 0) return "0";
  if (bytes % kGiB == 0) return std::to_string(bytes / kGiB) + "GiB";
  if (bytes % kMiB == 0) return std::to_string(bytes / kMiB) + "MiB";
  if (bytes % kKiB == 0) return std::to_string(bytes / kKiB) + "KiB";
  return std::to_string(bytes);
}

std::string format_duration(std::chrono::milliseconds duration) {
  auto ms = duration.count();
  if (ms == 0) return "0s";
  for (auto it = kDurationUnits.rbegin(); it != kDurationUnits.rend(); ++it) {
    auto factor = static_cast<std::int64_t>(it->factor);
    if (ms % factor == 0) return std::to_string(ms / factor) + std::string(it->name);
  }
  return std::to_string(ms) + "ms";  // unreachable: ms divides everything
}

std::string format_number(double value) {
  std::array<char, 64> buf{};
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), value);
  if (ec != std::errc{}) return std::to_string(value);
  return std::string(buf.data(), end);
}

std::string_view format_log_format(LogFormat format) {
  return format == LogFormat::json ? "json" : "text";
}

Durability parse_durability(std::string_view text) {
  if (iequals(text, "memory")) return Durability::memory;
  if (iequals(text, "disk")) return Durability::disk;
  fail_shape(kDurabilityShape, text);
}

FsyncPolicy parse_fsync(std::string_view text) {
  if (iequals(text, "always")) return FsyncPolicy::always;
  if (iequals(text, "interval")) return FsyncPolicy::interval;
  if (iequals(text, "never")) return FsyncPolicy::never;
  fail_shape(kFsyncShape, text);
}

UpstreamCompression parse_upstream_compression(std::string_view text) {
  if (iequals(text, "auto")) return UpstreamCompression::automatic;
  if (iequals(text, "gzip")) return UpstreamCompression::gzip;
  if (iequals(text, "none")) return UpstreamCompression::none;
  fail_shape(kCompressionShape, text);
}

std::string_view format_upstream_compression(UpstreamCompression compression) {
  switch (compression) {
    case UpstreamCompression::automatic:
      return "auto";
    case UpstreamCompression::gzip:
      return "gzip";
    case UpstreamCompression::none:
      return "none";
  }
  return "auto";
}

std::string_view format_durability(Durability durability) {
  return durability == Durability::disk ? "disk" : "memory";
}

std::string_view format_fsync(FsyncPolicy policy) {
  switch (policy) {
    case FsyncPolicy::always:
      return "always";
    case FsyncPolicy::interval:
      return "interval";
    case FsyncPolicy::never:
      return "never";
  }
  return "always";
}

std::string hide_url_password(std::string_view url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::string(url);
  std::size_t authority_begin = scheme_end + 3;
  std::size_t authority_end = url.find_first_of("/?#", authority_begin);
  if (authority_end == std::string_view::npos) authority_end = url.size();
  std::string_view authority = url.substr(authority_begin, authority_end - authority_begin);
  auto at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(url);
  auto colon = authority.substr(0, at).find(':');
  if (colon == std::string_view::npos) return std::string(url);
  std::string out(url.substr(0, authority_begin + colon + 1));
  out += "<hidden>";
  out += url.substr(authority_begin + at);
  return out;
}

namespace {

constexpr std::array<std::pair<std::string_view, PolicyMode>, 7> kPolicyModes{{
    {"verbose", PolicyMode::verbose},
    {"mask", PolicyMode::mask},
    {"hash", PolicyMode::hash},
    {"truncate", PolicyMode::truncate},
    {"drop", PolicyMode::drop},
    {"redact", PolicyMode::redact},
    {"hmac", PolicyMode::hmac},
}};

constexpr std::array<std::pair<std::string_view, HeaderMode>, 3> kHeaderModes{{
    {"honor", HeaderMode::honor},
    {"override", HeaderMode::override_route},
    {"ignore", HeaderMode::ignore},
}};

}  // namespace

PolicyMode parse_policy_mode(std::string_view text) {
  for (const auto& [name, mode] : kPolicyModes) {
    if (iequals(text, name)) return mode;
  }
  fail_shape(kPolicyModeShape, text);
}

std::string_view format_policy_mode(PolicyMode mode) {
  for (const auto& [name, known] : kPolicyModes) {
    if (known == mode) return name;
  }
  return "?";
}

HeaderMode parse_header_mode(std::string_view text) {
  for (const auto& [name, mode] : kHeaderModes) {
    if (iequals(text, name)) return mode;
  }
  fail_shape(kHeaderModeShape, text);
}

std::string_view format_header_mode(HeaderMode mode) {
  for (const auto& [name, known] : kHeaderModes) {
    if (known == mode) return name;
  }
  return "?";
}

ResourceTarget parse_resource_target(std::string_view text) {
  for (const auto& [name, target] : kResourceTargets) {
    if (iequals(text, name)) return target;
  }
  fail_shape(kResourceTargetShape, text);
}

std::string_view format_resource_target(ResourceTarget target) {
  for (const auto& [name, known] : kResourceTargets) {
    if (known == target) return name;
  }
  return "?";
}

std::string parse_span_type(std::string_view text) {
  for (std::string_view type : kSpanTypes) {
    if (iequals(text, type)) return std::string(type);
  }
  fail_shape(kSpanTypeShape, text);
}

}  // namespace proxy::config
