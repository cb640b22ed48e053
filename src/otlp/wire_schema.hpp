// What the OTLP trace messages hold, for the wire path: which fields are nested messages (of
// which kind) and which are strings protobuf checks for UTF-8. A field copied as it is still
// has to be what protobuf would accept, so its nested messages are checked to the bottom.
#pragma once

#include <cstdint>
#include <string_view>

#include "otlp/wire_reader.hpp"

namespace proxy::otlp::wire {

enum class MessageKind : std::uint8_t {
  request,
  resource_spans,
  resource,
  scope_spans,
  scope,
  span,
  event,
  link,
  status,
  key_value,
  any_value,
  array_value,
  kv_list,
  entity_ref,
};

enum class FieldKind : std::uint8_t { plain, text, message };

struct FieldShape {
  FieldKind kind = FieldKind::plain;
  MessageKind message = MessageKind::request;  // when kind is message
};

// How protobuf reads field `number` with wire type `type` in a `kind` message; a field with
// a number it does not know, or the wrong wire type, is an unknown field (plain).
FieldShape shape_of(MessageKind kind, std::uint32_t number, WireType type);

// Checks one field of a `kind` message nested `depth` levels deep (the request is 0).
WireError check_field(MessageKind kind, const Field& field, unsigned depth);
// Checks a whole message's contents.
WireError check_message(MessageKind kind, std::string_view contents, unsigned depth);
// AnyValue's oneof, by field number (string_value 1 to bytes_value 7).
enum ValueCase : std::uint32_t { kString = 1, kBool, kInt, kDouble, kArray, kKvlist, kBytes };

// Whether `field` of an AnyValue is one of its oneof's cases, each with its own wire type; any
// other field is unknown.
inline bool is_value_case(const Field& field) {
  constexpr WireType kCaseType[] = {WireType::varint,  WireType::length, WireType::varint, WireType::varint,
                                    WireType::fixed64, WireType::length, WireType::length, WireType::length};
  return field.number >= kString && field.number <= kBytes && field.type == kCaseType[field.number];
}

// Whether protobuf takes `text` as a string field's value.
bool is_utf8(std::string_view text);

}  // namespace proxy::otlp::wire
