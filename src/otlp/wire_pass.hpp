// What every rewrite on the wire does the same way (the checks in wire_checks.cpp, the policy in
// policy/wire_policy.cpp, normalization in normalize/wire_normalize.cpp): keep the first error, walk a message's fields, keep a field as it is
// after checking it as protobuf would, and plan a nested message under a new header that turns
// back into one kept range when nothing in it changed.
#pragma once

#include <cstdint>
#include <string_view>
#include <type_traits>

#include "otlp/wire_reader.hpp"
#include "otlp/wire_schema.hpp"
#include "otlp/wire_writer.hpp"

namespace proxy::otlp::wire {

inline bool is_length(const Field& field, std::uint32_t number) {
  return field.number == number && field.type == WireType::length;
}

// What became of a message: kept as it is, rewritten, or removed with everything in it.
enum class Change : std::uint8_t { none, changed, removed };

class Pass {
 public:
  explicit Pass(Writer& writer) : writer_(writer) {}
  WireError error() const { return error_; }
  // The input is another pass's output, every byte of it already checked as protobuf would:
  // kept fields are copied without checking them again.
  void trust_checked_input() { checked_input_ = true; }

 protected:
  bool fail(WireError error) {
    if (error_ == WireError::none) error_ = error;
    return false;
  }
  bool ok() const { return error_ == WireError::none; }
  bool checked_input() const { return checked_input_; }

  // Checks a field kept as it is and plans its bytes. Always false (unchanged).
  bool keep(MessageKind kind, const Field& field, unsigned nesting) {
    if (checked_input_) return (writer_.copy(field.raw), false);
    if (const WireError error = check_field(kind, field, nesting); error != WireError::none) return fail(error);
    writer_.copy(field.raw);
    return false;
  }

  // Checks a field left out, as protobuf parses it before it is cut. Always true (changed).
  bool drop(MessageKind kind, const Field& field, unsigned nesting) {
    if (const WireError error = check_field(kind, field, nesting); error != WireError::none) fail(error);
    return true;
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

  // A message field planned by `body` under a new header; copied whole when unchanged, left out
  // when removed. `body` answers a Change, or a bool (changed or not): message() answers alike.
  template <class Body>
  auto message(const Field& field, unsigned nesting, Body&& body) {
    if constexpr (std::is_same_v<std::invoke_result_t<Body&, std::string_view>, bool>) {
      return planned(field, nesting, [&](std::string_view c) { return body(c) ? Change::changed : Change::none; }) ==
             Change::changed;
    } else {
      return planned(field, nesting, body);
    }
  }

  Writer& writer_;

 private:
  template <class Body>
  Change planned(const Field& field, unsigned nesting, Body&& body) {
    if (nesting > kMaxNesting) {
      fail(WireError::too_deep);
      return Change::none;
    }
    const Writer::Mark mark = writer_.mark();
    writer_.open(field.number);
    const Change change = body(field.payload);
    if (!ok() || change != Change::changed) {
      writer_.rewind(mark);
      if (ok() && change == Change::none) writer_.copy(field.raw);
      return ok() ? change : Change::none;
    }
    writer_.close(mark);
    return change;
  }

  WireError error_ = WireError::none;
  bool checked_input_ = false;
};

}  // namespace proxy::otlp::wire
