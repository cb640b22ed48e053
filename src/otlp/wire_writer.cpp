#include "otlp/wire_writer.hpp"

#include <cstring>

#include "otlp/wire_schema.hpp"

namespace proxy::otlp::wire {
namespace {

// Writes `value` as a varint at `at` (room for 10 bytes); returns the end.
char* put_varint(char* at, std::uint64_t value) {
  while (value >= 0x80) {
    *at++ = static_cast<char>((value & 0x7F) | 0x80);
    value >>= 7;
  }
  *at++ = static_cast<char>(value);
  return at;
}

// KeyValue's field numbers (AnyValue's are ValueCase).
constexpr std::uint32_t kKeyField = 1;
constexpr std::uint32_t kValueField = 2;

std::size_t length_field_size(std::uint32_t number, std::size_t contents) {
  return varint_size(std::uint64_t{number} << 3) + varint_size(contents) + contents;
}

char* put_header(char* at, std::uint32_t number, std::size_t contents) {
  at = put_varint(at, (std::uint64_t{number} << 3) | static_cast<std::uint8_t>(WireType::length));
  return put_varint(at, contents);
}

char* put_bytes(char* at, std::string_view bytes) {
  if (!bytes.empty()) std::memcpy(at, bytes.data(), bytes.size());
  return at + bytes.size();
}

}  // namespace

void append_varint(std::string& out, std::uint64_t value) {
  while (value >= 0x80) {
    out += static_cast<char>((value & 0x7F) | 0x80);
    value >>= 7;
  }
  out += static_cast<char>(value);
}

void Writer::clear() {
  pieces_.clear();
  edits_.clear();
  planned_ = 0;
}

void Writer::rewind(const Mark& mark) {
  pieces_.resize(mark.pieces);
  if (!pieces_.empty()) pieces_.back().size = mark.last;
  edits_.resize(mark.edits);
  planned_ = mark.size;
}

void Writer::open(std::uint32_t number) { pieces_.push_back({Kind::header, number, nullptr, 0, 0}); }

void Writer::close(const Mark& opened) {
  Piece& header = pieces_[opened.pieces];
  header.size = planned_ - opened.size;
  planned_ += varint_size(std::uint64_t{header.number} << 3) + varint_size(header.size);
}

void Writer::tag(std::uint32_t number, WireType type) {
  append_varint(edits_, (std::uint64_t{number} << 3) | static_cast<std::uint8_t>(type));
}

void Writer::edit_piece(std::size_t start) {
  const std::size_t size = edits_.size() - start;
  planned_ += size;
  if (!pieces_.empty()) {
    Piece& last = pieces_.back();
    if (last.kind == Kind::edit && last.offset + last.size == start) {
      last.size += size;
      return;
    }
  }
  pieces_.push_back({Kind::edit, 0, nullptr, start, size});
}

void Writer::varint_field(std::uint32_t number, std::uint64_t value) {
  const std::size_t start = edits_.size();
  tag(number, WireType::varint);
  append_varint(edits_, value);
  edit_piece(start);
}

void Writer::fixed64_field(std::uint32_t number, std::uint64_t value) {
  const std::size_t start = edits_.size();
  tag(number, WireType::fixed64);
  for (int i = 0; i < 8; ++i) edits_ += static_cast<char>((value >> (8 * i)) & 0xFF);
  edit_piece(start);
}

void Writer::bytes_field(std::uint32_t number, std::string_view bytes) {
  const std::size_t start = edits_.size();
  tag(number, WireType::length);
  append_varint(edits_, bytes.size());
  edits_.append(bytes);
  edit_piece(start);
}

// Sizes the whole field in edits_ at once and writes it up to the value's bytes, which go at the
// pointer returned: one resize instead of an append per tag, length and string.
char* Writer::key_value_head(std::uint32_t number, std::string_view key, std::size_t value_size) {
  const std::size_t contents = length_field_size(kKeyField, key.size()) + length_field_size(kValueField, value_size);
  const std::size_t start = edits_.size();
  edits_.resize(start + length_field_size(number, contents));
  char* at = put_header(edits_.data() + start, number, contents);
  at = put_bytes(put_header(at, kKeyField, key.size()), key);
  return put_header(at, kValueField, value_size);
}

void Writer::key_value_field(std::uint32_t number, std::string_view key, std::string_view value) {
  const std::size_t start = edits_.size();
  put_bytes(key_value_head(number, key, value.size()), value);
  edit_piece(start);
}

void Writer::key_string_field(std::uint32_t number, std::string_view key, std::string_view text) {
  const std::size_t start = edits_.size();
  char* at = key_value_head(number, key, length_field_size(ValueCase::kString, text.size()));
  put_bytes(put_header(at, ValueCase::kString, text.size()), text);
  edit_piece(start);
}

void Writer::write(std::string& out) const {
  out.reserve(out.size() + planned_);
  for (const Piece& piece : pieces_) {
    switch (piece.kind) {
      case Kind::input: out.append(piece.data, piece.size); break;
      case Kind::edit: out.append(edits_.data() + piece.offset, piece.size); break;
      case Kind::header: {  // one append, not one per byte: most pieces are headers
        char header[20];
        char* end = put_varint(header, (std::uint64_t{piece.number} << 3) | static_cast<std::uint8_t>(WireType::length));
        end = put_varint(end, piece.size);
        out.append(header, static_cast<std::size_t>(end - header));
        break;
      }
    }
  }
}

}  // namespace proxy::otlp::wire
