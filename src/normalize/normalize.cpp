#include "normalize/normalize.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <system_error>

#include <boost/json.hpp>

#include "common/glob.hpp"
#include "common/hex.hpp"  // to_hex
#include "normalize/json_value.hpp"

namespace proxy::normalize {
namespace {

using opentelemetry::proto::trace::v1::Span_SpanKind;

// gen_ai.operation.name values MLflow maps to a span type (GenAiTranslator.SPAN_KIND_TO_MLFLOW_TYPE).
constexpr std::array<std::string_view, 8> kMappedOperations{
    "chat",          "create_agent", "embeddings",      "execute_tool",
    "generate_content", "invoke_agent", "text_completion", "response"};

// Keys other MLflow translators type spans by (OpenInference, Traceloop, Vercel AI).
constexpr std::array<std::string_view, 3> kOtherTypeKeys{"openinference.span.kind",
                                                         "traceloop.span.kind", "ai.operationId"};

// The keys MLflow's translators read inputs and outputs from (GenAI, OpenInference, Traceloop).
constexpr std::array<std::string_view, 6> kInputKeys{
    kSpanInputs,   "gen_ai.input.messages", "gen_ai.tool.call.arguments",
    "input.value", "traceloop.entity.input", "gen_ai.prompt"};
constexpr std::array<std::string_view, 6> kOutputKeys{
    kSpanOutputs,   "gen_ai.output.messages", "gen_ai.tool.call.result",
    "output.value", "traceloop.entity.output", "gen_ai.completion"};

constexpr std::string_view kChain = "CHAIN";
constexpr std::string_view kAgent = "AGENT";
constexpr std::string_view kLlm = "LLM";

std::string_view string_of(const otlp::AnyValue* value) {
  if (value == nullptr || value->value_case() != otlp::AnyValue::kStringValue) return {};
  return value->string_value();
}

// A value MLflow would treat as present: not an empty string, not unset.
bool present(const otlp::AnyValue* value) {
  if (value == nullptr) return false;
  if (value->value_case() == otlp::AnyValue::VALUE_NOT_SET) return false;
  if (value->value_case() == otlp::AnyValue::kStringValue) return !value->string_value().empty();
  return true;
}

// The keys a span may carry, one bit per class of (length, middle and last byte): normalizing a
// span looks up some twenty keys, most of them absent (otel.span.kind, mlflow.spanType, ...), and
// a clear bit answers "absent" without scanning the span's attributes. A set bit only means
// "maybe": the scan decides.
class KeyFilter {
 public:
  explicit KeyFilter(const otlp::Span& span) {
    for (const otlp::KeyValue& attribute : span.attributes()) add(attribute.key());
  }
  void add(std::string_view key) { bits_ |= bit(key); }
  bool may_contain(std::string_view key) const { return (bits_ & bit(key)) != 0; }

