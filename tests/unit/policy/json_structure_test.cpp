// Structure-kept masking, per agent format, per fallback, and with role and part selectors.
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

#include "config/values.hpp"
#include "policy/json_structure.hpp"
#include "policy/policy.hpp"
#include "support.hpp"

using namespace proxy;
using namespace proxy::policy;
using namespace proxy::policy::test;
using config::PolicyMode;

namespace {

// The value of `key` after the policy, with `text` as the attribute's value.
std::string masked(const CompiledPolicy& policy, std::string_view key, std::string_view text,
                   PolicyTally* tally_out = nullptr) {
  OneSpan one;
  set(one.attributes(), key, AnyValue(proxy::policy::test::text(text)));
  PolicyTally tally;
  apply(policy, one.resource_spans, tally);
  if (tally_out) *tally_out = tally;
  return one.value(key);
}

std::string masked(std::string_view key, std::string_view text, PolicyTally* tally = nullptr) {
  static const CompiledPolicy policy{config::PolicyConfig{}};
  return masked(policy, key, text, tally);
}

bool valid_json(std::string_view text) {
  boost::system::error_code error;
  boost::json::parse(text, error);
  return !error;
}

std::uint64_t fallbacks(const PolicyTally& tally, Fallback why) {
  return tally.structure_fallbacks[static_cast<std::size_t>(why)];
}

}  // namespace

TEST_CASE("GenAI semconv messages (Koog's chat spans): roles, part types, ids and tool names stay",
          "[policy][structure]") {
  const std::string in =
      R"([{"role":"system","parts":[{"type":"text","content":"You are a calculator."}]},)"
      R"({"role":"user","parts":[{"type":"text","content":"What is 6 * 7? key sk-abc"}]},)"
      R"({"role":"assistant","parts":[{"type":"tool_call","id":"call_1","name":"multiply",)"
      R"("arguments":{"a":6,"b":7,"exact":true,"note":null}}],"finish_reason":"tool_call"},)"
      R"({"role":"tool","parts":[{"type":"tool_call_response","id":"call_1","response":"42"}]}])";
  PolicyTally tally;
  const std::string out = masked("gen_ai.input.messages", in, &tally);
  CHECK(out ==
        R"([{"role":"system","parts":[{"type":"text","content":"[masked: 21 bytes]"}]},)"
        R"({"role":"user","parts":[{"type":"text","content":"[masked: 25 bytes]"}]},)"
        R"({"role":"assistant","parts":[{"type":"tool_call","id":"call_1","name":"multiply",)"
        R"("arguments":{"a":0,"b":0,"exact":false,"note":null}}],"finish_reason":"tool_call"},)"
        R"({"role":"tool","parts":[{"type":"tool_call_response","id":"call_1","response":"[masked: 2 bytes]"}]}])");
  CHECK(valid_json(out));
  CHECK(tally.structured == 1);
  CHECK(tally.count(PolicyMode::mask, Family::genai) == 1);
}

TEST_CASE("Koog system_instructions and node inputs: JSON kept, plain text whole", "[policy][structure]") {
  CHECK(masked("system_instructions", R"([{"type":"text","content":"Be terse."}])") ==
        R"([{"type":"text","content":"[masked: 9 bytes]"}])");
  // Koog's node input is often a JSON string literal or plain text: masked whole, as before.
  CHECK(masked("koog.node.input", R"("What is 6 * 7?")") == "[masked: 16 bytes]");
  CHECK(masked("koog.node.input", "What is 6 * 7?") == "[masked: 14 bytes]");
  CHECK(masked("koog.subgraph.output", R"({"content":"42","role":"assistant","metaInfo":{"totalTokensCount":9}})") ==
        R"({"content":"[masked: 2 bytes]","role":"assistant","metaInfo":{"totalTokensCount":0}})");
}

