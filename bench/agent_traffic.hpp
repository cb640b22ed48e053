// Realistic agent traffic for the benchmarks (bench-loadgen, bench-decode-floor): Koog-shaped and
// OpenInference-shaped traces of GenAI spans, encoded as OTLP ExportTraceServiceRequest. With long
// content (prompts, completions, tool payloads as agents send them) a span is 1 to 2 KB; with short
// content every such value is a sixteenth of that (at least 16 bytes), so the same spans with the
// same keys are a few hundred bytes and per-span work, not bytes, dominates.
// Deterministic (seeded), so runs and tools see the same bytes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "exporter/gzip.hpp"
#include "otlp/types.hpp"

namespace bench {

using proxy::otlp::ExportRequest;
using proxy::otlp::KeyValue;
using proxy::otlp::Span;

enum class Mix { koog, openinference, both };
enum class Content { short_text, long_text };

// Deterministic pseudo-text, so runs are comparable: prompts, answers and tool payloads made of
// ordinary words, like the prose the proxy's redaction prefilter scans in production.
class Text {
 public:
  Text(std::uint64_t seed, Content content) : rng_(seed), short_(content == Content::short_text) {}

  std::string prose(std::size_t bytes) {
    if (short_) bytes = std::max<std::size_t>(16, bytes / 16);
    static constexpr std::string_view kWords[] = {
        "the", "quarterly", "report", "covers", "revenue", "costs", "hiring", "and", "outlook",
        "for", "each", "region", "please", "summarize", "briefly", "with", "numbers", "tables",
        "customer", "ticket", "refund", "order", "shipping", "delayed", "because", "warehouse",
        "agent", "should", "check", "status", "before", "answering", "policy", "weather"};
    std::string text;
    text.reserve(bytes + 16);
    while (text.size() < bytes) {
      text += kWords[rng_() % std::size(kWords)];
      text += (rng_() % 11 == 0) ? ". " : " ";
    }
    text.resize(bytes);
    return text;
  }

  // JSON with quotes to escape, the shape of chat messages and tool arguments.
  std::string messages(std::size_t bytes) {
    std::string json = R"([{"role":"system","content":")" + prose(bytes / 4) +
                       R"("},{"role":"user","content":")" + prose(bytes / 2) + R"("}])";
    return json;
  }

  std::uint64_t next() { return rng_(); }

 private:
  std::mt19937_64 rng_;
  bool short_;
};

inline void put(google::protobuf::RepeatedPtrField<KeyValue>& attributes, std::string_view key, std::string value) {
  auto* kv = attributes.Add();
  kv->set_key(std::string(key));
  kv->mutable_value()->set_string_value(std::move(value));
}

inline void put_int(google::protobuf::RepeatedPtrField<KeyValue>& attributes, std::string_view key, std::int64_t value) {
  auto* kv = attributes.Add();
  kv->set_key(std::string(key));
  kv->mutable_value()->set_int_value(value);
}

// Spans are produced one at a time from an endless series of traces; a request takes the next K.
class TraceSource {
 public:
  TraceSource(Mix mix, std::uint64_t seed, Content content = Content::long_text) : mix_(mix), text_(seed, content) {}

  struct Item {
    bool koog;
    Span span;
  };

  Item next() {
    if (pending_.empty()) refill();
    Item item = std::move(pending_.back());
    pending_.pop_back();
    return item;
  }

 private:
  std::string id(std::size_t bytes) {
    std::string out(bytes, '\0');
    for (std::size_t i = 0; i < bytes; i += 8) {
      const std::uint64_t r = text_.next() | 1;  // never all zero (an invalid id)
      for (std::size_t j = 0; j < 8 && i + j < bytes; ++j) out[i + j] = static_cast<char>(r >> (8 * j));
    }
    return out;
  }

