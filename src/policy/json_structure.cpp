#include "policy/json_structure.hpp"

#include <algorithm>
#include <cctype>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace proxy::policy {
namespace {

using config::PolicyMode;

// The GenAI / OpenAI names, and Koog's "tool" (the tool's name in its node inputs and outputs).
// Asked for every member's key: the length picks the one or few names to compare.
bool is_builtin_structural_key(std::string_view key) {
  switch (key.size()) {
    case 2: return key == "id";
    case 4: return key == "role" || key == "type" || key == "name" || key == "tool";
    case 5: return key == "model";
    case 12: return key == "tool_call_id";
    case 13: return key == "finish_reason";
    default: return false;
  }
}

// One comparison for the usual case, a byte past ' '.
bool is_space(char c) {
  return static_cast<unsigned char>(c) <= ' ' && (c == ' ' || c == '\t' || c == '\n' || c == '\r');
}

// is_structural_key, here to be inlined into the walk, which asks it of every member.
inline bool is_structural(const StructureOptions& options, std::string_view key) {
  return is_builtin_structural_key(key) ||
         (options.structural_keys != nullptr && options.structural_keys->find(key) != nullptr);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
           return lower(x) == lower(y);
         });
}

// Length of the UTF-8 sequence starting at `i`, 0 when it is not valid (overlong forms,
// surrogates and code points past U+10FFFF included).
std::size_t utf8_sequence(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  std::size_t length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC2 ? 2 : 0;
  if (length == 0 || lead > 0xF4 || i + length > text.size()) return 0;
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  const unsigned char second = byte(i + 1);
  if (lead == 0xE0 && second < 0xA0) return 0;  // overlong
  if (lead == 0xED && second >= 0xA0) return 0;  // UTF-16 surrogate
  if (lead == 0xF0 && second < 0x90) return 0;  // overlong
  if (lead == 0xF4 && second >= 0x90) return 0;  // past U+10FFFF
  return length;
}

// Past the ASCII run starting at `i`, 16 bytes per step with SSE2 (every x86-64), else 8.
std::size_t skip_ascii(std::string_view text, std::size_t i) {
#if defined(__SSE2__)
  while (i + 16 <= text.size()) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(text.data() + i));
    if (_mm_movemask_epi8(v) != 0) return i;
    i += 16;
  }
#endif
  while (i + 8 <= text.size()) {
    std::uint64_t word = 0;
    std::copy_n(text.data() + i, 8, reinterpret_cast<char*>(&word));
    if (word & 0x8080808080808080ULL) return i;
    i += 8;
  }
  return i;
}

// The first byte at or after `i` that a JSON string cannot hold as it is: '"', '\\' or a control
// byte; with `non_ascii`, also the first byte >= 0x80 (for a UTF-8 check). text.size() when none.
std::size_t next_special(std::string_view text, std::size_t i, bool non_ascii) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i control = _mm_set1_epi8(0x1F);
  const int high = non_ascii ? 0xFFFF : 0;
  while (i + 16 <= text.size()) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(text.data() + i));
    const __m128i low = _mm_cmpeq_epi8(_mm_max_epu8(v, control), control);  // v <= 0x1F
    const __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)), low);
    if (const int mask = _mm_movemask_epi8(hit) | (_mm_movemask_epi8(v) & high); mask != 0) {
      return i + static_cast<std::size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
    }
    i += 16;
  }
#endif
  for (; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\' || c < 0x20 || (non_ascii && c >= 0x80)) return i;
  }
  return text.size();
}

bool valid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    i = skip_ascii(text, i);  // ASCII runs are the common case
    if (i >= text.size()) break;
    const std::size_t length = utf8_sequence(text, i);
    if (length == 0) return false;
    i += length;
  }
  return true;
}

void append_utf8(std::string& out, std::uint32_t code) {
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xC0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else if (code < 0x10000) {
    out += static_cast<char>(0xE0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code >> 18));
    out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  }
}

