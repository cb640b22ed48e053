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
