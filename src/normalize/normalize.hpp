// The normalize stage (docs/architecture.md, "Stages"): copies onto spans what MLflow's OTLP
// ingestion would otherwise lose or never derive, so agents' traces are first-class in MLflow. Runs
// after the policy, on the policy's output: it copies values, it never reads anything the policy
// masked from elsewhere, so masked content stays masked. Pure: no I/O, no clock (the preview cache
// is given the time by its caller).
//
// What MLflow (checked against mlflow 3.17 mlflow/tracing/otel/translation, entities/span.py,
// server/otel_api.py and the SQL store) does at ingestion, and what this stage adds:
// - span type from gen_ai.operation.name (chat, create_agent, invoke_agent, execute_tool, ...),
//   OpenInference and Traceloop kinds; nothing else. Here: mlflow.spanType from user rules, then
//   Koog strategy/node/subgraph -> CHAIN, create_agent/invoke_agent names -> AGENT, a
//   gen_ai.request.model without a mapped operation -> LLM.
// - inputs/outputs from the GenAI, OpenInference, Traceloop... keys; koog.* means nothing. Here:
//   koog.node.input/output and koog.subgraph.input/output -> mlflow.spanInputs/spanOutputs.
// - the trace's request/response preview only from the root span's inputs/outputs, set when
//   the root arrives. Here: a root without any takes its trace's invoke_agent ones (PreviewCache).
// - the span kind and the instrumentation scope are dropped (links too before 3.7); the resource
//   becomes trace tags only in recent versions. Here: otel.span.kind, otel.scope.name/version,
//   otel.links and chosen resource attributes as span attributes.
// - session.id (and in recent versions gen_ai.conversation.id) -> the trace's session, user.id
//   -> its user. Here: session.id from gen_ai.conversation.id, user.id from enduser.id.
// - token usage from gen_ai.usage.*: MLflow 3.6 calls int() on the stored JSON text, so Koog
//   1.0.0's counts, sent as strings ("0"), make it reject the whole trace (422 "invalid literal for
//   int()"). Here: numeric strings in gen_ai.usage.* keys become integers.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "config/values.hpp"
#include "otlp/types.hpp"
#include "normalize/span_view.hpp"

namespace proxy::normalize {

// Attribute keys MLflow reads (mlflow.tracing.constant.SpanAttributeKey).
inline constexpr std::string_view kSpanType = "mlflow.spanType";
inline constexpr std::string_view kSpanInputs = "mlflow.spanInputs";
inline constexpr std::string_view kSpanOutputs = "mlflow.spanOutputs";

// What one apply() changed, one counter per rule.
enum class Rule : std::size_t {
  resource_attribute,   // a resource attribute copied onto a span
  span_kind,            // otel.span.kind added
  scope,                // otel.scope.name (and version) added
  links,                // otel.links added
  span_type,            // mlflow.spanType added
  inputs,               // span inputs from koog.node/subgraph.input
  outputs,              // span outputs from koog.node/subgraph.output
  system_instructions,  // span inputs: gen_ai.input.messages with system_instructions joined
  session,              // session.id from gen_ai.conversation.id
  user,                 // user.id from enduser.id
  preview,              // a root span given its trace's invoke_agent inputs/outputs
  token_count,          // a gen_ai.usage.* count sent as a string, made an integer
  count_
};
inline constexpr std::size_t kRuleCount = static_cast<std::size_t>(Rule::count_);
std::string_view rule_name(Rule rule);

// Which rule gave a span its mlflow.spanType.
enum class TypeSource : std::size_t {
  user_rule,   // normalize.span_type_rules
  koog_graph,  // Koog strategy/node/subgraph -> CHAIN
  agent_name,  // create_agent/invoke_agent span names -> AGENT
  model,       // gen_ai.request.model without a mapped operation -> LLM
  count_
};
inline constexpr std::size_t kTypeSourceCount = static_cast<std::size_t>(TypeSource::count_);
inline constexpr std::size_t kSpanTypeCount = config::kSpanTypes.size();
std::string_view type_source_name(TypeSource source);

// The type a span should get: empty when MLflow types it itself or no rule matches.
struct SpanTypeDecision {
  std::string_view type;
  TypeSource source = TypeSource::user_rule;
  std::size_t type_index = 0;  // into config::kSpanTypes
};

struct NormalizeTally {
  std::array<std::uint64_t, kRuleCount> changes{};
  std::uint64_t spans = 0;
  std::array<std::array<std::uint64_t, kSpanTypeCount>, kTypeSourceCount> typed{};

  void add(Rule rule) { ++changes[static_cast<std::size_t>(rule)]; }
  std::uint64_t count(Rule rule) const { return changes[static_cast<std::size_t>(rule)]; }
};

struct NormalizeStats {
  std::array<std::atomic<std::uint64_t>, kRuleCount> changes{};
  std::atomic<std::uint64_t> spans{0};
  std::array<std::array<std::atomic<std::uint64_t>, kSpanTypeCount>, kTypeSourceCount> typed{};

  void add(const NormalizeTally& tally);
  std::uint64_t count(Rule rule) const {
    return changes[static_cast<std::size_t>(rule)].load(std::memory_order_relaxed);
  }
  std::uint64_t typed_count(TypeSource source, std::size_t type_index) const {
    return typed[static_cast<std::size_t>(source)][type_index].load(std::memory_order_relaxed);
  }
};

class Normalizer {
 public:
  // The config was validated by the loader (span types are MLflow's).
  explicit Normalizer(const config::NormalizeConfig& config);

  const config::NormalizeConfig& config() const { return config_; }
  bool enabled() const { return config_.enabled; }

  // The type a span should get, and which rule gave it (type empty: none).
  SpanTypeDecision span_type(const otlp::Span& span) const;

 private:
  config::NormalizeConfig config_;
};

// Every rule except previews, on every span of the resource spans.
void apply(const Normalizer& normalizer, otlp::ResourceSpans& resource_spans, NormalizeTally& tally);

// The value of a span attribute, or nullptr.
const otlp::AnyValue* find_attribute(const otlp::Span& span, std::string_view key);

// True when MLflow would find inputs (outputs) on the span by itself: mlflow.spanInputs or one of
// the keys its translators read.
bool has_inputs(const otlp::Span& span);
bool has_outputs(const otlp::Span& span);
// The same on a span's view (its attributes as they are, not as changes would leave them).
bool has_inputs(const SpanView& span);
bool has_outputs(const SpanView& span);

// Prepends {"role":"system","parts":<instructions>} to a JSON array of GenAI messages that has
// no system message. Returns nullopt when either is not JSON of that shape (masked, hashed,
// truncated or Koog-hidden values never are), so nothing is changed.
std::optional<std::string> join_system_instructions(std::string_view messages,
                                                    std::string_view instructions);

}  // namespace proxy::normalize
