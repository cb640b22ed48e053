// What the normalization rules read of a span, and what they decide to change, apart from how
// the span is held: the message path fills the view from an otlp::Span and applies the changes
// to it; the wire path (wire_normalize.hpp) fills it from the request's bytes and re-emits the
// changes with the wire Writer. The rules themselves (decide_changes) are written once.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "otlp/types.hpp"

namespace proxy::normalize {

class Normalizer;
struct NormalizeTally;

enum class ValueType : std::uint8_t { unset, string, boolean, integer, floating, array, kvlist, bytes };

// An attribute's value as the rules see it, plus where it came from, so a change can copy it.
struct ValueView {
  ValueType type = ValueType::unset;
  std::string_view text;  // string and bytes values
  std::int64_t integer = 0;
  double floating = 0;
  bool boolean = false;
  // array and kvlist values: the serialized ArrayValue / KeyValueList (wire path only).
  std::string_view nested;
  const otlp::AnyValue* message = nullptr;  // message path: the value itself
  std::string_view encoded;                 // wire path: the AnyValue's contents as sent

  std::string_view string() const { return type == ValueType::string ? text : std::string_view{}; }
  // A value MLflow would treat as present: not an empty string, not unset.
  bool present() const { return type != ValueType::unset && (type != ValueType::string || !text.empty()); }
};

struct AttributeView {
  std::string_view key;
  ValueView value;
};

using Links = google::protobuf::RepeatedPtrField<otlp::Span::Link>;

struct SpanView {
  std::string_view name;
  std::int32_t kind = 0;  // Span.SpanKind's number, as protobuf keeps it
  bool root = false;      // no parent span id
  std::string_view trace_id;
  std::uint64_t start_time = 0;
  std::uint64_t end_time = 0;
  std::span<const AttributeView> attributes;
  std::span<const AttributeView> resource;  // the resource's attributes
  std::string_view scope_name;
  std::string_view scope_version;
  int link_count = 0;
  // The links themselves, read only when otel.links is written (nullptr when the filler was told
  // they are not wanted).
  const Links* links = nullptr;
};

// What a change writes as an attribute's value.
enum class NewValueKind : std::uint8_t {
  text,        // a string value: value.text
  copy,        // a copy of `value` (its source)
  content,     // `value` (a string) as JSON structure when it parses, else a copy of it
  integer_of,  // a copy of `value`'s source with the int value.integer in its string's place
};

struct NewValue {
  NewValueKind kind = NewValueKind::text;
  ValueView value;  // what the rules read as the value added (text: a string view of it)
};

// An attribute appended to the span.
struct Addition {
  std::string_view key;  // a constant, a config key or a resource attribute's key
  NewValue value;
};

// An attribute of the span (by index) whose string value becomes an integer.
struct Replacement {
  std::size_t attribute = 0;
  std::int64_t integer = 0;
};

// The changes of one span; reused from span to span, so it keeps its capacity.
struct SpanChanges {
  std::vector<Addition> additions;
  std::vector<Replacement> replacements;
  std::string links_json;     // the text of otel.links, when added
  std::string joined_inputs;  // the text of mlflow.spanInputs from system_instructions, when added

  void clear() {
    additions.clear();
    replacements.clear();
  }
  bool empty() const { return additions.empty() && replacements.empty(); }
};

// Every rule except previews on one span: the changes to make, counted into `tally` (the span
// too). `changes` is cleared first.
void decide_changes(const Normalizer& normalizer, const SpanView& span, SpanChanges& changes,
                    NormalizeTally& tally);

// The view of a message value (nested is left empty: the message path copies `message`).
ValueView view_of(const otlp::AnyValue& value);

// The view of a message span (attributes into `attributes`; resource and scope left empty).
SpanView view_of_span(const otlp::Span& span, std::vector<AttributeView>& attributes);

// An attribute of the span as its changes leave it: the first of that key among the span's
// attributes, then among the additions (`addition` set when it is one).
struct FoundValue {
  const ValueView* value = nullptr;
  const NewValue* addition = nullptr;
};
FoundValue find_changed(const SpanView& span, const SpanChanges& changes, std::string_view key);

// The found value as the message path holds it after apply(): the message itself on the message
// path, else built in `scratch` (parsed from the wire, or the addition's value). nullptr: none.
const otlp::AnyValue* as_message(const FoundValue& found, otlp::AnyValue& scratch);

}  // namespace proxy::normalize
