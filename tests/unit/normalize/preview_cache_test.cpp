// Trace previews: the bounded, time-limited cache of invoke_agent inputs/outputs, and the roots
// it fills.
#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

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
  cache.offer("r0", trace('a'), {"system only", 1, 10}, {"out", 1, 20}, false, t0);
  cache.offer("r0", trace('a'), {"start node", 2, 50}, {}, false, t0);           // higher rank wins
  cache.offer("r0", trace('a'), {"later start node", 2, 60}, {}, false, t0);     // inputs: earliest wins
  cache.offer("r0", trace('a'), {"lower rank", 1, 5}, {"later out", 1, 30}, false, t0);  // outputs: latest
  cache.offer("r1", trace('a'), {"route 1", 1, 0}, {}, false, t0);
  cache.offer("r0", trace('c'), {}, {}, false, t0);  // no candidate: nothing stored
  CHECK(cache.entries() == 2);
  auto taken = cache.take("r0", trace('a'), t0);
  REQUIRE(taken);
  CHECK(taken->inputs == "start node");
  CHECK(taken->outputs == "later out");
  CHECK_FALSE(cache.take("r0", trace('a'), t0));  // a trace has one root
  CHECK(cache.take("r1", trace('a'), t0)->inputs == "route 1");
  CHECK_FALSE(cache.take("r0", trace('b'), t0));
  CHECK(cache.entries() == 0);
  CHECK(cache.bytes() == 0);
  CHECK(cache.stats().stored == 2);
  CHECK(cache.stats().hits == 2);
  CHECK(cache.stats().misses == 2);
}

TEST_CASE("entries expire after the TTL, counted", "[normalize][preview]") {
  PreviewCache cache(config::PreviewCacheConfig{1024 * 1024, 60s});
  cache.offer("r0", trace('a'), {"in", 1, 0}, {"out", 1, 0}, false, t0);
  cache.offer("r0", trace('b'), {"in", 1, 0}, {"out", 1, 0}, false, t0 + 30s);
  CHECK(cache.take("r0", trace('a'), t0 + 59s));
  CHECK_FALSE(cache.take("r0", trace('b'), t0 + 91s));
  CHECK(cache.stats().evicted_ttl == 1);
  CHECK(cache.entries() == 0);
}

