#include "policy/wire_policy.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "otlp/protobuf.hpp"
#include "otlp/wire_pass.hpp"
#include "otlp/wire_schema.hpp"

namespace proxy::policy {
namespace {

using otlp::wire::Field;
using otlp::wire::is_length;
using otlp::wire::is_value_case;
using otlp::wire::MessageKind;
using otlp::wire::Reader;
using otlp::wire::WireError;
using otlp::wire::WireType;
using otlp::wire::Writer;

using enum otlp::wire::ValueCase;

// An AnyValue's oneof field, found before the value is rewritten.
struct ValueView {
  Field value;
  bool set = false;
  bool container() const { return set && (value.number == kArray || value.number == kKvlist); }
};

// A KeyValue's key and value.
struct KeyValueView {
  std::string_view key;
  std::string_view key_raw;  // the key field, set when the key and the value are all there is
  Field value;
  bool has_value = false;
  ValueView any;
};

// The length-delimited field whose one-byte tag is `tag` at `pos`, read as Reader reads it; on
// success `pos` moves past it. False, with nothing read, for anything else (another field, a
// length Reader would refuse): the caller then reads with Reader, which decides.
bool length_field_at(std::string_view bytes, std::size_t& pos, char tag, Field& field) {
  std::size_t at = pos;
  if (at >= bytes.size() || bytes[at] != tag) return false;
  ++at;
  std::uint64_t length = 0;
  for (unsigned shift = 0;; shift += 7) {
    if (at == bytes.size() || shift > 28) return false;
    const auto byte = static_cast<std::uint8_t>(bytes[at++]);
    length |= std::uint64_t{byte & 0x7Fu} << shift;
    if ((byte & 0x80) == 0) break;
  }
  if (length > 0x7FFFFFFF || length > bytes.size() - at) return false;
  field.number = static_cast<std::uint32_t>(static_cast<std::uint8_t>(tag) >> 3);
  field.type = WireType::length;
  field.value = 0;
  field.payload = bytes.substr(at, static_cast<std::size_t>(length));
  field.raw = bytes.substr(pos, at + static_cast<std::size_t>(length) - pos);
  pos = at + static_cast<std::size_t>(length);
  return true;
}

// The usual KeyValue, its key then its value and nothing else, read without the general field
// loop; false for any other layout.
bool key_then_value(std::string_view contents, KeyValueView& view) {
  std::size_t pos = 0;
  Field key;
  if (!length_field_at(contents, pos, 0x0A, key) || !length_field_at(contents, pos, 0x12, view.value) ||
      pos != contents.size()) {
    return false;
  }
  view.key = key.payload;
  view.key_raw = key.raw;
  view.has_value = true;
  return true;
}

// The usual AnyValue, a string alone; false for any other.
bool string_alone(std::string_view contents, ValueView& view) {
  std::size_t pos = 0;
  if (!length_field_at(contents, pos, 0x0A, view.value) || pos != contents.size()) return false;
  view.set = true;
  return true;
}

// A dropped_attributes_count field: the last one read (protobuf keeps the last) and what the
// policy dropped; every one read is left out and a single one written at the end.
struct DroppedCount {
  bool seen = false;
  bool in_place = false;  // the last one was kept where it was: no attribute could follow it
  std::uint32_t last = 0;
  std::uint64_t added = 0;
};

constexpr std::size_t kUnlimited = std::numeric_limits<std::size_t>::max();

// The role the attributes (the first `limit` fields `attributes_field` of `contents`: the checks
// cut the rest first) give flattened message `message`, read as SiblingRoles reads it on the
// message path: the first sibling of the lowest role_key_rank whose value is a string.
// Malformed bytes are left to the pass, which refuses them.
std::string_view sibling_role(std::string_view contents, std::uint32_t attributes_field, std::size_t limit,
                              std::string_view message) {
  for (const int rank : {1, 2}) {
    Reader attributes(contents);
    Field attribute;
    std::size_t seen = 0;
    while (attributes.next(attribute)) {
      if (!is_length(attribute, attributes_field)) continue;
      if (seen++ == limit) break;
      std::string_view key;
      std::string_view role;
      bool is_string = false;
      Reader key_value(attribute.payload);
      Field field;
      while (key_value.next(field)) {
        if (is_length(field, 1)) key = field.payload;
        if (!is_length(field, 2)) continue;
        Reader any(field.payload);
        Field value;
        while (any.next(value)) {
          if (!is_value_case(value)) continue;
          is_string = value.number == kString;
          role = value.payload;
        }
      }
      if (is_string && role_key_rank(message, key) == rank) return role;
    }
  }
  return {};
}

// One rewrite of one request: walks the messages apply() touches, checks and copies the rest.
class PolicyPass : public otlp::wire::Pass {
 public:
  PolicyPass(const CompiledPolicy& policy, Writer& writer, KeyDecisions& decisions, PolicyTally& tally,
             std::string& text, std::string& path)
      : Pass(writer), policy_(&policy), decisions_(decisions), tally_(tally), text_(text), path_(path) {}

