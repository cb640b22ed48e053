#include "otlp/protobuf.hpp"

#include <algorithm>
#include <limits>

#include <google/protobuf/io/coded_stream.h>

#include "common/error_category.hpp"
#include "common/hex.hpp"

namespace proxy::otlp {
namespace {

bool all_zero(std::string_view bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 0; });
}

}  // namespace

namespace {

std::string_view describe(DecodeError error) {
  switch (error) {
    case DecodeError::too_large: return "body too large to decode";
    case DecodeError::invalid_protobuf: return "invalid protobuf";
    case DecodeError::invalid_json: return "invalid JSON";
    case DecodeError::invalid_request: return "invalid ExportTraceServiceRequest";
  }
  return {};
}

}  // namespace

const boost::system::error_category& decode_category() {
  static const common::EnumErrorCategory<DecodeError> category("otlp decode", describe);
  return category;
}

DecodeResult decode_protobuf(std::string_view body, ExportRequest& out) {
  if (body.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    return DecodeResult::failure(DecodeError::too_large, "protobuf body is larger than 2 GiB");
  }
  google::protobuf::io::CodedInputStream input(reinterpret_cast<const std::uint8_t*>(body.data()),
                                               static_cast<int>(body.size()));
  if (!out.MergePartialFromCodedStream(&input) || !input.ConsumedEntireMessage()) {
    return DecodeResult::failure(
        DecodeError::invalid_protobuf,
        "body is not a valid protobuf ExportTraceServiceRequest (malformed, truncated or nested "
        "deeper than 100 levels)");
  }
  return DecodeResult::success();
}

std::string id_problem(std::string_view trace_id, std::string_view span_id, std::string_view parent_span_id) {
  if (trace_id.size() != 16) return "traceId must be 16 bytes, got " + std::to_string(trace_id.size());
  if (all_zero(trace_id)) return "traceId must not be all zero";
  if (span_id.size() != 8) return "spanId must be 8 bytes, got " + std::to_string(span_id.size());
  if (all_zero(span_id)) return "spanId must not be all zero";
  if (!parent_span_id.empty() && parent_span_id.size() != 8) {
    return "parentSpanId must be empty or 8 bytes, got " + std::to_string(parent_span_id.size());
  }
  return {};
}

std::string describe_invalid_span(std::size_t r, std::size_t s, std::size_t i, std::string_view name,
                                  std::string_view span_id, std::string_view problem) {
  return "resourceSpans[" + std::to_string(r) + "].scopeSpans[" + std::to_string(s) + "].spans[" +
         std::to_string(i) + "] (name \"" + std::string(name) + "\", spanId " + to_hex(span_id) +
         "): " + std::string(problem);
}

std::size_t count_spans(const ExportRequest& request) {
  std::size_t spans = 0;
  for (const auto& resource_spans : request.resource_spans()) {
    for (const auto& scope_spans : resource_spans.scope_spans()) {
      spans += static_cast<std::size_t>(scope_spans.spans_size());
    }
  }
  return spans;
}

InvalidSpans remove_invalid_spans(ExportRequest& request) {
  InvalidSpans invalid;
  auto& all_resources = *request.mutable_resource_spans();
  for (int r = 0; r < all_resources.size(); ++r) {
    auto& scopes = *all_resources[r].mutable_scope_spans();
    for (int s = 0; s < scopes.size(); ++s) {
      auto& spans = *scopes[s].mutable_spans();
      int kept = 0;
      for (int i = 0; i < spans.size(); ++i) {
        const Span& span = spans[i];
        std::string problem = id_problem(span.trace_id(), span.span_id(), span.parent_span_id());
        if (problem.empty()) {
          if (kept != i) spans.SwapElements(kept, i);
          ++kept;
          continue;
        }
        if (invalid.rejected++ == 0) {
          invalid.first_problem = describe_invalid_span(
              static_cast<std::size_t>(r), static_cast<std::size_t>(s), static_cast<std::size_t>(i),
              span.name(), span.span_id(), problem);
        }
      }
      spans.DeleteSubrange(kept, spans.size() - kept);
    }
    scopes.erase(std::remove_if(scopes.begin(), scopes.end(),
                                [](const ScopeSpans& scope) { return scope.spans_size() == 0; }),
                 scopes.end());
  }
  // MLflow answers 400 to a request without spans, so empty containers never travel on.
  all_resources.erase(
      std::remove_if(all_resources.begin(), all_resources.end(),
                     [](const ResourceSpans& resource) { return resource.scope_spans_size() == 0; }),
      all_resources.end());
  return invalid;
}

}  // namespace proxy::otlp