TEST_CASE("OpenAI chat: content as string or parts, tool call arguments parsed once more",
          "[policy][structure]") {
  const std::string in =
      R"({"model":"gpt-4o","messages":[{"role":"user","content":"Weather in Paris?"},)"
      R"({"role":"user","content":[{"type":"text","text":"and this"},{"type":"image_url","image_url":{"url":"https://x/y.png"}}]},)"
      R"({"role":"assistant","content":null,"tool_calls":[{"id":"call_9","type":"function",)"
      R"("function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"email\":\"bob@example.com\"}"}}]},)"
      R"({"role":"tool","tool_call_id":"call_9","content":"sunny"}],"temperature":0.2})";
  const std::string out = masked("mlflow.spanInputs", in);
  CHECK(out ==
        R"({"model":"gpt-4o","messages":[{"role":"user","content":"[masked: 17 bytes]"},)"
        R"({"role":"user","content":[{"type":"text","text":"[masked: 8 bytes]"},{"type":"image_url","image_url":{"url":"[masked: 15 bytes]"}}]},)"
        R"({"role":"assistant","content":null,"tool_calls":[{"id":"call_9","type":"function",)"
        R"("function":{"name":"get_weather","arguments":"{\"city\":\"[masked: 5 bytes]\",\"email\":\"[masked: 15 bytes]\"}"}}]},)"
        R"({"role":"tool","tool_call_id":"call_9","content":"[masked: 5 bytes]"}],"temperature":0})");
  CHECK(valid_json(out));
  CHECK(out.find("bob@") == std::string::npos);
}

TEST_CASE("MLflow span outputs and OpenInference values keep their shape", "[policy][structure]") {
  CHECK(masked("mlflow.spanOutputs", R"({"choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}]})") ==
        R"({"choices":[{"index":0,"message":{"role":"assistant","content":"[masked: 2 bytes]"},"finish_reason":"stop"}]})");
  CHECK(masked("input.value", R"({"query":"where is my order 1234","top_k":3})") ==
        R"({"query":"[masked: 22 bytes]","top_k":0})");
  CHECK(masked("output.value", R"(["a","b"])") == R"(["[masked: 1 bytes]","[masked: 1 bytes]"])");
}

TEST_CASE("flattened message lists (OpenInference, Traceloop) keep their structural keys",
          "[policy][structure]") {
  const CompiledPolicy policy{config::PolicyConfig{}};
  OneSpan one;
  set(one.attributes(), "llm.input_messages.0.message.role", text("user"));
  set(one.attributes(), "llm.input_messages.0.message.content", text("my secret prompt"));
  set(one.attributes(), "llm.output_messages.0.message.tool_calls.0.tool_call.function.name", text("search"));
  set(one.attributes(), "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments",
      text(R"({"q":"private"})"));
  set(one.attributes(), "gen_ai.prompt.0.role", text("system"));
  set(one.attributes(), "gen_ai.prompt.0.content", text("rules"));
  set(one.attributes(), "gen_ai.completion.0.finish_reason", text("stop"));
  set(one.attributes(), "traceloop.entity.input", text(R"({"inputs":{"question":"why"},"tags":[],"kwargs":{}})"));
  PolicyTally tally;
  apply(policy, one.resource_spans, tally);
  CHECK(one.value("llm.input_messages.0.message.role") == "user");
  CHECK(one.value("llm.input_messages.0.message.content") == "[masked: 16 bytes]");
  CHECK(one.value("llm.output_messages.0.message.tool_calls.0.tool_call.function.name") == "search");
  CHECK(one.value("llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments") ==
        R"({"q":"[masked: 7 bytes]"})");
  CHECK(one.value("gen_ai.prompt.0.role") == "system");
  CHECK(one.value("gen_ai.prompt.0.content") == "[masked: 5 bytes]");
  CHECK(one.value("gen_ai.completion.0.finish_reason") == "stop");
  CHECK(one.value("traceloop.entity.input") == R"({"inputs":{"question":"[masked: 3 bytes]"},"tags":[],"kwargs":{}})");
}