  WireError run(std::string_view request) {
    each_field(request, [&](const Field& field) {
      if (is_length(field, 1)) return message(field, 1, [&](std::string_view c) { return resource_spans(c); });
      return keep(MessageKind::request, field, 0);
    });
    return error();
  }

  // The receiver's checks (as otlp::wire::SpanChecker) and, on each ResourceSpans they leave,
  // the policy of its route: each one's record is written on its own to its route's output.
  WireError run_checked(std::string_view request, const otlp::AttributeLimits& limits, WireRoutes& routes,
                        RoutedOutput& out, otlp::wire::ChecksResult& checks, otlp::wire::ResourceSpansScan& scan) {
    limits_ = limits;
    checks_ = &checks;
    scan_ = &scan;
    std::size_t r = 0;
    each_field(request, [&](const Field& field) {
      if (!is_length(field, 1)) return drop(MessageKind::request, field, 0);  // items hold resource spans only
      place_.r = r++;
      return routed_record(field, routes, out);
    });
    checks.valid = checks.received - checks.invalid.rejected;
    return error();
  }

 private:
  using Change = otlp::wire::Change;

  // A ResourceSpans of run_checked(): scanned for its route, walked, written to its route's
  // output unless the checks leave nothing of it.
  bool routed_record(const Field& field, WireRoutes& routes, RoutedOutput& out) {
    if (const WireError error = scan_->read(field.payload); error != WireError::none) return fail(error);
    span_in_record_ = 0;
    const bool kept = scan_->valid > 0;
    const std::size_t route = kept ? routes.route_of(*scan_) : 0;
    if (kept) use(routes.policy_of(route));
    writer_.clear();
    const Change change = message(field, 1, [&](std::string_view c) { return checked_resource_spans(c, kept); });
    if (!ok() || change == Change::removed) return false;
    writer_.write(out.payloads[route]);
    out.spans[route] += static_cast<std::uint32_t>(scan_->valid);
    return false;
  }

  void use(const CompiledPolicy& policy) {
    if (policy_ == &policy) return;
    policy_ = &policy;
    decisions_.clear();  // decided under another policy
  }

  static Change outcome(bool changed, std::size_t left) {
    if (left == 0) return Change::removed;  // MLflow answers 400 to a request without spans
    return changed ? Change::changed : Change::none;
  }

  // `kept`: some of its spans stay, so its route's policy applies to its resource.
  Change checked_resource_spans(std::string_view contents, bool kept) {
    int resources = 0;
    std::size_t left = 0;
    place_.s = 0;
    const bool resource_policy = kept && !policy_->config().resource_keys.empty();
    const bool changed = each_field(contents, [&](const Field& field) {
      if (is_length(field, 2)) {
        const Change change = message(field, 2, [&](std::string_view c) { return checked_scope_spans(c); });
        ++place_.s;
        left += change == Change::removed ? 0 : 1;
        return change != Change::none;
      }
      if (is_length(field, 1) && resource_policy) {
        if (++resources > 1) return fail(WireError::duplicate_field);
        return message(field, 2, [&](std::string_view c) { return resource(c); });
      }
      return keep(MessageKind::resource_spans, field, 1);
    });
    return outcome(changed, left);
  }

  Change checked_scope_spans(std::string_view contents) {
    std::size_t left = 0;
    place_.i = 0;
    const bool changed = each_field(contents, [&](const Field& field) {
      if (!is_length(field, 2)) return keep(MessageKind::scope_spans, field, 2);
      ++checks_->received;
      const Change change = checked_span(field);
      ++place_.i;
      left += change == Change::removed ? 0 : 1;
      return change != Change::none;
    });
    return outcome(changed, left);
  }

