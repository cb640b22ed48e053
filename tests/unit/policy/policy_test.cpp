#include <cstdint>
#include <limits>

#include <catch2/catch.hpp>

#include "policy/policy.hpp"
#include "support.hpp"

using namespace proxy;
using namespace proxy::policy;
using namespace proxy::policy::test;
using config::PolicyMode;

TEST_CASE("the default policy masks every built-in content family and keeps the rest", "[policy]") {
  const CompiledPolicy policy{config::PolicyConfig{}};
  struct Case {
    const char* key;
    Family family;
  };
  const Case cases[] = {
      {"gen_ai.input.messages", Family::genai},      {"gen_ai.output.messages", Family::genai},
      {"gen_ai.system_instructions", Family::genai}, {"gen_ai.tool.definitions", Family::genai},
      {"gen_ai.tool.call.arguments", Family::genai}, {"gen_ai.tool.call.result", Family::genai},
      {"gen_ai.prompt.0.content", Family::genai},    {"gen_ai.completion.0.content", Family::genai},
      {"system_instructions", Family::koog},         {"koog.node.input", Family::koog},
      {"koog.node.output", Family::koog},            {"koog.subgraph.input", Family::koog},
      {"koog.subgraph.output", Family::koog},        {"koog.moderation.result", Family::koog},
      {"koog.planner.plan", Family::koog},           {"input.value", Family::openinference},
      {"output.value", Family::openinference},       {"llm.input_messages.0.message.content", Family::openinference},
      {"llm.output_messages.0.message.content", Family::openinference},
      {"llm.prompts", Family::openinference},        {"tool.parameters", Family::openinference},
      {"traceloop.entity.input", Family::traceloop}, {"traceloop.entity.output", Family::traceloop},
      {"mlflow.spanInputs", Family::mlflow},         {"mlflow.spanOutputs", Family::mlflow},
  };
  for (const Case& c : cases) {
    INFO(c.key);
    OneSpan one;
    set(one.attributes(), c.key, text("What is 6 * 7?"));
    set(one.attributes(), "gen_ai.request.model", text("gpt-4o"));
    PolicyTally tally;
    apply(policy, one.resource_spans, tally);
    CHECK(one.value(c.key) == "[masked: 14 bytes]");
    CHECK(one.value("gen_ai.request.model") == "gpt-4o");
    CHECK(tally.count(PolicyMode::mask, c.family) == 1);
    CHECK(tally.total(PolicyMode::mask) == 1);
  }
}

TEST_CASE("mask keeps each value's type: markers for text, zero for numbers, shape for lists", "[policy]") {
  const CompiledPolicy policy{config::PolicyConfig{}};
  PolicyTally tally;
  const Decision mask{PolicyMode::mask, Family::genai, 256};

  AnyValue bytes;
  bytes.set_bytes_value(std::string(5, '\x01'));
  CHECK(apply_value(policy, mask, bytes, 1, tally));
  CHECK(bytes.bytes_value() == "[masked: 5 bytes]");

  AnyValue number = integer(42);
  CHECK(apply_value(policy, mask, number, 1, tally));
  CHECK(number.value_case() == AnyValue::kIntValue);
  CHECK(number.int_value() == 0);

  AnyValue real;
  real.set_double_value(0.5);
  CHECK(apply_value(policy, mask, real, 1, tally));
  CHECK(real.double_value() == 0.0);

  AnyValue flag;
  flag.set_bool_value(true);
  CHECK(apply_value(policy, mask, flag, 1, tally));
  CHECK_FALSE(flag.bool_value());

  AnyValue list;
  *list.mutable_array_value()->add_values() = text("hello");
  *list.mutable_array_value()->add_values() = integer(7);
  CHECK(apply_value(policy, mask, list, 1, tally));
  REQUIRE(list.array_value().values_size() == 2);
  CHECK(list.array_value().values(0).string_value() == "[masked: 5 bytes]");
  CHECK(list.array_value().values(1).int_value() == 0);

  // structure: whole masks every leaf of a key-value list, structural keys too.
  config::PolicyConfig whole_config;
  whole_config.keep_structure = false;
  const CompiledPolicy whole{whole_config};
  AnyValue message;
  auto* role = message.mutable_kvlist_value()->add_values();
  role->set_key("role");
  *role->mutable_value() = text("user");
  CHECK(apply_value(whole, mask, message, 1, tally));
  CHECK(message.kvlist_value().values(0).key() == "role");
  CHECK(message.kvlist_value().values(0).value().string_value() == "[masked: 4 bytes]");

  AnyValue empty = text("");
  CHECK_FALSE(apply_value(policy, mask, empty, 1, tally));
}

