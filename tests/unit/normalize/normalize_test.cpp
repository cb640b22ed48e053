// One section per normalization rule, on spans shaped like the ones Koog 1.0.0 exports
// (captured from tests/e2e/koog; see tests/e2e/koog_runner.py).
#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>

#include "normalize/json_value.hpp"
#include "normalize/normalize.hpp"

using namespace proxy;
using normalize::Normalizer;
using normalize::NormalizeTally;
using normalize::Rule;

namespace {

struct Request {
  otlp::ResourceSpans resource_spans;
  otlp::ScopeSpans* scope = resource_spans.add_scope_spans();

  Request() {
    resource("service.name", "weather-service");
    resource("service.version", "1.2.3");
    resource("telemetry.sdk.language", "kotlin");
    resource("os.type", "Linux");
    scope->mutable_scope()->set_name("ai.koog");
    scope->mutable_scope()->set_version("1.0.0");
  }
  void resource(const std::string& key, const std::string& value) {
    auto* attribute = resource_spans.mutable_resource()->add_attributes();
    attribute->set_key(key);
    attribute->mutable_value()->set_string_value(value);
  }
  otlp::Span& span(const std::string& name, bool root = false) {
    otlp::Span* span = scope->add_spans();
    span->set_name(name);
    span->set_trace_id(std::string(16, '\x11'));
    span->set_span_id(std::string(8, static_cast<char>('\x20' + scope->spans_size())));
    if (!root) span->set_parent_span_id(std::string(8, '\x01'));
    span->set_kind(opentelemetry::proto::trace::v1::Span::SPAN_KIND_INTERNAL);
    return *span;
  }
};

void set(otlp::Span& span, const std::string& key, const std::string& value) {
  auto* attribute = span.add_attributes();
  attribute->set_key(key);
  attribute->mutable_value()->set_string_value(value);
}

std::string text(const otlp::Span& span, std::string_view key) {
  const otlp::AnyValue* value = normalize::find_attribute(span, key);
  if (value == nullptr) return "<absent>";
  if (value->value_case() != otlp::AnyValue::kStringValue) return "<not a string>";
  return value->string_value();
}

int occurrences(const otlp::Span& span, std::string_view key) {
  int count = 0;
  for (const auto& attribute : span.attributes()) count += attribute.key() == key ? 1 : 0;
  return count;
}

NormalizeTally run(const config::NormalizeConfig& config, Request& request) {
  NormalizeTally tally;
  normalize::apply(Normalizer(config), request.resource_spans, tally);
  return tally;
}

}  // namespace

TEST_CASE("resource attributes are copied onto spans that lack them", "[normalize]") {
  Request request;
  otlp::Span& root = request.span("create_agent weather-agent", true);
  otlp::Span& child = request.span("node call_llm");
  set(child, "service.name", "set-by-the-agent");

  SECTION("every span by default; an attribute the span has wins") {
    const auto tally = run({}, request);
    CHECK(text(root, "service.name") == "weather-service");
    CHECK(text(root, "service.version") == "1.2.3");
    CHECK(text(root, "telemetry.sdk.language") == "kotlin");
    CHECK(text(root, "os.type") == "<absent>");  // not in the list
    CHECK(text(root, "deployment.environment.name") == "<absent>");  // not in the resource
    CHECK(text(child, "service.name") == "set-by-the-agent");
    CHECK(occurrences(child, "service.name") == 1);
    CHECK(text(child, "service.version") == "1.2.3");
    CHECK(tally.count(Rule::resource_attribute) == 5);
  }
  SECTION("root only") {
    config::NormalizeConfig config;
    config.resource_target = config::ResourceTarget::root;
    run(config, request);
    CHECK(text(root, "service.version") == "1.2.3");
    CHECK(text(child, "service.version") == "<absent>");
  }
  SECTION("none, or a list of the user's") {
    config::NormalizeConfig config;
    config.resource_target = config::ResourceTarget::none;
    run(config, request);
    CHECK(text(root, "service.name") == "<absent>");
    config.resource_target = config::ResourceTarget::all;
    config.resource_attributes = {"os.type"};
    run(config, request);
    CHECK(text(root, "os.type") == "Linux");
    CHECK(text(root, "service.name") == "<absent>");
  }
}

