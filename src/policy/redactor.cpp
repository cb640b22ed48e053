#include "policy/redactor.hpp"

#include <array>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

namespace {

// RE2's \s.
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'); }

// ASCII case-insensitive: does `text` hold `lower` (lower-case letters) at `at`?
bool has_at(std::string_view text, std::size_t at, std::string_view lower) {
  if (at > text.size() || text.size() - at < lower.size()) return false;
  for (std::size_t i = 0; i < lower.size(); ++i) {
    if ((text[at + i] | 0x20) != lower[i]) return false;
  }
  return true;
}

// Does a keyword end just before the [:=] at `at`, as in `keyword["']?\s*[:=]`?
bool keyword_before(std::string_view text, std::size_t at) {
  std::size_t end = at;
  while (end > 0 && is_space(text[end - 1])) --end;
  if (end > 0 && (text[end - 1] == '"' || text[end - 1] == '\'')) --end;
  for (std::string_view keyword : {"password", "passwd", "pwd", "key", "secret", "token", "authorization"}) {
    if (end >= keyword.size() && has_at(text, end - keyword.size(), keyword)) return true;
  }
  return false;
}

// "scheme://user:password@": after "://", a ':' and then an '@' before the authority ends.
bool userinfo_after(std::string_view text, std::size_t at) {
  bool colon = false;
  for (std::size_t i = at; i < text.size(); ++i) {
    const char c = text[i];
    if (is_space(c) || c == '/' || c == '?' || c == '#') return false;
    if (c == ':') colon = true;
    if (c == '@') return colon;
  }
  return false;
}

bool email_local(char c) { return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'; }

// The checks of may_hold_builtin_secret, one per trigger byte at text[i]: whether a built-in
// pattern may match around it. A check may move `i` on past bytes it has looked at.
using TriggerCheck = bool (*)(std::string_view text, std::size_t& i);

// sk-..., sk-ant-..., xox?-..., -----BEGIN ... PRIVATE KEY-----
bool dash_check(std::string_view text, std::size_t& i) {
  if (i >= 2 && text[i - 2] == 's' && text[i - 1] == 'k') return true;
  if (i >= 4 && text.substr(i - 4, 3) == "xox" &&
      std::string_view("abposr").find(text[i - 1]) != std::string_view::npos) {
    return true;
  }
  return text.substr(i, 11) == "-----BEGIN ";
}

// AKIA/ASIA/ABIA/ACCA..., AIza...
bool capital_a_check(std::string_view text, std::size_t& i) {
  const std::string_view next = text.substr(i + 1, 3);
  return next == "KIA" || next == "SIA" || next == "BIA" || next == "CCA" || next == "Iza";
}

// gh[pousr]_..., github_pat_...
bool underscore_check(std::string_view text, std::size_t& i) {
  if (i >= 3 && text[i - 3] == 'g' && text[i - 2] == 'h' &&
      std::string_view("pousr").find(text[i - 1]) != std::string_view::npos) {
    return true;
  }
  return i >= 6 && text.substr(i - 6, 6) == "github";
}

// eyJ...
bool capital_j_check(std::string_view text, std::size_t& i) {
  return i >= 2 && text[i - 2] == 'e' && text[i - 1] == 'y';
}

// bearer, any case
bool b_check(std::string_view text, std::size_t& i) { return has_at(text, i + 1, "earer"); }

// keyword: value, keyword=value
bool assignment_check(std::string_view text, std::size_t& i) { return keyword_before(text, i); }

// scheme://user:password@, keyword: value
bool colon_check(std::string_view text, std::size_t& i) {
  return (text.substr(i + 1, 2) == "//" && userinfo_after(text, i + 3)) || keyword_before(text, i);
}

// U+017F LATIN SMALL LETTER LONG S: (?i) makes RE2 take it for an 's'
bool long_s_check(std::string_view text, std::size_t& i) {
  return i + 1 < text.size() && text[i + 1] == '\xBF';
}

// U+212A KELVIN SIGN: (?i) makes RE2 take it for a 'k'
bool kelvin_check(std::string_view text, std::size_t& i) { return text.substr(i + 1, 2) == "\x84\xAA"; }

// e-mail addresses
bool at_check(std::string_view text, std::size_t& i) {
  return i > 0 && i + 1 < text.size() && email_local(text[i - 1]) &&
         (is_alnum(text[i + 1]) || text[i + 1] == '-');
}

// Card numbers are 13 to 19 digits, single spaces or dashes between. The run is looked at
// once: `i` moves to its last byte, so the byte after it, no digit, is looked at next.
bool digit_check(std::string_view text, std::size_t& i) {
  const std::size_t n = text.size();
  std::size_t digits = 0;
  std::size_t j = i;
  while (j < n) {
    if (is_digit(text[j])) {
      if (++digits >= 13) return true;
      ++j;
    } else if ((text[j] == ' ' || text[j] == '-') && j + 1 < n && is_digit(text[j + 1])) {
      ++j;
    } else {
      break;
    }
  }
  i = j - 1;
  return false;
}

// Each built-in pattern needs one of these bytes.
constexpr std::array<TriggerCheck, 256> kChecks = [] {
  std::array<TriggerCheck, 256> table{};
  const auto set = [&table](char c, TriggerCheck check) { table[static_cast<unsigned char>(c)] = check; };
  set('-', dash_check);
  set('A', capital_a_check);
  set('_', underscore_check);
  set('J', capital_j_check);
  set('b', b_check);
  set('B', b_check);
  set(':', colon_check);
  set('=', assignment_check);
  set('@', at_check);
  set('\xC5', long_s_check);
  set('\xE2', kelvin_check);
  for (char c = '0'; c <= '9'; ++c) set(c, digit_check);
  return table;
}();

// Bytes at which a check starts.
constexpr std::array<bool, 256> kTriggers = [] {
  std::array<bool, 256> table{};
  for (std::size_t c = 0; c < table.size(); ++c) table[c] = kChecks[c] != nullptr;
  return table;
}();

// The first trigger byte at or after `i`, or text.size(). Prose is mostly lower-case letters
// and spaces, so SSE2 (every x86-64) looks at 16 bytes per step; it may stop at ';' or '<' too,
// which the caller skips.
std::size_t next_trigger(std::string_view text, std::size_t i) {
#if defined(__SSE2__)
  const auto is = [](__m128i v, char c) { return _mm_cmpeq_epi8(v, _mm_set1_epi8(c)); };
  const auto in = [](__m128i v, char first, char last) {  // ASCII ranges; bytes >= 0x80 are < 0
    return _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8(static_cast<char>(first - 1))),
                         _mm_cmplt_epi8(v, _mm_set1_epi8(static_cast<char>(last + 1))));
  };
  for (; i + 16 <= text.size(); i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(text.data() + i));
    __m128i hit = _mm_or_si128(in(v, '0', '='), in(v, '@', 'B'));  // digits : = and @ A B
    hit = _mm_or_si128(hit, _mm_or_si128(is(v, '-'), is(v, 'J')));
    hit = _mm_or_si128(hit, _mm_or_si128(is(v, '_'), is(v, 'b')));
    hit = _mm_or_si128(hit, _mm_or_si128(is(v, '\xC5'), is(v, '\xE2')));
    if (const int mask = _mm_movemask_epi8(hit); mask != 0) return i + static_cast<std::size_t>(__builtin_ctz(mask));
  }
