#include "exporter/mlflow_version.hpp"

#include <charconv>
#include <tuple>

namespace proxy::exporter {

namespace {

// Reads digits at `pos` into `out`; false when there are none or they overflow.
bool take_number(std::string_view text, std::size_t& pos, unsigned& out) {
  const char* begin = text.data() + pos;
  const char* end = text.data() + text.size();
  const auto [next, error] = std::from_chars(begin, end, out);
  if (error != std::errc{} || next == begin) return false;
  pos += static_cast<std::size_t>(next - begin);
  return true;
}

bool take(std::string_view text, std::size_t& pos, std::string_view literal) {
  if (text.substr(pos, literal.size()) != literal) return false;
  pos += literal.size();
  return true;
}

std::string_view trim(std::string_view text) {
  constexpr std::string_view kSpace = " \t\r\n";
  const auto first = text.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(kSpace) - first + 1);
}

}  // namespace

int MlflowVersion::compare(const MlflowVersion& other) const {
  const auto key = [](const MlflowVersion& v) {
    return std::tuple(v.major, v.minor, v.patch, static_cast<int>(v.stage), v.stage_number);
  };
  const auto mine = key(*this);
  const auto theirs = key(other);
  return mine < theirs ? -1 : (theirs < mine ? 1 : 0);
}

std::optional<MlflowVersion> parse_mlflow_version(std::string_view raw) {
  const std::string_view text = trim(raw);
  // Longer than any version: an error page or a banner, not worth scanning.
  if (text.empty() || text.size() > 64) return std::nullopt;
  MlflowVersion version;
  version.text = std::string(text);
  std::size_t pos = 0;
  if (!take_number(text, pos, version.major) || !take(text, pos, ".") ||
      !take_number(text, pos, version.minor)) {
    return std::nullopt;
  }
  if (pos < text.size() && text[pos] == '.' && pos + 1 < text.size() &&
      text[pos + 1] >= '0' && text[pos + 1] <= '9') {
    ++pos;
    if (!take_number(text, pos, version.patch)) return std::nullopt;
    // A fourth release component (3.7.0.1) is not something MLflow publishes.
  }
  if (take(text, pos, "rc")) {
    version.stage = MlflowVersion::Stage::release_candidate;
    if (!take_number(text, pos, version.stage_number)) return std::nullopt;
  } else if (take(text, pos, "a")) {
    version.stage = MlflowVersion::Stage::alpha;
    if (!take_number(text, pos, version.stage_number)) return std::nullopt;
  } else if (take(text, pos, "b")) {
    version.stage = MlflowVersion::Stage::beta;
    if (!take_number(text, pos, version.stage_number)) return std::nullopt;
  }
  if (take(text, pos, ".dev")) {
    // 3.7.0rc1.dev0 is still a dev build: before any release of 3.7.0.
    version.stage = MlflowVersion::Stage::dev;
    if (!take_number(text, pos, version.stage_number)) return std::nullopt;
  } else if (take(text, pos, ".post")) {
    unsigned post = 0;
    if (!take_number(text, pos, post)) return std::nullopt;
  }
  if (pos < text.size() && text[pos] == '+') {
    // A local version label (3.7.0+databricks): a non-empty run of [A-Za-z0-9.].
    if (++pos == text.size()) return std::nullopt;
    for (; pos < text.size(); ++pos) {
      const char c = text[pos];
      const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.';
      if (!ok) return std::nullopt;
    }
  }
  if (pos != text.size()) return std::nullopt;
  return version;
}

bool mlflow_accepts_gzip(const MlflowVersion& version) {
  MlflowVersion first;
  first.major = 3;
  first.minor = 7;
  first.stage = MlflowVersion::Stage::alpha;  // 3.7.0a0 and every later pre-release and release
  return version.compare(first) >= 0;
}

}  // namespace proxy::exporter
