// The receiver's checks on the wire: what decode_and_check does to decoded requests (count the
// spans, cut attributes over the limits, remove spans whose ids MLflow cannot store and the
// scopes and resources left empty), done on the protobuf encoding in one pass. Counts and texts
// are those of count_spans, trim_attributes and remove_invalid_spans; when nothing has to change
// no output is written at all, else the request is re-planned with the wire Writer (kept ranges
// copied once, lengths fixed). tests/unit/otlp/wire_checks_test.cpp compares it with the
// message path on random requests and limits.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "otlp/attribute_limits.hpp"
#include "otlp/protobuf.hpp"
#include "otlp/wire_reader.hpp"
#include "otlp/wire_writer.hpp"

namespace proxy::otlp::wire {

enum class ChecksOutcome {
  unchanged,    // the request passes as it is: nothing was written
  rewritten,    // the checked request was appended to the output
  malformed,    // protobuf refuses these bytes too: reject the request
  unsupported,  // the message path decides (groups, odd tags, nesting near protobuf's limit)
};

struct ChecksResult {
  ChecksOutcome outcome = ChecksOutcome::unchanged;
  WireError error = WireError::none;
  std::size_t received = 0;   // spans in the request
  TrimmedAttributes trimmed;  // as trim_attributes counts
  InvalidSpans invalid;       // as remove_invalid_spans counts
  std::size_t valid = 0;      // spans left
};

// One per thread: its writer keeps its buffers between requests.
class SpanChecker {
 public:
  // Appends the checked request to `out` only when it is rewritten. On malformed or
  // unsupported the counts are partial: the caller drops them.
  ChecksResult check(std::string_view request, const AttributeLimits& limits, std::string& out);

 private:
  Writer writer_;
};

}  // namespace proxy::otlp::wire