 private:
  static std::uint64_t bit(std::string_view key) {
    if (key.empty()) return 1;
    const auto last = static_cast<unsigned char>(key.back());
    const auto middle = static_cast<unsigned char>(key[key.size() / 2]);
    return std::uint64_t{1} << ((key.size() * 7 + last * 3 + middle) & 63);
  }
  std::uint64_t bits_ = 0;
};

const otlp::AnyValue* find(const otlp::Span& span, const KeyFilter& keys, std::string_view key) {
  return keys.may_contain(key) ? find_attribute(span, key) : nullptr;
}

template <std::size_t N>
bool any_present(const otlp::Span& span, const KeyFilter& keys,
                 const std::array<std::string_view, N>& names) {
  for (std::string_view key : names) {
    if (present(find(span, keys, key))) return true;
  }
  return false;
}

otlp::AnyValue* add_attribute(otlp::Span& span, KeyFilter& keys, std::string_view key) {
  otlp::KeyValue* attribute = span.add_attributes();
  attribute->set_key(std::string(key));
  keys.add(key);
  return attribute->mutable_value();
}

void add_string(otlp::Span& span, KeyFilter& keys, std::string_view key, std::string_view value) {
  add_attribute(span, keys, key)->set_string_value(std::string(value));
}

// "name" or "name <anything>": Koog's span names are the operation, a space, then the subject.
bool name_is(std::string_view span_name, std::string_view operation) {
  return span_name.starts_with(operation) &&
         (span_name.size() == operation.size() || span_name[operation.size()] == ' ');
}

std::string_view kind_name(Span_SpanKind kind) {
  switch (kind) {
    case opentelemetry::proto::trace::v1::Span::SPAN_KIND_INTERNAL:
      return "INTERNAL";
    case opentelemetry::proto::trace::v1::Span::SPAN_KIND_SERVER:
      return "SERVER";
    case opentelemetry::proto::trace::v1::Span::SPAN_KIND_CLIENT:
      return "CLIENT";
    case opentelemetry::proto::trace::v1::Span::SPAN_KIND_PRODUCER:
      return "PRODUCER";
    case opentelemetry::proto::trace::v1::Span::SPAN_KIND_CONSUMER:
      return "CONSUMER";
    default:
      return {};
  }
}

// The links as compact JSON: [{"trace_id":hex,"span_id":hex,"attributes":{...}}].
std::string links_json(const otlp::Span& span) {
  boost::json::array links;
  for (const auto& link : span.links()) {
    boost::json::object object;
    object["trace_id"] = to_hex(link.trace_id());
    object["span_id"] = to_hex(link.span_id());
    if (link.attributes_size() > 0) {
      boost::json::object attributes;
      for (const otlp::KeyValue& attribute : link.attributes()) {
        attributes[attribute.key()] = to_json(attribute.value());
      }
      object["attributes"] = std::move(attributes);
    }
    links.push_back(std::move(object));
  }
  return boost::json::serialize(links);
}

// Copies a Koog content value as span inputs/outputs: its JSON as structure, so MLflow shows the
// text or object instead of a quoted string; anything else (masked, hashed, hidden) as it is.
void copy_content(otlp::Span& span, KeyFilter& keys, std::string_view key,
                  const otlp::AnyValue& value) {
  otlp::AnyValue* target = add_attribute(span, keys, key);
  if (value.value_case() == otlp::AnyValue::kStringValue) {
    if (auto parsed = parse_json_value(value.string_value())) {
      *target = std::move(*parsed);
      return;
    }
  }
  *target = value;
}

// The index of an MLflow span type in config::kSpanTypes (for the metrics' type label); only a
// user rule's type is looked up, the built-in rules' are constants.
std::size_t type_index_of(std::string_view type) {
  for (std::size_t i = 0; i < config::kSpanTypes.size(); ++i) {
    if (config::kSpanTypes[i] == type) return i;
  }
  return 0;  // unreachable: the loader accepts only these
}

constexpr std::size_t kChainIndex = 1;
constexpr std::size_t kAgentIndex = 2;
constexpr std::size_t kLlmIndex = 0;
static_assert(config::kSpanTypes[kChainIndex] == kChain && config::kSpanTypes[kAgentIndex] == kAgent &&
              config::kSpanTypes[kLlmIndex] == kLlm);

SpanTypeDecision span_type_of(const config::NormalizeConfig& config, const otlp::Span& span,
                              const KeyFilter& keys) {
  if (find(span, keys, kSpanType) != nullptr) return {};
  const std::string_view operation = string_of(find(span, keys, "gen_ai.operation.name"));
  for (std::string_view mapped : kMappedOperations) {
    if (operation == mapped) return {};
  }
  if (any_present(span, keys, kOtherTypeKeys)) return {};

  for (const config::SpanTypeRule& rule : config.span_type_rules) {
    if (!rule.name.empty() && !glob_match(rule.name, span.name())) continue;
    if (!rule.attribute.empty()) {
      const otlp::AnyValue* value = find(span, keys, rule.attribute);
      if (value == nullptr) continue;
      if (!rule.value.empty() && string_of(value) != rule.value) continue;
    }
    return {rule.type, TypeSource::user_rule, type_index_of(rule.type)};
  }
  if (!config.span_types) return {};

  // Koog: strategy, node and subgraph spans carry these keys (KoogAttributes in Koog's
  // OpenTelemetry feature); they are steps of the agent's graph.
  if (find(span, keys, "koog.strategy.name") != nullptr ||
      find(span, keys, "koog.node.id") != nullptr ||
      find(span, keys, "koog.subgraph.id") != nullptr) {
    return {kChain, TypeSource::koog_graph, kChainIndex};
  }
  if (name_is(span.name(), "create_agent") || name_is(span.name(), "invoke_agent")) {
    return {kAgent, TypeSource::agent_name, kAgentIndex};
  }
  if (present(find(span, keys, "gen_ai.request.model"))) return {kLlm, TypeSource::model, kLlmIndex};
  return {};
}

// Resource attributes the config names, copied onto the span (every span, or the root only).
void copy_resource_attributes(const config::NormalizeConfig& config,
                              const otlp::ResourceSpans& resource_spans, otlp::Span& span,
                              KeyFilter& keys, NormalizeTally& tally) {
  const bool wanted =
      config.resource_target == config::ResourceTarget::all ||
      (config.resource_target == config::ResourceTarget::root && span.parent_span_id().empty());
  if (!wanted) return;
  for (const std::string& key : config.resource_attributes) {
    if (find(span, keys, key) != nullptr) continue;
    for (const otlp::KeyValue& attribute : resource_spans.resource().attributes()) {
      if (attribute.key() == key) {
        *add_attribute(span, keys, key) = attribute.value();
        tally.add(Rule::resource_attribute);
        break;
      }
    }
  }
}

// What MLflow drops from the OTLP span itself: its kind, its scope and its links.
void add_otel_fields(const config::NormalizeConfig& config, const otlp::ScopeSpans& scope_spans,
                     otlp::Span& span, KeyFilter& keys, NormalizeTally& tally) {
  if (config.span_kind && find(span, keys, "otel.span.kind") == nullptr) {
    if (std::string_view kind = kind_name(span.kind()); !kind.empty()) {
      add_string(span, keys, "otel.span.kind", kind);
      tally.add(Rule::span_kind);
    }
  }
  if (config.scope && !scope_spans.scope().name().empty() &&
      find(span, keys, "otel.scope.name") == nullptr) {
    add_string(span, keys, "otel.scope.name", scope_spans.scope().name());
    if (!scope_spans.scope().version().empty() &&
        find(span, keys, "otel.scope.version") == nullptr) {
      add_string(span, keys, "otel.scope.version", scope_spans.scope().version());
    }
    tally.add(Rule::scope);
  }
  if (config.links && span.links_size() > 0 && find(span, keys, "otel.links") == nullptr) {
    add_string(span, keys, "otel.links", links_json(span));
    tally.add(Rule::links);
  }
}

void add_span_type(const config::NormalizeConfig& config, otlp::Span& span, KeyFilter& keys,
                   NormalizeTally& tally) {
  const SpanTypeDecision typed = span_type_of(config, span, keys);
  if (typed.type.empty()) return;
  add_string(span, keys, kSpanType, typed.type);
  tally.add(Rule::span_type);
  ++tally.typed[static_cast<std::size_t>(typed.source)][typed.type_index];
}

// Copies a Koog node's (or else subgraph's) value to `target` unless the span already has one
// of `existing`. Returns whether it copied.
template <typename Keys>
bool copy_koog_value(otlp::Span& span, KeyFilter& keys, const Keys& existing,
                     std::string_view node_key, std::string_view subgraph_key,
                     std::string_view target) {
  if (any_present(span, keys, existing)) return false;
  const otlp::AnyValue* value = find(span, keys, node_key);
  if (!present(value)) value = find(span, keys, subgraph_key);
  if (!present(value)) return false;
  const otlp::AnyValue copy = *value;  // add_attribute may reallocate the attributes
  copy_content(span, keys, target, copy);
  return true;
}

void copy_koog_io(otlp::Span& span, KeyFilter& keys, NormalizeTally& tally) {
  if (copy_koog_value(span, keys, kInputKeys, "koog.node.input", "koog.subgraph.input",
                      kSpanInputs)) {
    tally.add(Rule::inputs);
  }
  if (copy_koog_value(span, keys, kOutputKeys, "koog.node.output", "koog.subgraph.output",
                      kSpanOutputs)) {
    tally.add(Rule::outputs);
  }
}

// The joined messages go to mlflow.spanInputs, which MLflow reads instead of
// gen_ai.input.messages (stored the same way), so the span's own attribute stays as sent.
void join_instructions(otlp::Span& span, KeyFilter& keys, NormalizeTally& tally) {
  if (find(span, keys, kSpanInputs) != nullptr) return;
  std::string_view instructions = string_of(find(span, keys, "system_instructions"));
  if (instructions.empty()) instructions = string_of(find(span, keys, "gen_ai.system_instructions"));
  const std::string_view messages = string_of(find(span, keys, "gen_ai.input.messages"));
  if (instructions.empty() || messages.empty()) return;
  if (auto joined = join_system_instructions(messages, instructions)) {
    add_string(span, keys, kSpanInputs, *joined);
    tally.add(Rule::system_instructions);
  }
}

// Token counts sent as strings (Koog 1.0.0) as integers: a type fix only, the digits stay.
void fix_token_counts(otlp::Span& span, NormalizeTally& tally) {
  for (otlp::KeyValue& attribute : *span.mutable_attributes()) {
    if (!attribute.key().starts_with("gen_ai.usage.") ||
        attribute.value().value_case() != otlp::AnyValue::kStringValue) {
      continue;
    }
    const std::string& text = attribute.value().string_value();
    std::int64_t count = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), count);
    if (error == std::errc() && end == text.data() + text.size() && count >= 0) {
      attribute.mutable_value()->set_int_value(count);
      tally.add(Rule::token_count);
    }
  }
}

