#include "common/glob.hpp"

namespace proxy {

bool glob_match(std::string_view pattern, std::string_view text) {
  // Greedy with one backtrack point: linear in practice, never exponential.
  std::size_t p = 0;
  std::size_t t = 0;
  std::size_t star = std::string_view::npos;
  std::size_t resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool is_literal(std::string_view pattern) {
  return pattern.find_first_of("*?") == std::string_view::npos;
}

void GlobTable::add(std::string_view pattern, std::uint8_t tag) {
  if (is_literal(pattern)) {
    exact_.emplace(std::string(pattern), tag);  // the first tag for a key stays
  } else if (pattern.back() == '*' && is_literal(pattern.substr(0, pattern.size() - 1))) {
    prefixes_.emplace_back(std::string(pattern.substr(0, pattern.size() - 1)), tag);
  } else {
    globs_.emplace_back(std::string(pattern), tag);
  }
}

const std::uint8_t* GlobTable::find(std::string_view key) const {
  if (auto it = exact_.find(key); it != exact_.end()) return &it->second;
  for (const auto& [prefix, tag] : prefixes_) {
    if (key.starts_with(prefix)) return &tag;
  }
  for (const auto& [pattern, tag] : globs_) {
    if (glob_match(pattern, key)) return &tag;
  }
  return nullptr;
}

}  // namespace proxy