TEST_CASE("span kind, scope and links become attributes", "[normalize]") {
  Request request;
  otlp::Span& span = request.span("chat gpt-4o");
  span.set_kind(opentelemetry::proto::trace::v1::Span::SPAN_KIND_CLIENT);
  auto* link = span.add_links();
  link->set_trace_id(std::string(16, '\xab'));
  link->set_span_id(std::string(8, '\xcd'));
  auto* attribute = link->add_attributes();
  attribute->set_key("reason");
  attribute->mutable_value()->set_string_value("retry");

  SECTION("kind and scope by default, links only when asked") {
    run({}, request);
    CHECK(text(span, "otel.span.kind") == "CLIENT");
    CHECK(text(span, "otel.scope.name") == "ai.koog");
    CHECK(text(span, "otel.scope.version") == "1.0.0");
    CHECK(text(span, "otel.links") == "<absent>");
  }
  SECTION("links as compact JSON") {
    config::NormalizeConfig config;
    config.links = true;
    const auto tally = run(config, request);
    CHECK(text(span, "otel.links") ==
          R"([{"trace_id":"abababababababababababababababab","span_id":"cdcdcdcdcdcdcdcd",)"
          R"("attributes":{"reason":"retry"}}])");
    CHECK(tally.count(Rule::links) == 1);
  }
  SECTION("off") {
    config::NormalizeConfig config;
    config.span_kind = false;
    config.scope = false;
    run(config, request);
    CHECK(text(span, "otel.span.kind") == "<absent>");
    CHECK(text(span, "otel.scope.name") == "<absent>");
  }
  SECTION("an unspecified kind is not written") {
    span.set_kind(opentelemetry::proto::trace::v1::Span::SPAN_KIND_UNSPECIFIED);
    run({}, request);
    CHECK(text(span, "otel.span.kind") == "<absent>");
  }
}

