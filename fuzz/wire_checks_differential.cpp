#include "wire_checks_differential.hpp"

#include "differential.hpp"
#include "otlp/protobuf.hpp"

namespace proxy::fuzz {
namespace {

using otlp::wire::ChecksOutcome;
using otlp::wire::ChecksResult;

struct MessagePath {
  bool accepted = false;
  std::size_t received = 0;
  otlp::TrimmedAttributes trimmed;
  otlp::InvalidSpans invalid;
  std::size_t valid = 0;
  otlp::ExportRequest request;
};

// decode_and_check's steps after decoding, on messages.
void message_path(std::string_view body, const otlp::AttributeLimits& limits, MessagePath& path) {
  path.accepted = otlp::decode_protobuf(body, path.request).ok();
  if (!path.accepted) return;
  path.received = otlp::count_spans(path.request);
  path.trimmed = otlp::trim_attributes(path.request, limits);
  path.invalid = otlp::remove_invalid_spans(path.request);
  path.valid = otlp::count_spans(path.request);
}

std::string compare_counts(const ChecksResult& wire, const MessagePath& expected) {
  if (wire.received != expected.received || wire.valid != expected.valid) return "span counts differ";
  if (wire.trimmed.spans != expected.trimmed.spans || wire.trimmed.attributes != expected.trimmed.attributes ||
      wire.trimmed.first != expected.trimmed.first) {
    return "trim counts differ: \"" + wire.trimmed.first + "\" vs \"" + expected.trimmed.first + "\"";
  }
  if (wire.invalid.rejected != expected.invalid.rejected ||
      wire.invalid.first_problem != expected.invalid.first_problem) {
    return "invalid span counts differ: \"" + wire.invalid.first_problem + "\" vs \"" +
           expected.invalid.first_problem + "\"";
  }
  return {};
}

std::string compare_accepted(std::string_view body, const std::string& out, const ChecksResult& wire,
                             const MessagePath& expected) {
  if (wire.outcome == ChecksOutcome::unchanged && !out.empty()) return "unchanged, yet written";
  const std::string_view written = wire.outcome == ChecksOutcome::unchanged ? body : std::string_view(out);
  if (auto difference = parsed_difference(expected.request, written, kMessageVsWire)) {
    return "requests differ: " + *difference;
  }
  return compare_counts(wire, expected);
}

}  // namespace

WireChecksComparison compare_wire_checks(std::string_view body, const otlp::AttributeLimits& limits) {
  WireChecksComparison comparison;
  MessagePath expected;
  message_path(body, limits, expected);
  comparison.message_accepted = expected.accepted;
  thread_local otlp::wire::SpanChecker checker;
  std::string out;
  const ChecksResult wire = checker.check(body, limits, out);
  comparison.wire = wire.outcome;
  if (wire.outcome == ChecksOutcome::unsupported) return comparison;
  const bool malformed = wire.outcome == ChecksOutcome::malformed;
  if (malformed || !expected.accepted) {
    if (malformed == expected.accepted) comparison.mismatch = "refused by one path only";
    return comparison;
  }
  comparison.mismatch = compare_accepted(body, out, wire, expected);
  return comparison;
}

}  // namespace proxy::fuzz
