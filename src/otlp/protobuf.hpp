// OTLP protobuf bodies: decoding untrusted bytes, checking what MLflow needs, answering.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "otlp/types.hpp"

namespace proxy::otlp {

// Parses a protobuf ExportTraceServiceRequest. `out` is normally arena-allocated, so the
// decoded spans cost no per-span heap allocations.
DecodeResult decode_protobuf(std::string_view body, ExportRequest& out);

std::size_t count_spans(const ExportRequest& request);

// Spans whose ids MLflow cannot store (trace id not 16 bytes or all zero, span id not 8 bytes
// or all zero, parent span id neither empty nor 8 bytes) are removed, then every scope and
// resource without spans. The count and the first problem (with its path) are reported so the
// client can be told through partial_success.
struct InvalidSpans {
  std::size_t rejected = 0;
  std::string first_problem;
};
InvalidSpans remove_invalid_spans(ExportRequest& request);

// What is wrong with a span's ids (empty when MLflow can store them), and the first_problem
// text for the span at resourceSpans[r].scopeSpans[s].spans[i]: shared with the wire path.
std::string id_problem(std::string_view trace_id, std::string_view span_id, std::string_view parent_span_id);
std::string describe_invalid_span(std::size_t r, std::size_t s, std::size_t i, std::string_view name,
                                  std::string_view span_id, std::string_view problem);

}  // namespace proxy::otlp
