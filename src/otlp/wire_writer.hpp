// Plans a rewritten protobuf encoding, then writes it once. The plan is a list of pieces in
// output order: byte ranges of the input kept as they are, re-emitted fields, and the headers
// (tag and length) of enclosing messages whose contents changed. A message's new length is known
// when it is closed (sizes are computed bottom-up while planning), so write() reserves the exact
// output size and copies every kept byte once. Reused across requests: its buffers keep their
// capacity, so a warm writer allocates nothing per span.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "otlp/wire_reader.hpp"

namespace proxy::otlp::wire {

class Writer {
 public:
  // Where the plan stands, to go back to when a message turns out unchanged.
  struct Mark {
    std::size_t pieces = 0;
    std::size_t edits = 0;
    std::size_t size = 0;
    std::size_t last = 0;  // the last piece's size: a copy or an edit after the mark may grow it
  };

  void clear();
  Mark mark() const { return {pieces_.size(), edits_.size(), planned_, pieces_.empty() ? 0 : pieces_.back().size}; }
  // Drops everything planned since `mark`.
  void rewind(const Mark& mark);

  // Keeps a range of the input; `kept` must stay valid until write(). Adjacent ranges merge.
  void copy(std::string_view kept);
  // Opens a message field whose contents follow; close() with the mark taken just before.
  void open(std::uint32_t number);
  void close(const Mark& opened);

  void varint_field(std::uint32_t number, std::uint64_t value);
  void fixed64_field(std::uint32_t number, std::uint64_t value);
  void bytes_field(std::uint32_t number, std::string_view bytes);
  // A KeyValue message field {key, value} as one edit (no header pieces): `value` is the
  // AnyValue's encoding. Its bytes are copied, so they may be reused once this returns.
  void key_value_field(std::uint32_t number, std::string_view key, std::string_view value);
  // The same with the value AnyValue{string_value: text}.
  void key_string_field(std::uint32_t number, std::string_view key, std::string_view text);

  std::size_t planned_size() const { return planned_; }
  // Appends the planned encoding to `out`.
  void write(std::string& out) const;

 private:
  enum class Kind : std::uint8_t { input, edit, header };
  struct Piece {
    Kind kind;
    std::uint32_t number;  // header: the field number
    const char* data;      // input: the kept bytes
    std::size_t offset;    // edit: where in edits_
    std::size_t size;      // input, edit: bytes; header: the message's contents
  };

  void tag(std::uint32_t number, WireType type);
  void varint(std::uint64_t value);
  void edit_piece(std::size_t start);
  char* key_value_head(std::uint32_t number, std::string_view key, std::size_t value_size);

  std::vector<Piece> pieces_;
  std::string edits_;  // re-emitted fields, encoded
  std::size_t planned_ = 0;
};

// Inline: the wire path keeps most fields through it, one call per field.
inline void Writer::copy(std::string_view kept) {
  if (kept.empty()) return;
  planned_ += kept.size();
  if (!pieces_.empty()) {
    Piece& last = pieces_.back();
    if (last.kind == Kind::input && last.data + last.size == kept.data()) {
      last.size += kept.size();
      return;
    }
  }
  pieces_.push_back({Kind::input, 0, kept.data(), 0, kept.size()});
}

// Appends `value` as a varint.
void append_varint(std::string& out, std::uint64_t value);

}  // namespace proxy::otlp::wire
