// What a rewriting pass over the wire does the same way whatever it rewrites: the first error
// wins, a field kept as it is is checked before its bytes are planned, each field of a message
// goes to a handler, and a message whose contents changed gets a new header (else it stays one
// kept range). Used by normalize/wire_normalize.cpp; the policy pass and the wire checks have the
// same steps of their own.
#pragma once

#include <string_view>

#include "otlp/wire_reader.hpp"
#include "otlp/wire_schema.hpp"
#include "otlp/wire_writer.hpp"

namespace proxy::otlp::wire {

class Walk {
 public:
  explicit Walk(Writer& writer) : writer_(writer) {}

  WireError error() const { return error_; }

 protected:
  // Records the first error. Always false, so a handler can return it.
  bool fail(WireError error) {
    if (error_ == WireError::none) error_ = error;
    return false;
  }
  bool ok() const { return error_ == WireError::none; }

  // Checks a field the pass does not change and keeps its bytes. Always false (unchanged).
  bool keep(MessageKind kind, const Field& field, unsigned nesting) {
    if (const WireError error = check_field(kind, field, nesting); error != WireError::none) return fail(error);
    writer_.copy(field.raw);
    return false;
  }

  // Calls `handle` on each field; true when one of them changed something.
  template <class Handle>
  bool each_field(std::string_view contents, Handle&& handle) {
    Reader reader(contents);
    Field field;
    bool changed = false;
    while (ok() && reader.next(field)) changed |= handle(field);
    if (reader.error() != WireError::none) fail(reader.error());
    return changed && ok();
  }

  // A message field planned by `body` under a new header; copied whole when nothing changed.
  template <class Body>
  bool message(const Field& field, unsigned nesting, Body&& body) {
    if (nesting > kMaxNesting) return fail(WireError::too_deep);
    const Writer::Mark mark = writer_.mark();
    writer_.open(field.number);
    if (body(field.payload) && ok()) {
      writer_.close(mark);
      return true;
    }
    writer_.rewind(mark);
    if (ok()) writer_.copy(field.raw);
    return false;
  }

  Writer& writer_;

 private:
  WireError error_ = WireError::none;
};

}  // namespace proxy::otlp::wire