TEST_CASE("span types for spans MLflow cannot classify", "[normalize]") {
  Request request;
  otlp::Span& strategy = request.span("strategy weather_strategy");
  set(strategy, "koog.strategy.name", "weather_strategy");
  otlp::Span& node = request.span("node call_llm");
  set(node, "koog.node.id", "call_llm");
  otlp::Span& subgraph = request.span("subgraph research");
  set(subgraph, "koog.subgraph.id", "research");
  otlp::Span& chat = request.span("chat gpt-4o");
  set(chat, "gen_ai.operation.name", "chat");
  set(chat, "gen_ai.request.model", "gpt-4o");
  otlp::Span& agent = request.span("invoke_agent helper");  // no operation name (older Koog)
  otlp::Span& llm = request.span("completion");
  set(llm, "gen_ai.request.model", "gpt-4o");
  otlp::Span& unknown_operation = request.span("rerank");
  set(unknown_operation, "gen_ai.operation.name", "rerank");
  set(unknown_operation, "gen_ai.request.model", "reranker-1");
  otlp::Span& typed = request.span("custom");
  set(typed, "mlflow.spanType", "TOOL");
  set(typed, "koog.node.id", "custom");
  otlp::Span& openinference = request.span("retrieve");
  set(openinference, "openinference.span.kind", "RETRIEVER");
  set(openinference, "gen_ai.request.model", "x");
  otlp::Span& plain = request.span("http get");

  SECTION("built-in rules") {
    const auto tally = run({}, request);
    CHECK(text(strategy, "mlflow.spanType") == "CHAIN");
    CHECK(text(node, "mlflow.spanType") == "CHAIN");
    CHECK(text(subgraph, "mlflow.spanType") == "CHAIN");
    CHECK(text(chat, "mlflow.spanType") == "<absent>");  // MLflow maps "chat" itself
    CHECK(text(agent, "mlflow.spanType") == "AGENT");
    CHECK(text(llm, "mlflow.spanType") == "LLM");
    CHECK(text(unknown_operation, "mlflow.spanType") == "LLM");
    CHECK(text(typed, "mlflow.spanType") == "TOOL");
    CHECK(occurrences(typed, "mlflow.spanType") == 1);
    CHECK(text(openinference, "mlflow.spanType") == "<absent>");
    CHECK(text(plain, "mlflow.spanType") == "<absent>");
    CHECK(tally.count(Rule::span_type) == 6);
  }
  SECTION("user rules come first: by name glob, by attribute, by attribute value") {
    config::NormalizeConfig config;
    config.span_type_rules = {{"http *", "", "", "TOOL"},
                              {"", "koog.node.id", "call_llm", "LLM"},
                              {"", "koog.subgraph.id", "", "AGENT"}};
    run(config, request);
    CHECK(text(plain, "mlflow.spanType") == "TOOL");
    CHECK(text(node, "mlflow.spanType") == "LLM");
    CHECK(text(subgraph, "mlflow.spanType") == "AGENT");
    CHECK(text(strategy, "mlflow.spanType") == "CHAIN");  // built-ins still apply after
    CHECK(text(chat, "mlflow.spanType") == "<absent>");   // rules never override MLflow's own
  }
  SECTION("built-ins off, user rules kept") {
    config::NormalizeConfig config;
    config.span_types = false;
    config.span_type_rules = {{"strategy *", "", "", "WORKFLOW"}};
    run(config, request);
    CHECK(text(strategy, "mlflow.spanType") == "WORKFLOW");
    CHECK(text(node, "mlflow.spanType") == "<absent>");
    CHECK(text(llm, "mlflow.spanType") == "<absent>");
  }
}

TEST_CASE("Koog node and subgraph inputs/outputs become span inputs/outputs", "[normalize]") {
  Request request;
  otlp::Span& node = request.span("node __start__");
  set(node, "koog.node.input", R"("What is the weather in Paris?")");
  set(node, "koog.node.output", R"({"toolCalls":[{"tool":"get_weather"}]})");
  otlp::Span& masked = request.span("node call_llm");
  set(masked, "koog.node.input", "[masked: 32 bytes]");
  set(masked, "koog.node.output", "HIDDEN:non-empty");
  otlp::Span& subgraph = request.span("subgraph research");
  set(subgraph, "koog.subgraph.input", "plain text");
  otlp::Span& has_own = request.span("node x");
  set(has_own, "koog.node.input", "\"a\"");
  set(has_own, "mlflow.spanInputs", "own");

  const auto tally = run({}, request);
  // JSON text becomes structure, so MLflow shows the text, not a quoted string.
  const otlp::AnyValue* input = normalize::find_attribute(node, "mlflow.spanInputs");
  REQUIRE(input != nullptr);
  CHECK(input->string_value() == "What is the weather in Paris?");
  const otlp::AnyValue* output = normalize::find_attribute(node, "mlflow.spanOutputs");
  REQUIRE(output != nullptr);
  REQUIRE(output->has_kvlist_value());
  CHECK(output->kvlist_value().values(0).key() == "toolCalls");
  // Masked and hidden values are copied as they are: masked stays masked.
  CHECK(text(masked, "mlflow.spanInputs") == "[masked: 32 bytes]");
  CHECK(text(masked, "mlflow.spanOutputs") == "HIDDEN:non-empty");
  CHECK(text(subgraph, "mlflow.spanInputs") == "plain text");
  CHECK(text(subgraph, "mlflow.spanOutputs") == "<absent>");
  CHECK(text(has_own, "mlflow.spanInputs") == "own");
  CHECK(occurrences(has_own, "mlflow.spanInputs") == 1);
  CHECK(tally.count(Rule::inputs) == 3);
  CHECK(tally.count(Rule::outputs) == 2);

  config::NormalizeConfig off;
  off.koog_io = false;
  Request again;
  otlp::Span& other = again.span("node y");
  set(other, "koog.node.input", "\"x\"");
  run(off, again);
  CHECK(text(other, "mlflow.spanInputs") == "<absent>");
}