// Appends `text` as the inside of a JSON string: quotes, backslashes and control bytes escaped,
// everything else (UTF-8 included) as it is, in runs.
void append_escaped(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::size_t run = 0;
  for (std::size_t i = next_special(text, 0, false); i < text.size(); i = next_special(text, run, false)) {
    const auto c = static_cast<unsigned char>(text[i]);
    out.append(text.substr(run, i - run));
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 0x0F];
    }
  }
  out.append(text.substr(run));
}

bool zeroes_scalars(PolicyMode mode) {
  return mode == PolicyMode::mask || mode == PolicyMode::hash || mode == PolicyMode::hmac;
}

// Scratch buffers per nesting level (the text itself, a string inside it): reused, so a walk
// allocates nothing once they have grown to the largest value seen.
struct Scratch {
  std::string unescaped[2];
  std::string nested;
  std::string replacement;
};

Scratch& scratch() {
  thread_local Scratch buffers;
  return buffers;
}

// The "role" and "type" string values among an object's own members, found ahead of the walk so
// a selector applies to members written before them. Raw (escapes kept): a role with escapes is
// not one a selector names.
struct Members {
  std::string_view role;
  std::string_view type;
};

StructureResult walk(std::string_view text, PolicyMode mode, const StructureOptions& options,
                     const LeafRewriter& rewriter, std::string& out, unsigned depth, unsigned level);

class Walker {
 public:
  Walker(std::string_view in, const StructureOptions& options, const LeafRewriter& rewriter,
         std::string& out, unsigned level)
      : in_(in), options_(options), rewriter_(rewriter), out_(out), level_(level), scratch_(scratch()) {
    out_.reserve(out_.size() + in_.size());  // masked text is mostly shorter than the text
  }

  Fallback run(PolicyMode mode, unsigned depth) {
    skip_space();
    if (!value(mode, depth, {}, false)) return error_;
    skip_space();
    if (pos_ != in_.size()) return Fallback::not_json;
    flush(pos_);
    return Fallback::none;
  }

  const std::array<std::uint32_t, kFallbackCount>& nested_fallbacks() const { return nested_fallbacks_; }
  std::uint32_t rewritten() const { return rewritten_; }

 private:
  bool fail(Fallback why) {
    error_ = why;
    return false;
  }
  bool at_end() const { return pos_ >= in_.size(); }
  char peek() const { return at_end() ? '\0' : in_[pos_]; }
  // The output is the input less the whitespace between tokens, with rewritten leaves replaced:
  // what stays is copied in runs, each when the output is about to differ from the input.
  void flush(std::size_t end) {
    out_.append(in_.data() + copied_, end - copied_);
    copied_ = end;
  }
  void skip_space() {
    if (at_end() || !is_space(in_[pos_])) return;
    flush(pos_);
    while (!at_end() && is_space(in_[pos_])) ++pos_;
    copied_ = pos_;
  }

  bool value(PolicyMode mode, unsigned depth, std::string_view key, bool structural) {
    // Tests in the order of how often each comes, not a jump table: an indirect jump on the
    // kind of every value mispredicts more than these do.
    const char c = peek();
    if (c == '"') return string_leaf(mode, depth, key, structural);
    if (c == '{') return object(mode, depth);
    if (c == '[') return array(mode, depth);
    if (c == 't') return literal("true", mode, structural);
    if (c == 'f') return literal("false", mode, structural);
    if (c == 'n') return literal("null", PolicyMode::verbose, true);
    return number(mode, structural);
  }

  bool enter(unsigned depth) {
    if (depth > options_.max_depth) return fail(Fallback::too_deep);
    ++pos_;
    skip_space();
    return true;
  }

  bool object(PolicyMode mode, unsigned depth) {
    const PolicyMode own = selected_mode(mode);
    if (!enter(depth)) return false;
    if (peek() == '}') return close();
    for (;;) {
      if (peek() != '"') return fail(Fallback::not_json);
      const std::size_t key_start = pos_;
      if (!string_end()) return false;
      const std::string_view key = in_.substr(key_start + 1, pos_ - key_start - 2);
      if (!copyable(key)) return fail(Fallback::invalid_utf8);
      skip_space();
      if (peek() != ':') return fail(Fallback::not_json);
      ++pos_;
      skip_space();
      if (!value(own, depth + 1, key, !key.empty() && is_structural(options_, key))) return false;
      if (!next_member('}')) return !error_flagged() && close();
    }
  }