TEST_CASE("memory is bounded: the oldest entries make room, counted", "[normalize][preview]") {
  const std::string value(1000, 'v');
  const std::size_t each = PreviewCache::entry_bytes(trace('a') + "/r0", 2 * value.size());
  PreviewCache cache(config::PreviewCacheConfig{3 * each, 600s});
  for (char c = 'a'; c < 'f'; ++c) cache.offer("r0", trace(c), {value, 1, 0}, {value, 1, 0}, false, t0);
  CHECK(cache.entries() == 3);
  CHECK(cache.bytes() == 3 * each);
  CHECK(cache.stats().evicted_size == 2);
  CHECK_FALSE(cache.take("r0", trace('a'), t0));
  CHECK_FALSE(cache.take("r0", trace('b'), t0));
  CHECK(cache.take("r0", trace('e'), t0));

  // a trace that grows past the whole cache is dropped, the others stay
  cache.offer("r0", trace('z'), {"small", 1, 0}, {}, false, t0);
  cache.offer("r0", trace('z'), {std::string(4 * each, 'x'), 2, 0}, {}, false, t0);
  CHECK(cache.stats().evicted_oversize == 1);
  CHECK(cache.entries() == 2);
  CHECK_FALSE(cache.take("r0", trace('z'), t0));
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
  normalize::collect_previews(normalizer, "r0", first, cache, t0);
  CHECK(cache.entries() == 1);

  otlp::ResourceSpans second;
  otlp::Span& root = add_span(second, "create_agent weather-agent", trace('a'), true);
  set(root, "gen_ai.operation.name", "create_agent");
  set(root, "system_instructions", "[]");
  otlp::Span& other_root = add_span(second, "create_agent x", trace('b'), true);
  normalize::fill_previews(normalizer, "r0", second, cache, t0, tally);

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

TEST_CASE("candidates are stored as sent, counted by those bytes, converted once when taken", "[normalize][preview]") {
  const normalize::Normalizer normalizer(config::NormalizeConfig{});
  PreviewCache cache(config::PreviewCacheConfig{});
  otlp::ResourceSpans spans;
  invoke_agent(spans, trace('a'), kInput, kOutput);
  normalize::collect_previews(normalizer, "r0", spans, cache, t0);
  CHECK(cache.bytes() == PreviewCache::entry_bytes(trace('a') + "/r0", kInput.size() + kOutput.size()));

  const auto preview = cache.take("r0", trace('a'), t0);
  REQUIRE(preview);
  REQUIRE(normalize::chat_preview(kInput));
  CHECK(preview->inputs == normalize::chat_preview(kInput)->SerializeAsString());
  CHECK(preview->outputs == normalize::chat_preview(kOutput)->SerializeAsString());
  CHECK(cache.bytes() == 0);
}

TEST_CASE("a chat span's messages outrank the graph's entry only with a user message", "[normalize][preview]") {
  const normalize::Normalizer normalizer(config::NormalizeConfig{});
  PreviewCache cache(config::PreviewCacheConfig{});
  otlp::ResourceSpans spans;
  otlp::Span& start = add_span(spans, "node __start__", trace('a'), false);
  set(start, "koog.node.id", "__start__");
  set(start, "koog.node.input", "from the graph");
  start.set_start_time_unix_nano(50);
  const std::string system_only = R"([{"role":"System","parts":[{"type":"text","content":"Be brief."}]}])";
  for (const std::string* messages : {&system_only, &kInput}) {
    otlp::Span& chat = add_span(spans, "chat gpt-4o", messages == &kInput ? trace('b') : trace('a'), false);
    set(chat, "gen_ai.operation.name", "chat");
    set(chat, "gen_ai.input.messages", *messages);
    chat.set_start_time_unix_nano(10);
  }
  otlp::Span& other_start = add_span(spans, "node __start__", trace('b'), false);
  set(other_start, "koog.node.id", "__start__");
  set(other_start, "koog.node.input", "from the graph");
  normalize::collect_previews(normalizer, "r0", spans, cache, t0);

  const auto graph = cache.take("r0", trace('a'), t0);  // rank 2 against the chat span's 1
  REQUIRE(graph);
  otlp::AnyValue value;
  REQUIRE(value.ParseFromString(graph->inputs));
  CHECK(normalize::to_json(value) ==
        boost::json::parse(R"({"messages":[{"role":"user","content":"from the graph"}]})"));
  const auto chat = cache.take("r0", trace('b'), t0);  // rank 3, despite the later-starting node
  REQUIRE(chat);
  CHECK(chat->inputs == normalize::chat_preview(kInput)->SerializeAsString());
}

TEST_CASE("previews: masked stays masked, roots with inputs keep theirs, off means off", "[normalize][preview]") {
  PreviewCache cache(config::PreviewCacheConfig{});
  normalize::NormalizeTally tally;
  const normalize::Normalizer normalizer(config::NormalizeConfig{});

  SECTION("a masked invocation gives a masked preview") {
    otlp::ResourceSpans spans;
    invoke_agent(spans, trace('m'), "[masked: 120 bytes]", "[masked: 80 bytes]");
    otlp::Span& root = add_span(spans, "create_agent a", trace('m'), true);
    normalize::collect_previews(normalizer, "r0", spans, cache, t0);
    normalize::fill_previews(normalizer, "r0", spans, cache, t0, tally);
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
    normalize::collect_previews(normalizer, "r0", spans, cache, t0);
    normalize::fill_previews(normalizer, "r0", spans, cache, t0, tally);
    CHECK(normalize::find_attribute(root, normalize::kSpanInputs) == nullptr);
    CHECK(normalize::find_attribute(root, normalize::kSpanOutputs) != nullptr);
  }
  SECTION("another route's invocation is not used") {
    otlp::ResourceSpans spans;
    invoke_agent(spans, trace('x'), kInput, kOutput);
    otlp::Span& root = add_span(spans, "create_agent a", trace('x'), true);
    normalize::collect_previews(normalizer, "r1", spans, cache, t0);
    normalize::fill_previews(normalizer, "r0", spans, cache, t0, tally);
    CHECK(normalize::find_attribute(root, normalize::kSpanInputs) == nullptr);
  }
  SECTION("previews: false") {
    config::NormalizeConfig config;
    config.previews = false;
    const normalize::Normalizer off(config);
    otlp::ResourceSpans spans;
    invoke_agent(spans, trace('o'), kInput, kOutput);
    otlp::Span& root = add_span(spans, "create_agent a", trace('o'), true);
    normalize::collect_previews(off, "r0", spans, cache, t0);
    normalize::fill_previews(off, "r0", spans, cache, t0, tally);
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
  normalize::collect_previews(normalizer, "r0", spans, cache, t0);

  otlp::ResourceSpans last;
  otlp::Span& root = add_span(last, "create_agent weather-agent", trace('k'), true);
  normalize::fill_previews(normalizer, "r0", last, cache, t0, tally);
  const otlp::AnyValue* inputs = normalize::find_attribute(root, normalize::kSpanInputs);
  REQUIRE(inputs != nullptr);
  CHECK(normalize::to_json(*inputs) ==
        boost::json::parse(R"({"messages":[{"role":"user","content":"What is the weather in Paris?"}]})"));
  const otlp::AnyValue* outputs = normalize::find_attribute(root, normalize::kSpanOutputs);
  REQUIRE(outputs != nullptr);
  CHECK(normalize::to_json(*outputs) ==
        boost::json::parse(R"({"messages":[{"role":"assistant","content":"It is sunny."}]})"));
}

// normalize.preview_hold: Koog sends a trace in concurrent requests, and the one with the root
// (create_agent) may be handled before the one with invoke_agent.
namespace {

otlp::ExportRequest koog_root_request(const std::string& trace_id) {
  otlp::ExportRequest request;
  otlp::Span& root = add_span(*request.add_resource_spans(), "create_agent weather-agent", trace_id, true);
  set(root, "gen_ai.operation.name", "create_agent");
  return request;
}

const otlp::Span& root_of(const otlp::ExportRequest& request) {
  return request.resource_spans(0).scope_spans(0).spans(0);
}

}  // namespace

TEST_CASE("an agent root that arrives first is held, then filled from the late invoke_agent",
          "[normalize][preview][hold]") {
  const normalize::Normalizer normalizer(config::NormalizeConfig{});
  REQUIRE(normalizer.config().preview_hold > 0ms);
  PreviewCache cache(config::PreviewCacheConfig{});
  normalize::NormalizeTally tally;
  std::vector<std::string> held;

  otlp::ExportRequest first = koog_root_request(trace('h'));
  normalize::fill_previews(normalizer, "r0", *first.mutable_resource_spans(0), cache, t0, tally, &held);
  CHECK(held == std::vector<std::string>{trace('h')});
  CHECK(cache.stats().held == 1);
  CHECK(cache.stats().misses == 0);  // not looked up yet: it waits
  CHECK(normalize::find_attribute(root_of(first), normalize::kSpanInputs) == nullptr);
  CHECK_FALSE(cache.agent_seen("r0", trace('h'), t0));

  // The other request: invoke_agent (and a node without it first: not yet enough to release).
  otlp::ResourceSpans nodes;
  otlp::Span& start = add_span(nodes, "node __start__", trace('h'), false);
  set(start, "koog.node.id", "__start__");
  set(start, "koog.node.input", R"("What is the weather in Paris?")");
  normalize::collect_previews(normalizer, "r0", nodes, cache, t0 + 5ms);
  CHECK_FALSE(cache.agent_seen("r0", trace('h'), t0 + 5ms));
  otlp::ResourceSpans agent;
  invoke_agent(agent, trace('h'), kInput, kOutput);
  normalize::collect_previews(normalizer, "r0", agent, cache, t0 + 6ms);
  CHECK(cache.agent_seen("r0", trace('h'), t0 + 6ms));
  CHECK_FALSE(cache.agent_seen("r1", trace('h'), t0 + 6ms));  // another route's trace

  std::string payload = first.SerializeAsString();
  CHECK(normalize::fill_held_roots("r0", held, payload, cache, t0 + 7ms));
  otlp::ExportRequest sent;
  REQUIRE(sent.ParseFromString(payload));
  const otlp::AnyValue* inputs = normalize::find_attribute(root_of(sent), normalize::kSpanInputs);
  REQUIRE(inputs != nullptr);
  // invoke_agent's messages (it has a user message, so it outranks the __start__ node)
  CHECK(boost::json::serialize(normalize::to_json(*inputs)).find("What is the weather in Paris?") !=
        std::string::npos);
  CHECK(normalize::find_attribute(root_of(sent), normalize::kSpanOutputs) != nullptr);
  CHECK(cache.stats().filled_after_hold == 1);
  CHECK(cache.stats().released_unfilled == 0);
  CHECK(cache.stats().hits == 1);
  CHECK(cache.entries() == 0);
}

TEST_CASE("a held root whose invoke_agent never comes is released unfilled, unchanged",
          "[normalize][preview][hold]") {
  const normalize::Normalizer normalizer(config::NormalizeConfig{});
  PreviewCache cache(config::PreviewCacheConfig{});
  normalize::NormalizeTally tally;
  std::vector<std::string> held;
  otlp::ExportRequest request = koog_root_request(trace('u'));
  normalize::fill_previews(normalizer, "r0", *request.mutable_resource_spans(0), cache, t0, tally, &held);
  REQUIRE(held.size() == 1);
  const std::string before = request.SerializeAsString();
  std::string payload = before;
  CHECK_FALSE(normalize::fill_held_roots("r0", held, payload, cache, t0 + 50ms));
  CHECK(payload == before);
  CHECK(cache.stats().released_unfilled == 1);
  CHECK(cache.stats().filled_after_hold == 0);
  CHECK(cache.stats().misses == 1);
}

TEST_CASE("roots are not held when nothing says content is coming, or the hold is off",
          "[normalize][preview][hold]") {
  PreviewCache cache(config::PreviewCacheConfig{});
  normalize::NormalizeTally tally;
  std::vector<std::string> held;
  SECTION("a root that is no agent") {
    const normalize::Normalizer normalizer(config::NormalizeConfig{});
    otlp::ResourceSpans spans;
    add_span(spans, "GET /weather", trace('n'), true);
    normalize::fill_previews(normalizer, "r0", spans, cache, t0, tally, &held);
  }
  SECTION("preview_hold: 0") {
    config::NormalizeConfig config;
    config.preview_hold = 0ms;
    const normalize::Normalizer normalizer(config);
    otlp::ExportRequest request = koog_root_request(trace('o'));
    normalize::fill_previews(normalizer, "r0", *request.mutable_resource_spans(0), cache, t0, tally,
                             &held);
  }
  SECTION("the trace's invoke_agent is already known") {
    const normalize::Normalizer normalizer(config::NormalizeConfig{});
    otlp::ResourceSpans agent;
    invoke_agent(agent, trace('k'), kInput, kOutput);
    normalize::collect_previews(normalizer, "r0", agent, cache, t0);
    otlp::ExportRequest request = koog_root_request(trace('k'));
    normalize::fill_previews(normalizer, "r0", *request.mutable_resource_spans(0), cache, t0, tally,
                             &held);
    CHECK(tally.count(normalize::Rule::preview) == 1);
  }
  CHECK(held.empty());
  CHECK(cache.stats().held == 0);
}

TEST_CASE("new limits apply to the entries already cached", "[normalize][preview][reload]") {
  const std::string value(1000, 'v');
  const std::size_t each = PreviewCache::entry_bytes(trace('a') + "/r0", 2 * value.size());
  PreviewCache cache(config::PreviewCacheConfig{10 * each, 600s});
  for (char c = 'a'; c < 'e'; ++c) cache.offer("r0", trace(c), {value, 1, 0}, {value, 1, 0}, false, t0);
  REQUIRE(cache.entries() == 4);
  cache.reconfigure(config::PreviewCacheConfig{2 * each, 600s}, t0 + 1s);
  CHECK(cache.entries() == 2);
  CHECK(cache.stats().evicted_size == 2);
  CHECK(cache.config().max_bytes == 2 * each);
  cache.reconfigure(config::PreviewCacheConfig{2 * each, 60s}, t0 + 61s);
  CHECK(cache.entries() == 0);
  CHECK(cache.stats().evicted_ttl == 2);
}
