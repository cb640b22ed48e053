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

bool Reader::read_varint(std::uint64_t& value) {
  value = 0;
  for (unsigned shift = 0; shift < 70; shift += 7) {
    if (pos_ == bytes_.size()) return fail(WireError::truncated_varint);
    const auto byte = static_cast<std::uint8_t>(bytes_[pos_++]);
    if (shift < 64) value |= std::uint64_t{byte & 0x7Fu} << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return fail(WireError::overlong_varint);
}

bool Reader::read_payload(Field& field) {
  std::uint64_t length = 0;
  const std::size_t start = pos_;
  if (!read_varint(length)) return false;
  // protobuf reads a length in at most 5 bytes, below 2 GiB.
  if (pos_ - start > 5 || length > 0x7FFFFFFF) return fail(WireError::overlong_varint);
  if (length > bytes_.size() - pos_) return fail(WireError::length_past_end);
  field.payload = bytes_.substr(pos_, static_cast<std::size_t>(length));
  pos_ += static_cast<std::size_t>(length);
  return true;
}

bool Reader::read_fixed(Field& field, std::size_t width) {
  if (width > bytes_.size() - pos_) return fail(WireError::truncated_fixed);
  field.value = 0;
  for (std::size_t i = 0; i < width; ++i) {
    field.value |= std::uint64_t{static_cast<std::uint8_t>(bytes_[pos_ + i])} << (8 * i);
  }
  pos_ += width;
  return true;
}

bool Reader::next(Field& field) {
  if (error_ != WireError::none || pos_ == bytes_.size()) return false;
  const std::size_t start = pos_;
  std::uint64_t tag = 0;
  if (!read_varint(tag)) return false;
  if (pos_ - start > 5 || tag > 0xFFFFFFFFu || (tag >> 3) == 0) return fail(WireError::odd_tag);
  field.number = static_cast<std::uint32_t>(tag >> 3);
  field.type = static_cast<WireType>(tag & 7);
  field.payload = {};
  bool read = false;
  switch (field.type) {
    case WireType::varint: read = read_varint(field.value); break;
    case WireType::fixed64: read = read_fixed(field, 8); break;
    case WireType::length: read = read_payload(field); break;
    case WireType::fixed32: read = read_fixed(field, 4); break;
    case WireType::start_group:
    case WireType::end_group: return fail(WireError::group);
    default: return fail(WireError::invalid_wire_type);
  }
  if (!read) return false;
  field.raw = bytes_.substr(start, pos_ - start);
  return true;
}

}  // namespace proxy::otlp::wire