TEST_CASE("Koog's HIDDEN:non-empty passes every mode untouched and is counted", "[policy]") {
  for (PolicyMode mode : {PolicyMode::mask, PolicyMode::hash, PolicyMode::truncate, PolicyMode::redact}) {
    const CompiledPolicy policy{policy_with(mode)};
    OneSpan one;
    set(one.attributes(), "gen_ai.input.messages", text("HIDDEN:non-empty"));
    PolicyTally tally;
    apply(policy, one.resource_spans, tally);
    CHECK(one.value("gen_ai.input.messages") == "HIDDEN:non-empty");
    CHECK(tally.koog_hidden == 1);
    CHECK(tally.total(mode) == 0);
  }
}

TEST_CASE("hash is a stable SHA-256 prefix of the configured length", "[policy]") {
  config::PolicyConfig config = policy_with(PolicyMode::hash);
  const CompiledPolicy policy{config};
  OneSpan a;
  OneSpan b;
  set(a.attributes(), "input.value", text("abc"));
  set(b.attributes(), "input.value", text("abc"));
  set(b.attributes(), "output.value", text("abd"));
  PolicyTally tally;
  apply(policy, a.resource_spans, tally);
  apply(policy, b.resource_spans, tally);
  // SHA-256("abc") = ba7816bf8f01cfea...
  CHECK(a.value("input.value") == "sha256:ba7816bf8f01cfea");
  CHECK(b.value("input.value") == a.value("input.value"));
  CHECK(b.value("output.value") != a.value("input.value"));
  CHECK(tally.count(PolicyMode::hash, Family::openinference) == 3);

  config.hash_prefix = 9;
  const CompiledPolicy odd{config};
  OneSpan c;
  set(c.attributes(), "input.value", text("abc"));
  apply(odd, c.resource_spans, tally);
  CHECK(c.value("input.value") == "sha256:ba7816bf8");
}

TEST_CASE("truncate keeps the first bytes on a UTF-8 boundary and says the size", "[policy]") {
  config::PolicyConfig config = policy_with(PolicyMode::truncate);
  config.truncate_bytes = 4;
  const CompiledPolicy policy{config};
  OneSpan one;
  set(one.attributes(), "input.value", text("abc\xC3\xA9xyz"));  // "abcéxyz": é is 2 bytes at 3..4
  set(one.attributes(), "output.value", text("abcd"));         // not longer than the limit
  PolicyTally tally;
  apply(policy, one.resource_spans, tally);
  CHECK(one.value("input.value") == "abc[truncated: 8 bytes]");
  CHECK(one.value("output.value") == "abcd");
  CHECK(tally.count(PolicyMode::truncate, Family::openinference) == 1);
}

TEST_CASE("drop removes the attribute and counts it as dropped on the span", "[policy]") {
  const CompiledPolicy policy{policy_with(PolicyMode::drop)};
  OneSpan one;
  set(one.attributes(), "a", text("1"));
  set(one.attributes(), "gen_ai.input.messages", text("secret prompt"));
  set(one.attributes(), "b", text("2"));
  set(one.attributes(), "gen_ai.output.messages", text("secret answer"));
  set(one.attributes(), "c", text("3"));
  one.span->set_dropped_attributes_count(1);
  PolicyTally tally;
  apply(policy, one.resource_spans, tally);
  REQUIRE(one.span->attributes_size() == 3);
  CHECK(one.span->attributes(0).key() == "a");
  CHECK(one.span->attributes(1).key() == "b");
  CHECK(one.span->attributes(2).key() == "c");
  CHECK(one.span->dropped_attributes_count() == 3);
  CHECK(tally.count(PolicyMode::drop, Family::genai) == 2);
}

