#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "otlp/types.hpp"
#include "otlp/wire_reader.hpp"
#include "otlp/wire_schema.hpp"
#include "otlp/wire_writer.hpp"

namespace proxy::otlp::wire {
namespace {

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int value : values) out += static_cast<char>(value);
  return out;
}

// Reads every field; the error the reader stopped on.
WireError read_all(std::string_view input, std::vector<Field>* fields = nullptr) {
  Reader reader(input);
  Field field;
  while (reader.next(field)) {
    if (fields) fields->push_back(field);
  }
  return reader.error();
}

}  // namespace

TEST_CASE("the wire reader reads varints, fixed fields and length-delimited fields in place", "[wire]") {
  // 1: varint 300, 2: fixed64 1, 3: "abc", 4: fixed32 2
  const std::string input = bytes({0x08, 0xAC, 0x02, 0x11, 1, 0, 0, 0, 0, 0, 0, 0, 0x1A, 3, 'a', 'b', 'c',
                                   0x25, 2, 0, 0, 0});
  std::vector<Field> fields;
  REQUIRE(read_all(input, &fields) == WireError::none);
  REQUIRE(fields.size() == 4);
  CHECK(fields[0].number == 1);
  CHECK(fields[0].value == 300);
  CHECK(fields[1].type == WireType::fixed64);
  CHECK(fields[1].value == 1);
  CHECK(fields[2].payload == "abc");
  CHECK(fields[2].payload.data() == input.data() + 14);  // a view into the input, not a copy
  CHECK(fields[2].raw == std::string_view(input).substr(12, 5));
  CHECK(fields[3].value == 2);
}

TEST_CASE("the wire reader turns every malformed input into an error value", "[wire]") {
  CHECK(read_all(bytes({0x08})) == WireError::truncated_varint);
  CHECK(read_all(bytes({0x08, 0x80})) == WireError::truncated_varint);
  CHECK(read_all(bytes({0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})) ==
        WireError::overlong_varint);
  CHECK(read_all(bytes({0x0A, 0x05, 'a'})) == WireError::length_past_end);
  CHECK(read_all(bytes({0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x07})) == WireError::length_past_end);
  CHECK(read_all(bytes({0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F})) == WireError::overlong_varint);  // 4 GiB
  CHECK(read_all(bytes({0x0A, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00})) == WireError::overlong_varint);
  CHECK(read_all(bytes({0x09, 1, 2, 3})) == WireError::truncated_fixed);
  CHECK(read_all(bytes({0x0D, 1})) == WireError::truncated_fixed);
  CHECK(read_all(bytes({0x0E})) == WireError::invalid_wire_type);
  CHECK(read_all(bytes({0x0F})) == WireError::invalid_wire_type);
  CHECK(read_all(bytes({0x0B, 0x0C})) == WireError::group);
  CHECK(read_all(bytes({0x00, 0x00})) == WireError::odd_tag);
  CHECK(is_malformed(WireError::length_past_end));
  CHECK_FALSE(is_malformed(WireError::group));
}

TEST_CASE("the schema check refuses nesting past the limit and text protobuf would refuse", "[wire]") {
  // KeyValue { value: AnyValue { array_value { values { array_value { ... } } } } }
  AnyValue deep;
  AnyValue* at = &deep;
  for (unsigned i = 0; i < kMaxNesting; ++i) at = at->mutable_array_value()->add_values();
  KeyValue kv;
  kv.set_key("k");
  *kv.mutable_value() = deep;
  CHECK(check_message(MessageKind::key_value, kv.SerializeAsString(), 0) == WireError::too_deep);
  CHECK(check_message(MessageKind::key_value, kv.SerializeAsString(), 0) != WireError::none);
  kv.mutable_value()->set_string_value("fine");
  CHECK(check_message(MessageKind::key_value, kv.SerializeAsString(), 0) == WireError::none);
  const std::string not_utf8 = bytes({0x0A, 2, 0xC3, 0x28});  // KeyValue.key
  CHECK(check_message(MessageKind::key_value, not_utf8, 0) == WireError::not_utf8);
  CHECK(check_message(MessageKind::any_value, bytes({0x3A, 2, 0xC3, 0x28}), 0) == WireError::none);  // bytes_value
}

TEST_CASE("the UTF-8 check judges the bytes after an ASCII prefix of any length", "[wire]") {
  for (const std::string prefix : {"", "abc", "abcdefg", "abcdefgh", "abcdefghijklmnopq"}) {
    CAPTURE(prefix);
    CHECK(is_utf8(prefix));
    CHECK(is_utf8(prefix + "\xC3\xA9" + "tail"));        // e-acute
    CHECK(is_utf8(prefix + "\xF0\x9F\x98\x80"));        // a 4-byte sequence at the end
    CHECK_FALSE(is_utf8(prefix + "\xC3"));                // truncated
    CHECK_FALSE(is_utf8(prefix + "\xFF" + "abcdefgh"));   // never UTF-8
    CHECK_FALSE(is_utf8(prefix + "\xED\xA0\x80"));       // a surrogate
    CHECK_FALSE(is_utf8(prefix + "abcdefgh" + "\x80"));   // a stray continuation byte after ASCII
  }
}

