#include "otlp/wire_reader.hpp"

namespace proxy::otlp::wire {

const char* describe(WireError error) {
  switch (error) {
    case WireError::none: return "no error";
    case WireError::truncated_varint: return "truncated varint";
    case WireError::overlong_varint: return "varint longer than 10 bytes";
    case WireError::length_past_end: return "length past the end of its message";
    case WireError::truncated_fixed: return "truncated fixed32 or fixed64";
    case WireError::invalid_wire_type: return "invalid wire type";
    case WireError::group: return "group (unsupported on the wire path)";
    case WireError::odd_tag: return "tag of field 0 or past 32 bits (unsupported on the wire path)";
    case WireError::too_deep: return "nested too deep for the wire path";
    case WireError::not_utf8: return "string field not UTF-8";
    case WireError::duplicate_field: return "singular field repeated (unsupported on the wire path)";
  }
  return "unknown wire error";
}

}  // namespace proxy::otlp::wire
