// Scrubs secrets and PII inside text that is otherwise kept: one RE2 alternation of all patterns,
// so a value with nothing to redact costs a single linear DFA scan, and a user's pattern can
// never make the daemon backtrack for ever on hostile input.
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

class Redactor {
 public:
  // Throws config::ConfigError for a pattern RE2 rejects (the loader checks them first).
  Redactor(const std::vector<config::RedactPattern>& user_patterns, bool builtin);

  bool empty() const { return combined_ == nullptr; }

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

  std::unique_ptr<RE2> combined_;
  std::vector<Entry> entries_;
  int groups_ = 0;
};

}  // namespace proxy::policy