TEST_CASE("the dropped count saturates instead of wrapping past 2^32 - 1", "[policy]") {
  const CompiledPolicy policy{policy_with(PolicyMode::drop)};
  OneSpan one;
  set(one.attributes(), "gen_ai.input.messages", text("secret prompt"));
  set(one.attributes(), "gen_ai.output.messages", text("secret answer"));
  one.span->set_dropped_attributes_count(std::numeric_limits<std::uint32_t>::max() - 1);
  PolicyTally tally;
  apply(policy, one.resource_spans, tally);
  CHECK(one.span->attributes_size() == 0);
  CHECK(one.span->dropped_attributes_count() == std::numeric_limits<std::uint32_t>::max());
}

TEST_CASE("key overrides come first, in order, with their own truncate length", "[policy]") {
  config::PolicyConfig config;
  config.content = PolicyMode::mask;
  config.keys = {{"gen_ai.tool.call.result", PolicyMode::truncate, 2},
                 {"gen_ai.tool.*", PolicyMode::verbose, 0},
                 {"user.email", PolicyMode::hash, 0},
                 {"debug.*", PolicyMode::drop, 0}};
  const CompiledPolicy policy{config};
  OneSpan one;
  set(one.attributes(), "gen_ai.tool.call.result", text("42 apples"));
  set(one.attributes(), "gen_ai.tool.call.arguments", text("{\"x\": 1}"));
  set(one.attributes(), "gen_ai.input.messages", text("hi"));
  set(one.attributes(), "user.email", text("a@b.c"));
  set(one.attributes(), "debug.dump", text("..."));
  PolicyTally tally;
  apply(policy, one.resource_spans, tally);
  CHECK(one.value("gen_ai.tool.call.result") == "42[truncated: 9 bytes]");
  CHECK(one.value("gen_ai.tool.call.arguments") == "{\"x\": 1}");
  CHECK(one.value("gen_ai.input.messages") == "[masked: 2 bytes]");
  CHECK(one.value("user.email").starts_with("sha256:"));
  CHECK(one.value("debug.dump") == "<absent>");
  CHECK(tally.count(PolicyMode::truncate, Family::rule) == 1);
  CHECK(tally.count(PolicyMode::hash, Family::rule) == 1);
  CHECK(tally.count(PolicyMode::drop, Family::rule) == 1);
  CHECK(tally.count(PolicyMode::mask, Family::genai) == 1);
}

TEST_CASE("user content_keys join the content set as the custom family", "[policy]") {
  config::PolicyConfig config;
  config.content_keys = {"myapp.prompt*", "ticket.body"};
  const CompiledPolicy policy{config};
  OneSpan one;
  set(one.attributes(), "myapp.prompt.text", text("abc"));
  set(one.attributes(), "ticket.body", text("abcd"));
  set(one.attributes(), "ticket.id", text("T-1"));
  PolicyTally tally;
  apply(policy, one.resource_spans, tally);
  CHECK(one.value("myapp.prompt.text") == "[masked: 3 bytes]");
  CHECK(one.value("ticket.body") == "[masked: 4 bytes]");
  CHECK(one.value("ticket.id") == "T-1");
  CHECK(tally.count(PolicyMode::mask, Family::custom) == 2);
}

TEST_CASE("content nested in a kept key-value list is found by its dotted path", "[policy]") {
  const CompiledPolicy policy{config::PolicyConfig{}};
  OneSpan one;
  AnyValue llm;
  auto* messages = llm.mutable_kvlist_value()->add_values();
  messages->set_key("input_messages");
  *messages->mutable_value() = text("prompt text");
  auto* model = llm.mutable_kvlist_value()->add_values();
  model->set_key("model_name");
  *model->mutable_value() = text("gpt-4o");
  set(one.attributes(), "llm", llm);
  PolicyTally tally;
  apply(policy, one.resource_spans, tally);
  const AnyValue* kept = find(one.span->attributes(), "llm");
  REQUIRE(kept != nullptr);
  CHECK(kept->kvlist_value().values(0).value().string_value() == "[masked: 11 bytes]");
  CHECK(kept->kvlist_value().values(1).value().string_value() == "gpt-4o");
  CHECK(tally.count(PolicyMode::mask, Family::openinference) == 1);
}