TEST_CASE("key-value lists keep the scalar values of structural keys", "[policy][structure]") {
  const CompiledPolicy policy{config::PolicyConfig{}};
  PolicyTally tally;
  AnyValue message;
  auto* role = message.mutable_kvlist_value()->add_values();
  role->set_key("role");
  *role->mutable_value() = text("user");
  auto* content = message.mutable_kvlist_value()->add_values();
  content->set_key("content");
  *content->mutable_value() = text("hello");
  CHECK(apply_value(policy, {PolicyMode::mask, Family::genai, 256}, message, 1, tally));
  CHECK(message.kvlist_value().values(0).value().string_value() == "user");
  CHECK(message.kvlist_value().values(1).value().string_value() == "[masked: 5 bytes]");
}

TEST_CASE("escapes: leaves are measured and hashed unescaped, written back escaped", "[policy][structure]") {
  CHECK(masked("input.value", R"({"t":"a\nb\u00e9\ud83d\ude00"})") == R"({"t":"[masked: 9 bytes]"})");
  config::PolicyConfig config;
  config.content = PolicyMode::truncate;
  config.truncate_bytes = 3;
  const CompiledPolicy truncate{config};
  CHECK(masked(truncate, "input.value", R"({"t":"a\"bcdef"})") == R"({"t":"a\"b[truncated: 7 bytes]"})");
  config.content = PolicyMode::hash;
  const CompiledPolicy hash{config};
  // SHA-256("abc") = ba7816bf8f01cfea...: the leaf's text, not its JSON spelling.
  CHECK(masked(hash, "input.value", R"({"t":"\u0061bc","n":5})") == R"({"t":"sha256:ba7816bf8f01cfea","n":0})");
}

TEST_CASE("redact scrubs secrets inside leaves and keeps the rest of the JSON", "[policy][structure]") {
  const CompiledPolicy policy{policy_with(PolicyMode::redact)};
  PolicyTally tally;
  const std::string out =
      masked(policy, "gen_ai.input.messages",
             R"([{"role":"user","parts":[{"type":"text","content":"mail bob@example.com","n":3}]}])", &tally);
  CHECK(out == R"([{"role":"user","parts":[{"type":"text","content":"mail [redacted:email]","n":3}]}])");
  CHECK(tally.redaction_matches == 1);
  // A secret known by its key: the key stays, its value goes.
  CHECK(masked(policy, "input.value", R"({"password": "hunter22", "user": "bob"})", &tally) ==
        R"({"password":"[redacted:password]","user":"bob"})");
  // Nothing to scrub: unchanged and not counted.
  CHECK(masked(policy, "input.value", R"({"a": "plain"})", &tally) == R"({"a": "plain"})");
  CHECK(tally.total(PolicyMode::redact) == 0);
}

