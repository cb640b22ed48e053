#include "exporter/mlflow_version.hpp"

#include <charconv>
#include <utility>
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

// ASCII only, whatever the locale.
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The release: major.minor and an optional .patch. A fourth release component (3.7.0.1) is not
// something MLflow publishes.
bool take_release(std::string_view text, std::size_t& pos, MlflowVersion& version) {
  if (!take_number(text, pos, version.major) || !take(text, pos, ".") ||
      !take_number(text, pos, version.minor)) {
    return false;
  }
  if (pos + 1 < text.size() && text[pos] == '.' && is_digit(text[pos + 1])) {
    ++pos;
    return take_number(text, pos, version.patch);
  }
  return true;
}

// An optional pre-release: rcN, aN or bN.
bool take_pre_release(std::string_view text, std::size_t& pos, MlflowVersion& version) {
  static constexpr std::pair<std::string_view, MlflowVersion::Stage> kStages[] = {
      {"rc", MlflowVersion::Stage::release_candidate},
      {"a", MlflowVersion::Stage::alpha},
      {"b", MlflowVersion::Stage::beta},
  };
  for (const auto& [marker, stage] : kStages) {
    if (!take(text, pos, marker)) continue;
    version.stage = stage;
    return take_number(text, pos, version.stage_number);
  }
  return true;
}

// An optional .devN or .postN; a post-release orders as its release.
bool take_dev_or_post(std::string_view text, std::size_t& pos, MlflowVersion& version) {
  if (take(text, pos, ".dev")) {
    // 3.7.0rc1.dev0 is still a dev build: before any release of 3.7.0.
    version.stage = MlflowVersion::Stage::dev;
    return take_number(text, pos, version.stage_number);
  }
  unsigned post = 0;
  return !take(text, pos, ".post") || take_number(text, pos, post);
}

// An optional local version label (3.7.0+databricks): a non-empty run of [A-Za-z0-9.].
bool take_local_label(std::string_view text, std::size_t& pos) {
  if (!take(text, pos, "+")) return true;
  if (pos == text.size()) return false;
  for (; pos < text.size(); ++pos) {
    const char c = text[pos];
    if (!is_digit(c) && !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && c != '.') return false;
  }
  return true;
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
  if (!take_release(text, pos, version) || !take_pre_release(text, pos, version) ||
      !take_dev_or_post(text, pos, version) || !take_local_label(text, pos) || pos != text.size()) {
    return std::nullopt;
  }
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