TEST_CASE("values nested deeper than max_depth are replaced and counted", "[policy]") {
  config::PolicyConfig config;
  config.max_depth = 3;
  const CompiledPolicy policy{config};
  auto nest = [](int levels) {
    AnyValue value = text("leaf");
    for (int i = 1; i < levels; ++i) {
      AnyValue outer;
      *outer.mutable_array_value()->add_values() = value;
      value = outer;
    }
    return value;
  };
  OneSpan one;
  set(one.attributes(), "ok.depth3", nest(3));            // kept: leaf at depth 3
  set(one.attributes(), "too.deep", nest(5));             // kept key, leaf at depth 5
  set(one.attributes(), "gen_ai.input.messages", nest(6));  // masked key, too deep as well
  PolicyTally tally;
  apply(policy, one.resource_spans, tally);
  const AnyValue* ok = find(one.span->attributes(), "ok.depth3");
  CHECK(ok->array_value().values(0).array_value().values(0).string_value() == "leaf");
  const AnyValue* deep = find(one.span->attributes(), "too.deep");
  CHECK(deep->array_value().values(0).array_value().values(0).array_value().values(0).string_value() ==
        "[rejected: nested deeper than 3 levels]");
  CHECK(tally.depth_rejected == 2);
}

TEST_CASE("events: GenAI message fields are content, other fields and events stay", "[policy]") {
  const CompiledPolicy policy{config::PolicyConfig{}};
  OneSpan one;
  auto* user = one.span->add_events();
  user->set_name("gen_ai.user.message");
  set(*user->mutable_attributes(), "content", text("my prompt"));
  set(*user->mutable_attributes(), "role", text("user"));
  auto* choice = one.span->add_events();
  choice->set_name("gen_ai.choice");
  set(*choice->mutable_attributes(), "message.content", text("answer"));
  set(*choice->mutable_attributes(), "finish_reason", text("stop"));
  set(*choice->mutable_attributes(), "index", integer(0));
  auto* other = one.span->add_events();
  other->set_name("cache.lookup");
  set(*other->mutable_attributes(), "content", text("kept: not a message event"));
  set(*other->mutable_attributes(), "gen_ai.input.messages", text("masked anywhere"));
  PolicyTally tally;
  apply(policy, one.resource_spans, tally);
  CHECK(find(user->attributes(), "content")->string_value() == "[masked: 9 bytes]");
  CHECK(find(user->attributes(), "role")->string_value() == "user");
  CHECK(find(choice->attributes(), "message.content")->string_value() == "[masked: 6 bytes]");
  CHECK(find(choice->attributes(), "finish_reason")->string_value() == "stop");
  CHECK(find(other->attributes(), "content")->string_value() == "kept: not a message event");
  CHECK(find(other->attributes(), "gen_ai.input.messages")->string_value() == "[masked: 15 bytes]");
  CHECK(tally.count(PolicyMode::mask, Family::event) == 2);
  CHECK(tally.count(PolicyMode::mask, Family::genai) == 1);
}

TEST_CASE("status messages and exception events are redacted by default, even when verbose", "[policy]") {
  const CompiledPolicy policy{policy_with(PolicyMode::verbose)};
  OneSpan one;
  one.span->mutable_status()->set_message("call failed: 401 for key sk-proj-AAAAAAAAAAAAAAAAAAAAAAAA");
  auto* exception = one.span->add_events();
  exception->set_name("exception");
  set(*exception->mutable_attributes(), "exception.message", text("login alice@example.com failed"));
  set(*exception->mutable_attributes(), "exception.type", text("java.io.IOException"));
  set(one.attributes(), "gen_ai.input.messages", text("contact bob@example.com"));
  PolicyTally tally;
  apply(policy, one.resource_spans, tally);
  CHECK(one.span->status().message() == "call failed: 401 for key [redacted:openai_api_key]");
  CHECK(find(exception->attributes(), "exception.message")->string_value() ==
        "login [redacted:email] failed");
  CHECK(find(exception->attributes(), "exception.type")->string_value() == "java.io.IOException");
  CHECK(one.value("gen_ai.input.messages") == "contact bob@example.com");  // verbose content
  CHECK(tally.count(PolicyMode::redact, Family::error) == 2);
  CHECK(tally.redaction_matches == 2);
}