TEST_CASE("system_instructions join the chat inputs (as span inputs) when they lack a system message", "[normalize]") {
  const std::string instructions = R"([{"type":"text","content":"Be brief."}])";
  SECTION("the function") {
    CHECK(normalize::join_system_instructions(
              R"([{"role":"user","parts":[{"type":"text","content":"hi"}]}])", instructions) ==
          R"([{"role":"system","parts":[{"type":"text","content":"Be brief."}]},)"
          R"({"role":"user","parts":[{"type":"text","content":"hi"}]}])");
    CHECK_FALSE(normalize::join_system_instructions(
        R"([{"role":"System","parts":[]},{"role":"User","parts":[]}])", instructions));
    CHECK_FALSE(normalize::join_system_instructions("[masked: 40 bytes]", instructions));
    CHECK_FALSE(normalize::join_system_instructions(R"([{"role":"user","parts":[]}])",
                                                    "HIDDEN:non-empty"));
    CHECK_FALSE(normalize::join_system_instructions(R"({"role":"user"})", instructions));
  }
  SECTION("on a span") {
    Request request;
    otlp::Span& chat = request.span("chat gpt-4o");
    set(chat, "gen_ai.input.messages", R"([{"role":"user","parts":[]}])");
    set(chat, "system_instructions", instructions);
    const auto tally = run({}, request);
    CHECK(text(chat, "mlflow.spanInputs") ==
          R"([{"role":"system","parts":[{"type":"text","content":"Be brief."}]},{"role":"user","parts":[]}])");
    CHECK(text(chat, "gen_ai.input.messages") == R"([{"role":"user","parts":[]}])");  // as sent
    CHECK(tally.count(Rule::system_instructions) == 1);
  }
}

TEST_CASE("sessions from gen_ai.conversation.id, users from enduser.id", "[normalize]") {
  Request request;
  otlp::Span& span = request.span("node call_llm");
  set(span, "gen_ai.conversation.id", "conv-1");
  set(span, "enduser.id", "alice");
  otlp::Span& own = request.span("node x");
  set(own, "gen_ai.conversation.id", "conv-2");
  set(own, "session.id", "s-own");
  set(own, "enduser.id", "bob");
  set(own, "user.id", "u-own");

  SECTION("on") {
    const auto tally = run({}, request);
    CHECK(text(span, "session.id") == "conv-1");
    CHECK(text(span, "user.id") == "alice");
    CHECK(text(own, "session.id") == "s-own");
    CHECK(text(own, "user.id") == "u-own");
    CHECK(tally.count(Rule::session) == 1);
    CHECK(tally.count(Rule::user) == 1);
  }
  SECTION("off") {
    config::NormalizeConfig config;
    config.session_from_conversation = false;
    config.user_from_enduser = false;
    run(config, request);
    CHECK(text(span, "session.id") == "<absent>");
    CHECK(text(span, "user.id") == "<absent>");
  }
}

TEST_CASE("a disabled normalizer changes nothing", "[normalize]") {
  Request request;
  otlp::Span& node = request.span("node call_llm");
  set(node, "koog.node.id", "call_llm");
  set(node, "koog.node.input", "\"x\"");
  set(node, "gen_ai.conversation.id", "c");
  const std::string before = request.resource_spans.SerializeAsString();
  config::NormalizeConfig config;
  config.enabled = false;
  const auto tally = run(config, request);
  CHECK(request.resource_spans.SerializeAsString() == before);
  CHECK(tally.spans == 0);
}