  bool array(PolicyMode mode, unsigned depth) {
    if (!enter(depth)) return false;
    if (peek() == ']') return close();
    for (;;) {
      if (!value(mode, depth + 1, {}, false)) return false;
      if (!next_member(']')) return !error_flagged() && close();
    }
  }

  // After a member: true at a ',' (consumed, more follow), false at the closing bracket or an
  // error (flagged).
  bool next_member(char closing) {
    skip_space();
    if (peek() == ',') {
      ++pos_;
      skip_space();
      return true;
    }
    if (peek() != closing) error_ = Fallback::not_json;
    return false;
  }
  bool error_flagged() const { return error_ != Fallback::none; }
  bool close() {
    ++pos_;
    return true;
  }

  PolicyMode selected_mode(PolicyMode mode) const {
    if (options_.roles.empty() && options_.parts.empty()) return mode;
    const Members members = scan_members();
    if (const auto* part = find_selector(options_.parts, members.type)) return part->mode;
    if (const auto* role = find_selector(options_.roles, members.role)) return role->mode;
    return mode;
  }

  // Finds the object's own "role" and "type" string members; a light scan that trusts the walk
  // after it to reject malformed input.
  Members scan_members() const {
    Members members;
    std::size_t i = pos_ + 1;
    int depth = 1;
    bool key_next = true;
    while (i < in_.size() && depth > 0) {
      const char c = in_[i];
      if (c == '"') {
        const std::size_t end = raw_string_end(i);
        if (end == std::string_view::npos) break;
        if (depth == 1 && key_next) i = scan_member(i, end, members);
        else i = end;
        key_next = false;
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      else if (c == '}' || c == ']') --depth;
      else if (c == ',' && depth == 1) key_next = true;
      ++i;
    }
    return members;
  }

  // One member whose key spans [start, end): records role/type; returns where scanning goes on.
  std::size_t scan_member(std::size_t start, std::size_t end, Members& members) const {
    const std::string_view key = in_.substr(start + 1, end - start - 2);
    std::size_t i = end;
    while (i < in_.size() && (is_space(in_[i]) || in_[i] == ':')) ++i;
    if (i >= in_.size() || in_[i] != '"' || (key != "role" && key != "type")) return i;
    const std::size_t value_end = raw_string_end(i);
    if (value_end == std::string_view::npos) return in_.size();
    (key == "role" ? members.role : members.type) = in_.substr(i + 1, value_end - i - 2);
    return value_end;
  }

  // Just past the closing quote of the string starting at `start`, or npos.
  std::size_t raw_string_end(std::size_t start) const {
    for (std::size_t i = start + 1; i < in_.size(); ++i) {
      if (in_[i] == '\\') ++i;
      else if (in_[i] == '"') return i + 1;
    }
    return std::string_view::npos;
  }

  // Moves past a string token, checking its escapes and its UTF-8; false (flagged) when it is not
  // valid. Notes whether it holds escapes: most strings have none and are used as written.
  bool string_end() {
    ++pos_;
    escaped_ = false;
    for (;;) {
      pos_ = next_special(in_, pos_, true);
      if (at_end()) return fail(Fallback::not_json);
      const auto c = static_cast<unsigned char>(in_[pos_]);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c >= 0x80) {
        const std::size_t length = utf8_sequence(in_, pos_);
        if (length == 0) return fail(Fallback::invalid_utf8);
        pos_ += length;
        continue;
      }
      if (c != '\\') return fail(Fallback::not_json);
      if (!valid_escape()) return false;
      escaped_ = true;
      ++pos_;
    }
  }

  // At a backslash: leaves pos_ on the escape's last character.
  bool valid_escape() {
    ++pos_;
    if (at_end()) return fail(Fallback::not_json);
    const char e = in_[pos_];
    if (e != 'u') {
      return std::string_view("\"\\/bfnrt").find(e) != std::string_view::npos || fail(Fallback::not_json);
    }
    if (pos_ + 4 >= in_.size()) return fail(Fallback::not_json);
    for (int k = 1; k <= 4; ++k) {
      if (!std::isxdigit(static_cast<unsigned char>(in_[pos_ + k]))) return fail(Fallback::not_json);
    }
    pos_ += 4;
    return true;
  }