TEST_CASE("every fallback masks the whole value and is counted", "[policy][structure]") {
  PolicyTally tally;
  CHECK(masked("input.value", R"({"a":"unterminated)", &tally) == "[masked: 18 bytes]");
  CHECK(fallbacks(tally, Fallback::not_json) == 1);
  CHECK(masked("input.value", R"({"a":1} trailing)", &tally) == "[masked: 16 bytes]");
  CHECK(fallbacks(tally, Fallback::not_json) == 1);
  CHECK(masked("input.value", R"({"a":01})", &tally) == "[masked: 8 bytes]");
  CHECK(fallbacks(tally, Fallback::not_json) == 1);
  CHECK(masked("input.value", "{\"a\":\"\xff\"}", &tally) == "[masked: 9 bytes]");
  CHECK(fallbacks(tally, Fallback::invalid_utf8) == 1);
  CHECK(masked("input.value", R"({"a":"\udc00"})", &tally) == "[masked: 14 bytes]");
  CHECK(fallbacks(tally, Fallback::invalid_utf8) == 1);
  CHECK(masked("input.value", "{\"a\":\"tab\there\"}", &tally) == "[masked: 16 bytes]");
  CHECK(fallbacks(tally, Fallback::not_json) == 1);
  // Kept text (a key, a structural value) with a lone surrogate escape would not be strict JSON.
  CHECK(masked("input.value", R"({"name":"x\ud83d","t":"y"})", &tally) == "[masked: 26 bytes]");
  CHECK(fallbacks(tally, Fallback::invalid_utf8) == 1);

  config::PolicyConfig config;
  config.max_depth = 3;
  config.max_structure_bytes = 40;
  const CompiledPolicy small{config};
  CHECK(masked(small, "input.value", R"({"a":[["x"]]})", &tally) == R"({"a":[["[masked: 1 bytes]"]]})");
  CHECK(masked(small, "input.value", R"({"a":[[["x"]]]})", &tally) == "[masked: 15 bytes]");
  CHECK(fallbacks(tally, Fallback::too_deep) == 1);
  CHECK(masked(small, "input.value", R"({"a":")" + std::string(40, 'x') + R"("})", &tally) ==
        "[masked: 48 bytes]");
  CHECK(fallbacks(tally, Fallback::too_large) == 1);
  CHECK(tally.structured == 0);

  // A string inside that looks like JSON but is not: that leaf is masked whole, the rest kept.
  CHECK(masked("input.value", R"({"a":"[1] see below","id":"x"})", &tally) ==
        R"({"a":"[masked: 13 bytes]","id":"x"})");
  CHECK(fallbacks(tally, Fallback::not_json) == 1);
  CHECK(tally.structured == 1);
}

TEST_CASE("structure: whole masks JSON content as one value", "[policy][structure]") {
  config::PolicyConfig config;
  config.keep_structure = false;
  const CompiledPolicy policy{config};
  CHECK(masked(policy, "gen_ai.input.messages", R"([{"role":"user","content":"hi"}])") == "[masked: 32 bytes]");
  CHECK(masked(policy, "llm.input_messages.0.message.role", "user") == "[masked: 4 bytes]");
}

TEST_CASE("structural_keys globs add kept keys", "[policy][structure]") {
  config::PolicyConfig config;
  config.structural_keys = {"tool_*", "lang"};
  const CompiledPolicy policy{config};
  CHECK(masked(policy, "input.value", R"({"tool_name":"grep","lang":"en","text":"hello"})") ==
        R"({"tool_name":"grep","lang":"en","text":"[masked: 5 bytes]"})");
}

TEST_CASE("role selectors: a mode per message role, found wherever the role is written",
          "[policy][structure][selectors]") {
  config::PolicyConfig config;
  config.messages = {{"system", PolicyMode::verbose}, {"tool", PolicyMode::hash}};
  const CompiledPolicy policy{config};
  const std::string in =
      R"([{"parts":[{"type":"text","content":"You are helpful."}],"role":"system"},)"
      R"({"role":"User","parts":[{"type":"text","content":"hi"}]},)"
      R"({"role":"tool","parts":[{"type":"tool_call_response","id":"c1","response":"abc"}]}])";
  CHECK(masked(policy, "gen_ai.input.messages", in) ==
        R"([{"parts":[{"type":"text","content":"You are helpful."}],"role":"system"},)"
        R"({"role":"User","parts":[{"type":"text","content":"[masked: 2 bytes]"}]},)"
        R"({"role":"tool","parts":[{"type":"tool_call_response","id":"c1","response":"sha256:ba7816bf8f01cfea"}]}])");
}

TEST_CASE("role selectors reach messages flattened into keys (OpenInference, Traceloop)",
          "[policy][structure][selectors]") {
  config::PolicyConfig config;
  config.messages = {{"system", PolicyMode::verbose}, {"tool", PolicyMode::hash}};
  const CompiledPolicy policy{config};
  OneSpan one;
  set(one.attributes(), "llm.input_messages.0.message.content", text("You are helpful."));
  set(one.attributes(), "llm.input_messages.0.message.role", text("system"));
  set(one.attributes(), "llm.input_messages.1.message.role", text("user"));
  set(one.attributes(), "llm.input_messages.1.message.content", text("my secret"));
  set(one.attributes(), "llm.input_messages.2.message.role", text("Tool"));
  set(one.attributes(), "llm.input_messages.2.message.content", text("abc"));
  set(one.attributes(), "llm.input_messages.3.message.content", text("no role given"));
  set(one.attributes(), "gen_ai.prompt.0.role", text("system"));
  set(one.attributes(), "gen_ai.prompt.0.content", text("rules"));
  set(one.attributes(), "gen_ai.prompt.1.role", text("user"));
  set(one.attributes(), "gen_ai.prompt.1.content", text("question"));
  // A role in another message's index is not this message's role.
  set(one.attributes(), "gen_ai.prompt.10.role", text("system"));
  set(one.attributes(), "gen_ai.prompt.11.content", text("eleven"));
  PolicyTally tally;
  apply(policy, one.resource_spans, tally);
  CHECK(one.value("llm.input_messages.0.message.content") == "You are helpful.");
  CHECK(one.value("llm.input_messages.1.message.content") == "[masked: 9 bytes]");
  CHECK(one.value("llm.input_messages.2.message.content") == "sha256:ba7816bf8f01cfea");
  CHECK(one.value("llm.input_messages.3.message.content") == "[masked: 13 bytes]");
  CHECK(one.value("gen_ai.prompt.0.content") == "rules");
  CHECK(one.value("gen_ai.prompt.1.content") == "[masked: 8 bytes]");
  CHECK(one.value("gen_ai.prompt.11.content") == "[masked: 6 bytes]");
  CHECK(one.value("gen_ai.prompt.1.role") == "user");
}

TEST_CASE("role selectors reach GenAI message events by their name", "[policy][selectors]") {
  config::PolicyConfig config;
  config.messages = {{"system", PolicyMode::verbose}, {"assistant", PolicyMode::hash}};
  const CompiledPolicy policy{config};
  OneSpan one;
  const auto add_event = [&](std::string_view name, std::string_view content) {
    auto* event = one.span->add_events();
    event->set_name(std::string(name));
    set(*event->mutable_attributes(), "content", text(content));
  };
  add_event("gen_ai.system.message", "You are helpful.");
  add_event("gen_ai.user.message", "my secret");
  add_event("gen_ai.choice", "abc");
  add_event("gen_ai.assistant.message", "abc");
  PolicyTally tally;
  apply(policy, one.resource_spans, tally);
  const auto content = [&](int event) { return one.span->events(event).attributes(0).value().string_value(); };
  CHECK(content(0) == "You are helpful.");
  CHECK(content(1) == "[masked: 9 bytes]");
  CHECK(content(2) == "sha256:ba7816bf8f01cfea");
  CHECK(content(3) == "sha256:ba7816bf8f01cfea");
}

TEST_CASE("a key rule is an explicit choice: role selectors do not override it", "[policy][selectors]") {
  config::PolicyConfig config;
  config.messages = {{"system", PolicyMode::verbose}};
  config.keys = {{"gen_ai.prompt.*.content", PolicyMode::mask, 0}};
  const CompiledPolicy policy{config};
  OneSpan one;
  set(one.attributes(), "gen_ai.prompt.0.role", text("system"));
  set(one.attributes(), "gen_ai.prompt.0.content", text("rules"));
  PolicyTally tally;
  apply(policy, one.resource_spans, tally);
  CHECK(one.value("gen_ai.prompt.0.content") == "[masked: 5 bytes]");
}

TEST_CASE("part selectors win over the role", "[policy][structure][selectors]") {
  config::PolicyConfig config;
  config.messages = {{"user", PolicyMode::verbose}};
  config.parts = {{"tool_call_response", PolicyMode::hash}, {"text", PolicyMode::mask}};
  const CompiledPolicy policy{config};
  const std::string in =
      R"([{"role":"user","parts":[{"type":"text","content":"hi"},{"type":"tool_call_response","response":"abc"},)"
      R"({"type":"blob","data":"raw"}]}])";
  CHECK(masked(policy, "gen_ai.input.messages", in) ==
        R"([{"role":"user","parts":[{"type":"text","content":"[masked: 2 bytes]"},)"
        R"({"type":"tool_call_response","response":"sha256:ba7816bf8f01cfea"},{"type":"blob","data":"raw"}]}])");
}

TEST_CASE("the walker's output is valid JSON for odd but valid input", "[policy][structure]") {
  for (const char* in : {R"([])", R"({})", R"( [ 1 , -2.5e+3 , true , false , null , "" , {} ] )",
                         R"({"k":{"k":{"k":[[],[{}]]}}})", R"(["\\\"\/\b\f\n\r\t"])"}) {
    INFO(in);
    const std::string out = masked("input.value", in);
    CHECK(valid_json(out));
  }
  CHECK(masked("input.value", R"( [ 1 , -2.5e+3 , true , false , null , "" ] )") == R"([0,0,false,false,null,""])");
}