TEST_CASE("JSON <-> AnyValue and the chat preview shape", "[normalize]") {
  SECTION("parse_json_value") {
    auto value = normalize::parse_json_value(R"({"a":[1,2.5,true,"s",{"b":null}]})");
    REQUIRE(value);
    CHECK(normalize::to_json(*value) ==
          boost::json::parse(R"({"a":[1,2.5,true,"s",{"b":null}]})"));
    CHECK_FALSE(normalize::parse_json_value("not json"));
    CHECK_FALSE(normalize::parse_json_value("null"));
    CHECK_FALSE(normalize::parse_json_value("[masked: 12 bytes]"));
    CHECK_FALSE(normalize::parse_json_value(std::string(64, '[') + std::string(64, ']')));  // depth
    // Every kind of JSON text, after whitespace, still parses; text that cannot start one does not.
    CHECK(normalize::parse_json_value(" \n\t12")->int_value() == 12);
    CHECK(normalize::parse_json_value("-1.5")->double_value() == -1.5);
    CHECK(normalize::parse_json_value("\r true")->bool_value());
    CHECK_FALSE(normalize::parse_json_value("false")->bool_value());
    CHECK(normalize::parse_json_value(R"( "s")")->string_value() == "s");
    CHECK(normalize::parse_json_value(" {}")->has_kvlist_value());
    CHECK_FALSE(normalize::parse_json_value(""));
    CHECK_FALSE(normalize::parse_json_value("  "));
    CHECK_FALSE(normalize::parse_json_value("tru"));
    CHECK_FALSE(normalize::parse_json_value("nothing"));
    CHECK_FALSE(normalize::parse_json_value("the weather"));
  }
  SECTION("chat_preview keeps text parts, lower-cases roles, skips tool-only messages") {
    auto preview = normalize::chat_preview(
        R"([{"role":"System","parts":[{"type":"text","content":"Be brief."}]},)"
        R"({"role":"User","parts":[{"type":"text","content":"Weather?"}]},)"
        R"({"role":"Assistant","parts":[{"type":"tool_call","name":"get_weather"}]},)"
        R"({"role":"Assistant","parts":[{"type":"text","content":"Sunny."}]}])");
    REQUIRE(preview);
    CHECK(normalize::to_json(*preview) ==
          boost::json::parse(R"({"messages":[{"role":"system","content":"Be brief."},)"
                             R"({"role":"user","content":"Weather?"},)"
                             R"({"role":"assistant","content":"Sunny."}]})"));
    CHECK_FALSE(normalize::chat_preview("[masked: 99 bytes]"));
    CHECK_FALSE(normalize::chat_preview("[]"));
    CHECK_FALSE(normalize::chat_preview(R"([{"role":"user","parts":[{"type":"blob"}]}])"));
    CHECK_FALSE(normalize::chat_preview(R"([{"content":"no role"}])"));
  }
}

TEST_CASE("token counts sent as strings become integers (MLflow 3.6 rejects the trace otherwise)",
          "[normalize]") {
  Request request;
  otlp::Span& chat = request.span("chat gpt-4o");
  set(chat, "gen_ai.usage.input_tokens", "0");
  set(chat, "gen_ai.usage.output_tokens", "1234");
  set(chat, "gen_ai.usage.note", "12 tokens");
  set(chat, "gen_ai.usage.negative", "-5");
  set(chat, "other.count", "7");
  const auto tally = run({}, request);
  CHECK(normalize::find_attribute(chat, "gen_ai.usage.input_tokens")->int_value() == 0);
  CHECK(normalize::find_attribute(chat, "gen_ai.usage.input_tokens")->has_int_value());
  CHECK(normalize::find_attribute(chat, "gen_ai.usage.output_tokens")->int_value() == 1234);
  CHECK(text(chat, "gen_ai.usage.note") == "12 tokens");
  CHECK(text(chat, "gen_ai.usage.negative") == "-5");
  CHECK(text(chat, "other.count") == "7");
  CHECK(tally.count(Rule::token_count) == 2);
}
