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
#include <vector>

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

// A span's fields read before it is walked: protobuf keeps the last of a repeated singular field.
struct SpanHeader {
  std::string_view trace_id;
  std::string_view span_id;
  std::string_view parent_span_id;
  std::string_view name;
  std::size_t attributes = 0;  // its attributes fields, which the walk's limit check needs
};
SpanHeader read_span_header(std::string_view contents);

// How many length-delimited fields `number` a message holds (malformed bytes end the count).
std::size_t count_fields(std::string_view contents, std::uint32_t number);

// The spans of a request as count_spans counts them, without checking the bytes: a request
// over max_spans_per_request is refused at this cost once its bytes are known to parse.
std::size_t count_request_spans(std::string_view request);

// Where the walk is, for the texts of the first cut and the first invalid span.
struct SpanPlace {
  std::size_t r = 0;
  std::size_t s = 0;
  std::size_t i = 0;
  std::string_view name;
  bool cut = false;
};

// A ResourceSpans read before it is walked, as the checks will leave it: what route conditions
// read (routing/wire_route.hpp) and whether anything of it is left.
struct ResourceSpansScan {
  // A span's header as the scan read it, so the walk that follows need not read it again.
  struct ScannedSpan {
    const char* at = nullptr;  // the span's contents
    SpanHeader header;
    bool usable_ids = false;
  };

  std::string_view resource;                  // the Resource's fields
  std::vector<std::string_view> scope_names;  // of the ScopeSpans keeping a valid span
  std::size_t valid = 0;  // spans with usable ids: none, and the checks remove it
  std::vector<ScannedSpan> scanned;  // every span, in the record's order

  // The header of the record's `index`th span, whose contents are `span`: the scan's, or read
  // again when the scan did not reach it (it stops at malformed bytes, which the walk refuses).
  ScannedSpan span_at(std::size_t index, std::string_view span) const;

  // duplicate_field (unsupported) when a resource, scope, scope name, attribute key, value or
  // oneof field is repeated: protobuf's merge rules decide those. Malformed bytes are left to
  // the walk.
  WireError read(std::string_view contents);
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