  bool string_leaf(PolicyMode mode, unsigned depth, std::string_view key, bool structural) {
    const std::size_t start = pos_;
    if (!string_end()) return false;
    std::string_view text = in_.substr(start + 1, pos_ - start - 2);
    if (structural || mode == PolicyMode::verbose) return copyable(text) || fail(Fallback::invalid_utf8);
    if (escaped_) {
      std::string& unescaped = scratch_.unescaped[level_];
      if (!unescape(text, unescaped)) return fail(Fallback::invalid_utf8);
      text = unescaped;
    }
    if (level_ == 0 && looks_like_json(text) && nested(text, mode, depth, start)) return true;
    return leaf_text(mode, key, text, start);
  }

  // The string just scanned, copied as written, must not carry a lone surrogate escape
  // ("\\ud83d"): strict JSON readers refuse it.
  bool copyable(std::string_view text) { return !escaped_ || unescape(text, scratch_.unescaped[level_]); }

  // A string holding JSON, walked once more and written back as a string.
  bool nested(std::string_view text, PolicyMode mode, unsigned depth, std::size_t start) {
    std::string& inner = scratch_.nested;
    inner.clear();
    const StructureResult result = walk(text, mode, options_, rewriter_, inner, depth, 1);
    if (result.fallback != Fallback::none) {
      ++nested_fallbacks_[static_cast<std::size_t>(result.fallback)];
      return false;
    }
    rewritten_ += result.rewritten;
    flush(start);
    out_ += '"';
    append_escaped(out_, inner);
    out_ += '"';
    copied_ = pos_;
    return true;
  }

  // The replacement of the string leaf starting at `start` goes straight into the output.
  bool leaf_text(PolicyMode mode, std::string_view key, std::string_view text, std::size_t start) {
    if (text.empty()) return true;
    flush(start);
    out_ += '"';
    const std::size_t from = out_.size();
    if (!rewriter_.rewrite(mode, key, text, out_)) {
      out_.resize(from - 1);  // kept: copied as written with the run around it
      return true;
    }
    escape_tail(from);
    out_ += '"';
    copied_ = pos_;
    ++rewritten_;
    return true;
  }

  // Escapes what the rewriter appended from `from` on, if it holds a byte that needs it (rare:
  // a truncated or redacted text with quotes or newlines).
  void escape_tail(std::size_t from) {
    const std::string_view written = std::string_view(out_).substr(from);
    if (next_special(written, 0, false) == written.size()) return;
    std::string& replacement = scratch_.replacement;
    replacement.assign(written);
    out_.resize(from);
    append_escaped(out_, replacement);
  }

