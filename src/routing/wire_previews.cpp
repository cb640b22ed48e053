#include "routing/wire_previews.hpp"

#include <algorithm>
#include <utility>

#include "normalize/wire_normalize.hpp"
#include "otlp/wire_pass.hpp"
#include "otlp/wire_reader.hpp"

namespace proxy::routing {
namespace {

using otlp::wire::Field;
using otlp::wire::is_length;
using otlp::wire::Reader;
using otlp::wire::WireError;

// OTLP field numbers used here: ResourceSpans {resource 1, scope_spans 2, schema_url 3},
// ScopeSpans {scope 1, spans 2, schema_url 3}, Span {parent_span_id 4}.
constexpr std::uint32_t kResourceOrScope = 1;
constexpr std::uint32_t kNested = 2;
constexpr std::uint32_t kSchemaUrl = 3;
constexpr std::uint32_t kParentSpanId = 4;
// Span {trace_id 1, name 5, attributes 9}, KeyValue {key 1, value 2}.
constexpr std::uint32_t kTraceId = 1;
constexpr std::uint32_t kName = 5;
constexpr std::uint32_t kAttributes = 9;
constexpr std::uint32_t kKey = 1;
constexpr std::uint32_t kValue = 2;

// A KeyValue's key and value (a missing value reads as unset), from checked bytes.
normalize::AttributeView attribute_view(std::string_view key_value) {
  normalize::AttributeView view;
  Reader reader(key_value);
  Field field;
  while (reader.next(field)) {
    if (is_length(field, kKey)) view.key = field.payload;
    if (is_length(field, kValue)) view.value = normalize::view_of_encoded(field.payload);
  }
  return view;
}

// A root span: no parent_span_id, or an empty one (the last one counts, as protobuf keeps it).
bool is_root(std::string_view span) {
  Reader reader(span);
  Field field;
  bool root = true;
  while (reader.next(field)) {
    if (is_length(field, kParentSpanId)) root = field.payload.empty();
  }
  return root;
}

// Calls `each(span_field)` on every span of a ResourceSpans' contents; false on unreadable bytes.
template <class Each>
bool each_span(std::string_view resource_spans, Each&& each) {
  Reader scopes(resource_spans);
  Field scope;
  while (scopes.next(scope)) {
    if (!is_length(scope, kNested)) continue;
    Reader spans(scope.payload);
    Field span;
    while (spans.next(span)) {
      if (is_length(span, kNested) && !each(span)) return false;
    }
    if (spans.error() != WireError::none) return false;
  }
  return scopes.error() == WireError::none;
}

}  // namespace

bool WirePreviewFiller::fill(const PreviewFill& fill, std::string_view payload, std::uint32_t spans,
                             normalize::NormalizeTally& tally, FilledPayload& out) {
  out.spans.clear();
  out.held_roots.clear();
  out.held_traces.clear();
  out.held_count = 0;
  spans_writer_.clear();
  held_writer_.clear();
  Reader reader(payload);
  Field field;
  while (reader.next(field)) {
    if (!is_length(field, kResourceOrScope)) {
      spans_writer_.copy(field.raw);
    } else if (!resource_spans(fill, field, tally, out)) {
      return false;
    }
  }
  if (reader.error() != WireError::none) return false;
  spans_writer_.write(out.spans);
  held_writer_.write(out.held_roots);
  out.span_count = spans - out.held_count;
  return true;
}

// fill_previews on one ResourceSpans (its roots decided in order, so the cache is taken from
// as on the message path), then the record written: unchanged, with its filled roots given
// their parts, or split between the spans and the held roots.
bool WirePreviewFiller::resource_spans(const PreviewFill& fill, const Field& field, normalize::NormalizeTally& tally,
                                       FilledPayload& out) {
  root_count_ = 0;
  std::vector<std::string> held;
  const bool read = each_span(field.payload, [&](const Field& span) {
    if (is_root(span.payload)) decide(fill, span.payload, held, tally);
    return true;
  });
  if (!read) return false;
  if (root_count_ == 0) {
    spans_writer_.copy(field.raw);
    return true;
  }
  std::uint32_t moved = 0;
  emit(field, held, spans_writer_, false, moved);
  if (held.empty()) return true;
  emit(field, held, held_writer_, true, moved);
  out.held_count += moved;
  for (std::string& trace : held) out.held_traces.push_back(std::move(trace));
  return true;
}

// One root's view read from its bytes (checked already), decided as fill_root_span decides.
void WirePreviewFiller::decide(const PreviewFill& fill, std::string_view span, std::vector<std::string>& held,
                               normalize::NormalizeTally& tally) {
  normalize::SpanView view;
  view.root = true;
  attributes_.clear();
  Reader reader(span);
  Field field;
  while (reader.next(field)) {
    if (is_length(field, kTraceId)) view.trace_id = field.payload;
    if (is_length(field, kName)) view.name = field.payload;
    if (is_length(field, kAttributes)) attributes_.push_back(attribute_view(field.payload));
  }
  view.attributes = attributes_;
  if (roots_.size() <= root_count_) roots_.emplace_back();
  Root& root = roots_[root_count_++];
  root.at = span.data();
  root.trace_id = view.trace_id;
  root.inputs.clear();
  root.outputs.clear();
  const bool may_hold = fill.normalizer.config().preview_hold.count() > 0;
  normalize::RootFill decided = normalize::decide_root_fill(fill.route, view, fill.cache, fill.now, may_hold);
  if (decided.held) held.emplace_back(view.trace_id);
  if (!decided.preview) return;
  if (decided.inputs) root.inputs = std::move(decided.preview->inputs);
  if (decided.outputs) root.outputs = std::move(decided.preview->outputs);
  if (root.filled()) tally.add(normalize::Rule::preview);
}

// A span as it goes out: as it came, or with the preview's parts appended as attributes (where
// the message path's add_attributes puts them: after the others).
void WirePreviewFiller::write_span(const Field& span, const Root* root, otlp::wire::Writer& writer) const {
  if (root == nullptr || !root->filled()) {
    writer.copy(span.raw);
    return;
  }
  const otlp::wire::Writer::Mark mark = writer.mark();
  writer.open(kNested);
  writer.copy(span.payload);
  for (const auto& [key, value] : {std::pair{normalize::kSpanInputs, std::string_view(root->inputs)},
                                   std::pair{normalize::kSpanOutputs, std::string_view(root->outputs)}}) {
    if (value.empty()) continue;
    const otlp::wire::Writer::Mark attribute = writer.mark();
    writer.open(kAttributes);
    writer.bytes_field(kKey, key);
    writer.bytes_field(kValue, value);
    writer.close(attribute);
  }
  writer.close(mark);
}

const WirePreviewFiller::Root* WirePreviewFiller::root_at(const char* at) const {
  for (std::size_t i = 0; i < root_count_; ++i) {
    if (roots_[i].at == at) return &roots_[i];
  }
  return nullptr;
}

// Writes the spans of a ResourceSpans that belong to one output: the spans' (everything but the
// held roots, every other field kept) or the held roots' (only the resource, the scopes and their
// schema URLs, as the router's take_held_roots copies them, a missing resource or scope written
// empty as that copy does). Scopes and resources left without a span are left out.
void WirePreviewFiller::emit(const Field& field, const std::vector<std::string>& held, otlp::wire::Writer& writer,
                             bool taking_held, std::uint32_t& moved) {
  const otlp::wire::Writer::Mark mark = writer.mark();
  writer.open(kResourceOrScope);
  bool any_span = false;
  bool has_resource = false;
  Reader reader(field.payload);
  Field part;
  while (reader.next(part)) {
    if (is_length(part, kNested)) {
      any_span |= emit_scope(part, held, writer, taking_held, moved);
      continue;
    }
    has_resource |= is_length(part, kResourceOrScope);
    if (!taking_held || is_length(part, kResourceOrScope) || is_length(part, kSchemaUrl)) writer.copy(part.raw);
  }
  if (taking_held && !has_resource) writer.bytes_field(kResourceOrScope, {});
  if (any_span) {
    writer.close(mark);
  } else {
    writer.rewind(mark);
  }
}

// One ScopeSpans of emit(); true when it kept a span.
bool WirePreviewFiller::emit_scope(const Field& field, const std::vector<std::string>& held,
                                   otlp::wire::Writer& writer, bool taking_held, std::uint32_t& moved) {
  const otlp::wire::Writer::Mark mark = writer.mark();
  writer.open(kNested);
  bool any_span = false;
  bool has_scope = false;
  Reader reader(field.payload);
  Field part;
  while (reader.next(part)) {
    if (!is_length(part, kNested)) {
      has_scope |= is_length(part, kResourceOrScope);
      if (!taking_held || is_length(part, kResourceOrScope) || is_length(part, kSchemaUrl)) writer.copy(part.raw);
      continue;
    }
    const Root* root = root_at(part.payload.data());
    const bool is_held = root != nullptr && std::find(held.begin(), held.end(), root->trace_id) != held.end();
    if (is_held != taking_held) continue;
    write_span(part, root, writer);
    any_span = true;
    if (taking_held) ++moved;
  }
  if (taking_held && !has_scope) writer.bytes_field(kResourceOrScope, {});
  if (any_span) {
    writer.close(mark);
  } else {
    writer.rewind(mark);
  }
  return any_span;
}

}  // namespace proxy::routing
