#include "otlp/wire_checks.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>

#include "otlp/wire_pass.hpp"
#include "otlp/wire_schema.hpp"

namespace proxy::otlp::wire {
namespace {

// A message with limited attributes: which fields hold them and the dropped count.
struct Limited {
  MessageKind kind;
  unsigned nesting;  // of the message's own fields
  std::uint32_t attributes;
  std::uint32_t dropped;
  std::size_t limit;
};

class ChecksPass : public Pass {
 public:
  ChecksPass(const AttributeLimits& limits, Writer& writer, ChecksResult& result)
      : Pass(writer), limits_(limits), result_(result) {}

  // True when the request has to be rewritten.
  bool run(std::string_view request) {
    std::size_t r = 0;
    return each_field(request, [&](const Field& field) {
      if (!is_length(field, 1)) return keep(MessageKind::request, field, 0);
      return message(field, 1, [&](std::string_view c) { return resource_spans(c, r); }) != Change::none;
    });
  }

 private:
  static Change outcome(bool changed, std::size_t left) {
    if (left == 0) return Change::removed;  // MLflow answers 400 to a request without spans
    return changed ? Change::changed : Change::none;
  }

  Change resource_spans(std::string_view contents, std::size_t& r) {
    std::size_t s = 0;
    std::size_t left = 0;
    const bool changed = each_field(contents, [&](const Field& field) {
      if (!is_length(field, 2)) return keep(MessageKind::resource_spans, field, 1);
      const Change change = message(field, 2, [&](std::string_view c) { return scope_spans(c, r, s); });
      left += change == Change::removed ? 0 : 1;
      return change != Change::none;
    });
    ++r;
    return outcome(changed, left);
  }

  Change scope_spans(std::string_view contents, std::size_t r, std::size_t& s) {
    SpanPlace place{r, s++, 0, {}, false};
    std::size_t left = 0;
    const bool changed = each_field(contents, [&](const Field& field) {
      if (!is_length(field, 2)) return keep(MessageKind::scope_spans, field, 2);
      ++result_.received;
      const Change change = message(field, 3, [&](std::string_view c) { return span(c, place); });
      ++place.i;
      left += change == Change::removed ? 0 : 1;
      return change != Change::none;
    });
    return outcome(changed, left);
  }

  Change span(std::string_view contents, SpanPlace& place) {
    const SpanHeader header = read_span_header(contents);
    place.name = header.name;
    place.cut = false;
    std::size_t events = 0;
    std::size_t links = 0;
    const bool changed = limited(contents, {MessageKind::span, 3, 9, 10, limits_.per_span}, place, "", 0,
                                 [&](const Field& field) {
                                   if (is_length(field, 11)) return nested(field, place, "events", events++);
                                   if (is_length(field, 13)) return nested(field, place, "links", links++);
                                   return keep(MessageKind::span, field, 3);
                                 });
    if (place.cut) ++result_.trimmed.spans;
    const std::string problem = id_problem(header.trace_id, header.span_id, header.parent_span_id);
    if (problem.empty()) return changed ? Change::changed : Change::none;
    if (result_.invalid.rejected++ == 0) {
      result_.invalid.first_problem =
          describe_invalid_span(place.r, place.s, place.i, header.name, header.span_id, problem);
    }
    return Change::removed;
  }

  // An event or a link of a span.
  bool nested(const Field& field, SpanPlace& place, std::string_view part, std::size_t index) {
    const bool event = part == "events";
    const Limited owner = event ? Limited{MessageKind::event, 4, 3, 4, limits_.per_event}
                                : Limited{MessageKind::link, 4, 4, 5, limits_.per_link};
    const Change change = message(field, 4, [&](std::string_view c) {
      const bool cut = limited(c, owner, place, part, index,
                               [&](const Field& f) { return keep(owner.kind, f, owner.nesting); });
      return cut ? Change::changed : Change::none;
    });
    return change != Change::none;
  }

  // Walks a message whose attributes are limited: keeps the first `limit`, checks and leaves
  // out the rest, and adds them to the dropped count (the last one read, as protobuf keeps),
  // written once at the end. `other` handles the remaining fields.
  template <class Other>
  bool limited(std::string_view contents, const Limited& owner, SpanPlace& place, std::string_view part,
               std::size_t index, Other&& other) {
    const std::size_t count = count_fields(contents, owner.attributes);
    const std::size_t excess = count > owner.limit ? count - owner.limit : 0;
    if (excess > 0) note_cut(place, part, index, owner.limit, excess);  // before the events it holds
    std::size_t seen = 0;
    std::uint64_t last = 0;
    const bool changed = each_field(contents, [&](const Field& field) {
      if (is_length(field, owner.attributes)) {
        if (seen++ < owner.limit) return keep(owner.kind, field, owner.nesting);
        return drop(owner.kind, field, owner.nesting);
      }
      if (excess == 0 || field.number != owner.dropped || field.type != WireType::varint) return other(field);
      last = static_cast<std::uint32_t>(field.value);
      return true;
    });
    if (excess == 0 || !ok()) return changed;
    writer_.varint_field(owner.dropped, std::min<std::uint64_t>(last + excess, std::numeric_limits<std::uint32_t>::max()));
    return true;
  }