  // A span with usable ids gets the policy; one without is removed, its cuts still counted.
  Change checked_span(const Field& field) {
    const otlp::wire::ResourceSpansScan::ScannedSpan scanned = scan_->span_at(span_in_record_++, field.payload);
    const otlp::wire::SpanHeader& header = scanned.header;
    place_.name = header.name;
    span_attributes_ = header.attributes;
    place_.cut = false;
    const std::string problem =
        scanned.usable_ids ? std::string() : otlp::id_problem(header.trace_id, header.span_id, header.parent_span_id);
    Change change = Change::removed;
    if (problem.empty()) {
      change = message(field, 3, [&](std::string_view c) { return span(c) ? Change::changed : Change::none; });
    } else {
      removed_span(field.payload);
    }
    if (place_.cut) ++checks_->trimmed.spans;
    if (!problem.empty() && checks_->invalid.rejected++ == 0) {
      checks_->invalid.first_problem = otlp::describe_invalid_span(place_.r, place_.s, place_.i, header.name,
                                                                   header.span_id, problem);
    }
    return change;
  }

  // A span the checks remove: its cuts are counted (the message path trims before it removes)
  // and its bytes checked as protobuf parses them.
  void removed_span(std::string_view contents) {
    cut(contents, 9, limits_.per_span, "", 0);
    std::size_t events = 0;
    std::size_t links = 0;
    Reader reader(contents);
    Field field;
    while (reader.next(field)) {
      if (is_length(field, 11)) cut(field.payload, 3, limits_.per_event, "events", events++);
      if (is_length(field, 13)) cut(field.payload, 4, limits_.per_link, "links", links++);
    }
    if (const WireError error = otlp::wire::check_message(MessageKind::span, contents, 3); error != WireError::none) {
      fail(error);
    }
  }

  // How many attributes (fields `attributes` of `contents`) the checks cut past `limit`, noted
  // as trim_attributes notes them (`part` and `index` name an event or a link).
  std::size_t cut(std::string_view contents, std::uint32_t attributes, std::size_t limit, std::string_view part,
                  std::size_t index) {
    if (checks_ == nullptr) return 0;
    return cut_past(otlp::wire::count_fields(contents, attributes), limit, part, index);
  }

  // cut() of a message holding `count` attributes.
  std::size_t cut_past(std::size_t count, std::size_t limit, std::string_view part, std::size_t index) {
    if (checks_ == nullptr || count <= limit) return 0;
    const std::size_t excess = count - limit;
    place_.cut = true;
    checks_->trimmed.attributes += excess;
    if (checks_->trimmed.first.empty()) {
      checks_->trimmed.first = otlp::describe_cut(place_.r, place_.s, place_.i, part, index, place_.name, limit, excess);
    }
    return excess;
  }

  // Keeps a field scan_value or scan_key_value already checked. Always false (unchanged).
  bool copy_checked(const Field& field) {
    writer_.copy(field.raw);
    return false;
  }

  bool resource_spans(std::string_view contents) {
    int resources = 0;
    const bool resource_policy = !policy_->config().resource_keys.empty();
    return each_field(contents, [&](const Field& field) {
      if (is_length(field, 2)) return message(field, 2, [&](std::string_view c) { return scope_spans(c); });
      if (is_length(field, 1) && resource_policy) {
        if (++resources > 1) return fail(WireError::duplicate_field);
        return message(field, 2, [&](std::string_view c) { return resource(c); });
      }
      return keep(MessageKind::resource_spans, field, 1);
    });
  }

  bool scope_spans(std::string_view contents) {
    return each_field(contents, [&](const Field& field) {
      if (is_length(field, 2)) return message(field, 3, [&](std::string_view c) { return span(c); });
      return keep(MessageKind::scope_spans, field, 2);
    });
  }

  bool resource(std::string_view contents) {
    const auto decide = [this](std::string_view key) { return policy_->decide_resource(key); };
    DroppedCount dropped;
    const bool changed = each_field(contents, [&](const Field& field) {
      if (is_length(field, 1)) return attribute(field, 3, decide, dropped);
      if (field.number == 2 && field.type == WireType::varint) return see(dropped, field, contents, 1);
      return keep(MessageKind::resource, field, 2);
    });
    return finish(dropped, 2) || changed;
  }

