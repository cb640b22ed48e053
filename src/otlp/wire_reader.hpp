// A zero-copy reader of the protobuf wire format over a string_view: the wire path
// (policy/wire_policy.hpp) walks requests with it instead of decoding them into messages.
// Every malformed input comes back as a WireError, never as undefined behaviour; what the
// reader cannot judge the way protobuf's own parser would (groups, tags past 32 bits, field
// number 0, nesting near protobuf's recursion limit, duplicated singular fields) is reported as
// unsupported, so the caller falls back to the message path, which decides.
// Text that is not UTF-8 is malformed only in a field protobuf reads as a string.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace proxy::otlp::wire {

enum class WireType : std::uint8_t { varint = 0, fixed64 = 1, length = 2, start_group = 3, end_group = 4, fixed32 = 5 };

enum class WireError : std::uint8_t {
  none,
  // Malformed: protobuf refuses these too.
  truncated_varint,
  overlong_varint,
  length_past_end,
  truncated_fixed,
  invalid_wire_type,
  not_utf8,  // in a string field: protobuf 3 refuses it (wire_schema.hpp knows which fields)
  // Unsupported: the message path decides.
  group,
  odd_tag,
  too_deep,
  duplicate_field,
};

inline bool is_malformed(WireError error) {
  return error >= WireError::truncated_varint && error <= WireError::not_utf8;
}
const char* describe(WireError error);

// Nesting deeper than this is left to protobuf (whose limit is 100): a margin, so the wire
// path never accepts what the message path would refuse.
inline constexpr unsigned kMaxNesting = 90;

struct Field {
  std::uint32_t number = 0;
  WireType type = WireType::varint;
  std::uint64_t value = 0;   // a varint's value, or a fixed32/fixed64 read little-endian
  std::string_view payload;  // a length-delimited field's contents
  std::string_view raw;      // the whole field: tag, length and payload
};

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  // The next field into `field`; false at the end of the bytes or on an error (see error()).
  bool next(Field& field);
  WireError error() const { return error_; }

 private:
  bool fail(WireError error) {
    error_ = error;
    return false;
  }
  bool read_varint(std::uint64_t& value);
  bool read_payload(Field& field);
  bool read_fixed(Field& field, std::size_t width);

  std::string_view bytes_;
  std::size_t pos_ = 0;
  WireError error_ = WireError::none;
};

// Inline: the wire path reads every field of a request through these, several per attribute.
// Most tags and lengths in OTLP take one byte, so that case is tried first.
inline bool Reader::read_varint(std::uint64_t& value) {
  if (pos_ < bytes_.size() && static_cast<std::uint8_t>(bytes_[pos_]) < 0x80) {
    value = static_cast<std::uint8_t>(bytes_[pos_++]);
    return true;
  }
  value = 0;
  for (unsigned shift = 0; shift < 70; shift += 7) {
    if (pos_ == bytes_.size()) return fail(WireError::truncated_varint);
    const auto byte = static_cast<std::uint8_t>(bytes_[pos_++]);
    if (shift < 64) value |= std::uint64_t{byte & 0x7Fu} << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return fail(WireError::overlong_varint);
}

inline bool Reader::read_payload(Field& field) {
  std::uint64_t length = 0;
  const std::size_t start = pos_;
  if (!read_varint(length)) return false;
  // protobuf reads a length in at most 5 bytes, below 2 GiB.
  if (pos_ - start > 5 || length > 0x7FFFFFFF) return fail(WireError::overlong_varint);
  if (length > bytes_.size() - pos_) return fail(WireError::length_past_end);
  field.payload = std::string_view(bytes_.data() + pos_, static_cast<std::size_t>(length));  // in bounds
  pos_ += static_cast<std::size_t>(length);
  return true;
}

inline bool Reader::read_fixed(Field& field, std::size_t width) {
  if (width > bytes_.size() - pos_) return fail(WireError::truncated_fixed);
  field.value = 0;
  for (std::size_t i = 0; i < width; ++i) {
    field.value |= std::uint64_t{static_cast<std::uint8_t>(bytes_[pos_ + i])} << (8 * i);
  }
  pos_ += width;
  return true;
}

inline bool Reader::next(Field& field) {
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
  field.raw = std::string_view(bytes_.data() + start, pos_ - start);
  return true;
}

// Bytes a varint of `value` takes.
inline std::size_t varint_size(std::uint64_t value) {
  std::size_t size = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++size;
  }
  return size;
}

}  // namespace proxy::otlp::wire
