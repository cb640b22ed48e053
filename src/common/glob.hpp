// Glob patterns over attribute keys (policy), resource values (routing) and span names
// (normalize): '*' matches any run of bytes (dots included), '?' exactly one byte, everything
// else itself. No character classes, no escapes: attribute keys do not need them, and a pattern
// stays readable in YAML.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace proxy {

bool glob_match(std::string_view pattern, std::string_view text);

// True when the pattern has no wildcard, so it is compared as a plain string.
bool is_literal(std::string_view pattern);

// Many globs, each with a small tag, looked up on the hot path: literal patterns by hash, the
// common "prefix*" form by prefix, the rest one by one. find() gives the tag of a literal match
// first, then of the first prefix, then of the first general glob.
class GlobTable {
 public:
  void add(std::string_view pattern, std::uint8_t tag);
  const std::uint8_t* find(std::string_view key) const;
  bool empty() const { return exact_.empty() && prefixes_.empty() && globs_.empty(); }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
  };
  std::unordered_map<std::string, std::uint8_t, Hash, std::equal_to<>> exact_;
  std::vector<std::pair<std::string, std::uint8_t>> prefixes_;
  std::vector<std::pair<std::string, std::uint8_t>> globs_;
};

}  // namespace proxy