  // The span attributes past the checks' limit are cut (left out, counted in dropped) before
  // the policy sees the rest; so are an event's and a link's.
  bool span(std::string_view contents) {
    ++tally_.spans;
    const std::size_t limit = limits_.per_span;
    const auto role_of = [contents, limit](std::string_view message) {
      return sibling_role(contents, 9, limit, message);
    };
    const auto decide = [this, &role_of](std::string_view key) {
      return policy_->decide_among(decisions_.get(*policy_, key), key, role_of);
    };
    DroppedCount dropped;
    dropped.added = cut_past(span_attributes_, limit, "", 0);  // counted by the checks' scan
    std::size_t seen = 0;
    std::size_t events = 0;
    std::size_t links = 0;
    int statuses = 0;
    const bool changed = each_field(contents, [&](const Field& field) {
      if (is_length(field, 9)) return seen++ < limit ? attribute(field, 4, decide, dropped) : drop(MessageKind::span, field, 3);
      if (is_length(field, 11)) return message(field, 4, [&](std::string_view c) { return event(c, events++); });
      if (is_length(field, 13)) return message(field, 4, [&](std::string_view c) { return link(c, links++); });
      if (is_length(field, 15)) {
        if (++statuses > 1) return fail(WireError::duplicate_field);
        return message(field, 4, [&](std::string_view c) { return status(c); });
      }
      if (field.number == 10 && field.type == WireType::varint) return see(dropped, field, contents, 9);
      return keep(MessageKind::span, field, 3);
    });
    return finish(dropped, 10) || changed;
  }

  bool event(std::string_view contents, std::size_t index) {
    std::string_view name;
    int names = 0;
    each_field(contents, [&](const Field& field) {
      if (is_length(field, 2)) {
        name = field.payload;
        if (++names > 1) fail(WireError::duplicate_field);
      }
      return false;
    });
    const auto decide = [this, name](std::string_view key) {
      return policy_->decide_event(decisions_.get(*policy_, key), name, key);
    };
    DroppedCount dropped;
    dropped.added = cut(contents, 3, limits_.per_event, "events", index);
    std::size_t seen = 0;
    const bool changed = each_field(contents, [&](const Field& field) {
      if (is_length(field, 3)) {
        return seen++ < limits_.per_event ? attribute(field, 5, decide, dropped) : drop(MessageKind::event, field, 4);
      }
      if (field.number == 4 && field.type == WireType::varint) return see(dropped, field, contents, 3);
      return keep(MessageKind::event, field, 4);
    });
    return finish(dropped, 4) || changed;
  }

  bool link(std::string_view contents, std::size_t index) {
    const std::size_t limit = limits_.per_link;
    const auto role_of = [contents, limit](std::string_view message) {
      return sibling_role(contents, 4, limit, message);
    };
    const auto decide = [this, &role_of](std::string_view key) {
      return policy_->decide_among(decisions_.get(*policy_, key), key, role_of);
    };
    DroppedCount dropped;
    dropped.added = cut(contents, 4, limit, "links", index);
    std::size_t seen = 0;
    const bool changed = each_field(contents, [&](const Field& field) {
      if (is_length(field, 4)) return seen++ < limit ? attribute(field, 5, decide, dropped) : drop(MessageKind::link, field, 4);
      if (field.number == 5 && field.type == WireType::varint) return see(dropped, field, contents, 4);
      return keep(MessageKind::link, field, 4);
    });
    return finish(dropped, 5) || changed;
  }

  bool status(std::string_view contents) {
    int messages = 0;
    const bool changed = each_field(contents, [&](const Field& field) {
      if (!is_length(field, 2)) return keep(MessageKind::status, field, 4);
      if (++messages > 1) return fail(WireError::duplicate_field);
      if (!otlp::wire::is_utf8(field.payload)) return fail(WireError::not_utf8);
      return status_message(field);
    });
    return changed;
  }

  bool status_message(const Field& field) {
    const Decision decision = policy_->errors();
    if (field.payload.empty()) return keep(MessageKind::status, field, 4);
    if (decision.mode == PolicyMode::drop) {
      count_change(tally_, decision);
      return true;
    }
    if (!rewrite_status_message(*policy_, decision, field.payload, text_, tally_)) {
      writer_.copy(field.raw);
      return false;
    }
    writer_.bytes_field(2, text_);
    count_change(tally_, decision);
    return true;
  }

  // A dropped_attributes_count field of a message whose attributes are field `attributes` of
  // `contents`: kept in place when nothing was dropped and no attribute follows (the usual
  // order), else left out for finish().
  bool see(DroppedCount& dropped, const Field& field, std::string_view contents, std::uint32_t attributes) {
    dropped.seen = true;
    dropped.last = static_cast<std::uint32_t>(field.value);
    const auto end = static_cast<std::size_t>(field.raw.data() + field.raw.size() - contents.data());
    dropped.in_place = dropped.added == 0 && !has_field(contents.substr(end), attributes);
    if (!dropped.in_place) return true;
    writer_.copy(field.raw);
    return false;
  }

