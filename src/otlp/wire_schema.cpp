#include "otlp/wire_schema.hpp"

#include <cstring>

#include <google/protobuf/stubs/common.h>

namespace proxy::otlp::wire {
namespace {

constexpr FieldShape text() { return {FieldKind::text, MessageKind::request}; }
constexpr FieldShape message(MessageKind kind) { return {FieldKind::message, kind}; }

FieldShape span_shape(std::uint32_t number) {
  switch (number) {
    case 3: case 5: return text();
    case 9: return message(MessageKind::key_value);
    case 11: return message(MessageKind::event);
    case 13: return message(MessageKind::link);
    case 15: return message(MessageKind::status);
    default: return {};
  }
}

FieldShape trace_shape(MessageKind kind, std::uint32_t number) {
  using K = MessageKind;
  switch (kind) {
    case K::request: return number == 1 ? message(K::resource_spans) : FieldShape{};
    case K::resource_spans:
      return number == 1 ? message(K::resource) : number == 2 ? message(K::scope_spans) : number == 3 ? text() : FieldShape{};
    case K::scope_spans:
      return number == 1 ? message(K::scope) : number == 2 ? message(K::span) : number == 3 ? text() : FieldShape{};
    case K::span: return span_shape(number);
    case K::event: return number == 2 ? text() : number == 3 ? message(K::key_value) : FieldShape{};
    case K::link: return number == 3 ? text() : number == 4 ? message(K::key_value) : FieldShape{};
    case K::status: return number == 2 ? text() : FieldShape{};
    default: return {};
  }
}

FieldShape common_shape(MessageKind kind, std::uint32_t number) {
  using K = MessageKind;
  switch (kind) {
    case K::resource:
      return number == 1 ? message(K::key_value) : number == 3 ? message(K::entity_ref) : FieldShape{};
    case K::scope: return number <= 2 ? text() : number == 3 ? message(K::key_value) : FieldShape{};
    case K::key_value: return number == 1 ? text() : number == 2 ? message(K::any_value) : FieldShape{};
    case K::any_value:
      return number == 1 ? text() : number == 5 ? message(K::array_value) : number == 6 ? message(K::kv_list) : FieldShape{};
    case K::array_value: return number == 1 ? message(K::any_value) : FieldShape{};
    case K::kv_list: return number == 1 ? message(K::key_value) : FieldShape{};
    case K::entity_ref: return number <= 4 ? text() : FieldShape{};
    default: return trace_shape(kind, number);
  }
}

}  // namespace

namespace {

// Length of the ASCII prefix of `text`, read 8 bytes at a time: most OTLP strings are ASCII.
std::size_t ascii_prefix(std::string_view text) {
  constexpr std::uint64_t kHighBits = 0x8080808080808080ULL;
  std::size_t i = 0;
  // 32 bytes a step while they are all ASCII (content values run to kilobytes); the first
  // word with a high bit is then found 8 bytes a step.
  for (; i + 32 <= text.size(); i += 32) {
    std::uint64_t words[4];
    std::memcpy(words, text.data() + i, sizeof words);
    if (((words[0] | words[1] | words[2] | words[3]) & kHighBits) != 0) break;
  }
  for (; i + 8 <= text.size(); i += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, text.data() + i, sizeof word);
    if ((word & kHighBits) != 0) return i;
  }
  while (i < text.size() && static_cast<unsigned char>(text[i]) < 0x80) ++i;
  return i;
}

}  // namespace

bool is_utf8(std::string_view text) {
  // A UTF-8 sequence never starts below 0x80, so the check resumes where ASCII ends.
  const std::string_view rest = text.substr(ascii_prefix(text));
  return rest.empty() ||
         google::protobuf::internal::IsStructurallyValidUTF8(rest.data(), static_cast<int>(rest.size()));
}

FieldShape shape_of(MessageKind kind, std::uint32_t number, WireType type) {
  if (type != WireType::length) return {};  // every text and message field is length-delimited
  return common_shape(kind, number);
}

WireError check_field(MessageKind kind, const Field& field, unsigned depth) {
  const FieldShape shape = shape_of(kind, field.number, field.type);
  if (shape.kind == FieldKind::text) return is_utf8(field.payload) ? WireError::none : WireError::not_utf8;
  if (shape.kind == FieldKind::message) return check_message(shape.message, field.payload, depth + 1);
  return WireError::none;
}

WireError check_message(MessageKind kind, std::string_view contents, unsigned depth) {
  if (depth > kMaxNesting) return WireError::too_deep;
  Reader reader(contents);
  Field field;
  while (reader.next(field)) {
    if (const WireError error = check_field(kind, field, depth); error != WireError::none) return error;
  }
  return reader.error();
}

}  // namespace proxy::otlp::wire
