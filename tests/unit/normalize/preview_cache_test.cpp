// Trace previews: the bounded, time-limited cache of invoke_agent inputs/outputs, and the roots
// it fills.
#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>

#include "normalize/json_value.hpp"
#include "normalize/preview_cache.hpp"

using namespace proxy;
using namespace std::chrono_literals;
using normalize::Preview;
using normalize::PreviewCache;

namespace {

const PreviewCache::Clock::time_point t0{};

std::string trace(char c) { return std::string(16, c); }

otlp::Span& add_span(otlp::ResourceSpans& resource_spans, const std::string& name,
                     const std::string& trace_id, bool root) {
  if (resource_spans.scope_spans_size() == 0) resource_spans.add_scope_spans();
  otlp::Span* span = resource_spans.mutable_scope_spans(0)->add_spans();
  span->set_name(name);
  span->set_trace_id(trace_id);
  span->set_span_id(std::string(8, static_cast<char>('\x30' + resource_spans.scope_spans(0).spans_size())));
  if (!root) span->set_parent_span_id(std::string(8, '\x01'));
  return *span;
}

void set(otlp::Span& span, const std::string& key, const std::string& value) {
  auto* attribute = span.add_attributes();
  attribute->set_key(key);
  attribute->mutable_value()->set_string_value(value);
}

otlp::Span& invoke_agent(otlp::ResourceSpans& resource_spans, const std::string& trace_id,
                         const std::string& input, const std::string& output) {
  otlp::Span& span = add_span(resource_spans, "invoke_agent weather-agent", trace_id, false);
  set(span, "gen_ai.operation.name", "invoke_agent");
  set(span, "gen_ai.input.messages", input);
  set(span, "gen_ai.output.messages", output);
  return span;
}

const std::string kInput =
    R"([{"role":"System","parts":[{"type":"text","content":"Be brief."}]},)"
    R"({"role":"User","parts":[{"type":"text","content":"What is the weather in Paris?"}]}])";
const std::string kOutput =
    R"([{"role":"User","parts":[{"type":"text","content":"What is the weather in Paris?"}]},)"
    R"({"role":"Assistant","parts":[{"type":"text","content":"Sunny."}]}])";

}  // namespace

TEST_CASE("the cache keeps the best candidate per trace and route until taken", "[normalize][preview]") {
  PreviewCache cache(config::PreviewCacheConfig{});
  cache.offer(0, trace('a'), {"system only", 1, 10}, {"out", 1, 20}, t0);
  cache.offer(0, trace('a'), {"start node", 2, 50}, {}, t0);           // higher rank wins
  cache.offer(0, trace('a'), {"later start node", 2, 60}, {}, t0);     // inputs: earliest wins
  cache.offer(0, trace('a'), {"lower rank", 1, 5}, {"later out", 1, 30}, t0);  // outputs: latest
  cache.offer(1, trace('a'), {"route 1", 1, 0}, {}, t0);
  cache.offer(0, trace('c'), {}, {}, t0);  // no candidate: nothing stored
  CHECK(cache.entries() == 2);
  auto taken = cache.take(0, trace('a'), t0);
  REQUIRE(taken);
  CHECK(taken->inputs == "start node");
  CHECK(taken->outputs == "later out");
  CHECK_FALSE(cache.take(0, trace('a'), t0));  // a trace has one root
  CHECK(cache.take(1, trace('a'), t0)->inputs == "route 1");
  CHECK_FALSE(cache.take(0, trace('b'), t0));
  CHECK(cache.entries() == 0);
  CHECK(cache.bytes() == 0);
  CHECK(cache.stats().stored == 2);
  CHECK(cache.stats().used == 2);
}

TEST_CASE("entries expire after the TTL, counted", "[normalize][preview]") {
  PreviewCache cache(config::PreviewCacheConfig{1024 * 1024, 60s});
  cache.offer(0, trace('a'), {"in", 1, 0}, {"out", 1, 0}, t0);
  cache.offer(0, trace('b'), {"in", 1, 0}, {"out", 1, 0}, t0 + 30s);
  CHECK(cache.take(0, trace('a'), t0 + 59s));
  CHECK_FALSE(cache.take(0, trace('b'), t0 + 91s));
  CHECK(cache.stats().evicted_expired == 1);
  CHECK(cache.entries() == 0);
}

