#include "normalize/wire_normalize.hpp"

#include <cstring>
#include <utility>

#include "normalize/json_value.hpp"
#include "otlp/wire_schema.hpp"
#include "otlp/wire_pass.hpp"

namespace proxy::normalize {
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

// AnyValue's oneof cases as the rules' value types.
constexpr ValueType kCaseValueType[] = {ValueType::unset,    ValueType::string, ValueType::boolean,
                                        ValueType::integer,  ValueType::floating, ValueType::array,
                                        ValueType::kvlist,   ValueType::bytes};

// The view of a oneof field scan_value found.
void set_case(const Field& field, ValueView& view) {
  view.type = kCaseValueType[field.number];
  switch (field.number) {
    case kString: case kBytes: view.text = field.payload; break;
    case kBool: view.boolean = field.value != 0; break;
    case kInt: view.integer = static_cast<std::int64_t>(field.value); break;
    case kDouble: std::memcpy(&view.floating, &field.value, sizeof view.floating); break;
    default: view.nested = field.payload; break;
  }
}

// Nesting of what a span holds: request 0, resource spans 1, scope spans 2, span 3.
constexpr unsigned kSpanNesting = 3;

// One normalization of one request: fills the rules' view of each span, then copies the bytes it
// keeps and re-emits what the rules change.
class Pass : public otlp::wire::Pass {
 public:
  using Scratch = WireNormalizer::Scratch;

  Pass(const Normalizer& normalizer, Scratch& scratch, NormalizeTally& tally, bool previews)
      : otlp::wire::Pass(scratch.writer),
        normalizer_(normalizer),
        scratch_(scratch),
        tally_(tally),
        previews_(previews && normalizer.config().previews) {}

  WireError run_request(std::string_view request) {
    each_field(request, [&](const Field& field) {
      if (is_length(field, 1) && normalizer_.enabled()) {
        return message(field, 1, [&](std::string_view c) { return resource_spans(c); });
      }
      return keep(MessageKind::request, field, 0);
    });
    return error();
  }

  WireError run_resource_spans(std::string_view contents) {
    if (normalizer_.enabled()) {
      resource_spans(contents);
    } else if (const WireError problem = otlp::wire::check_message(MessageKind::resource_spans, contents, 1);
               problem != WireError::none) {
      fail(problem);
    } else {
      writer_.copy(contents);
    }
    return error();
  }

 private:
  bool resource_spans(std::string_view contents) {
    read_resource(contents);
    return each_field(contents, [&](const Field& field) {
      if (is_length(field, 2)) return message(field, 2, [&](std::string_view c) { return scope_spans(c); });
      return keep(MessageKind::resource_spans, field, 1);
    });
  }

  // The resource's attributes; a resource sent twice is merged by protobuf, its attributes
  // concatenated, and so here. The resource's bytes are checked when they are kept.
  void read_resource(std::string_view contents) {
    scratch_.resource.clear();
    each_field(contents, [&](const Field& field) {
      if (!is_length(field, 1)) return false;
      return each_field(field.payload, [&](const Field& attribute) {
        if (!is_length(attribute, 1)) return false;
        AttributeView view;
        if (scan_key_value(attribute.payload, 3, view)) scratch_.resource.push_back(view);
        return false;
      });
    });
  }

  bool scope_spans(std::string_view contents) {
    read_scope(contents);
    return each_field(contents, [&](const Field& field) {
      if (is_length(field, 2)) return message(field, 3, [&](std::string_view c) { return span(c); });
      return keep(MessageKind::scope_spans, field, 2);
    });
  }

  // The scope's name and version (the last of each, as protobuf keeps); a scope sent twice is
  // left to the message path.
  void read_scope(std::string_view contents) {
    scope_name_ = {};
    scope_version_ = {};
    int scopes = 0;
    each_field(contents, [&](const Field& field) {
      if (!is_length(field, 1)) return false;
      if (++scopes > 1) return fail(WireError::duplicate_field);
      return each_field(field.payload, [&](const Field& part) {
        if (is_length(part, 1)) scope_name_ = part.payload;
        if (is_length(part, 2)) scope_version_ = part.payload;
        return false;
      });
    });
  }

  bool span(std::string_view contents) {
    SpanView view;
    if (!read_span(contents, view)) return false;
    scratch_.roots += view.root ? 1 : 0;
    decide_changes(normalizer_, view, scratch_.changes, tally_);
    const SpanChanges& changes = scratch_.changes;
    if (previews_) offer_preview(view, changes);
    write_fields(contents, changes.replacements);
    for (const Addition& addition : changes.additions) add_attribute(addition);
    return !changes.empty();
  }