  static bool has_field(std::string_view contents, std::uint32_t number) {
    Reader reader(contents);
    Field field;
    while (reader.next(field)) {
      if (is_length(field, number)) return true;
    }
    return reader.error() != WireError::none;  // decided later, when the walk reaches it
  }

  // Writes the one dropped_attributes_count the message keeps; true when one is written.
  bool finish(const DroppedCount& dropped, std::uint32_t number) {
    if (!ok() || (dropped.added == 0 && (!dropped.seen || dropped.in_place))) return false;
    const std::uint64_t total = std::min<std::uint64_t>(std::uint64_t{dropped.last} + dropped.added,
                                                        std::numeric_limits<std::uint32_t>::max());
    writer_.varint_field(number, total);
    return true;
  }

  // Finds an AnyValue's (nested `nesting` deep) oneof field and checks all but a container's
  // contents, so a scalar value scanned needs no second look before it is copied.
  bool scan_value(std::string_view contents, unsigned nesting, ValueView& view) {
    if (string_alone(contents, view)) return otlp::wire::is_utf8(view.value.payload) || fail(WireError::not_utf8);
    Reader reader(contents);
    Field field;
    while (reader.next(field)) {
      if (!is_value_case(field)) {
        if (const WireError error = otlp::wire::check_field(MessageKind::any_value, field, nesting);
            error != WireError::none) {
          return fail(error);
        }
        continue;
      }
      if (view.set) return fail(WireError::duplicate_field);
      if (field.number == kString && !otlp::wire::is_utf8(field.payload)) return fail(WireError::not_utf8);
      view.value = field;
      view.set = true;
    }
    return reader.error() == WireError::none || fail(reader.error());
  }

  // A KeyValue's (nested `nesting` deep) key and value, checked as scan_value checks.
  bool scan_key_value(std::string_view contents, unsigned nesting, KeyValueView& view) {
    if (nesting + 1 > otlp::wire::kMaxNesting) return fail(WireError::too_deep);
    if (key_then_value(contents, view)) return checked_key_value(view, nesting);
    view = {};
    Reader reader(contents);
    Field field;
    bool has_key = false;
    while (reader.next(field)) {
      if (is_length(field, 1)) {
        if (has_key) return fail(WireError::duplicate_field);
        view.key = field.payload;
        has_key = true;
      } else if (is_length(field, 2)) {
        if (view.has_value) return fail(WireError::duplicate_field);
        view.value = field;
        view.has_value = true;
      } else if (const WireError error = otlp::wire::check_field(MessageKind::key_value, field, nesting);
                 error != WireError::none) {
        return fail(error);
      }
    }
    if (reader.error() != WireError::none) return fail(reader.error());
    return checked_key_value(view, nesting);
  }

  bool checked_key_value(KeyValueView& view, unsigned nesting) {
    if (!otlp::wire::is_utf8(view.key)) return fail(WireError::not_utf8);
    return !view.has_value || scan_value(view.value.payload, nesting + 1, view.any);
  }

  // Copies a scanned KeyValue (nested `nesting` deep) as it is; only a container value is
  // still to be checked.
  bool keep_scanned(const Field& field, const KeyValueView& view, unsigned nesting) {
    if (view.any.container()) {
      const MessageKind kind = view.any.value.number == kArray ? MessageKind::array_value : MessageKind::kv_list;
      if (const WireError error = otlp::wire::check_message(kind, view.any.value.payload, nesting + 2);
          error != WireError::none) {
        return fail(error);
      }
    }
    writer_.copy(field.raw);
    return false;
  }

  // A KeyValue (nested `nesting` deep) checked and left out; true: the output changed.
  bool skip_key_value(const Field& field, unsigned nesting) {
    if (const WireError error = otlp::wire::check_message(MessageKind::key_value, field.payload, nesting);
        error != WireError::none) {
      return fail(error);
    }
    return true;
  }