  // JSON string escapes to UTF-8; false for a lone surrogate.
  static bool unescape(std::string_view text, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] != '\\') {
        out += text[i];
        continue;
      }
      const char e = text[++i];
      if (e != 'u') {
        out += simple_escape(e);
        continue;
      }
      std::uint32_t code = hex4(text.substr(i + 1, 4));
      i += 4;
      if (code >= 0xDC00 && code <= 0xDFFF) return false;
      if (code >= 0xD800 && code <= 0xDBFF) {
        if (text.substr(i + 1, 2) != "\\u") return false;
        const std::uint32_t low = hex4(text.substr(i + 3, 4));
        if (low < 0xDC00 || low > 0xDFFF) return false;
        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
        i += 6;
      }
      append_utf8(out, code);
    }
    return true;
  }

  static char simple_escape(char e) {
    switch (e) {
      case 'b': return '\b';
      case 'f': return '\f';
      case 'n': return '\n';
      case 'r': return '\r';
      case 't': return '\t';
      default: return e;  // '"', '\\', '/'
    }
  }

  static std::uint32_t hex4(std::string_view digits) {
    std::uint32_t code = 0;
    for (char c : digits) {
      const auto d = static_cast<unsigned char>(c);
      code = code * 16 + (is_digit(c) ? d - '0' : (d | 0x20) - 'a' + 10);
    }
    return code;
  }

  bool literal(std::string_view word, PolicyMode mode, bool structural) {
    if (in_.substr(pos_, word.size()) != word) return fail(Fallback::not_json);
    const std::size_t start = pos_;
    pos_ += word.size();
    if (!structural && zeroes_scalars(mode) && word == "true") replace_scalar(start, "false");
    return true;
  }

  // The scalar from `start` to here is written as `with`.
  void replace_scalar(std::size_t start, std::string_view with) {
    flush(start);
    out_.append(with);
    copied_ = pos_;
    ++rewritten_;
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  bool number(PolicyMode mode, bool structural) {
    const std::size_t start = pos_;
    if (peek() == '-') ++pos_;
    if (peek() == '0') ++pos_;
    else if (!digits()) return fail(Fallback::not_json);
    if (peek() == '.' && (++pos_, !digits())) return fail(Fallback::not_json);
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!digits()) return fail(Fallback::not_json);
    }
    if (!structural && zeroes_scalars(mode) && in_.substr(start, pos_ - start) != "0") replace_scalar(start, "0");
    return true;
  }

  bool digits() {
    const std::size_t start = pos_;
    while (is_digit(peek())) ++pos_;
    return pos_ > start;
  }

  std::string_view in_;
  const StructureOptions& options_;
  const LeafRewriter& rewriter_;
  std::string& out_;
  unsigned level_;
  Scratch& scratch_;
  std::size_t pos_ = 0;
  std::size_t copied_ = 0;  // the input before this offset is in the output (or left out)
  bool escaped_ = false;    // the string last scanned holds escapes
  Fallback error_ = Fallback::none;
  std::array<std::uint32_t, kFallbackCount> nested_fallbacks_{};
  std::uint32_t rewritten_ = 0;
};

// `level` 0 is the attribute's text, 1 a string inside it (walked no deeper).
StructureResult walk(std::string_view text, PolicyMode mode, const StructureOptions& options,
                     const LeafRewriter& rewriter, std::string& out, unsigned depth, unsigned level) {
  if (!looks_like_json(text)) return {Fallback::not_json, {}};
  if (text.size() > options.max_bytes) return {Fallback::too_large, {}};
  const std::size_t mark = out.size();
  Walker walker(text, options, rewriter, out, level);
  const Fallback fallback = walker.run(mode, depth);
  if (fallback == Fallback::none) return {fallback, walker.nested_fallbacks(), walker.rewritten()};
  out.resize(mark);
  // UTF-8 is checked as strings are scanned, so only as far as the walk got: invalid UTF-8
  // anywhere is the reason given, with nothing inside counted, as when it was checked first.
  if (level == 0 && !valid_utf8(text)) return {Fallback::invalid_utf8, {}};
  return {fallback, walker.nested_fallbacks(), walker.rewritten()};
}

}  // namespace

std::string_view fallback_name(Fallback fallback) {
  switch (fallback) {
    case Fallback::none: return "none";
    case Fallback::not_json: return "not_json";
    case Fallback::too_deep: return "too_deep";
    case Fallback::too_large: return "too_large";
    case Fallback::invalid_utf8: return "invalid_utf8";
  }
  return "none";
}

const config::ModeByName* find_selector(std::span<const config::ModeByName> selectors,
                                      std::string_view name) {
  for (const config::ModeByName& selector : selectors) {
    if (equals_ignoring_case(selector.name, name)) return &selector;
  }
  return nullptr;
}

bool looks_like_json(std::string_view text) {
  const auto first = std::find_if_not(text.begin(), text.end(), is_space);  // asked of every leaf
  return first != text.end() && (*first == '{' || *first == '[');
}

bool is_structural_key(const StructureOptions& options, std::string_view key) {
  return is_structural(options, key);
}

StructureResult rewrite_structure(std::string_view text, PolicyMode mode, const StructureOptions& options,
                                  const LeafRewriter& rewriter, std::string& out, unsigned depth) {
  return walk(text, mode, options, rewriter, out, depth, 0);
}

}  // namespace proxy::policy
