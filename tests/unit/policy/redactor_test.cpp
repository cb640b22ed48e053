#include <catch2/catch.hpp>

#include "policy/redactor.hpp"

using namespace proxy;
using namespace proxy::policy;

namespace {

std::string scrub(const Redactor& redactor, std::string_view text, std::size_t* matches = nullptr) {
  std::string out = "prefix:";
  const std::size_t n = redactor.redact(text, out);
  if (matches) *matches = n;
  return n == 0 ? std::string(text) : out.substr(7);
}

}  // namespace

TEST_CASE("Luhn: valid card numbers of 13 to 19 digits, spaces and dashes allowed", "[policy]") {
  CHECK(luhn_valid("4111111111111111"));
  CHECK(luhn_valid("4111 1111 1111 1111"));
  CHECK(luhn_valid("4111-1111-1111-1111"));
  CHECK(luhn_valid("378282246310005"));  // Amex, 15 digits
  CHECK_FALSE(luhn_valid("4111111111111112"));
  CHECK_FALSE(luhn_valid("0000000000"));  // too short, even though the sum is 0
  CHECK_FALSE(luhn_valid("41111111111111110000"));  // 20 digits
}

TEST_CASE("every built-in rule has a name and compiles alone and together", "[policy]") {
  const Redactor redactor({}, true);
  CHECK_FALSE(redactor.empty());
  CHECK(builtin_redaction_rules().size() >= 12);
  CHECK(Redactor({}, false).empty());
}

TEST_CASE("redact leaves the output untouched when nothing matches", "[policy]") {
  const Redactor redactor({}, true);
  std::string out = "kept";
  CHECK(redactor.redact("nothing secret in here, 42 apples", out) == 0);
  CHECK(out == "kept");
}

TEST_CASE("redact counts each replacement and keeps text between matches", "[policy]") {
  const Redactor redactor({}, true);
  std::size_t matches = 0;
  CHECK(scrub(redactor, "to a@b.io, c@d.io; card 4111111111111111.", &matches) ==
        "to [redacted:email], [redacted:email]; card [redacted:card_number].");
  CHECK(matches == 3);
}

TEST_CASE("a candidate card failing Luhn does not hide a valid one after it", "[policy]") {
  const Redactor redactor({}, true);
  CHECK(scrub(redactor, "ref 1234567890123 then 4111 1111 1111 1111") ==
        "ref 1234567890123 then [redacted:card_number]");
}

TEST_CASE("a user pattern that can match empty text never loops", "[policy]") {
  const Redactor redactor({{"digits", "[0-9]*"}}, false);
  CHECK(scrub(redactor, "a1b22c") == "a[redacted:digits]b[redacted:digits]c");
}

TEST_CASE("a user pattern RE2 rejects is a configuration error", "[policy]") {
  CHECK_THROWS_AS(Redactor({{"bad", "(unclosed"}}, false), config::ConfigError);
  // Backreferences would need backtracking: RE2 refuses them, so no input can stall the proxy.
  CHECK_THROWS_AS(Redactor({{"backref", "(a)\\1"}}, false), config::ConfigError);
}

TEST_CASE("redaction stays linear on hostile input", "[policy]") {
  const Redactor redactor({{"evil", "(a+)+b"}}, true);
  const std::string hostile(200000, 'a');
  CHECK(scrub(redactor, hostile) == hostile);
}

TEST_CASE("the prefilter lets every built-in secret through and skips plain prose", "[policy]") {
  for (std::string_view text :
       {"key sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t", "AKIAZ7QW3ERT5YUI9OPL", "AIzaSyB7-kQ9xL2mZ4vT8bW1nC6yH3jP5sD0fG8",
        "ghp_R8x2Kq9LmZ4vT7bW1nC6yH3jP5sD0fG8aE2uI4oQ", "github_pat_11ABCDEFG0123456789abcdef",
        "xoxb-1234567890-abcdef", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqYW5lIn0.c2lnbmF0dXJl",
        "Authorization: BEARER tok_9f8e7d6c5b4a3f2e1d0c", "authorization = 'Basic dXNlcjpwYXNz'",
        "postgres://reporter:Pa55w0rd@db", "PASSWORD\"  = hunter22", "client-secret: abcd",
        "api_key=abcd", "jane.doe@corp-example.com", "4539 1488 0343 6467", "4539-1488-0343-6467",
        "-----BEGIN RSA PRIVATE KEY-----", "pa\xC5\xBF\xC5\xBFword: hunter22",
        "api_\xE2\x84\xAA" "ey: abcd"}) {
    INFO(text);
    CHECK(may_hold_builtin_secret(text));
  }
  for (std::string_view text :
       {"", "the quarterly report covers revenue, costs and hiring.", "[{\"role\":\"user\",\"content\":\"hi\"}]",
        "see https://example.com/path?q=1#x", "call 555 0100 or 12345678", "task list and risk",
        "A KIA car, AIR travel", "@mention me", "key points: growth", "It is 21 degrees - nice",
        "Paris \xE2\x80\x94 sunny"}) {
    INFO(text);
    CHECK_FALSE(may_hold_builtin_secret(text));
  }
}

