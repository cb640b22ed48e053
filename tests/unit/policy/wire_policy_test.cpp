// The wire path against the message path on random requests and random policies (issue 21,
// item 4): both must give requests that parse back equal, count alike, and refuse alike.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

#include <google/protobuf/stubs/logging.h>

#include "otlp/types.hpp"
#include "policy/wire_policy.hpp"
#include "support/random_otlp.hpp"
#include "wire_differential.hpp"

namespace proxy::policy {
namespace {

using config::PolicyMode;
using testing::corrupt;
using testing::Random;
using testing::policy::random_policy;
using testing::policy::random_request;

// The case that failed, for the report.
std::string describe(const CompiledPolicy& policy, const std::string& body) {
  const config::PolicyConfig& c = policy.config();
  otlp::ExportRequest parsed;
  parsed.ParseFromString(body);
  return "policy: content " + std::to_string(static_cast<int>(c.content)) + ", errors " +
         std::to_string(static_cast<int>(c.errors)) + ", other " + std::to_string(static_cast<int>(c.other)) +
         ", keep_structure " + std::to_string(c.keep_structure) + ", max_depth " + std::to_string(c.max_depth) +
         ", " + std::to_string(c.keys.size()) + " key rules, " + std::to_string(c.resource_keys.size()) +
         " resource rules\nrequest:\n" + parsed.DebugString();
}

struct HmacKeyForTests {
  HmacKeyForTests() { ::setenv("OTLP_MLFLOW_PROXY_HMAC_KEY", "0123456789abcdef0123456789abcdef-wire-tests", 1); }
};

}  // namespace

TEST_CASE("the wire path rewrites random requests as the message path does, under random policies", "[wire]") {
  static const HmacKeyForTests key;
  Random random(20261207);
  int rewritten = 0;
  for (int round = 0; round < 600; ++round) {
    const CompiledPolicy policy(random_policy(random));
    const std::string body = random_request(random);
    const fuzz::WireComparison comparison = fuzz::compare_wire_paths(policy, body);
    INFO("round " << round);
    if (!comparison.mismatch.empty()) FAIL_CHECK(describe(policy, body));
    REQUIRE(comparison.message_accepted);
    REQUIRE(comparison.mismatch == "");
    // The generator writes what protobuf writes: nothing the wire path has to leave alone.
    REQUIRE(comparison.wire == WireOutcome::rewritten);
    ++rewritten;
  }
  CHECK(rewritten == 600);
}

TEST_CASE("the wire path refuses what protobuf refuses on corrupted random requests", "[wire]") {
  static const HmacKeyForTests key;
  const google::protobuf::LogSilencer quiet;  // protobuf logs every string that is not UTF-8
  Random random(7);
  int refused = 0;
  int malformed = 0;
  for (int round = 0; round < 1500; ++round) {
    const CompiledPolicy policy(random_policy(random));
    const std::string body = corrupt(random, random_request(random));
    const fuzz::WireComparison comparison = fuzz::compare_wire_paths(policy, body);
    INFO("round " << round);
    REQUIRE(comparison.mismatch == "");
    refused += comparison.message_accepted ? 0 : 1;
    malformed += comparison.wire == WireOutcome::malformed ? 1 : 0;
  }
  // Corruption must actually produce refusals, and the wire path must recognise most of them.
  CHECK(refused > 300);
  CHECK(malformed * 10 > refused * 8);
}

TEST_CASE("the wire path copies a request the policy leaves alone byte for byte", "[wire]") {
  Random random(3);
  config::PolicyConfig config;
  config.content = config.errors = config.other = PolicyMode::verbose;
  const CompiledPolicy policy(config);
  WireRewriter rewriter;
  int unchanged = 0;
  for (int round = 0; round < 100; ++round) {
    const std::string body = random_request(random);
    // apply() gives missing nested values an empty one and replaces too deep ones: such
    // requests change on both paths (the property test compares them).
    otlp::ExportRequest request;
    REQUIRE(request.ParseFromString(body));
    PolicyTally message_tally;
    for (auto& resource_spans : *request.mutable_resource_spans()) apply(policy, resource_spans, message_tally);
    if (request.SerializeAsString() != body) continue;
    ++unchanged;
    std::string out;
    PolicyTally tally;
    REQUIRE(rewriter.rewrite(policy, body, out, tally).outcome == WireOutcome::rewritten);
    REQUIRE(out == body);
  }
  CHECK(unchanged >= 20);
}

TEST_CASE("the wire path leaves duplicated singular fields and groups to the message path", "[wire]") {
  const CompiledPolicy policy{config::PolicyConfig{}};
  WireRewriter rewriter;
  std::string out;
  PolicyTally tally;
  // resource_spans { scope_spans { spans { attributes { key "a" key "b" } } } }
  const std::string twice_keyed("\x0a\x0c\x12\x0a\x12\x08\x4a\x06\x0a\x01" "a" "\x0a\x01" "b");
  REQUIRE(twice_keyed.size() == 14);
  CHECK(rewriter.rewrite(policy, twice_keyed, out, tally).outcome == WireOutcome::unsupported);
  // field 2 as a start group
  CHECK(rewriter.rewrite(policy, std::string("\x13\x14", 2), out, tally).outcome == WireOutcome::unsupported);
  CHECK(out.empty());
}

// A length-delimited field: a one-byte tag and the payload's length as a varint.
std::string length_field(char tag, const std::string& payload) {
  std::string field(1, tag);
  for (std::size_t n = payload.size(); ; n >>= 7) {
    field += static_cast<char>((n & 0x7F) | (n >= 0x80 ? 0x80 : 0));
    if (n < 0x80) break;
  }
  return field + payload;
}

// A request holding one span whose one attribute is `key_value` (a KeyValue's bytes).
std::string span_with_attribute(const std::string& key_value) {
  return length_field('\x0a', length_field('\x12', length_field('\x12', length_field('\x4a', key_value))));
}

TEST_CASE("the wire path reads KeyValues and AnyValues of any field layout as the message path does", "[wire]") {
  config::PolicyConfig config;
  config.content = PolicyMode::mask;
  const CompiledPolicy policy(config);
  const std::string key = length_field('\x0a', "gen_ai.prompt");
  const std::string text = length_field('\x0a', "a prompt to mask");
  const std::string value = length_field('\x12', text);
  const std::string long_value = length_field('\x12', length_field('\x0a', std::string(300, 'x')));
  const std::string unknown_varint("\x18\x05", 2);  // field 3, a newer sender's
  const std::string not_utf8 = length_field('\x12', length_field('\x0a', "bad \xff byte"));
  const std::string layouts[] = {
      key + value,                                                     // the usual one
      key + long_value,                                                // a two-byte length
      value + key,                                                     // the value first
      key + unknown_varint + value,                                    // an unknown field between
      key + value + unknown_varint,                                    // and after
      value,                                                           // no key
      key,                                                             // no value
      key + length_field('\x12', text + unknown_varint),               // an AnyValue with more than its value
      key + length_field('\x12', unknown_varint + text),               // the same, before it
      key + not_utf8,                                                  // refused: not UTF-8
      length_field('\x0a', "bad \xff key") + value,                   // refused: the key not UTF-8
      key + std::string("\x12\x80\x80\x80\x80\x80\x01", 7) + text,        // refused: a length past 5 bytes
  };
  for (std::size_t i = 0; i < std::size(layouts); ++i) {
    INFO("layout " << i);
    const fuzz::WireComparison comparison = fuzz::compare_wire_paths(policy, span_with_attribute(layouts[i]));
    CHECK(comparison.mismatch == "");
    CHECK(comparison.message_accepted == (i < 9));
  }
}

TEST_CASE("both paths read a flattened message's role alike: OpenInference's first, as sent", "[wire][selectors]") {
  config::PolicyConfig config;
  config.messages = {{"system", PolicyMode::verbose}, {"user", PolicyMode::hash}};
  config.keys = {{"*.role", PolicyMode::mask, 0}};  // the roles themselves masked: the selector still sees them
  const CompiledPolicy policy(config);
  otlp::ExportRequest request;
  otlp::Span& span = *request.add_resource_spans()->add_scope_spans()->add_spans();
  const auto add = [&span](std::string_view key, std::string_view value) {
    otlp::KeyValue& kv = *span.add_attributes();
    kv.set_key(std::string(key));
    kv.mutable_value()->set_string_value(std::string(value));
  };
  add("llm.input_messages.0.role", "user");
  add("llm.input_messages.0.message.role", "system");
  add("llm.input_messages.0.message.content", "You are helpful.");
  add("gen_ai.prompt.0.role", "user");
  add("gen_ai.prompt.0.content", "hi");
  const fuzz::WireComparison comparison = fuzz::compare_wire_paths(policy, request.SerializeAsString());
  REQUIRE(comparison.mismatch == "");
  REQUIRE(comparison.wire == WireOutcome::rewritten);
  PolicyTally tally;
  apply(policy, *request.mutable_resource_spans(0), tally);
  const auto value = [&span](int i) { return span.attributes(i).value().string_value(); };
  CHECK(value(1) == "[masked: 6 bytes]");
  CHECK(value(2) == "You are helpful.");
  CHECK(value(4) == "sha256:8f434346648f6b96");
}

}  // namespace proxy::policy
