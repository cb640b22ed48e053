#include "routing/wire_previews.hpp"

#include <algorithm>

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

// Calls `each(scope_spans_field, span_field)` on every span of a ResourceSpans' contents.
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

// fill_previews on one ResourceSpans (its roots decoded and filled in order, so the cache is
// taken from as on the message path), then the record written: unchanged, with its filled roots
// re-encoded, or split between the spans and the held roots.
bool WirePreviewFiller::resource_spans(const PreviewFill& fill, const Field& field, normalize::NormalizeTally& tally,
                                       FilledPayload& out) {
  roots_.clear();
  std::vector<std::string> held;
  const bool may_hold = fill.normalizer.config().preview_hold.count() > 0;
  const bool read = each_span(field.payload, [&](const Field& span) {
    if (!is_root(span.payload)) return true;
    if (pool_.size() <= roots_.size()) pool_.resize(roots_.size() + 1);
    otlp::Span& decoded = pool_[roots_.size()];
    decoded.Clear();
    if (!decoded.ParseFromArray(span.payload.data(), static_cast<int>(span.payload.size()))) return false;
    const bool filled =
        normalize::fill_root_span(fill.route, decoded, fill.cache, fill.now, tally, may_hold ? &held : nullptr);
    roots_.push_back({span.payload.data(), roots_.size(), filled});
    return true;
  });
  if (!read) return false;
  if (roots_.empty()) {
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

const WirePreviewFiller::Root* WirePreviewFiller::root_at(const char* at) const {
  for (const Root& root : roots_) {
    if (root.at == at) return &root;
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
    const otlp::Span* decoded = root != nullptr ? &pool_[root->decoded] : nullptr;
    const bool is_held = decoded != nullptr && std::find(held.begin(), held.end(), decoded->trace_id()) != held.end();
    if (is_held != taking_held) continue;
    if (root != nullptr && root->filled) {
      decoded->SerializeToString(&encoded_);
      writer.bytes_field(kNested, encoded_);
    } else {
      writer.copy(part.raw);
    }
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
