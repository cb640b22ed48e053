#include "policy/redactor.hpp"

namespace proxy::policy {

const std::vector<RedactionRule>& builtin_redaction_rules() {
  static const std::vector<RedactionRule> rules{
      {"private_key", R"(-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----)"},
      {"anthropic_api_key", R"(\bsk-ant-(?:api|admin|oat)[0-9]{2}-[A-Za-z0-9_-]{20,})"},
      // Legacy keys are 20+ alphanumerics; project, service-account and admin keys carry a
      // prefix. "sk-learn-is-great" therefore stays.
      {"openai_api_key", R"(\bsk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}|[A-Za-z0-9]{20,}))"},
      {"aws_access_key_id", R"(\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b)"},
      {"github_token", R"(\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255}))"},
      {"google_api_key", R"(\bAIza[0-9A-Za-z_-]{35})"},
      {"slack_token", R"(\bxox[abposr]-[A-Za-z0-9-]{10,})"},
      {"jwt", R"(\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"},
      // 16+ characters so that prose ("bearer authentication") stays.
      {"bearer_token", R"((?i)\bbearer\s+([A-Za-z0-9_.~+/=-]{16,}))"},
      {"basic_auth", R"((?i)\bauthorization["']?\s*[:=]\s*["']?basic\s+([A-Za-z0-9+/=]{8,}))"},
      {"url_password", R"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@]+:([^\s/?#@]+)@)"},
      {"password",
       R"((?i)\b(?:password|passwd|pwd|api[_-]?key|secret[_-]?key|client[_-]?secret|access[_-]?token)["']?\s*[:=]\s*["']?([^\s"',;&]{4,}))"},
      {"email", R"(\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b)"},
      {"card_number", R"(\b\d(?:[ -]?\d){12,18}\b)", true},
  };
  return rules;
}

bool luhn_valid(std::string_view candidate) {
  int sum = 0;
  int digits = 0;
  bool twice = false;
  for (auto it = candidate.rbegin(); it != candidate.rend(); ++it) {
    if (*it == ' ' || *it == '-') continue;
    if (*it < '0' || *it > '9') return false;
    int digit = *it - '0';
    if (twice) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
    twice = !twice;
    ++digits;
  }
  return digits >= 13 && digits <= 19 && sum % 10 == 0;
}

Redactor::Redactor(const std::vector<config::RedactPattern>& user_patterns, bool builtin) {
  struct Source {
    std::string name;
    std::string regex;
    bool luhn;
  };
  std::vector<Source> sources;
  if (builtin) {
    for (const RedactionRule& rule : builtin_redaction_rules()) {
      sources.push_back({std::string(rule.name), std::string(rule.regex), rule.luhn});
    }
  }
  for (const config::RedactPattern& pattern : user_patterns) {
    sources.push_back({pattern.name, pattern.regex, false});
  }
  if (sources.empty()) return;

  RE2::Options options;
  options.set_log_errors(false);
  // The alternation of every pattern needs more DFA memory than RE2's 8 MiB default allows
  // before it falls back to the slower NFA on long values.
  options.set_max_mem(64 << 20);
  std::string combined;
  int group = 1;
  for (const Source& source : sources) {
    RE2 alone(source.regex, options);
    if (!alone.ok()) {
      throw config::ConfigError("redaction pattern " + source.name + ": invalid RE2 regex: " +
                                alone.error());
    }
    const int own_groups = alone.NumberOfCapturingGroups();
    entries_.push_back({"[redacted:" + source.name + "]", group, own_groups > 0 ? group + 1 : group,
                        source.luhn});
    if (!combined.empty()) combined += '|';
    combined += "(" + source.regex + ")";
    group += 1 + own_groups;
  }
  groups_ = group;  // group 0 (the whole match) plus every pattern's groups
  combined_ = std::make_unique<RE2>(combined, options);
  if (!combined_->ok()) throw config::ConfigError("redaction patterns: " + combined_->error());
}

std::size_t Redactor::redact(std::string_view text, std::string& out) const {
  if (!combined_) return 0;
  thread_local std::vector<re2::StringPiece> groups;
  groups.resize(static_cast<std::size_t>(groups_));
  const re2::StringPiece whole(text.data(), text.size());
  std::size_t count = 0;
  std::size_t pos = 0;
  std::size_t copied = 0;  // text before this offset is already in `out`
  const std::size_t out_start = out.size();
  while (pos <= text.size() &&
         combined_->Match(whole, pos, text.size(), RE2::UNANCHORED, groups.data(), groups_)) {
    const std::size_t match_end = static_cast<std::size_t>(groups[0].data() - text.data()) + groups[0].size();
    if (groups[0].empty()) {  // a user pattern that can match nothing: step over
      pos = match_end + 1;
      continue;
    }
    const Entry* entry = nullptr;
    for (const Entry& candidate : entries_) {
      if (groups[static_cast<std::size_t>(candidate.group)].data() != nullptr) {
        entry = &candidate;
        break;
      }
    }
    pos = match_end;
    if (entry == nullptr) continue;
    re2::StringPiece secret = groups[static_cast<std::size_t>(entry->secret_group)];
    if (secret.data() == nullptr || secret.empty()) secret = groups[static_cast<std::size_t>(entry->group)];
    if (entry->luhn && !luhn_valid(std::string_view(secret.data(), secret.size()))) continue;
    const std::size_t secret_begin = static_cast<std::size_t>(secret.data() - text.data());
    out.append(text.substr(copied, secret_begin - copied));
    out.append(entry->marker);
    copied = secret_begin + secret.size();
    ++count;
  }
  if (count == 0) {
    out.resize(out_start);
    return 0;
  }
  out.append(text.substr(copied));
  return count;
}

}  // namespace proxy::policy