TEST_CASE("errors: drop clears the status message, mask hides it", "[policy]") {
  config::PolicyConfig config;
  config.errors = PolicyMode::drop;
  OneSpan one;
  one.span->mutable_status()->set_message("boom");
  PolicyTally tally;
  apply(CompiledPolicy{config}, one.resource_spans, tally);
  CHECK(one.span->status().message().empty());
  config.errors = PolicyMode::mask;
  one.span->mutable_status()->set_message("boom");
  apply(CompiledPolicy{config}, one.resource_spans, tally);
  CHECK(one.span->status().message() == "[masked: 4 bytes]");
}

TEST_CASE("link attributes follow the span rules", "[policy]") {
  const CompiledPolicy policy{config::PolicyConfig{}};
  OneSpan one;
  auto* link = one.span->add_links();
  set(*link->mutable_attributes(), "gen_ai.input.messages", text("abc"));
  set(*link->mutable_attributes(), "link.kind", text("follows"));
  PolicyTally tally;
  apply(policy, one.resource_spans, tally);
  CHECK(find(link->attributes(), "gen_ai.input.messages")->string_value() == "[masked: 3 bytes]");
  CHECK(find(link->attributes(), "link.kind")->string_value() == "follows");
}

TEST_CASE("resource attributes are kept unless resource_keys says otherwise", "[policy]") {
  config::PolicyConfig config;
  OneSpan one;
  auto& resource = *one.resource_spans.mutable_resource()->mutable_attributes();
  set(resource, "service.name", text("agent"));
  set(resource, "host.name", text("laptop-of-alice"));
  set(resource, "gen_ai.input.messages", text("never a resource key, but still kept"));
  PolicyTally tally;
  apply(CompiledPolicy{config}, one.resource_spans, tally);
  CHECK(find(resource, "host.name")->string_value() == "laptop-of-alice");
  CHECK(find(resource, "gen_ai.input.messages")->string_value() == "never a resource key, but still kept");

  config.resource_keys = {{"host.*", PolicyMode::hash, 0}, {"process.command_line", PolicyMode::drop, 0}};
  set(resource, "process.command_line", text("java -jar agent.jar --token x"));
  apply(CompiledPolicy{config}, one.resource_spans, tally);
  CHECK(find(resource, "host.name")->string_value().starts_with("sha256:"));
  CHECK(find(resource, "process.command_line") == nullptr);
  CHECK(find(resource, "service.name")->string_value() == "agent");
  CHECK(one.resource_spans.resource().dropped_attributes_count() == 1);
  CHECK(tally.count(PolicyMode::hash, Family::resource) == 1);
}

TEST_CASE("other: redact scrubs secrets from every non-content attribute", "[policy]") {
  config::PolicyConfig config;
  config.other = PolicyMode::redact;
  OneSpan one;
  set(one.attributes(), "http.url", text("https://bob:hunter2@api.example.com/v1"));
  set(one.attributes(), "gen_ai.request.model", text("gpt-4o"));
  PolicyTally tally;
  apply(CompiledPolicy{config}, one.resource_spans, tally);
  CHECK(one.value("http.url") == "https://bob:[redacted:url_password]@api.example.com/v1");
  CHECK(one.value("gen_ai.request.model") == "gpt-4o");
  CHECK(tally.count(PolicyMode::redact, Family::other) == 1);
}

TEST_CASE("PolicyStats adds tallies", "[policy]") {
  PolicyTally tally;
  tally.values[static_cast<std::size_t>(PolicyMode::mask)][static_cast<std::size_t>(Family::koog)] = 3;
  tally.redaction_matches = 2;
  tally.spans = 5;
  PolicyStats stats;
  stats.add(tally);
  stats.add(tally);
  CHECK(stats.count(PolicyMode::mask, Family::koog) == 6);
  CHECK(stats.redaction_matches.load() == 4);
  CHECK(stats.spans.load() == 10);
  CHECK(family_name(Family::openinference) == "openinference");
}
