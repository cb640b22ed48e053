// The wire path against the message path on random requests and random policies (issue 21,
// item 4): both must give requests that parse back equal, count alike, and refuse alike.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <google/protobuf/stubs/logging.h>

#include "otlp/types.hpp"
#include "policy/wire_policy.hpp"
#include "wire_differential.hpp"

namespace proxy::policy {
namespace {

using config::PolicyMode;
using Random = std::mt19937;

int pick(Random& random, int below) { return std::uniform_int_distribution<int>(0, below - 1)(random); }

template <class T, std::size_t N>
const T& one_of(Random& random, const T (&items)[N]) {
  return items[pick(random, static_cast<int>(N))];
}

const char* const kKeys[] = {
    "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.prompt.0.content", "gen_ai.prompt.1.role",
    "gen_ai.prompt.1.content", "gen_ai.prompt.0.role", "llm.input_messages.0.role", "gen_ai.prompt.1.message.role",
    "llm.input_messages.0.message.role", "llm.input_messages.0.message.content", "koog.node.input",
    "input.value", "exception.message", "exception.stacktrace", "service.name", "service.version", "content",
    "message", "role", "name", "type", "text", "arguments", "tool_calls", "gen_ai.request.model", "custom.key",
    "k", ""};

const char* const kTexts[] = {
    "",
    "HIDDEN:non-empty",
    "hello",
    "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 and a longer sentence that goes past a few truncate limits",
    "mail jane.doe@example.com and key sk-abcdefghijklmnopqrstuvwxyz0123456789",
    R"([{"role":"user","parts":[{"type":"text","content":"hi jane.doe@example.com"}]}])",
    R"({"password": "hunter2", "name": "tool", "arguments": {"q": [1, 2.5, true, null, "x"]}})",
    R"([{"role":"system","content":"be brief"},{"role":"assistant","tool_calls":[{"id":"c1","name":"f"}]}])",
    "{not json",
    "[]",
    "system",
    "System",
    "user",
};

const char* const kEventNames[] = {"gen_ai.user.message", "gen_ai.system.message", "gen_ai.choice", "exception",
                                   "log", ""};

void random_value(Random& random, otlp::AnyValue& value, int depth);

void random_key_values(Random& random, google::protobuf::RepeatedPtrField<otlp::KeyValue>& out, int count,
                       int depth) {
  for (int i = 0; i < count; ++i) {
    otlp::KeyValue* kv = out.Add();
    kv->set_key(pick(random, 8) == 0 ? "r" + std::to_string(pick(random, 100)) : one_of(random, kKeys));
    if (pick(random, 12) != 0) random_value(random, *kv->mutable_value(), depth + 1);
  }
}

void random_value(Random& random, otlp::AnyValue& value, int depth) {
  const int kind = depth > 9 ? pick(random, 6) : pick(random, 9);
  switch (kind) {
    case 0: case 1: value.set_string_value(one_of(random, kTexts)); break;
    case 2: value.set_bool_value(pick(random, 2) == 1); break;
    case 3: value.set_int_value(pick(random, 3) == 0 ? 0 : pick(random, 1 << 20) - (1 << 19)); break;
    case 4: value.set_double_value(pick(random, 3) == 0 ? (pick(random, 2) ? 0.0 : -0.0) : 1.5 * pick(random, 9)); break;
    case 5: value.set_bytes_value(std::string(static_cast<std::size_t>(pick(random, 40)), '\xff')); break;
    case 6: case 7:
      for (int i = pick(random, 4); i > 0; --i) random_value(random, *value.mutable_array_value()->add_values(), depth + 1);
      if (value.value_case() == otlp::AnyValue::VALUE_NOT_SET) value.mutable_array_value();
      break;
    default:
      random_key_values(random, *value.mutable_kvlist_value()->mutable_values(), pick(random, 4), depth);
      if (value.value_case() == otlp::AnyValue::VALUE_NOT_SET) value.mutable_kvlist_value();
  }
}

void random_span(Random& random, otlp::Span& span) {
  span.set_trace_id(std::string(16, static_cast<char>(1 + pick(random, 200))));
  span.set_span_id(std::string(8, static_cast<char>(1 + pick(random, 200))));
  span.set_name(one_of(random, kEventNames));
  span.set_start_time_unix_nano(1'700'000'000'000'000'000ULL + static_cast<unsigned>(pick(random, 1000)));
  random_key_values(random, *span.mutable_attributes(), pick(random, 8), 0);
  if (pick(random, 4) == 0) span.set_dropped_attributes_count(pick(random, 3) ? 4u : 0xFFFFFFFFu);
  for (int e = pick(random, 3); e > 0; --e) {
    auto* event = span.add_events();
    event->set_name(one_of(random, kEventNames));
    random_key_values(random, *event->mutable_attributes(), pick(random, 4), 0);
    if (pick(random, 5) == 0) event->set_dropped_attributes_count(2);
  }
  for (int l = pick(random, 2); l > 0; --l) {
    auto* link = span.add_links();
    link->set_trace_id(std::string(16, '\x07'));
    random_key_values(random, *link->mutable_attributes(), pick(random, 3), 0);
  }
  if (pick(random, 2) == 0) {
    span.mutable_status()->set_code(opentelemetry::proto::trace::v1::Status::STATUS_CODE_ERROR);
    if (pick(random, 4) != 0) span.mutable_status()->set_message(one_of(random, kTexts));
  }
}

std::string random_request(Random& random) {
  otlp::ExportRequest request;
  for (int r = 1 + pick(random, 2); r > 0; --r) {
    auto* resource_spans = request.add_resource_spans();
    if (pick(random, 5) != 0) {
      random_key_values(random, *resource_spans->mutable_resource()->mutable_attributes(), pick(random, 4), 0);
    }
    for (int s = 1 + pick(random, 2); s > 0; --s) {
      auto* scope_spans = resource_spans->add_scope_spans();
      scope_spans->mutable_scope()->set_name("ai.koog");
      random_key_values(random, *scope_spans->mutable_scope()->mutable_attributes(), pick(random, 2), 0);
      for (int i = 1 + pick(random, 3); i > 0; --i) random_span(random, *scope_spans->add_spans());
    }
  }
  return request.SerializeAsString();
}

PolicyMode random_mode(Random& random) { return static_cast<PolicyMode>(pick(random, 7)); }

config::PolicyConfig random_policy(Random& random) {
  config::PolicyConfig config;
  config.content = random_mode(random);
  config.errors = random_mode(random);
  config.other = pick(random, 2) ? PolicyMode::verbose : random_mode(random);
  config.keep_structure = pick(random, 4) != 0;
  config.max_depth = 1u + static_cast<unsigned>(pick(random, 6));
  config.truncate_bytes = 1u + static_cast<unsigned>(pick(random, 40));
  config.hash_prefix = 4u + static_cast<unsigned>(pick(random, 12));
  if (pick(random, 2)) config.resource_keys.push_back({"service.*", random_mode(random), 0});
  if (pick(random, 3) == 0) config.resource_keys.push_back({"*", random_mode(random), 2});
  if (pick(random, 2)) config.keys.push_back({"*.role", random_mode(random), 0});
  if (pick(random, 3) == 0) config.keys.push_back({"k*", random_mode(random), 5});
  if (pick(random, 3) == 0) config.messages.push_back({"system", random_mode(random)});
  if (pick(random, 3) == 0) config.messages.push_back({"assistant", random_mode(random)});
  if (pick(random, 3) == 0) config.parts.push_back({"text", random_mode(random)});
  if (pick(random, 3) == 0) config.structural_keys.push_back("q");
  return config;
}

// Truncates, flips or inserts bytes.
std::string corrupt(Random& random, std::string bytes) {
  if (bytes.empty()) return "\x0a";
  const auto at = static_cast<std::size_t>(pick(random, static_cast<int>(bytes.size())));
  switch (pick(random, 3)) {
    case 0: bytes.resize(at); break;
    case 1: bytes[at] = static_cast<char>(bytes[at] ^ (1 << pick(random, 8))); break;
    default: bytes.insert(at, 1, static_cast<char>(pick(random, 256)));
  }
  return bytes;
}

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
