#include "policy/json_structure.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace proxy::policy {
namespace {

using config::PolicyMode;

// `key`, whose length the caller checked, is `word`: a fixed-size compare the compiler turns
// into a load or two (string_view's == was a call per name).
template <std::size_t N>
[[gnu::always_inline]] inline bool is_word(std::string_view key, const char (&word)[N]) {
  return std::memcmp(key.data(), word, N - 1) == 0;
}

// The GenAI / OpenAI names, and Koog's "tool" (the tool's name in its node inputs and outputs).
// Asked for every scalar member's key: the length picks the one or few names to compare.
[[gnu::always_inline]] inline bool is_builtin_structural_key(std::string_view key) {
  switch (key.size()) {
    case 2: return is_word(key, "id");
    case 4: return is_word(key, "role") || is_word(key, "type") || is_word(key, "name") || is_word(key, "tool");
    case 5: return is_word(key, "model");
    case 12: return is_word(key, "tool_call_id");
    case 13: return is_word(key, "finish_reason");
    default: return false;
  }
}

// One comparison for the usual case, a byte past ' '.
bool is_space(char c) {
  return static_cast<unsigned char>(c) <= ' ' && (c == ' ' || c == '\t' || c == '\n' || c == '\r');
}

// is_structural_key, here to be inlined into the walk, which asks it of every scalar member.
[[gnu::always_inline]] inline bool is_structural(const StructureOptions& options, std::string_view key) {
  return is_builtin_structural_key(key) ||
         (options.structural_keys != nullptr && options.structural_keys->find(key) != nullptr);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// What a byte is to the walker between tokens.
enum ByteClass : std::uint8_t { kOther, kSpace };

constexpr std::array<ByteClass, 256> make_byte_classes() {
  std::array<ByteClass, 256> classes{};
  for (const char c : {' ', '\t', '\n', '\r'}) classes[static_cast<unsigned char>(c)] = kSpace;
  return classes;
}

constexpr std::array<ByteClass, 256> kByteClass = make_byte_classes();

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

#if defined(__SSE2__)
// Bit k set: byte k of the 16 at `p` is '"', '\\', a control byte or, with `non_ascii`, >= 0x80.
[[gnu::always_inline]] inline unsigned special_bits(const char* p, bool non_ascii) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i quote = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
  // As signed bytes, control bytes and bytes >= 0x80 are both below 0x20: one comparison.
  const __m128i low = non_ascii ? _mm_cmplt_epi8(v, _mm_set1_epi8(0x20))
                                : _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x1F)), _mm_set1_epi8(0x1F));
  return static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(quote, low)));
}

// The first special byte in the 64 at `p` (see special_bits), or null: long texts are scanned
// with one test per 64 bytes.
[[gnu::always_inline]] inline const char* special_in_64(const char* p, bool non_ascii) {
  const std::uint64_t bits = special_bits(p, non_ascii) | std::uint64_t{special_bits(p + 16, non_ascii)} << 16 |
                             std::uint64_t{special_bits(p + 32, non_ascii)} << 32 |
                             std::uint64_t{special_bits(p + 48, non_ascii)} << 48;
  return bits != 0 ? p + __builtin_ctzll(bits) : nullptr;
}
#endif

// The first byte in [p, end) that a JSON string cannot hold as it is: '"', '\\' or a control
// byte; with `non_ascii`, also the first byte >= 0x80 (for a UTF-8 check). `end` when none.
// `begin` is where the text starts: the last partial block is read as the text's last 16 bytes.
[[gnu::always_inline]] inline const char* find_special(const char* p, const char* begin, const char* end,
                                                       bool non_ascii) {
#if defined(__SSE2__)
  // Keys and short values end in their first 16 bytes; long texts go on 64 bytes at a time.
  if (end - p >= 16) {
    if (const unsigned bits = special_bits(p, non_ascii); bits != 0) return p + __builtin_ctz(bits);
    p += 16;
  }
  for (; end - p >= 64; p += 64) {
    if (const char* special = special_in_64(p, non_ascii); special != nullptr) return special;
  }
  for (; end - p >= 16; p += 16) {
    if (const unsigned bits = special_bits(p, non_ascii); bits != 0) return p + __builtin_ctz(bits);
  }
  if (p < end && end - begin >= 16) {
    const char* last = end - 16;  // before p: bytes already scanned, shifted out
    const unsigned bits = special_bits(last, non_ascii) >> (p - last);
    return bits != 0 ? p + __builtin_ctz(bits) : end;
  }
#endif
  for (; p < end; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if (c == '"' || c == '\\' || c < 0x20 || (non_ascii && c >= 0x80)) return p;
  }
  return end;
}