  // A KeyValue's fields with its value planned by `value` (an AnyValue's contents). A missing
  // value is written as an empty one: apply() reaches it through mutable_value(), which sets it.
  // Every caller scanned the KeyValue first (scan_key_value), so its other fields are copied
  // without a second check.
  template <class Value>
  bool key_value_fields(std::string_view contents, unsigned nesting, Value&& value) {
    bool has_value = false;
    const bool changed = each_field(contents, [&](const Field& field) {
      if (!is_length(field, 2)) return copy_checked(field);
      has_value = true;
      return message(field, nesting + 1, value);
    });
    if (has_value || !ok()) return changed;
    const Writer::Mark mark = writer_.mark();
    writer_.open(2);
    value(std::string_view{});
    writer_.close(mark);
    return true;
  }

  // An attribute of a span, event, link or resource (process_attributes); a drop is counted in
  // `dropped`. True when the output changed.
  template <class Decide>
  bool attribute(const Field& field, unsigned nesting, const Decide& decide, DroppedCount& dropped) {
    KeyValueView view;
    if (!scan_key_value(field.payload, nesting, view)) return false;
    const Decision decision = decide(view.key);
    if (decision.mode == PolicyMode::drop) {
      count_change(tally_, decision);
      ++dropped.added;
      return skip_key_value(field, nesting);
    }
    if (decision.mode == PolicyMode::verbose) {
      if (!view.any.container()) return keep_scanned(field, view, nesting);
      path_.assign(view.key);
      return message(field, nesting, [&](std::string_view c) {
        return key_value_fields(c, nesting, [&](std::string_view v) { return walk_verbose(v, 1, nesting + 1, decide); });
      });
    }
    return decided_entry(field, view, decision, 1, nesting);
  }

  // A KeyValue (`view`, from scan_key_value) whose value gets `decision` at `depth` (counted when
  // the value changed). When the key and the value are all it holds, they are not read again.
  bool decided_entry(const Field& field, const KeyValueView& view, const Decision& decision, unsigned depth,
                     unsigned nesting) {
    const std::uint64_t before = rewritten_;
    const auto value = [&](std::string_view v) { return any_value(v, decision, depth, nesting + 1, &view.any); };
    const bool changed = message(field, nesting, [&](std::string_view c) {
      if (view.key_raw.empty()) return key_value_fields(c, nesting, value);
      writer_.copy(view.key_raw);
      return message(view.value, nesting + 1, value);
    });
    if (rewritten_ != before && ok()) count_change(tally_, decision);
    return changed;
  }

  // apply_value over an AnyValue's contents (nested `nesting` deep); true when it changed.
  // `scanned`: scan_value's view of these contents, already checked.
  bool any_value(std::string_view contents, const Decision& decision, unsigned depth, unsigned nesting,
                 const ValueView* scanned = nullptr) {
    ValueView view;
    if (scanned == nullptr && !scan_value(contents, nesting, view)) return false;
    if (depth > policy_->config().max_depth) return too_deep(contents, nesting);
    if (scanned != nullptr && scanned->set && scanned->value.raw.size() == contents.size()) {
      return value_case(scanned->value, decision, depth, nesting);  // its one field
    }
    return each_field(contents, [&](const Field& field) {
      if (!is_value_case(field)) return copy_checked(field);
      return value_case(field, decision, depth, nesting);
    });
  }

  // A oneof field scan_value checked (a string's UTF-8 included).
  bool value_case(const Field& field, const Decision& decision, unsigned depth, unsigned nesting) {
    switch (field.number) {
      case kString: return text_value(field, decision, false, depth);
      case kBytes: return text_value(field, decision, true, depth);
      case kInt:
      case kBool: return zero_scalar(field, decision, field.value != 0);
      case kDouble: {
        double number = 0;
        std::memcpy(&number, &field.value, sizeof number);
        return zero_scalar(field, decision, number != 0.0);
      }
      case kArray: return message(field, nesting + 1, [&](std::string_view c) { return array(c, decision, depth, nesting + 1); });
      default: return message(field, nesting + 1, [&](std::string_view c) { return kvlist(c, decision, depth, nesting + 1); });
    }
  }

  bool text_value(const Field& field, const Decision& decision, bool binary, unsigned depth) {
    if (!rewrite_text(*policy_, decision, field.payload, binary, depth, text_, tally_)) {
      writer_.copy(field.raw);
      return false;
    }
    writer_.bytes_field(field.number, text_);
    ++rewritten_;
    return true;
  }

  bool zero_scalar(const Field& field, const Decision& decision, bool nonzero) {
    if (!zeroes_scalars(decision.mode) || !nonzero) {
      writer_.copy(field.raw);
      return false;
    }
    if (field.number == kDouble) {
      writer_.fixed64_field(kDouble, 0);
    } else {
      writer_.varint_field(field.number, 0);
    }
    ++rewritten_;
    return true;
  }