namespace {

// Rewrites every leaf to "<mode>:<key>" and records what it was asked, so a test sees which
// key and mode the walk had in force at each leaf.
class RecordingRewriter final : public LeafRewriter {
 public:
  bool rewrite(PolicyMode mode, std::string_view key, std::string_view text, std::string& out) const override {
    const std::string leaf = std::string(config::format_policy_mode(mode)) + ":" + std::string(key);
    calls += leaf + "=" + std::string(text) + ";";
    out += leaf;
    return true;
  }
  mutable std::string calls;
};

struct Walked {
  StructureResult result;
  std::string out;
};

Walked walk_text(std::string_view text, const StructureOptions& options = {}, unsigned depth = 1,
                 PolicyMode mode = PolicyMode::mask) {
  Walked walked;
  walked.out = "prefix";
  walked.result = rewrite_structure(text, mode, options, RecordingRewriter{}, walked.out, depth);
  if (walked.result.fallback == Fallback::none) walked.out.erase(0, 6);
  return walked;
}

std::string nested_in(std::string_view open, std::string_view leaf, std::string_view close, unsigned levels) {
  std::string text;
  for (unsigned i = 0; i < levels; ++i) text += open;
  text += leaf;
  for (unsigned i = 0; i < levels; ++i) text += close;
  return text;
}

std::uint32_t nested_count(const StructureResult& result, Fallback why) {
  return result.nested[static_cast<std::size_t>(why)];
}

}  // namespace