// Copies `from` to `to` when the span has the first and not the second. Returns whether it did.
bool copy_attribute(otlp::Span& span, KeyFilter& keys, std::string_view from, std::string_view to) {
  if (find(span, keys, to) != nullptr) return false;
  const otlp::AnyValue* value = find(span, keys, from);
  if (!present(value)) return false;
  const otlp::AnyValue copy = *value;
  *add_attribute(span, keys, to) = copy;
  return true;
}

void normalize_span(const Normalizer& normalizer, const otlp::ResourceSpans& resource_spans,
                    const otlp::ScopeSpans& scope_spans, otlp::Span& span, NormalizeTally& tally) {
  const config::NormalizeConfig& config = normalizer.config();
  ++tally.spans;
  KeyFilter keys(span);
  copy_resource_attributes(config, resource_spans, span, keys, tally);
  add_otel_fields(config, scope_spans, span, keys, tally);
  add_span_type(config, span, keys, tally);
  if (config.koog_io) copy_koog_io(span, keys, tally);
  if (config.system_instructions) join_instructions(span, keys, tally);
  fix_token_counts(span, tally);
  if (config.session_from_conversation &&
      copy_attribute(span, keys, "gen_ai.conversation.id", "session.id")) {
    tally.add(Rule::session);
  }
  if (config.user_from_enduser && copy_attribute(span, keys, "enduser.id", "user.id")) {
    tally.add(Rule::user);
  }
}

}  // namespace