TEST_CASE("the wire writer fixes the lengths of the messages around a field that grew", "[wire]") {
  // span { attributes { key "k" value { string_value "v" } } name "n" }
  Span span;
  KeyValue* kv = span.add_attributes();
  kv->set_key("k");
  kv->mutable_value()->set_string_value("v");
  span.set_name("n");
  const std::string input = span.SerializeAsString();

  Writer writer;
  Reader outer(input);
  Field outer_field;
  while (outer.next(outer_field)) {
    if (outer_field.number != 9) {
      writer.copy(outer_field.raw);
      continue;
    }
    const Writer::Mark attribute_mark = writer.mark();
    writer.open(outer_field.number);
    Reader inner(outer_field.payload);
    Field field;
    while (inner.next(field)) {
      if (field.number != 2) {
        writer.copy(field.raw);
        continue;
      }
      const Writer::Mark value_mark = writer.mark();
      writer.open(2);
      writer.bytes_field(1, std::string(300, 'x'));  // past 127 bytes: two-byte lengths all the way up
      writer.close(value_mark);
    }
    writer.close(attribute_mark);
  }
  REQUIRE(outer.error() == WireError::none);

  std::string out;
  writer.write(out);
  CHECK(out.size() == writer.planned_size());
  Span parsed;
  REQUIRE(parsed.ParseFromString(out));
  CHECK(parsed.attributes(0).key() == "k");
  CHECK(parsed.attributes(0).value().string_value() == std::string(300, 'x'));
  CHECK(parsed.name() == "n");
}

TEST_CASE("the wire writer copies adjacent kept ranges as one and forgets a rewound plan", "[wire]") {
  const std::string input = "abcdef";
  Writer writer;
  writer.copy(std::string_view(input).substr(0, 2));
  const Writer::Mark mark = writer.mark();
  writer.open(5);
  writer.varint_field(1, 7);
  writer.close(mark);
  writer.rewind(mark);
  writer.copy(std::string_view(input).substr(2, 4));
  std::string out;
  writer.write(out);
  CHECK(out == "abcdef");
  CHECK(writer.planned_size() == 6);
}

TEST_CASE("the wire writer plans a whole key-value field as one edit among kept ranges and headers", "[wire]") {
  // span { name "n" } kept, then attributes added whole, one inside a rewound plan.
  Span original;
  original.set_name("n");
  const std::string input = original.SerializeAsString();
  AnyValue number;
  number.set_int_value(42);
  const std::string encoded = number.SerializeAsString();
  const std::string long_text(300, 'x');  // past 127 bytes: two-byte lengths at both levels

  Writer writer;
  writer.copy(input);
  writer.key_string_field(9, "kind", "LLM");
  const Writer::Mark dropped = writer.mark();
  writer.key_string_field(9, "dropped", "d");
  writer.key_value_field(9, "dropped too", encoded);
  writer.rewind(dropped);
  std::string reused = encoded;  // the writer copies a value's bytes: reusing them is safe
  writer.key_value_field(9, "count", reused);
  reused.assign("garbage");
  const Writer::Mark opened = writer.mark();
  writer.open(9);
  writer.bytes_field(1, "opened");
  writer.close(opened);
  writer.key_string_field(9, "long", long_text);
  writer.key_value_field(9, "e", "");  // an unset value

  std::string out;
  writer.write(out);
  CHECK(out.size() == writer.planned_size());
  Span expected = original;
  auto add = [&](const std::string& key) -> KeyValue& {
    KeyValue& kv = *expected.add_attributes();
    kv.set_key(key);
    return kv;
  };
  add("kind").mutable_value()->set_string_value("LLM");
  *add("count").mutable_value() = number;
  add("opened");
  add("long").mutable_value()->set_string_value(long_text);
  add("e").mutable_value();
  CHECK(out == expected.SerializeAsString());
}

TEST_CASE("the wire writer forgets bytes merged into the range before a rewound mark", "[wire]") {
  const std::string input = "abcd";
  Writer writer;
  writer.copy(std::string_view(input).substr(0, 2));
  writer.varint_field(1, 7);
  const Writer::Mark mark = writer.mark();
  writer.varint_field(2, 8);  // merges into the edit planned before the mark
  writer.rewind(mark);
  writer.copy(std::string_view(input).substr(2, 2));
  std::string out;
  writer.write(out);
  CHECK(out == "ab" + bytes({0x08, 7}) + "cd");
  CHECK(writer.planned_size() == out.size());
}

}  // namespace proxy::otlp::wire
