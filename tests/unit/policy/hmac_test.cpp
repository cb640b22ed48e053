// The hmac mode: keyed pseudonyms, the key's sources and checks, rotation by rebuilding a policy.
#include <cstdlib>
#include <string>

#include <catch2/catch.hpp>

#include "config/config.hpp"
#include "policy/hmac_key.hpp"
#include "policy/policy.hpp"
#include "support.hpp"
#include "support/temp_dir.hpp"

using namespace proxy;
using namespace proxy::policy;
using namespace proxy::policy::test;
using config::PolicyMode;

namespace {

constexpr const char* kKey = "0123456789abcdef0123456789abcdef";
constexpr const char* kOtherKey = "fedcba9876543210fedcba9876543210";

// Unsets the key variable for the test's duration.
struct NoKeyVariable {
  NoKeyVariable() { ::unsetenv(std::string(kHmacKeyVariable).c_str()); }
  ~NoKeyVariable() { ::unsetenv(std::string(kHmacKeyVariable).c_str()); }
};

config::PolicyConfig hmac_policy(const std::string& key_file) {
  config::PolicyConfig config;
  config.content = PolicyMode::hmac;
  config.key_file = key_file;
  return config;
}

std::string after(const CompiledPolicy& policy, std::string_view key, std::string_view value) {
  OneSpan one;
  set(one.attributes(), key, text(value));
  PolicyTally tally;
  apply(policy, one.resource_spans, tally);
  return one.value(key);
}

}  // namespace

TEST_CASE("hmac: HMAC-SHA256 under the key, written with the key's id", "[policy][hmac]") {
  const auto key = HmacKey::from_bytes(kKey);
  // Python: hashlib.sha256(key).hexdigest()[:8], hmac.new(key, text, sha256).hexdigest()[:16]
  CHECK(key->id() == "3eb1bd43");
  std::string out;
  key->append(out, "alice@example.com", 16);
  CHECK(out == "hmac:3eb1bd43:841240d2a5b6654b");
  CHECK(HmacKey::from_bytes(kOtherKey)->id() == "4ba68aa8");
}

TEST_CASE("hmac: a missing or short key stops the policy from being built", "[policy][hmac]") {
  const NoKeyVariable clean;
  CHECK_THROWS_WITH(CompiledPolicy{hmac_policy("")},
                    Catch::Contains("a policy uses hmac but has no key") &&
                        Catch::Contains("OTLP_MLFLOW_PROXY_HMAC_KEY"));
  testing::TempDir dir("hmac-test");
  const std::string short_key = dir.write("short.key", "too-short\n");
  CHECK_THROWS_WITH(CompiledPolicy{hmac_policy(short_key)},
                    Catch::Contains("short.key") && Catch::Contains("9 bytes, at least 32") &&
                        !Catch::Contains("too-short"));
  CHECK_THROWS_WITH(CompiledPolicy{hmac_policy(dir.str() + "/absent.key")}, Catch::Contains("cannot be read"));
  ::setenv(std::string(kHmacKeyVariable).c_str(), "short", 1);
  CHECK_THROWS_WITH(CompiledPolicy{hmac_policy("")}, Catch::Contains("OTLP_MLFLOW_PROXY_HMAC_KEY: hmac key is 5 bytes"));
  // A policy without hmac needs no key.
  CHECK_NOTHROW(CompiledPolicy{config::PolicyConfig{}});
}

TEST_CASE("hmac: equal values stay equal, structure is kept, a rotated key shows", "[policy][hmac]") {
  const NoKeyVariable clean;
  testing::TempDir dir("hmac-test");
  const std::string file = dir.write("proxy.key", std::string(kKey) + "\n");
  const CompiledPolicy policy{hmac_policy(file)};
  REQUIRE(policy.hmac_key() != nullptr);
  CHECK(after(policy, "input.value", "alice@example.com") == "hmac:3eb1bd43:841240d2a5b6654b");
  CHECK(after(policy, "gen_ai.input.messages", R"([{"role":"user","content":"alice@example.com","n":3}])") ==
        R"([{"role":"user","content":"hmac:3eb1bd43:841240d2a5b6654b","n":0}])");

  // What a SIGHUP does: the policy is built again, reading the file again.
  dir.write("proxy.key", kOtherKey);
  const CompiledPolicy rotated{hmac_policy(file)};
  const std::string value = after(rotated, "input.value", "alice@example.com");
  CHECK(value.starts_with("hmac:4ba68aa8:"));
  CHECK(value != "hmac:3eb1bd43:841240d2a5b6654b");

  // Without key_file, the variable.
  ::setenv(std::string(kHmacKeyVariable).c_str(), kKey, 1);
  const CompiledPolicy from_variable{hmac_policy("")};
  CHECK(after(from_variable, "input.value", "alice@example.com") == "hmac:3eb1bd43:841240d2a5b6654b");
}

TEST_CASE("hmac: a role selector may pseudonymize just one role", "[policy][hmac][selectors]") {
  const NoKeyVariable clean;
  testing::TempDir dir("hmac-test");
  config::PolicyConfig config;
  config.key_file = dir.write("proxy.key", kKey);
  config.messages = {{"user", PolicyMode::hmac}};
  REQUIRE(uses_hmac(config));
  const CompiledPolicy policy{config};
  CHECK(after(policy, "gen_ai.input.messages",
              R"([{"role":"system","content":"rules"},{"role":"user","content":"alice@example.com"}])") ==
        R"([{"role":"system","content":"[masked: 5 bytes]"},{"role":"user","content":"hmac:3eb1bd43:841240d2a5b6654b"}])");
}