TEST_CASE("nesting exactly at max_depth is walked, one level more falls back", "[policy][structure]") {
  for (const unsigned max_depth : {1u, 2u, 8u, 63u, 64u}) {
    INFO(max_depth);
    StructureOptions options;
    options.max_depth = max_depth;
    const Walked arrays = walk_text(nested_in("[", "1", "]", max_depth), options);
    CHECK(arrays.result.fallback == Fallback::none);
    CHECK(arrays.out == nested_in("[", "0", "]", max_depth));
    CHECK(walk_text(nested_in("[", "1", "]", max_depth + 1), options).result.fallback == Fallback::too_deep);
    const Walked objects = walk_text(nested_in(R"({"k":)", R"("v")", "}", max_depth), options);
    CHECK(objects.result.fallback == Fallback::none);
    CHECK(objects.out == nested_in(R"({"k":)", R"("mask:k")", "}", max_depth));
    CHECK(walk_text(nested_in(R"({"k":)", "{}", "}", max_depth), options).result.fallback == Fallback::too_deep);
    // The text's own depth counts: the same nesting one level further down no longer fits.
    CHECK(walk_text(nested_in("[", "1", "]", max_depth), options, 2).result.fallback == Fallback::too_deep);
    if (max_depth > 1) {
      CHECK(walk_text(nested_in("[", "1", "]", max_depth - 1), options, 2).result.fallback == Fallback::none);
    }
  }
}

