// The receiver's checks on the wire against the message path: the same request and limits
// through decode -> count_spans -> trim_attributes -> remove_invalid_spans and through
// SpanChecker, parsed back and compared field by field, counts and texts included. Used by the
// wire_checks fuzz target and tests/unit/otlp/wire_checks_test.cpp.
#pragma once

#include <string>
#include <string_view>

#include "otlp/attribute_limits.hpp"
#include "otlp/wire_checks.hpp"

namespace proxy::fuzz {

struct WireChecksComparison {
  otlp::wire::ChecksOutcome wire = otlp::wire::ChecksOutcome::unchanged;
  bool message_accepted = false;
  std::string mismatch;  // empty when both paths agree
};

// Agreement: malformed on the wire exactly when protobuf refuses; an unchanged request writes
// nothing and equals the message path's output; a rewritten one parses back equal to it; equal
// counts and texts. An unsupported request is left to the message path.
WireChecksComparison compare_wire_checks(std::string_view body, const otlp::AttributeLimits& limits);

}  // namespace proxy::fuzz