#endif
  while (i < text.size() && !kTriggers[static_cast<unsigned char>(text[i])]) ++i;
  return i;
}

}  // namespace

bool may_hold_builtin_secret(std::string_view text) {
  for (std::size_t i = next_trigger(text, 0); i < text.size(); i = next_trigger(text, i + 1)) {
    // next_trigger may stop at a byte that is no trigger (';' or '<'): no check then.
    const TriggerCheck check = kChecks[static_cast<unsigned char>(text[i])];
    if (check != nullptr && check(text, i)) return true;
  }
  return false;
}

Redactor::Alternation Redactor::compile(const std::vector<Source>& sources) {
  Alternation out;
  if (sources.empty()) return out;
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
    out.entries.push_back({"[redacted:" + source.name + "]", group, own_groups > 0 ? group + 1 : group,
                           source.luhn});
    if (!combined.empty()) combined += '|';
    combined += "(" + source.regex + ")";
    group += 1 + own_groups;
  }
  out.groups = group;  // group 0 (the whole match) plus every pattern's groups
  out.regex = std::make_unique<RE2>(combined, options);
  if (!out.regex->ok()) throw config::ConfigError("redaction patterns: " + out.regex->error());
  return out;
}

Redactor::Redactor(const std::vector<config::RedactPattern>& user_patterns, bool builtin, bool prefilter) {
  std::vector<Source> sources;
  if (builtin) {
    for (const RedactionRule& rule : builtin_redaction_rules()) {
      sources.push_back({std::string(rule.name), std::string(rule.regex), rule.luhn});
    }
  }
  std::vector<Source> user;
  for (const config::RedactPattern& pattern : user_patterns) {
    user.push_back({pattern.name, pattern.regex, false});
    sources.push_back(user.back());
  }
  all_ = compile(sources);
  prefilter_ = builtin && prefilter;
  // Where no built-in pattern can match, leaving them out of the alternation changes nothing:
  // leftmost-first still picks the same pattern at the same place.
  if (prefilter_) user_ = compile(user);
}

std::size_t Redactor::redact(std::string_view text, std::string& out) const {
  const Alternation* alternation = &all_;
  if (prefilter_ && !may_hold_builtin_secret(text)) {
    if (user_.regex == nullptr) return 0;
    alternation = &user_;
  }
  return alternation->regex ? run(*alternation, text, out) : 0;
}

std::size_t Redactor::run(const Alternation& alternation, std::string_view text, std::string& out) {
  thread_local std::vector<re2::StringPiece> groups;
  groups.resize(static_cast<std::size_t>(alternation.groups));
  const re2::StringPiece whole(text.data(), text.size());
  std::size_t count = 0;
  std::size_t pos = 0;
  std::size_t copied = 0;  // text before this offset is already in `out`
  const std::size_t out_start = out.size();
  while (pos <= text.size() && alternation.regex->Match(whole, pos, text.size(), RE2::UNANCHORED,
                                                        groups.data(), alternation.groups)) {
    const std::size_t match_end = static_cast<std::size_t>(groups[0].data() - text.data()) + groups[0].size();
    if (groups[0].empty()) {  // a user pattern that can match nothing: step over
      pos = match_end + 1;
      continue;
    }
    const Entry* entry = nullptr;
    for (const Entry& candidate : alternation.entries) {
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
