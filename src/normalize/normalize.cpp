#include "normalize/normalize.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <system_error>

#include <boost/json.hpp>

#include "common/glob.hpp"
#include "common/hex.hpp"  // to_hex
#include "normalize/json_value.hpp"
#include "normalize/span_view.hpp"

namespace proxy::normalize {
namespace {

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

std::string_view string_of(const ValueView* value) { return value == nullptr ? std::string_view{} : value->string(); }

bool present(const ValueView* value) { return value != nullptr && value->present(); }

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

// "name" or "name <anything>": Koog's span names are the operation, a space, then the subject.
bool name_is(std::string_view span_name, std::string_view operation) {
  return span_name.starts_with(operation) &&
         (span_name.size() == operation.size() || span_name[operation.size()] == ' ');
}

std::string_view kind_name(std::int32_t kind) {
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
std::string links_json(const Links& span_links) {
  boost::json::array links;
  for (const auto& link : span_links) {
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

// A numeric string sent as a token count: the integer it holds, or -1.
std::int64_t token_count_of(std::string_view key, const ValueView& value) {
  if (!key.starts_with("gen_ai.usage.") || value.type != ValueType::string) return -1;
  std::int64_t count = 0;
  const auto [end, error] = std::from_chars(value.text.data(), value.text.data() + value.text.size(), count);
  return error == std::errc() && end == value.text.data() + value.text.size() ? count : -1;
}

// The rules over one span. A change is visible to the rules after it, as when each rule wrote
// to the message: find() reads the span's attributes, then the additions so far.
class SpanRules {
 public:
  SpanRules(const config::NormalizeConfig& config, const SpanView& span, SpanChanges& changes,
            NormalizeTally& tally)
      : config_(config), span_(span), changes_(changes), tally_(tally) {
    for (const AttributeView& attribute : span.attributes) keys_.add(attribute.key);
  }

  void run() {
    ++tally_.spans;
    copy_resource_attributes();
    add_otel_fields();
    add_span_type();
    if (config_.koog_io) copy_koog_io();
    if (config_.system_instructions) join_instructions();
    fix_token_counts();
    if (config_.session_from_conversation && copy_attribute("gen_ai.conversation.id", "session.id")) {
      tally_.add(Rule::session);
    }
    if (config_.user_from_enduser && copy_attribute("enduser.id", "user.id")) tally_.add(Rule::user);
  }

  SpanTypeDecision span_type() const;

 private:
  const ValueView* find(std::string_view key) const {
    if (!keys_.may_contain(key)) return nullptr;
    for (const AttributeView& attribute : span_.attributes) {
      if (attribute.key == key) return &attribute.value;
    }
    for (const Addition& addition : changes_.additions) {
      if (addition.key == key) return &addition.value.value;
    }
    return nullptr;
  }

  template <std::size_t N>
  bool any_present(const std::array<std::string_view, N>& names) const {
    for (std::string_view key : names) {
      if (present(find(key))) return true;
    }
    return false;
  }

  void add(std::string_view key, NewValueKind kind, const ValueView& value) {
    changes_.additions.push_back({key, {kind, value}});
    keys_.add(key);
  }
  void add_text(std::string_view key, std::string_view text) {
    ValueView value;
    value.type = ValueType::string;
    value.text = text;
    add(key, NewValueKind::text, value);
  }

  void copy_resource_attributes();
  void add_otel_fields();
  void add_span_type();
  bool copy_koog_value(const std::array<std::string_view, 6>& existing, std::string_view node_key,
                       std::string_view subgraph_key, std::string_view target);
  void copy_koog_io();
  void join_instructions();
  void fix_token_counts();
  bool copy_attribute(std::string_view from, std::string_view to);

  const config::NormalizeConfig& config_;
  const SpanView& span_;
  SpanChanges& changes_;
  NormalizeTally& tally_;
  KeyFilter keys_;
};

SpanTypeDecision SpanRules::span_type() const {
  if (find(kSpanType) != nullptr) return {};
  const std::string_view operation = string_of(find("gen_ai.operation.name"));
  for (std::string_view mapped : kMappedOperations) {
    if (operation == mapped) return {};
  }
  if (any_present(kOtherTypeKeys)) return {};

  for (const config::SpanTypeRule& rule : config_.span_type_rules) {
    if (!rule.name.empty() && !glob_match(rule.name, span_.name)) continue;
    if (!rule.attribute.empty()) {
      const ValueView* value = find(rule.attribute);
      if (value == nullptr) continue;
      if (!rule.value.empty() && value->string() != rule.value) continue;
    }
    return {rule.type, TypeSource::user_rule, type_index_of(rule.type)};
  }
  if (!config_.span_types) return {};

  // Koog: strategy, node and subgraph spans carry these keys (KoogAttributes in Koog's
  // OpenTelemetry feature); they are steps of the agent's graph.
  if (find("koog.strategy.name") != nullptr || find("koog.node.id") != nullptr ||
      find("koog.subgraph.id") != nullptr) {
    return {kChain, TypeSource::koog_graph, kChainIndex};
  }
  if (name_is(span_.name, "create_agent") || name_is(span_.name, "invoke_agent")) {
    return {kAgent, TypeSource::agent_name, kAgentIndex};
  }
  if (present(find("gen_ai.request.model"))) return {kLlm, TypeSource::model, kLlmIndex};
  return {};
}

// Resource attributes the config names, copied onto the span (every span, or the root only).
void SpanRules::copy_resource_attributes() {
  const bool wanted = config_.resource_target == config::ResourceTarget::all ||
                      (config_.resource_target == config::ResourceTarget::root && span_.root);
  if (!wanted) return;
  for (const std::string& key : config_.resource_attributes) {
    if (find(key) != nullptr) continue;
    for (const AttributeView& attribute : span_.resource) {
      if (attribute.key == key) {
        add(key, NewValueKind::copy, attribute.value);
        tally_.add(Rule::resource_attribute);
        break;
      }
    }
  }
}

// What MLflow drops from the OTLP span itself: its kind, its scope and its links.
void SpanRules::add_otel_fields() {
  if (config_.span_kind && find("otel.span.kind") == nullptr) {
    if (std::string_view kind = kind_name(span_.kind); !kind.empty()) {
      add_text("otel.span.kind", kind);
      tally_.add(Rule::span_kind);
    }
  }
  if (config_.scope && !span_.scope_name.empty() && find("otel.scope.name") == nullptr) {
    add_text("otel.scope.name", span_.scope_name);
    if (!span_.scope_version.empty() && find("otel.scope.version") == nullptr) {
      add_text("otel.scope.version", span_.scope_version);
    }
    tally_.add(Rule::scope);
  }
  if (config_.links && span_.link_count > 0 && span_.links != nullptr && find("otel.links") == nullptr) {
    changes_.links_json = links_json(*span_.links);
    add_text("otel.links", changes_.links_json);
    tally_.add(Rule::links);
  }
}

void SpanRules::add_span_type() {
  const SpanTypeDecision typed = span_type();
  if (typed.type.empty()) return;
  add_text(kSpanType, typed.type);
  tally_.add(Rule::span_type);
  ++tally_.typed[static_cast<std::size_t>(typed.source)][typed.type_index];
}

// Copies a Koog node's (or else subgraph's) value to `target` unless the span already has one
// of `existing`: its JSON as structure, so MLflow shows the text or object instead of a quoted
// string; anything else (masked, hashed, hidden) as it is. Returns whether it copied.
bool SpanRules::copy_koog_value(const std::array<std::string_view, 6>& existing, std::string_view node_key,
                                std::string_view subgraph_key, std::string_view target) {
  if (any_present(existing)) return false;
  const ValueView* value = find(node_key);
  if (!present(value)) value = find(subgraph_key);
  if (!present(value)) return false;
  const ValueView copy = *value;  // add() may move the additions
  add(target, copy.type == ValueType::string ? NewValueKind::content : NewValueKind::copy, copy);
  return true;
}

void SpanRules::copy_koog_io() {
  if (copy_koog_value(kInputKeys, "koog.node.input", "koog.subgraph.input", kSpanInputs)) {
    tally_.add(Rule::inputs);
  }
  if (copy_koog_value(kOutputKeys, "koog.node.output", "koog.subgraph.output", kSpanOutputs)) {
    tally_.add(Rule::outputs);
  }
}

// The joined messages go to mlflow.spanInputs, which MLflow reads instead of
// gen_ai.input.messages (stored the same way), so the span's own attribute stays as sent.
void SpanRules::join_instructions() {
  if (find(kSpanInputs) != nullptr) return;
  std::string_view instructions = string_of(find("system_instructions"));
  if (instructions.empty()) instructions = string_of(find("gen_ai.system_instructions"));
  const std::string_view messages = string_of(find("gen_ai.input.messages"));
  if (instructions.empty() || messages.empty()) return;
  if (auto joined = join_system_instructions(messages, instructions)) {
    changes_.joined_inputs = std::move(*joined);
    add_text(kSpanInputs, changes_.joined_inputs);
    tally_.add(Rule::system_instructions);
  }
}

// Token counts sent as strings (Koog 1.0.0) as integers: a type fix only, the digits stay. The
// additions so far are fixed too (a resource attribute may be a count).
void SpanRules::fix_token_counts() {
  for (std::size_t i = 0; i < span_.attributes.size(); ++i) {
    const std::int64_t count = token_count_of(span_.attributes[i].key, span_.attributes[i].value);
    if (count < 0) continue;
    changes_.replacements.push_back({i, count});
    tally_.add(Rule::token_count);
  }
  for (Addition& addition : changes_.additions) {
    if (addition.value.kind != NewValueKind::copy) continue;  // the others' keys are never counts
    const std::int64_t count = token_count_of(addition.key, addition.value.value);
    if (count < 0) continue;
    addition.value.kind = NewValueKind::integer_of;
    addition.value.value.type = ValueType::integer;
    addition.value.value.integer = count;
    tally_.add(Rule::token_count);
  }
}

// Copies `from` to `to` when the span has the first and not the second. Returns whether it did.
bool SpanRules::copy_attribute(std::string_view from, std::string_view to) {
  if (find(to) != nullptr) return false;
  const ValueView* value = find(from);
  if (!present(value)) return false;
  const ValueView copy = *value;
  add(to, NewValueKind::copy, copy);
  return true;
}

// The message path's scratch: one per thread, so a warm apply() allocates only what it adds.
struct MessageScratch {
  std::vector<AttributeView> resource;
  std::vector<AttributeView> attributes;
  SpanChanges changes;
};

void fill_attributes(const google::protobuf::RepeatedPtrField<otlp::KeyValue>& attributes,
                     std::vector<AttributeView>& out) {
  out.clear();
  for (const otlp::KeyValue& attribute : attributes) out.push_back({attribute.key(), view_of(attribute.value())});
}

// Writes a new value as the message path always did: copies keep the source's unknown fields.
void set_value(const NewValue& change, otlp::AnyValue& target) {
  switch (change.kind) {
    case NewValueKind::text:
      target.set_string_value(std::string(change.value.text));
      return;
    case NewValueKind::content:
      if (auto parsed = parse_json_value(change.value.text)) {
        target = std::move(*parsed);
        return;
      }
      target = *change.value.message;
      return;
    case NewValueKind::copy:
      target = *change.value.message;
      return;
    case NewValueKind::integer_of:
      target = *change.value.message;
      target.set_int_value(change.value.integer);
      return;
  }
}

void apply_changes(const SpanChanges& changes, otlp::Span& span) {
  for (const Replacement& replacement : changes.replacements) {
    otlp::KeyValue* attribute = span.mutable_attributes(static_cast<int>(replacement.attribute));
    attribute->mutable_value()->set_int_value(replacement.integer);
  }
  for (const Addition& addition : changes.additions) {
    otlp::KeyValue* attribute = span.add_attributes();
    attribute->set_key(std::string(addition.key));
    set_value(addition.value, *attribute->mutable_value());
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
  std::vector<AttributeView> attributes;
  const SpanView view = view_of_span(span, attributes);
  SpanChanges changes;
  NormalizeTally tally;
  return SpanRules(config_, view, changes, tally).span_type();
}

ValueView view_of(const otlp::AnyValue& value) {
  ValueView view;
  view.message = &value;
  switch (value.value_case()) {
    case otlp::AnyValue::kStringValue: view.type = ValueType::string; view.text = value.string_value(); break;
    case otlp::AnyValue::kBoolValue: view.type = ValueType::boolean; view.boolean = value.bool_value(); break;
    case otlp::AnyValue::kIntValue: view.type = ValueType::integer; view.integer = value.int_value(); break;
    case otlp::AnyValue::kDoubleValue: view.type = ValueType::floating; view.floating = value.double_value(); break;
    case otlp::AnyValue::kArrayValue: view.type = ValueType::array; break;
    case otlp::AnyValue::kKvlistValue: view.type = ValueType::kvlist; break;
    case otlp::AnyValue::kBytesValue: view.type = ValueType::bytes; view.text = value.bytes_value(); break;
    default: break;
  }
  return view;
}

SpanView view_of_span(const otlp::Span& span, std::vector<AttributeView>& attributes) {
  fill_attributes(span.attributes(), attributes);
  SpanView view;
  view.name = span.name();
  view.kind = span.kind();
  view.root = span.parent_span_id().empty();
  view.trace_id = span.trace_id();
  view.start_time = span.start_time_unix_nano();
  view.end_time = span.end_time_unix_nano();
  view.attributes = attributes;
  view.link_count = span.links_size();
  view.links = &span.links();
  return view;
}

FoundValue find_changed(const SpanView& span, const SpanChanges& changes, std::string_view key) {
  for (const AttributeView& attribute : span.attributes) {
    if (attribute.key == key) return {&attribute.value, nullptr};
  }
  for (const Addition& addition : changes.additions) {
    if (addition.key == key) return {&addition.value.value, &addition.value};
  }
  return {};
}

namespace {

// A value read from a message or from the wire, as a message (built in `scratch` from the wire).
const otlp::AnyValue* source_of(const ValueView& value, otlp::AnyValue& scratch) {
  if (value.message != nullptr) return value.message;
  if (!scratch.ParseFromArray(value.encoded.data(), static_cast<int>(value.encoded.size()))) return nullptr;
  return &scratch;
}

}  // namespace

const otlp::AnyValue* as_message(const FoundValue& found, otlp::AnyValue& scratch) {
  if (found.value == nullptr) return nullptr;
  if (found.addition == nullptr) return source_of(*found.value, scratch);
  const NewValue& change = *found.addition;
  if (change.kind == NewValueKind::text) {
    scratch.set_string_value(std::string(change.value.text));
    return &scratch;
  }
  if (change.kind == NewValueKind::content) {
    if (auto parsed = parse_json_value(change.value.text)) {
      scratch = std::move(*parsed);
      return &scratch;
    }
  }
  const otlp::AnyValue* source = source_of(change.value, scratch);
  if (source == nullptr || change.kind != NewValueKind::integer_of) return source;
  if (source != &scratch) scratch = *source;
  scratch.set_int_value(change.value.integer);
  return &scratch;
}

void decide_changes(const Normalizer& normalizer, const SpanView& span, SpanChanges& changes,
                    NormalizeTally& tally) {
  changes.clear();
  SpanRules(normalizer.config(), span, changes, tally).run();
}

void apply(const Normalizer& normalizer, otlp::ResourceSpans& resource_spans,
           NormalizeTally& tally) {
  if (!normalizer.enabled()) return;
  thread_local MessageScratch scratch;
  fill_attributes(resource_spans.resource().attributes(), scratch.resource);
  for (otlp::ScopeSpans& scope_spans : *resource_spans.mutable_scope_spans()) {
    for (otlp::Span& span : *scope_spans.mutable_spans()) {
      SpanView view = view_of_span(span, scratch.attributes);
      view.resource = scratch.resource;
      view.scope_name = scope_spans.scope().name();
      view.scope_version = scope_spans.scope().version();
      decide_changes(normalizer, view, scratch.changes, tally);
      apply_changes(scratch.changes, span);
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

namespace {

const ValueView* first_of(const SpanView& span, std::string_view key) {
  for (const AttributeView& attribute : span.attributes) {
    if (attribute.key == key) return &attribute.value;
  }
  return nullptr;
}

}  // namespace

bool has_inputs(const SpanView& span) {
  return std::any_of(kInputKeys.begin(), kInputKeys.end(),
                     [&](std::string_view key) { return present(first_of(span, key)); });
}
bool has_outputs(const SpanView& span) {
  return std::any_of(kOutputKeys.begin(), kOutputKeys.end(),
                     [&](std::string_view key) { return present(first_of(span, key)); });
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
