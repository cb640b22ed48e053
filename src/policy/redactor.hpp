// Scrubs secrets and PII inside text that is otherwise kept: one RE2 alternation of all patterns,
// so a value costs at most a linear DFA scan, and a user's pattern can never make the daemon
// backtrack for ever on hostile input. Most values hold no secret at all: a cheap pass over the
// bytes that every built-in pattern needs ('@', "://", "sk-", a 13-digit run...) skips the
// built-in patterns for them, which changes no result, only the cost.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <re2/re2.h>

#include "config/config.hpp"

namespace proxy::policy {

// A built-in pattern. With a capturing group only group 1 (the secret) is replaced, so
// "Bearer abc..." becomes "Bearer [redacted:bearer_token]" and a URL keeps its host.
struct RedactionRule {
  std::string_view name;
  std::string_view regex;
  bool luhn = false;  // candidates must pass the Luhn check (card numbers)
};

// In order of precedence where two patterns match at the same position.
const std::vector<RedactionRule>& builtin_redaction_rules();

// True for 13 to 19 digits (spaces and dashes ignored) with a valid Luhn check digit.
bool luhn_valid(std::string_view candidate);

// False only when no built-in pattern can match anywhere in `text` (a necessary condition for
// each, checked in one pass; true does not mean a match).
bool may_hold_builtin_secret(std::string_view text);

class Redactor {
 public:
  // Throws config::ConfigError for a pattern RE2 rejects (the loader checks them first).
  // `prefilter` false runs every value through RE2 (to check that the prefilter changes nothing).
  Redactor(const std::vector<config::RedactPattern>& user_patterns, bool builtin,
           bool prefilter = true);

  bool empty() const { return all_.regex == nullptr; }

  // Appends `text` with every match replaced by "[redacted:<name>]" to `out` and returns the
  // number of replacements; with none, `out` is left as it was.
  std::size_t redact(std::string_view text, std::string& out) const;

 private:
  struct Entry {
    std::string marker;  // [redacted:name]
    int group = 0;       // the pattern's own group in the alternation
    int secret_group = 0;  // the part replaced: group + 1 when the pattern captures, else group
    bool luhn = false;
  };
  struct Source {
    std::string name;
    std::string regex;
    bool luhn;
  };
  // One alternation and what its groups mean.
  struct Alternation {
    std::unique_ptr<RE2> regex;
    std::vector<Entry> entries;
    int groups = 0;
  };
  static Alternation compile(const std::vector<Source>& sources);
  static std::size_t run(const Alternation& alternation, std::string_view text, std::string& out);

  Alternation all_;   // built-in then user patterns, in order of precedence
  Alternation user_;  // the user patterns alone, for text no built-in pattern can match
  bool prefilter_ = false;  // built-in patterns are compiled and the prefilter is on
};

}  // namespace proxy::policy