  bool array(std::string_view contents, const Decision& decision, unsigned depth, unsigned nesting) {
    return each_field(contents, [&](const Field& field) {
      if (!is_length(field, 1)) return keep(MessageKind::array_value, field, nesting);
      return message(field, nesting + 1,
                     [&](std::string_view c) { return any_value(c, decision, depth + 1, nesting + 1); });
    });
  }

  bool kvlist(std::string_view contents, const Decision& decision, unsigned depth, unsigned nesting) {
    return each_field(contents, [&](const Field& field) {
      if (!is_length(field, 1)) return keep(MessageKind::kv_list, field, nesting);
      KeyValueView view;
      if (!scan_key_value(field.payload, nesting + 1, view)) return false;
      if (keeps_structural_entry(*policy_, view.key, view.any.container())) return keep_scanned(field, view, nesting + 1);
      return message(field, nesting + 1, [&](std::string_view c) {
        return key_value_fields(c, nesting + 1, [&](std::string_view v) {
          return any_value(v, decision, depth + 1, nesting + 2, &view.any);
        });
      });
    });
  }

  // reject_too_deep: the value becomes the marker string, whatever it held (still checked).
  bool too_deep(std::string_view contents, unsigned nesting) {
    each_field(contents, [&](const Field& field) {
      if (!is_value_case(field)) return keep(MessageKind::any_value, field, nesting);
      if (const WireError error = otlp::wire::check_field(MessageKind::any_value, field, nesting);
          error != WireError::none) {
        return fail(error);
      }
      return true;
    });
    too_deep_text(*policy_, text_, tally_);
    writer_.bytes_field(kString, text_);
    ++rewritten_;
    return ok();
  }

  // walk_verbose over an AnyValue's contents: nested key-value lists decided by "parent.child".
  template <class Decide>
  bool walk_verbose(std::string_view contents, unsigned depth, unsigned nesting, const Decide& decide) {
    ValueView view;
    if (!scan_value(contents, nesting, view)) return false;
    if (depth > policy_->config().max_depth) return too_deep(contents, nesting);
    return each_field(contents, [&](const Field& field) {
      if (!is_value_case(field) || !view.container()) return copy_checked(field);  // scan_value checked it
      return message(field, nesting + 1, [&](std::string_view c) {
        return each_field(c, [&](const Field& item) {
          if (!is_length(item, 1)) return keep(field.number == kArray ? MessageKind::array_value : MessageKind::kv_list, item, nesting + 1);
          if (field.number == kArray) {
            return message(item, nesting + 2, [&](std::string_view v) { return walk_verbose(v, depth + 1, nesting + 2, decide); });
          }
          return verbose_entry(item, depth, nesting + 2, decide);
        });
      });
    });
  }

  template <class Decide>
  bool verbose_entry(const Field& field, unsigned depth, unsigned nesting, const Decide& decide) {
    KeyValueView view;
    if (!scan_key_value(field.payload, nesting, view)) return false;
    const std::size_t parent = path_.size();
    path_ += '.';
    path_ += view.key;
    const Decision decision = decide(std::string_view(path_));
    bool changed = false;
    if (decision.mode == PolicyMode::drop) {
      count_change(tally_, decision);
      changed = skip_key_value(field, nesting);
    } else if (decision.mode == PolicyMode::verbose) {
      changed = message(field, nesting, [&](std::string_view c) {
        return key_value_fields(c, nesting, [&](std::string_view v) { return walk_verbose(v, depth + 1, nesting + 1, decide); });
      });
    } else {
      changed = decided_entry(field, view, decision, depth + 1, nesting);
    }
    path_.resize(parent);
    return changed;
  }

