#include <catch2/catch.hpp>

#include <string>

#include "otlp/protobuf.hpp"

using namespace proxy;

namespace {

// A request whose one span attribute holds `depth` nested arrays around an int.
std::string nested_attribute_request(int depth) {
  otlp::ExportRequest request;
  auto* span = request.add_resource_spans()->add_scope_spans()->add_spans();
  span->set_trace_id(std::string(16, '\x01'));
  span->set_span_id(std::string(8, '\x02'));
  auto* value = span->add_attributes()->mutable_value();
  for (int i = 0; i < depth; ++i) value = value->mutable_array_value()->add_values();
  value->set_int_value(1);
  return request.SerializeAsString();
}

}  // namespace

TEST_CASE("decode_protobuf accepts nesting within protobuf's recursion limit", "[otlp][limits]") {
  otlp::ExportRequest out;
  CHECK(otlp::decode_protobuf(nested_attribute_request(20), out).ok());
}

TEST_CASE("decode_protobuf refuses hostile AnyValue nesting without overflowing the stack",
          "[otlp][limits]") {
  // Each array level is two messages deep (AnyValue, ArrayValue): 4000 messages, 40 times
  // the limit (the test builds it with the recursive serializer, so not deeper).
  otlp::ExportRequest out;
  const auto result = otlp::decode_protobuf(nested_attribute_request(2000), out);
  CHECK_FALSE(result.ok());
  CHECK(result.error == otlp::DecodeError::invalid_protobuf);
  CHECK(result.error.category() == otlp::decode_category());
  CHECK_THAT(result.message, Catch::Contains("nested deeper than 100 levels"));
}