  Span& add(bool koog, const std::string& trace_id, const std::string& parent, std::string name, Span::SpanKind kind) {
    trace_.push_back({koog, Span()});
    Span& span = trace_.back().span;
    span.set_trace_id(trace_id);
    span.set_span_id(id(8));
    if (!parent.empty()) span.set_parent_span_id(parent);
    span.set_name(std::move(name));
    span.set_kind(kind);
    clock_ns_ += 1'000'000 + text_.next() % 50'000'000;
    span.set_start_time_unix_nano(clock_ns_);
    span.set_end_time_unix_nano(clock_ns_ + 200'000'000 + text_.next() % 2'000'000'000);
    span.mutable_status()->set_code(opentelemetry::proto::trace::v1::Status::STATUS_CODE_OK);
    return span;
  }

  void koog_trace() {
    const std::string trace_id = id(16);
    const std::string agent_id = "agent-" + std::to_string(text_.next() % 100000);
    Span& create = add(true, trace_id, "", "create_agent support-agent", Span::SPAN_KIND_CLIENT);
    auto& ca = *create.mutable_attributes();
    put(ca, "gen_ai.operation.name", "create_agent");
    put(ca, "gen_ai.agent.id", agent_id);
    put(ca, "gen_ai.agent.name", "support-agent");
    put(ca, "gen_ai.request.model", "gpt-4o");
    put(ca, "gen_ai.system_instructions", text_.prose(700));
    const std::string create_id = create.span_id();

    Span& invoke = add(true, trace_id, create_id, "invoke_agent support-agent", Span::SPAN_KIND_CLIENT);
    auto& ia = *invoke.mutable_attributes();
    put(ia, "gen_ai.operation.name", "invoke_agent");
    put(ia, "gen_ai.agent.id", agent_id);
    put(ia, "gen_ai.conversation.id", "run-" + std::to_string(text_.next() % 1000000));
    put(ia, "gen_ai.input.messages", text_.messages(900));
    put(ia, "gen_ai.output.messages", text_.messages(500));
    const std::string invoke_id = invoke.span_id();

    Span& strategy = add(true, trace_id, invoke_id, "strategy single_run", Span::SPAN_KIND_INTERNAL);
    auto& sa = *strategy.mutable_attributes();
    put(sa, "koog.strategy.name", "single_run");
    put(sa, "koog.event.id", std::to_string(text_.next()));
    put(sa, "koog.node.input", text_.prose(600));
    put(sa, "koog.node.output", text_.prose(600));
    const std::string strategy_id = strategy.span_id();

    const int steps = 2 + static_cast<int>(text_.next() % 3);
    for (int step = 0; step < steps; ++step) {
      Span& node = add(true, trace_id, strategy_id, step == 0 ? "node nodeCallLLM" : "node nodeExecuteTool", Span::SPAN_KIND_INTERNAL);
      auto& na = *node.mutable_attributes();
      put(na, "koog.node.id", step == 0 ? "nodeCallLLM" : "nodeExecuteTool");
      put(na, "koog.node.input", text_.prose(500 + text_.next() % 300));
      put(na, "koog.node.output", text_.prose(400 + text_.next() % 300));
      const std::string node_id = node.span_id();

      Span& llm = add(true, trace_id, node_id, "chat gpt-4o", Span::SPAN_KIND_CLIENT);
      auto& la = *llm.mutable_attributes();
      put(la, "gen_ai.operation.name", "chat");
      put(la, "gen_ai.system", "openai");
      put(la, "gen_ai.request.model", "gpt-4o");
      put(la, "gen_ai.response.model", "gpt-4o-2024-08-06");
      put(la, "gen_ai.request.temperature", "0.2");
      put_int(la, "gen_ai.usage.input_tokens", static_cast<std::int64_t>(200 + text_.next() % 800));
      put_int(la, "gen_ai.usage.output_tokens", static_cast<std::int64_t>(20 + text_.next() % 300));
      put(la, "gen_ai.response.finish_reasons", R"(["tool_calls"])");
      put(la, "gen_ai.prompt.0.role", "user");
      put(la, "gen_ai.prompt.0.content", text_.prose(700 + text_.next() % 400));
      put(la, "gen_ai.completion.0.role", "assistant");
      put(la, "gen_ai.completion.0.content", text_.prose(300 + text_.next() % 300));
      auto* event = llm.add_events();
      event->set_name("gen_ai.assistant.message");
      event->set_time_unix_nano(llm.end_time_unix_nano());
      put(*event->mutable_attributes(), "content", text_.prose(120));

      Span& tool = add(true, trace_id, node_id, "execute_tool lookup_order", Span::SPAN_KIND_INTERNAL);
      auto& ta = *tool.mutable_attributes();
      put(ta, "gen_ai.operation.name", "execute_tool");
      put(ta, "gen_ai.tool.name", "lookup_order");
      put(ta, "gen_ai.tool.call.id", "call_" + std::to_string(text_.next() % 100000000));
      put(ta, "gen_ai.tool.call.arguments", R"({"order_id":")" + std::to_string(text_.next() % 1000000) + R"(","fields":")" + text_.prose(200) + "\"}");
      put(ta, "gen_ai.tool.call.result", R"({"status":"delayed","note":")" + text_.prose(900) + "\"}");
    }
  }

  void openinference_trace() {
    const std::string trace_id = id(16);
    Span& chain = add(false, trace_id, "", "agent.run", Span::SPAN_KIND_INTERNAL);
    auto& ca = *chain.mutable_attributes();
    put(ca, "openinference.span.kind", "AGENT");
    put(ca, "input.value", text_.prose(700));
    put(ca, "input.mime_type", "text/plain");
    put(ca, "output.value", text_.prose(600));
    put(ca, "session.id", "session-" + std::to_string(text_.next() % 100000));
    const std::string chain_id = chain.span_id();

    const int calls = 2 + static_cast<int>(text_.next() % 3);
    for (int call = 0; call < calls; ++call) {
      Span& llm = add(false, trace_id, chain_id, "ChatCompletion", Span::SPAN_KIND_INTERNAL);
      auto& la = *llm.mutable_attributes();
      put(la, "openinference.span.kind", "LLM");
      put(la, "llm.model_name", "gpt-4o-mini");
      put(la, "llm.provider", "openai");
      put(la, "llm.invocation_parameters", R"({"temperature":0.1,"max_tokens":512})");
      put(la, "llm.input_messages.0.message.role", "system");
      put(la, "llm.input_messages.0.message.content", text_.prose(300));
      put(la, "llm.input_messages.1.message.role", "user");
      put(la, "llm.input_messages.1.message.content", text_.prose(500 + text_.next() % 300));
      put(la, "llm.output_messages.0.message.role", "assistant");
      put(la, "llm.output_messages.0.message.content", text_.prose(250 + text_.next() % 250));
      put_int(la, "llm.token_count.prompt", static_cast<std::int64_t>(300 + text_.next() % 500));
      put_int(la, "llm.token_count.completion", static_cast<std::int64_t>(30 + text_.next() % 200));
      put(la, "input.value", text_.messages(300));
      put(la, "output.value", text_.prose(200));

      Span& tool = add(false, trace_id, chain_id, "search_docs", Span::SPAN_KIND_INTERNAL);
      auto& ta = *tool.mutable_attributes();
      put(ta, "openinference.span.kind", "TOOL");
      put(ta, "tool.name", "search_docs");
      put(ta, "tool.parameters", R"({"query":")" + text_.prose(150) + "\"}");
      put(ta, "input.value", R"({"query":")" + text_.prose(150) + "\"}");
      put(ta, "output.value", text_.prose(900 + text_.next() % 300));
    }
  }

  void refill() {
    const bool koog = mix_ == Mix::koog || (mix_ == Mix::both && (traces_++ % 2 == 0));
    if (koog) koog_trace();
    else openinference_trace();
    // Reverse so pop_back() hands spans out in creation order.
    for (auto it = trace_.rbegin(); it != trace_.rend(); ++it) pending_.push_back(std::move(*it));
    trace_.clear();
  }

  Mix mix_;
  Text text_;
  std::uint64_t traces_ = 0;
  std::uint64_t clock_ns_ = 1'764'000'000'000'000'000ULL;
  std::vector<Item> trace_;
  std::vector<Item> pending_;
};