  // The span's fields, `replacements` made. Checked input without any is one kept range: every
  // field would be copied as it is, and a second walk over them costs more than the copy.
  void write_fields(std::string_view contents, const std::vector<Replacement>& replacements) {
    if (checked_input() && replacements.empty()) {
      writer_.copy(contents);
      return;
    }
    const Replacement* replacement = replacements.data();
    const Replacement* const last = replacement + replacements.size();
    std::size_t index = 0;
    each_field(contents, [&](const Field& field) {
      if (!is_length(field, 9)) return keep(MessageKind::span, field, kSpanNesting);
      const std::size_t attribute = index++;
      if (replacement != last && replacement->attribute == attribute) {
        return replace_count(field, (replacement++)->integer);
      }
      return keep_scanned(field, scratch_.attributes[attribute].value);
    });
  }

  void offer_preview(const SpanView& view, const SpanChanges& changes) {
    if (!preview_offer(view, changes, scratch_.offers.add())) scratch_.offers.drop_last();
  }

  // The span's fields the rules read (the last of each singular one, as protobuf keeps).
  bool read_span(std::string_view contents, SpanView& view) {
    scratch_.attributes.clear();
    scratch_.link_payloads.clear();
    bool has_parent = false;
    each_field(contents, [&](const Field& field) {
      if (is_length(field, 9)) return add_span_attribute(field);
      if (is_length(field, 13)) scratch_.link_payloads.push_back(field.payload);
      if (is_length(field, 1)) view.trace_id = field.payload;
      if (is_length(field, 4)) has_parent = !field.payload.empty();
      if (is_length(field, 5)) view.name = field.payload;
      if (field.number == 6 && field.type == WireType::varint) view.kind = static_cast<std::int32_t>(field.value);
      if (field.number == 7 && field.type == WireType::fixed64) view.start_time = field.value;
      if (field.number == 8 && field.type == WireType::fixed64) view.end_time = field.value;
      return false;
    });
    view.root = !has_parent;
    view.attributes = scratch_.attributes;
    view.resource = scratch_.resource;
    view.scope_name = scope_name_;
    view.scope_version = scope_version_;
    view.link_count = static_cast<int>(scratch_.link_payloads.size());
    if (normalizer_.config().links && view.link_count > 0) view.links = read_links();
    return ok();
  }

  bool add_span_attribute(const Field& field) {
    AttributeView view;
    if (!scan_key_value(field.payload, kSpanNesting + 1, view)) return false;
    scratch_.attributes.push_back(view);
    return false;
  }

  // The links as messages, for otel.links' JSON (written from them as on the message path).
  const Links* read_links() {
    scratch_.links.Clear();
    for (std::string_view payload : scratch_.link_payloads) {
      // protobuf reads a link alone more leniently than in its request (nesting starts again),
      // so a refusal here is something the walk does not judge: the message path decides.
      if (!scratch_.links.Add()->ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
        fail(WireError::too_deep);
        return nullptr;
      }
    }
    return &scratch_.links;
  }

  // An AnyValue's oneof field, checking everything but a container's contents.
  bool scan_value(std::string_view contents, unsigned nesting, ValueView& view) {
    view.encoded = contents;
    Reader reader(contents);
    Field field;
    bool set = false;
    while (reader.next(field)) {
      if (!is_value_case(field)) {
        if (const WireError error = otlp::wire::check_field(MessageKind::any_value, field, nesting);
            error != WireError::none) {
          return fail(error);
        }
        continue;
      }
      if (set) return fail(WireError::duplicate_field);  // protobuf would merge or replace
      if (field.number == kString && !checked_input() && !otlp::wire::is_utf8(field.payload)) {
        return fail(WireError::not_utf8);
      }
      set_case(field, view);
      set = true;
    }
    return reader.error() == WireError::none || fail(reader.error());
  }

  // A KeyValue's key and value, checked as scan_value checks; a missing value reads as unset.
  bool scan_key_value(std::string_view contents, unsigned nesting, AttributeView& view) {
    if (nesting + 1 > otlp::wire::kMaxNesting) return fail(WireError::too_deep);
    Reader reader(contents);
    Field field;
    bool has_key = false;
    bool has_value = false;
    std::string_view value;
    while (reader.next(field)) {
      if (is_length(field, 1)) {
        if (std::exchange(has_key, true)) return fail(WireError::duplicate_field);
        view.key = field.payload;
      } else if (is_length(field, 2)) {
        if (std::exchange(has_value, true)) return fail(WireError::duplicate_field);
        value = field.payload;
      } else if (const WireError error =
                     checked_input() ? WireError::none : otlp::wire::check_field(MessageKind::key_value, field, nesting);
                 error != WireError::none) {
        return fail(error);
      }
    }
    if (reader.error() != WireError::none) return fail(reader.error());
    if (!checked_input() && !otlp::wire::is_utf8(view.key)) return fail(WireError::not_utf8);
    return scan_value(value, nesting + 1, view.value);
  }