std::size_t next_special(std::string_view text, std::size_t i, bool non_ascii) {
  const char* begin = text.data();
  return static_cast<std::size_t>(find_special(begin + i, begin, begin + text.size(), non_ascii) - begin);
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

// looks_like_json for a string leaf, which mostly starts with a letter: one look-up decides.
[[gnu::always_inline]] inline bool starts_like_json(std::string_view text) {
  if (text.empty()) return false;
  const char first = text.front();
  if (first == '{' || first == '[') return true;
  return kByteClass[static_cast<unsigned char>(first)] == kSpace && looks_like_json(text);
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
      : in_(in),
        options_(options),
        rewriter_(rewriter),
        out_(out),
        level_(level),
        scratch_(scratch()),
        max_depth_(std::min(options.max_depth, kMaxStructureDepth)) {
    out_.reserve(out_.size() + in_.size());  // masked text is mostly shorter than the text
  }

  Fallback run(PolicyMode mode, unsigned depth) {
    mode_ = mode;
    base_depth_ = depth;
    const char* p = values(skip_space(begin_));
    if (p == nullptr) return error_;
    p = skip_space(p);
    if (p != end_) return Fallback::not_json;
    flush(p);
    return Fallback::none;
  }

  const std::array<std::uint32_t, kFallbackCount>& nested_fallbacks() const { return nested_fallbacks_; }
  std::uint32_t rewritten() const { return rewritten_; }

 private:
  // An open container: the byte that closes it, and the mode of the values around it (back in
  // force once it closes).
  struct Frame {
    char closing;
    PolicyMode outer;
  };

  // The token functions take the position and return the one after what they read, or null at
  // an error (flagged): the position stays in a register through the walk.
  const char* fail(Fallback why) {
    error_ = why;
    return nullptr;
  }
  char at(const char* p) const { return p != end_ ? *p : '\0'; }
  // The output is the input less the whitespace between tokens, with rewritten leaves replaced:
  // what stays is copied in runs, each when the output is about to differ from the input.
  void flush(const char* end) {
    out_.append(copied_, end);
    copied_ = end;
  }
  // Compact JSON has no whitespace between tokens: one table look-up, the run out of line.
  [[gnu::always_inline]] const char* skip_space(const char* p) {
    return p != end_ && kByteClass[static_cast<unsigned char>(*p)] == kSpace ? space_run(p) : p;
  }
  [[gnu::noinline]] const char* space_run(const char* p) {
    flush(p);
    while (p != end_ && kByteClass[static_cast<unsigned char>(*p)] == kSpace) ++p;
    copied_ = p;
    return p;
  }

  // The walk, one loop: each step reads a value (a scalar, or a container's opening) and moves
  // on to the next one. The open containers are on frames_, not on the call stack. Returns the
  // position after the text's value, or null.
  const char* values(const char* p) {
    do {
      p = value(p);
    } while (p != nullptr);
    return error_ == Fallback::none ? done_ : nullptr;
  }

  // The nesting level of the value at hand (the text itself is at base_depth_).
  unsigned depth() const { return base_depth_ + open_; }

  // The value at `p` (whitespace before it skipped here: compact JSON has none); returns the
  // position of the next value, or null (done_ set when the text's value is complete).
  [[gnu::always_inline]] const char* value(const char* p) {
    // Tests in the order of how often each comes, not a jump table: an indirect jump on the
    // kind of every value mispredicts more than these do.
    for (;;) {
      const char c = at(p);
      if (c == '"') return next_value(string_leaf(p));
      if (c == '{') return open(p, true);
      if (c == '[') return open(p, false);
      if (c == 't') return next_value(literal(p, "true"));
      if (c == 'f') return next_value(literal(p, "false"));
      if (c == 'n') return next_value(null(p));
      if (kByteClass[static_cast<unsigned char>(c)] != kSpace) return next_value(number(p));
      p = space_run(p);
    }
  }

  // At '{' or '[': the container is entered; returns its first value's position (its key read),
  // or, when it is empty, closes it and moves on.
  const char* open(const char* p, bool object) {
    const PolicyMode own = object ? selected_mode(p, mode_) : mode_;
    if (depth() > max_depth_) return fail(Fallback::too_deep);
    const char closing = object ? '}' : ']';
    frames_[open_++] = {closing, mode_};
    mode_ = own;
    p = skip_space(p + 1);
    if (at(p) == closing) return next_value(close(p));
    return member_start(p, object);
  }

  const char* close(const char* p) {
    mode_ = frames_[--open_].outer;
    return p + 1;
  }

  // After a value that ended at `p` (null: it failed): closes what ends here; the position of
  // the next value (its key read) after a ','; null when the text's value is complete (done_
  // holds where) or at an error (flagged).
  [[gnu::always_inline]] const char* next_value(const char* p) {
    if (p == nullptr) return nullptr;
    while (open_ > 0) {
      const char c = at(p);
      const char closing = frames_[open_ - 1].closing;
      if (c == ',') return member_start(p + 1, closing == '}');
      if (c == closing) {
        p = close(p);
      } else {
        if (kByteClass[static_cast<unsigned char>(c)] != kSpace) return fail(Fallback::not_json);
        p = space_run(p);
      }
    }
    done_ = p;
    return nullptr;
  }

  // A member's key and ':' in an object; no key in an array.
  [[gnu::always_inline]] const char* member_start(const char* p, bool object) {
    key_ = {};
    return object ? member_key(p) : p;
  }

  // The key and ':' at `p`; the value's position. Whitespace is looked for only where the
  // expected byte is not.
  [[gnu::always_inline]] const char* member_key(const char* p) {
    if (at(p) != '"') p = skip_space(p);
    if (at(p) != '"') return fail(Fallback::not_json);
    const char* start = p;
    p = string_end(p);
    if (p == nullptr) return nullptr;
    key_ = std::string_view(start + 1, static_cast<std::size_t>(p - start - 2));
    if (!copyable(key_)) return fail(Fallback::invalid_utf8);
    if (at(p) != ':') p = skip_space(p);
    if (at(p) != ':') return fail(Fallback::not_json);
    return p + 1;
  }

  // Asked only of scalars: a container's key changes nothing.
  [[gnu::always_inline]] bool structural() const { return !key_.empty() && is_structural(options_, key_); }

  PolicyMode selected_mode(const char* p, PolicyMode mode) const {
    if (options_.roles.empty() && options_.parts.empty()) return mode;
    const Members members = scan_members(offset(p));
    if (const auto* part = find_selector(options_.parts, members.type)) return part->mode;
    if (const auto* role = find_selector(options_.roles, members.role)) return role->mode;
    return mode;
  }

  // Finds the own "role" and "type" string members of the object at `open`; a light scan that
  // trusts the walk after it to reject malformed input.
  Members scan_members(std::size_t open) const {
    Members members;
    std::size_t i = open + 1;
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

  std::size_t offset(const char* p) const { return static_cast<std::size_t>(p - begin_); }

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

  // Past the string token at `p`, its escapes and its UTF-8 checked; null (flagged) when it is not
  // valid. Notes whether it holds escapes: most strings have none and are used as written.
  [[gnu::always_inline]] const char* string_end(const char* p) {
    ++p;
    escaped_ = false;
    for (;;) {
      p = find_special(p, begin_, end_, true);
      if (p == end_) return fail(Fallback::not_json);
      if (*p == '"') return p + 1;
      p = special_in_string(p);
      if (p == nullptr) return nullptr;
    }
  }

  // At a byte >= 0x80, a backslash or a control byte inside a string: past the UTF-8 sequence or
  // escape, or null.
  const char* special_in_string(const char* p) {
    const auto c = static_cast<unsigned char>(*p);
    if (c >= 0x80) {
      const std::size_t length = utf8_sequence(in_, offset(p));
      return length != 0 ? p + length : fail(Fallback::invalid_utf8);
    }
    if (c != '\\') return fail(Fallback::not_json);
    escaped_ = true;
    return escape_end(p + 1);
  }

  // Past the escape whose letter is at `p`, or null.
  const char* escape_end(const char* p) {
    if (p == end_) return fail(Fallback::not_json);
    if (*p != 'u') {
      return std::string_view("\"\\/bfnrt").find(*p) != std::string_view::npos ? p + 1 : fail(Fallback::not_json);
    }
    if (end_ - p <= 4) return fail(Fallback::not_json);
    for (int k = 1; k <= 4; ++k) {
      if (!std::isxdigit(static_cast<unsigned char>(p[k]))) return fail(Fallback::not_json);
    }
    return p + 5;
  }

  [[gnu::always_inline]] const char* string_leaf(const char* p) {
    const char* start = p;
    p = string_end(p);
    if (p == nullptr) return nullptr;
    const std::string_view text(start + 1, static_cast<std::size_t>(p - start - 2));
    if (mode_ == PolicyMode::verbose || structural()) return copyable(text) ? p : fail(Fallback::invalid_utf8);
    return rewrite_leaf(start, p, text);
  }

  // The string leaf from `start` to `end`, whose inside is `text` as written.
  const char* rewrite_leaf(const char* start, const char* end, std::string_view text) {
    if (escaped_) {
      std::string& unescaped = scratch_.unescaped[level_];
      if (!unescape(text, unescaped)) return fail(Fallback::invalid_utf8);
      text = unescaped;
    }
    if (level_ == 0 && starts_like_json(text) && nested(text, start, end)) return end;
    leaf_text(text, start, end);
    return end;
  }

  // The string just scanned, copied as written, must not carry a lone surrogate escape
  // ("\\ud83d"): strict JSON readers refuse it.
  bool copyable(std::string_view text) { return !escaped_ || unescape(text, scratch_.unescaped[level_]); }

  // A string holding JSON, walked once more and written back as a string.
  bool nested(std::string_view text, const char* start, const char* end) {
    std::string& inner = scratch_.nested;
    inner.clear();
    const StructureResult result = walk(text, mode_, options_, rewriter_, inner, depth(), 1);
    if (result.fallback != Fallback::none) {
      ++nested_fallbacks_[static_cast<std::size_t>(result.fallback)];
      return false;
    }
    rewritten_ += result.rewritten;
    flush(start);
    out_ += '"';
    append_escaped(out_, inner);
    out_ += '"';
    copied_ = end;
    return true;
  }

  // The replacement of the string leaf from `start` to `end` goes straight into the output.
  void leaf_text(std::string_view text, const char* start, const char* end) {
    if (text.empty()) return;
    flush(start);
    out_ += '"';
    const std::size_t from = out_.size();
    if (!rewriter_.rewrite(mode_, key_, text, out_)) {
      out_.resize(from - 1);  // kept: copied as written with the run around it
      return;
    }
    escape_tail(from);
    out_ += '"';
    copied_ = end;
    ++rewritten_;
  }

  // Escapes what the rewriter appended from `from` on, if it holds a byte that needs it (rare:
  // a truncated or redacted text with quotes or newlines).
  void escape_tail(std::size_t from) {
    const char* written_end = out_.data() + out_.size();
    if (find_special(out_.data() + from, out_.data() + from, written_end, false) == written_end) return;
    const std::string_view written = std::string_view(out_).substr(from);
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

  bool starts_with(const char* p, std::string_view word) const {
    return std::string_view(p, static_cast<std::size_t>(end_ - p)).starts_with(word);
  }

  const char* literal(const char* p, std::string_view word) {
    if (!starts_with(p, word)) return fail(Fallback::not_json);
    if (word[0] == 't' && zeroes_scalars(mode_) && !structural()) replace_scalar(p, p + 4, "false");
    return p + word.size();
  }

  // null is kept whatever the mode and the key.
  const char* null(const char* p) { return starts_with(p, "null") ? p + 4 : fail(Fallback::not_json); }

  // The scalar from `start` to `end` is written as `with`.
  void replace_scalar(const char* start, const char* end, std::string_view with) {
    flush(start);
    out_.append(with);
    copied_ = end;
    ++rewritten_;
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  const char* number(const char* start) {
    const char* p = start;
    if (at(p) == '-') ++p;
    if (at(p) == '0') ++p;
    else if (!digits(p)) return fail(Fallback::not_json);
    if (at(p) == '.' && !digits(++p)) return fail(Fallback::not_json);
    if (at(p) == 'e' || at(p) == 'E') {
      ++p;
      if (at(p) == '+' || at(p) == '-') ++p;
      if (!digits(p)) return fail(Fallback::not_json);
    }
    const bool zero = p - start == 1 && *start == '0';
    if (!zero && zeroes_scalars(mode_) && !structural()) replace_scalar(start, p, "0");
    return p;
  }

  // Moves `p` past a run of digits; false when there is none.
  bool digits(const char*& p) const {
    const char* start = p;
    while (is_digit(at(p))) ++p;
    return p > start;
  }

  std::string_view in_;
  const StructureOptions& options_;
  const LeafRewriter& rewriter_;
  std::string& out_;
  unsigned level_;
  Scratch& scratch_;
  unsigned max_depth_;
  const char* begin_ = in_.data();
  const char* end_ = in_.data() + in_.size();
  const char* copied_ = in_.data();  // the input before this is in the output (or left out)
  const char* done_ = nullptr;       // where the text's value ended
  bool escaped_ = false;             // the string last scanned holds escapes
  Fallback error_ = Fallback::none;
  PolicyMode mode_ = PolicyMode::verbose;  // the mode of the value at hand
  std::string_view key_;                   // its key as written; empty in an array
  unsigned base_depth_ = 1;
  unsigned open_ = 0;
  std::array<Frame, kMaxStructureDepth + 1> frames_;  // depth 0 to kMaxStructureDepth
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