TEST_CASE("memory is bounded: the oldest entries make room, counted", "[normalize][preview]") {
  const std::string value(1000, 'v');
  const std::size_t each = PreviewCache::entry_bytes(trace('a'), 2 * value.size());
  PreviewCache cache(config::PreviewCacheConfig{3 * each, 600s});
  for (char c = 'a'; c < 'f'; ++c) cache.offer(0, trace(c), {value, 1, 0}, {value, 1, 0}, t0);
  CHECK(cache.entries() == 3);
  CHECK(cache.bytes() == 3 * each);
  CHECK(cache.stats().evicted_full == 2);
  CHECK_FALSE(cache.take(0, trace('a'), t0));
  CHECK_FALSE(cache.take(0, trace('b'), t0));
  CHECK(cache.take(0, trace('e'), t0));

  // a trace that grows past the whole cache is dropped, the others stay
  cache.offer(0, trace('z'), {"small", 1, 0}, {}, t0);
  cache.offer(0, trace('z'), {std::string(4 * each, 'x'), 2, 0}, {}, t0);
  CHECK(cache.stats().too_large == 1);
  CHECK(cache.entries() == 2);
  CHECK_FALSE(cache.take(0, trace('z'), t0));
  CHECK(cache.bytes() == 2 * each);
}

TEST_CASE("a root without inputs/outputs takes its trace's invoke_agent ones", "[normalize][preview]") {
  const normalize::Normalizer normalizer(config::NormalizeConfig{});
  PreviewCache cache(config::PreviewCacheConfig{});
  normalize::NormalizeTally tally;

  // An invoke_agent whose messages hold the user's request and the answer.
  otlp::ResourceSpans first;
  invoke_agent(first, trace('a'), kInput, kOutput);
  add_span(first, "invoke_agent other", trace('c'), false);  // no content: nothing to keep
  normalize::collect_previews(normalizer, 0, first, cache, t0);
  CHECK(cache.entries() == 1);

  otlp::ResourceSpans second;
  otlp::Span& root = add_span(second, "create_agent weather-agent", trace('a'), true);
  set(root, "gen_ai.operation.name", "create_agent");
  set(root, "system_instructions", "[]");
  otlp::Span& other_root = add_span(second, "create_agent x", trace('b'), true);
  normalize::fill_previews(normalizer, 0, second, cache, t0, tally);

  // In the chat shape MLflow previews: the last user message and the last assistant message.
  const otlp::AnyValue* inputs = normalize::find_attribute(root, normalize::kSpanInputs);
  REQUIRE(inputs != nullptr);
  CHECK(normalize::to_json(*inputs) ==
        boost::json::parse(R"({"messages":[{"role":"system","content":"Be brief."},)"
                           R"({"role":"user","content":"What is the weather in Paris?"}]})"));
  const otlp::AnyValue* outputs = normalize::find_attribute(root, normalize::kSpanOutputs);
  REQUIRE(outputs != nullptr);
  CHECK(normalize::to_json(*outputs).at("messages").as_array().back().at("content") == "Sunny.");
  CHECK(normalize::find_attribute(other_root, normalize::kSpanInputs) == nullptr);
  CHECK(tally.count(normalize::Rule::preview) == 1);
  CHECK(cache.entries() == 0);
}