  const CompiledPolicy* policy_;
  KeyDecisions& decisions_;
  PolicyTally& tally_;
  std::string& text_;
  std::string& path_;
  // run_checked() only: the checks' limits (none for a policy alone), their counts, where the
  // walk is for their texts, and the ResourceSpans being walked read ahead for its route.
  otlp::AttributeLimits limits_{kUnlimited, kUnlimited, kUnlimited};
  otlp::wire::ChecksResult* checks_ = nullptr;
  otlp::wire::SpanPlace place_;
  otlp::wire::ResourceSpansScan* scan_ = nullptr;  // the WireRewriter's, so it keeps its capacity
  std::size_t span_in_record_ = 0;                 // the next span's index in scan_->scanned
  std::size_t span_attributes_ = 0;                // the walked span's, as the scan counted them
  // Values the policy rewrote (apply_value's "changed"); the bytes may also change without one,
  // when an empty value is written for a missing one.
  std::uint64_t rewritten_ = 0;
};

std::uint64_t load_word(const char* bytes) {
  std::uint64_t word = 0;
  std::memcpy(&word, bytes, sizeof word);
  return word;
}

std::uint32_t load_half(const char* bytes) {
  std::uint32_t half = 0;
  std::memcpy(&half, bytes, sizeof half);
  return half;
}

// A key shorter than a word, in one: two overlapping halves, or its first, middle and last byte.
std::uint64_t short_key_word(std::string_view key) {
  const char* bytes = key.data();
  const std::size_t size = key.size();
  if (size >= 4) return load_half(bytes) | std::uint64_t{load_half(bytes + size - 4)} << 32;
  if (size == 0) return 0;
  return static_cast<unsigned char>(bytes[0]) | static_cast<unsigned char>(bytes[size / 2]) << 8 |
         static_cast<unsigned char>(bytes[size - 1]) << 16;
}

// A word at a time, the last word overlapping the one before: fixed-size loads, no byte loop
// (a request looks each key up once per span).
std::uint64_t key_hash(std::string_view key) {
  constexpr std::uint64_t kMultiplier = 0x9E3779B97F4A7C15ULL;
  const auto mix = [](std::uint64_t hash, std::uint64_t word) {
    hash = (hash ^ word) * kMultiplier;
    return hash ^ (hash >> 32);
  };
  const std::uint64_t seed = key.size() * kMultiplier;
  if (key.size() < 8) return mix(seed, short_key_word(key));
  std::uint64_t hash = seed;
  for (std::size_t i = 0; i + 8 < key.size(); i += 8) hash = mix(hash, load_word(key.data() + i));
  return mix(hash, load_word(key.data() + key.size() - 8));
}

}  // namespace

void KeyDecisions::clear() {
  used_ = 0;
  if (++generation_ != 0) return;
  for (Slot& slot : slots_) slot.generation = 0;  // wrapped: no slot may look current
  generation_ = 1;
}

Decision KeyDecisions::get(const CompiledPolicy& policy, std::string_view key) {
  // At most half the slots are used, so a probe always reaches a free one.
  for (std::size_t i = key_hash(key);; ++i) {
    Slot& slot = slots_[i & (kSlots - 1)];
    if (slot.generation == generation_) {
      if (slot.key == key) return slot.decision;
      continue;
    }
    const Decision decision = policy.decide(key);
    if (used_ == kSlots / 2) return decision;
    ++used_;
    slot.generation = generation_;
    slot.key.assign(key);  // keeps the slot's capacity from earlier requests
    slot.decision = decision;
    return decision;
  }
}

// A route's buffer keeps its capacity for the next request (one that went into a queue item
// left none), up to this size: an idle thread holds no more.
constexpr std::size_t kKeptPayloadBytes = std::size_t{4} << 20;

void RoutedOutput::reset(std::size_t routes) {
  payloads.resize(routes);
  for (std::string& payload : payloads) {
    payload.clear();
    if (payload.capacity() > kKeptPayloadBytes) std::string().swap(payload);
  }
  spans.assign(routes, 0);
}

WireResult WireRewriter::rewrite_routed(std::string_view request, const otlp::AttributeLimits& limits,
                                        WireRoutes& routes, RoutedOutput& out, otlp::wire::ChecksResult& checks,
                                        PolicyTally& tally) {
  writer_.clear();
  decisions_.clear();
  PolicyPass pass(routes.policy_of(0), writer_, decisions_, tally, text_, path_);
  const WireError error = pass.run_checked(request, limits, routes, out, checks, scan_);
  if (error != WireError::none) {
    return {otlp::wire::is_malformed(error) ? WireOutcome::malformed : WireOutcome::unsupported, error};
  }
  return {};
}

WireResult WireRewriter::rewrite(const CompiledPolicy& policy, std::string_view request, std::string& out,
                                 PolicyTally& tally) {
  writer_.clear();
  decisions_.clear();
  PolicyPass pass(policy, writer_, decisions_, tally, text_, path_);
  const WireError error = pass.run(request);
  if (error != WireError::none) {
    return {otlp::wire::is_malformed(error) ? WireOutcome::malformed : WireOutcome::unsupported, error};
  }
  writer_.write(out);
  return {};
}

}  // namespace proxy::policy