std::string_view rule_name(Rule rule) {
  static constexpr std::array<std::string_view, kRuleCount> kNames{
      "resource_attribute", "span_kind", "scope", "links", "span_type", "inputs",
      "outputs", "system_instructions", "session", "user", "preview", "token_count"};
  return kNames[static_cast<std::size_t>(rule)];
}

std::string_view type_source_name(TypeSource source) {
  static constexpr std::array<std::string_view, kTypeSourceCount> kNames{
      "user_rule", "koog_graph", "agent_name", "model"};
  return kNames[static_cast<std::size_t>(source)];
}

void NormalizeStats::add(const NormalizeTally& tally) {
  for (std::size_t i = 0; i < kRuleCount; ++i) {
    if (tally.changes[i] != 0) changes[i].fetch_add(tally.changes[i], std::memory_order_relaxed);
  }
  spans.fetch_add(tally.spans, std::memory_order_relaxed);
  if (tally.count(Rule::span_type) == 0) return;
  for (std::size_t source = 0; source < kTypeSourceCount; ++source) {
    for (std::size_t type = 0; type < kSpanTypeCount; ++type) {
      if (const std::uint64_t n = tally.typed[source][type]; n != 0) {
        typed[source][type].fetch_add(n, std::memory_order_relaxed);
      }
    }
  }
}

Normalizer::Normalizer(const config::NormalizeConfig& config) : config_(config) {}

SpanTypeDecision Normalizer::span_type(const otlp::Span& span) const {
  return span_type_of(config_, span, KeyFilter(span));
}

void apply(const Normalizer& normalizer, otlp::ResourceSpans& resource_spans,
           NormalizeTally& tally) {
  if (!normalizer.enabled()) return;
  for (otlp::ScopeSpans& scope_spans : *resource_spans.mutable_scope_spans()) {
    for (otlp::Span& span : *scope_spans.mutable_spans()) {
      normalize_span(normalizer, resource_spans, scope_spans, span, tally);
    }
  }
}

const otlp::AnyValue* find_attribute(const otlp::Span& span, std::string_view key) {
  for (const otlp::KeyValue& attribute : span.attributes()) {
    if (attribute.key() == key) return &attribute.value();
  }
  return nullptr;
}

bool has_inputs(const otlp::Span& span) {
  return std::any_of(kInputKeys.begin(), kInputKeys.end(),
                     [&](std::string_view key) { return present(find_attribute(span, key)); });
}
bool has_outputs(const otlp::Span& span) {
  return std::any_of(kOutputKeys.begin(), kOutputKeys.end(),
                     [&](std::string_view key) { return present(find_attribute(span, key)); });
}

std::optional<std::string> join_system_instructions(std::string_view messages,
                                                    std::string_view instructions) {
  boost::system::error_code error;
  boost::json::value parsed_messages = boost::json::parse(messages, error);
  if (error || !parsed_messages.is_array()) return std::nullopt;
  boost::json::value parts = boost::json::parse(instructions, error);
  if (error || !parts.is_array()) return std::nullopt;
  boost::json::array& list = parsed_messages.as_array();
  for (const boost::json::value& message : list) {
    if (!message.is_object()) return std::nullopt;
    const boost::json::value* role = message.as_object().if_contains("role");
    if (role == nullptr || !role->is_string()) return std::nullopt;
    std::string_view text = role->as_string();
    if (text.size() == 6 && (text[0] == 's' || text[0] == 'S') && text.substr(1) == "ystem") {
      return std::nullopt;  // already there (Koog puts it first)
    }
  }
  boost::json::object system;
  system["role"] = "system";
  system["parts"] = std::move(parts);
  list.insert(list.begin(), std::move(system));
  return boost::json::serialize(parsed_messages);
}

}  // namespace proxy::normalize
