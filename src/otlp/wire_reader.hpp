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