// Bodies gzipped as an SDK sends them (its default level, 6), with the proxy's own compressor.
inline std::string gzip(const std::string& data) {
  auto compressed = proxy::exporter::gzip_compress(data, 6);
  if (!compressed) throw std::runtime_error("gzip failed");
  return std::move(*compressed);
}

// A request holds K spans; spans of each family go under their own resource and scope, as two
// SDKs' exporters would send them.
inline std::string encode_request(TraceSource& source, int spans) {
  ExportRequest request;
  proxy::otlp::ScopeSpans* scopes[2] = {nullptr, nullptr};
  for (int i = 0; i < spans; ++i) {
    TraceSource::Item item = source.next();
    const int family = item.koog ? 0 : 1;
    if (scopes[family] == nullptr) {
      auto* resource_spans = request.add_resource_spans();
      auto& attributes = *resource_spans->mutable_resource()->mutable_attributes();
      put(attributes, "service.name", item.koog ? "koog-support-agent" : "openinference-rag-agent");
      put(attributes, "telemetry.sdk.name", "opentelemetry");
      put(attributes, "telemetry.sdk.language", item.koog ? "java" : "python");
      put(attributes, "host.name", "agent-host-1");
      scopes[family] = resource_spans->add_scope_spans();
      scopes[family]->mutable_scope()->set_name(item.koog ? "ai.koog.agents.features.opentelemetry" : "openinference.instrumentation.openai");
      scopes[family]->mutable_scope()->set_version(item.koog ? "0.5.0" : "0.1.30");
    }
    *scopes[family]->add_spans() = std::move(item.span);
  }
  return request.SerializeAsString();
}

}  // namespace bench