  void note_cut(SpanPlace& place, std::string_view part, std::size_t index, std::size_t limit, std::size_t excess) {
    place.cut = true;
    result_.trimmed.attributes += excess;
    if (!result_.trimmed.first.empty()) return;
    result_.trimmed.first = describe_cut(place.r, place.s, place.i, part, index, place.name, limit, excess);
  }

  const AttributeLimits& limits_;
  ChecksResult& result_;
};

// A KeyValue of the resource: one key and at most one value with one oneof field, so the route
// conditions read it as protobuf would without merging repeated fields.
bool single_valued(std::string_view key_value) {
  Reader reader(key_value);
  Field field;
  int keys = 0;
  int values = 0;
  while (reader.next(field)) {
    keys += is_length(field, 1) ? 1 : 0;
    if (!is_length(field, 2)) continue;
    if (++values > 1) return false;
    Reader any(field.payload);
    Field value;
    int cases = 0;
    while (any.next(value)) cases += is_value_case(value) ? 1 : 0;
    if (cases > 1) return false;
  }
  return keys <= 1;
}

WireError scan_resource(std::string_view resource) {
  Reader reader(resource);
  Field field;
  while (reader.next(field)) {
    if (is_length(field, 1) && !single_valued(field.payload)) return WireError::duplicate_field;
  }
  return WireError::none;
}

// A span's header, and whether the checks keep it (its ids are usable).
ResourceSpansScan::ScannedSpan scan_span(std::string_view contents) {
  const SpanHeader header = read_span_header(contents);
  return {contents.data(), header, id_problem(header.trace_id, header.span_id, header.parent_span_id).empty()};
}

// The name of a ScopeSpans' scope (empty without one), and its spans' headers into `scan`.
WireError scan_scope_spans(std::string_view contents, std::string_view& name, ResourceSpansScan& scan) {
  Reader reader(contents);
  Field field;
  int scopes = 0;
  while (reader.next(field)) {
    if (is_length(field, 1)) {
      if (++scopes > 1 || count_fields(field.payload, 1) > 1) return WireError::duplicate_field;
      Reader scope(field.payload);
      Field scope_field;
      while (scope.next(scope_field)) name = is_length(scope_field, 1) ? scope_field.payload : name;
    } else if (is_length(field, 2)) {
      scan.scanned.push_back(scan_span(field.payload));
      scan.valid += scan.scanned.back().usable_ids ? 1 : 0;
    }
  }
  return WireError::none;
}

}  // namespace

SpanHeader read_span_header(std::string_view contents) {
  SpanHeader header;
  Reader reader(contents);
  Field field;
  while (reader.next(field)) {
    if (field.type != WireType::length) continue;
    switch (field.number) {
      case 1: header.trace_id = field.payload; break;
      case 2: header.span_id = field.payload; break;
      case 4: header.parent_span_id = field.payload; break;
      case 5: header.name = field.payload; break;
      case 9: ++header.attributes; break;
      default: break;
    }
  }
  return header;  // malformed bytes are left to the walk, which refuses them
}

std::size_t count_fields(std::string_view contents, std::uint32_t number) {
  Reader reader(contents);
  Field field;
  std::size_t count = 0;
  while (reader.next(field)) count += is_length(field, number) ? 1 : 0;
  return count;
}

std::size_t count_request_spans(std::string_view request) {
  std::size_t spans = 0;
  Reader requests(request);
  Field resource_spans;
  while (requests.next(resource_spans)) {
    if (!is_length(resource_spans, 1)) continue;
    Reader scopes(resource_spans.payload);
    Field scope_spans;
    while (scopes.next(scope_spans)) spans += is_length(scope_spans, 2) ? count_fields(scope_spans.payload, 2) : 0;
  }
  return spans;
}

WireError ResourceSpansScan::read(std::string_view contents) {
  resource = {};
  scope_names.clear();
  valid = 0;
  scanned.clear();
  Reader reader(contents);
  Field field;
  int resources = 0;
  while (reader.next(field)) {
    if (is_length(field, 1)) {
      if (++resources > 1) return WireError::duplicate_field;
      resource = field.payload;
      if (const WireError error = scan_resource(resource); error != WireError::none) return error;
    } else if (is_length(field, 2)) {
      std::string_view name;
      const std::size_t before = valid;
      if (const WireError error = scan_scope_spans(field.payload, name, *this); error != WireError::none) {
        return error;
      }
      if (valid > before) scope_names.push_back(name);
    }
  }
  return WireError::none;  // malformed bytes are left to the walk, which refuses them
}

ResourceSpansScan::ScannedSpan ResourceSpansScan::span_at(std::size_t index, std::string_view span) const {
  if (index < scanned.size() && scanned[index].at == span.data()) return scanned[index];
  return scan_span(span);
}

ChecksResult SpanChecker::check(std::string_view request, const AttributeLimits& limits, std::string& out) {
  ChecksResult result;
  writer_.clear();
  ChecksPass pass(limits, writer_, result);
  const bool changed = pass.run(request);
  result.error = pass.error();
  if (result.error != WireError::none) {
    result.outcome = is_malformed(result.error) ? ChecksOutcome::malformed : ChecksOutcome::unsupported;
    return result;
  }
  result.valid = result.received - result.invalid.rejected;
  if (!changed) return result;
  result.outcome = ChecksOutcome::rewritten;
  writer_.write(out);
  return result;
}

}  // namespace proxy::otlp::wire