TEST_CASE("a max_depth past the config's limit counts as that limit", "[policy][structure]") {
  StructureOptions options;
  options.max_depth = 1000;
  CHECK(walk_text(nested_in("[", "1", "]", kMaxStructureDepth), options).result.fallback == Fallback::none);
  CHECK(walk_text(nested_in("[", "1", "]", kMaxStructureDepth + 1), options).result.fallback == Fallback::too_deep);
  CHECK(walk_text(nested_in("[", "1", "]", 500), options).result.fallback == Fallback::too_deep);
  // A walk asked to start deeper than the limit has no room for a container at all.
  CHECK(walk_text("[1]", options, kMaxStructureDepth + 1).result.fallback == Fallback::too_deep);
  CHECK(walk_text(nested_in("[", "1", "]", kMaxStructureDepth + 1), options, 0).result.fallback == Fallback::none);
}

TEST_CASE("JSON inside a string is walked from the string's depth", "[policy][structure]") {
  StructureOptions options;
  options.max_depth = 3;
  // The string is at depth 2: its JSON may open containers at depths 2 and 3.
  const Walked fits = walk_text(R"({"a":"[[1,\"x\"]]"})", options);
  CHECK(fits.result.fallback == Fallback::none);
  CHECK(fits.out == R"({"a":"[[0,\"mask:\"]]"})");
  CHECK(fits.result.rewritten == 2);
  // One level more: that string is rewritten whole and the nested fallback counted; the rest stays.
  const Walked deep = walk_text(R"({"a":"[[[1]]]","name":"n","b":"t"})", options);
  CHECK(deep.result.fallback == Fallback::none);
  CHECK(deep.out == R"({"a":"mask:a","name":"n","b":"mask:b"})");
  CHECK(nested_count(deep.result, Fallback::too_deep) == 1);
  // A string in a container at max_depth holds JSON one level below it: no room for a container.
  const Walked bottom = walk_text(R"([[["[1]","{}","[]",1]]])", options);
  CHECK(bottom.result.fallback == Fallback::none);
  CHECK(bottom.out == R"([[["mask:","mask:","mask:",0]]])");
  CHECK(nested_count(bottom.result, Fallback::too_deep) == 3);
  // JSON in a string in a string is a plain leaf: the walk goes one string deep.
  const Walked twice = walk_text(R"(["[\"[1]\"]"])", options);
  CHECK(twice.out == R"(["[\"mask:\"]"])");
  // The nested walk's other fallbacks are counted by reason too.
  const Walked broken = walk_text(R"(["[1,]","{\"a\":\"\\udc00\"}"])", options);
  CHECK(broken.result.fallback == Fallback::none);
  CHECK(nested_count(broken.result, Fallback::not_json) == 1);
  CHECK(nested_count(broken.result, Fallback::invalid_utf8) == 1);
}

TEST_CASE("escapes at the ends of strings and of the text", "[policy][structure]") {
  CHECK(walk_text(R"(["a\\"])").out == R"(["mask:"])");
  CHECK(walk_text(R"(["\""])").out == R"(["mask:"])");
  CHECK(walk_text(R"(["\ud83d\ude00"])").out == R"(["mask:"])");
  CHECK(walk_text(R"({"name":"\ud83d\ude00"})").out == R"({"name":"\ud83d\ude00"})");
  CHECK(walk_text(R"({"\u0041":"x"})").out == R"({"\u0041":"mask:\\u0041"})");
  for (const char* cut : {R"(["\)", R"(["\u)", R"(["\u12)", R"(["\u123)", R"(["\u1234)", R"(["a\")",
                          R"(["\x"])", R"(["\u12G4"])"}) {
    INFO(cut);
    CHECK(walk_text(cut).result.fallback == Fallback::not_json);
  }
  for (const char* lone : {R"(["\ud83d"])", R"(["\ude00"])", R"({"name":"\ud83d"})", R"({"\udc00":1})",
                           R"(["\ud83d\u0041"])"}) {
    INFO(lone);
    CHECK(walk_text(lone).result.fallback == Fallback::invalid_utf8);
  }
}

TEST_CASE("empty containers, whitespace and top-level scalars", "[policy][structure]") {
  for (const char* empty : {"[]", "{}", "[[],{}]", R"({"a":{},"b":[]})", " [ ] ", "{ }", "[ [ ] , { } ]",
                            "[[[]]]", R"({"a":{"b":{}}})"}) {
    INFO(empty);
    const Walked walked = walk_text(empty);
    CHECK(walked.result.fallback == Fallback::none);
    CHECK(walked.result.rewritten == 0);
  }
  CHECK(walk_text(" [ [ ] , { } ] ").out == "[[],{}]");
  CHECK(walk_text("\t{ \"a\" :\n[ 1 ,\r\"x\" ] , \"name\" : \"n\" }\n").out == R"({"a":[0,"mask:"],"name":"n"})");
  for (const char* scalar : {R"("x")", "1", "true", "null", "", "   "}) {
    INFO(scalar);
    CHECK(walk_text(scalar).result.fallback == Fallback::not_json);
  }
  for (const char* bad : {"[}", "{]", "[1,]", R"({"a":1,})", R"({"a" 1})", "{1:2}", "[1 2]", "[[1]]]", "[[1]",
                          "[", "{", R"({"a")", R"({"a":)", "[tru]", "[nul]", "[-]", "[1.]", "[1e]", "[01]", "[] []"}) {
    INFO(bad);
    CHECK(walk_text(bad).result.fallback == Fallback::not_json);
  }
}

TEST_CASE("after a container closes, the next member has its own key and the outer mode",
          "[policy][structure][selectors]") {
  const Walked keys = walk_text(R"({"a":{"b":[1,{"c":"x"}]},"name":"n","d":"y","e":[true],"id":7})");
  CHECK(keys.out == R"({"a":{"b":[0,{"c":"mask:c"}]},"name":"n","d":"mask:d","e":[false],"id":7})");
  const std::vector<config::ModeByName> roles{{"user", PolicyMode::hash}, {"system", PolicyMode::truncate}};
  StructureOptions options;
  options.roles = roles;
  const Walked modes = walk_text(
      R"([{"role":"user","a":"1","x":{"role":"system","b":"2","y":{"c":"3"}},"d":"4"},{"e":"5"},"6"])", options);
  CHECK(modes.out ==
        R"([{"role":"user","a":"hash:a","x":{"role":"system","b":"truncate:b","y":{"c":"truncate:c"}},)"
        R"("d":"hash:d"},{"e":"mask:e"},"mask:"])");
}

TEST_CASE("a failed walk still reports what it rewrote and the nested fallbacks before the error",
          "[policy][structure]") {
  const Walked walked = walk_text(R"(["[1,]","x",{"a":"y"},[[[[[[[[[1]]]]]]]]]])");
  CHECK(walked.result.fallback == Fallback::too_deep);
  CHECK(walked.out == "prefix");
  CHECK(walked.result.rewritten == 3);
  CHECK(nested_count(walked.result, Fallback::not_json) == 1);
  // Invalid UTF-8 anywhere in the text is the reason given, with nothing counted.
  const Walked utf8 = walk_text("[\"[1,]\",[[[[[[[[[1]]]]]]]]],\"\xff\"]");
  CHECK(utf8.result.fallback == Fallback::invalid_utf8);
  CHECK(utf8.result.rewritten == 0);
  CHECK(nested_count(utf8.result, Fallback::not_json) == 0);
}