TEST_CASE("RE2's case folding maps only U+017F and U+212A onto ASCII letters", "[policy]") {
  // The prefilter compares keywords as ASCII; (?i) in RE2 also folds these two code points onto
  // 's' and 'k', which the prefilter therefore lets through. Any other would be a gap.
  const RE2 ascii_letter("(?i)[a-z]");
  std::vector<std::uint32_t> folded;
  for (std::uint32_t cp = 0x80; cp < 0x10000; ++cp) {
    if (cp >= 0xD800 && cp < 0xE000) continue;
    // Appended byte by byte: assigning a braced list here makes GCC 12 at -O3 warn
    // (-Wmaybe-uninitialized, a false positive) and broke the Release build.
    std::string utf8;
    if (cp < 0x800) {
      utf8 += static_cast<char>(0xC0 | (cp >> 6));
    } else {
      utf8 += static_cast<char>(0xE0 | (cp >> 12));
      utf8 += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    }
    utf8 += static_cast<char>(0x80 | (cp & 0x3F));
    if (RE2::FullMatch(utf8, ascii_letter)) folded.push_back(cp);
  }
  CHECK(folded == std::vector<std::uint32_t>{0x017F, 0x212A});
}

TEST_CASE("the prefilter changes no result: random text with and without it", "[policy]") {
  // Fragments of secrets, near misses and the characters the prefilter looks at, glued at random.
  static const std::vector<std::string> fragments{
      "sk-", "sk-proj-", "Ab3dEf6hIj9kLm2nOp5qRs8t", "sk-ant-api03-", "AKIA", "Z7QW3ERT5YUI9OPL", "AIza",
      "SyB7-kQ9xL2mZ4vT8bW1nC6yH3jP5sD0fG8", "ghp_", "github_pat_", "xoxb-", "eyJ", "hbGciOiJIUzI1NiJ9",
      ".", "Bearer ", "bearer  ", "tok_9f8e7d6c5b4a3f2e1d0c", "Authorization", ": ", "=", "Basic ",
      "dXNlcjpwYXNz", "://", "user", ":", "Pa55w0rd", "@", "db.internal", "password", "passwd", "pwd",
      "api_key", "secret", "access-token", "\"", "'", " ", "\n", "jane.doe", "corp-example.com",
      "4539", "1488", "0343", "6467", "-", "0", "7", "-----BEGIN ", "PRIVATE KEY-----", "-----END ",
      "the report", "\xC5\xBF", "\xE2\x84\xAA", "\xE2\x80\x94", "TICKET-", "42"};
  const std::vector<config::RedactPattern> user{{"ticket", "TICKET-[0-9]+"}};
  const Redactor fast({}, true), slow({}, true, false);
  const Redactor fast_user(user, true), slow_user(user, true, false);
  std::uint64_t state = 0x9E3779B97F4A7C15ULL;
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  std::size_t matched = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string text;
    const std::size_t parts = 1 + next() % 12;
    for (std::size_t i = 0; i < parts; ++i) text += fragments[next() % fragments.size()];
    std::string a, b, c, d;
    const std::size_t n = fast.redact(text, a);
    REQUIRE(n == slow.redact(text, b));
    REQUIRE(a == b);
    REQUIRE(fast_user.redact(text, c) == slow_user.redact(text, d));
    REQUIRE(c == d);
    matched += n > 0;
  }
  CHECK(matched > 1000);  // the fragments do make secrets, so both paths are exercised
  CHECK(matched < 19000);
}