  // Copies a scanned span attribute as it is; only a container value is still to be checked.
  bool keep_scanned(const Field& field, const ValueView& value) {
    if (!checked_input() && (value.type == ValueType::array || value.type == ValueType::kvlist)) {
      const MessageKind kind = value.type == ValueType::array ? MessageKind::array_value : MessageKind::kv_list;
      if (const WireError error = otlp::wire::check_message(kind, value.nested, kSpanNesting + 3);
          error != WireError::none) {
        return fail(error);
      }
    }
    writer_.copy(field.raw);
    return false;
  }

  // An AnyValue's contents with the int `count` in its string's place (other fields kept).
  void integer_value(std::string_view contents, std::int64_t count) {
    const Writer::Mark mark = writer_.mark();
    writer_.open(2);
    each_field(contents, [&](const Field& field) {
      if (field.number != kString || field.type != WireType::length) return (writer_.copy(field.raw), false);
      writer_.varint_field(kInt, static_cast<std::uint64_t>(count));
      return true;
    });
    writer_.close(mark);
  }

  // A scanned attribute whose string value becomes an integer: its other fields kept.
  bool replace_count(const Field& field, std::int64_t count) {
    const Writer::Mark mark = writer_.mark();
    writer_.open(field.number);
    each_field(field.payload, [&](const Field& part) {
      if (!is_length(part, 2)) return (writer_.copy(part.raw), false);
      integer_value(part.payload, count);
      return true;
    });
    writer_.close(mark);
    return true;
  }

  // Each addition is one edit, its sizes known up front: the writer merges the span's
  // additions into one piece, with no headers to fix later.
  void add_attribute(const Addition& addition) {
    const NewValue& change = addition.value;
    switch (change.kind) {
      case NewValueKind::text:
        writer_.key_string_field(9, addition.key, change.value.text);
        return;
      case NewValueKind::content:
        // Written as set_value() does on the message path: a copy when the text is no JSON.
        writer_.key_value_field(9, addition.key, encode_json_value(change.value.text, scratch_.content)
                                                     ? std::string_view(scratch_.content)
                                                     : change.value.encoded);
        return;
      case NewValueKind::integer_of: {
        const Writer::Mark mark = writer_.mark();
        writer_.open(9);
        writer_.bytes_field(1, addition.key);
        integer_value(change.value.encoded, change.value.integer);
        writer_.close(mark);
        return;
      }
      case NewValueKind::copy:
        writer_.key_value_field(9, addition.key, change.value.encoded);
        return;
    }
  }

  const Normalizer& normalizer_;
  Scratch& scratch_;
  NormalizeTally& tally_;
  const bool previews_;
  std::string_view scope_name_;
  std::string_view scope_version_;
};

policy::WireResult result_of(WireError error) {
  if (error == WireError::none) return {};
  return {otlp::wire::is_malformed(error) ? policy::WireOutcome::malformed : policy::WireOutcome::unsupported,
          error};
}

}  // namespace

ValueView view_of_encoded(std::string_view any_value) {
  ValueView view;
  view.encoded = any_value;
  Reader reader(any_value);
  Field field;
  while (reader.next(field)) {
    if (is_value_case(field)) set_case(field, view);
  }
  return view;
}

policy::WireResult WireNormalizer::normalize(const Normalizer& normalizer, std::string_view request,
                                             std::string& out, NormalizeTally& tally, const PreviewTarget* previews,
                                             Input input) {
  begin();
  Pass pass(normalizer, scratch_, tally, previews != nullptr);
  if (input == Input::checked) pass.trust_checked_input();
  return finish(pass.run_request(request), out, previews);
}

policy::WireResult WireNormalizer::normalize_resource_spans(const Normalizer& normalizer,
                                                            std::string_view resource_spans, std::string& out,
                                                            NormalizeTally& tally, const PreviewTarget* previews) {
  begin();
  Pass pass(normalizer, scratch_, tally, previews != nullptr);
  return finish(pass.run_resource_spans(resource_spans), out, previews);
}

void WireNormalizer::begin() {
  scratch_.writer.clear();
  scratch_.offers.clear();
  scratch_.roots = 0;
}

policy::WireResult WireNormalizer::finish(WireError error, std::string& out, const PreviewTarget* previews) {
  const policy::WireResult result = result_of(error);
  if (result.outcome != policy::WireOutcome::rewritten) return result;
  scratch_.writer.write(out);
  if (previews == nullptr) return result;
  if (previews->deferred != nullptr) {
    previews->deferred->append(scratch_.offers);
    return result;
  }
  for (const PreviewOffer& offer : scratch_.offers) {
    previews->cache->offer(previews->route, offer.trace_id, offer.inputs, offer.outputs, offer.from_agent,
                           previews->now);
  }
  return result;
}

}  // namespace proxy::normalize