TEST_CASE("previews: masked stays masked, roots with inputs keep theirs, off means off", "[normalize][preview]") {
  PreviewCache cache(config::PreviewCacheConfig{});
  normalize::NormalizeTally tally;
  const normalize::Normalizer normalizer(config::NormalizeConfig{});

  SECTION("a masked invocation gives a masked preview") {
    otlp::ResourceSpans spans;
    invoke_agent(spans, trace('m'), "[masked: 120 bytes]", "[masked: 80 bytes]");
    otlp::Span& root = add_span(spans, "create_agent a", trace('m'), true);
    normalize::collect_previews(normalizer, 0, spans, cache, t0);
    normalize::fill_previews(normalizer, 0, spans, cache, t0, tally);
    // as one chat message, so MLflow's preview is the marker itself
    CHECK(normalize::to_json(*normalize::find_attribute(root, normalize::kSpanInputs)) ==
          boost::json::parse(R"({"messages":[{"role":"user","content":"[masked: 120 bytes]"}]})"));
    CHECK(normalize::to_json(*normalize::find_attribute(root, normalize::kSpanOutputs)) ==
          boost::json::parse(R"({"messages":[{"role":"assistant","content":"[masked: 80 bytes]"}]})"));
  }
  SECTION("a root with its own inputs keeps them and takes only the outputs") {
    otlp::ResourceSpans spans;
    invoke_agent(spans, trace('r'), kInput, kOutput);
    otlp::Span& root = add_span(spans, "agent", trace('r'), true);
    set(root, "input.value", "own input");
    normalize::collect_previews(normalizer, 0, spans, cache, t0);
    normalize::fill_previews(normalizer, 0, spans, cache, t0, tally);
    CHECK(normalize::find_attribute(root, normalize::kSpanInputs) == nullptr);
    CHECK(normalize::find_attribute(root, normalize::kSpanOutputs) != nullptr);
  }
  SECTION("another route's invocation is not used") {
    otlp::ResourceSpans spans;
    invoke_agent(spans, trace('x'), kInput, kOutput);
    otlp::Span& root = add_span(spans, "create_agent a", trace('x'), true);
    normalize::collect_previews(normalizer, 1, spans, cache, t0);
    normalize::fill_previews(normalizer, 0, spans, cache, t0, tally);
    CHECK(normalize::find_attribute(root, normalize::kSpanInputs) == nullptr);
  }
  SECTION("previews: false") {
    config::NormalizeConfig config;
    config.previews = false;
    const normalize::Normalizer off(config);
    otlp::ResourceSpans spans;
    invoke_agent(spans, trace('o'), kInput, kOutput);
    otlp::Span& root = add_span(spans, "create_agent a", trace('o'), true);
    normalize::collect_previews(off, 0, spans, cache, t0);
    normalize::fill_previews(off, 0, spans, cache, t0, tally);
    CHECK(cache.entries() == 0);
    CHECK(normalize::find_attribute(root, normalize::kSpanInputs) == nullptr);
  }
}

TEST_CASE("Koog 1.0.0: the preview comes from the graph's __start__ and __finish__ nodes",
          "[normalize][preview]") {
  // What Koog 1.0.0 really sends: invoke_agent's messages hold only the system prompt; the
  // user's request is the __start__ node's input, the answer the __finish__ node's output.
  const normalize::Normalizer normalizer(config::NormalizeConfig{});
  PreviewCache cache(config::PreviewCacheConfig{});
  normalize::NormalizeTally tally;
  const std::string system = R"([{"role":"System","parts":[{"type":"text","content":"Be brief."}]}])";
  otlp::ResourceSpans spans;
  otlp::Span& start = add_span(spans, "node __start__", trace('k'), false);
  start.set_start_time_unix_nano(100);
  set(start, "koog.node.id", "__start__");
  set(start, "koog.node.input", R"("What is the weather in Paris?")");
  otlp::Span& inner_finish = add_span(spans, "node __finish__", trace('k'), false);  // a subgraph's
  inner_finish.set_end_time_unix_nano(300);
  set(inner_finish, "koog.node.id", "__finish__");
  set(inner_finish, "koog.node.output", R"("subgraph result")");
  otlp::Span& finish = add_span(spans, "node __finish__", trace('k'), false);
  finish.set_end_time_unix_nano(400);
  set(finish, "koog.node.id", "__finish__");
  set(finish, "koog.node.output", R"("It is sunny.")");
  otlp::Span& agent = invoke_agent(spans, trace('k'), system, system);
  agent.set_start_time_unix_nano(50);
  normalize::collect_previews(normalizer, 0, spans, cache, t0);

  otlp::ResourceSpans last;
  otlp::Span& root = add_span(last, "create_agent weather-agent", trace('k'), true);
  normalize::fill_previews(normalizer, 0, last, cache, t0, tally);
  const otlp::AnyValue* inputs = normalize::find_attribute(root, normalize::kSpanInputs);
  REQUIRE(inputs != nullptr);
  CHECK(normalize::to_json(*inputs) ==
        boost::json::parse(R"({"messages":[{"role":"user","content":"What is the weather in Paris?"}]})"));
  const otlp::AnyValue* outputs = normalize::find_attribute(root, normalize::kSpanOutputs);
  REQUIRE(outputs != nullptr);
  CHECK(normalize::to_json(*outputs) ==
        boost::json::parse(R"({"messages":[{"role":"assistant","content":"It is sunny."}]})"));
}
