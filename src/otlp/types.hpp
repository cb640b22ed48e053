// Short names for the generated OTLP messages used across the pipeline.
#pragma once

#include <string>
#include <type_traits>

#include <boost/system/error_code.hpp>

#include "google/rpc/status.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"

namespace proxy::otlp {

using ExportRequest = opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;
using ExportResponse = opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse;
using ResourceSpans = opentelemetry::proto::trace::v1::ResourceSpans;
using ScopeSpans = opentelemetry::proto::trace::v1::ScopeSpans;
using Span = opentelemetry::proto::trace::v1::Span;
using AnyValue = opentelemetry::proto::common::v1::AnyValue;
using KeyValue = opentelemetry::proto::common::v1::KeyValue;
using RpcStatus = google::rpc::Status;

// What kind of body could not be decoded: an error code of its own category (decode_category()).
enum class DecodeError { too_large = 1, invalid_protobuf, invalid_json, invalid_request };
const boost::system::error_category& decode_category();
inline boost::system::error_code make_error_code(DecodeError error) {
  return {static_cast<int>(error), decode_category()};
}

// The outcome of decoding untrusted input: no error on success, else its kind and what is wrong
// and where (for example "resourceSpans[0].scopeSpans[0].spans[2].traceId: ...").
struct DecodeResult {
  boost::system::error_code error;  // a DecodeError
  std::string message;

  bool ok() const { return !error; }
  static DecodeResult success() { return {}; }
  static DecodeResult failure(DecodeError kind, std::string why) {
    return {make_error_code(kind), std::move(why)};
  }
};

}  // namespace proxy::otlp

template <>
struct boost::system::is_error_code_enum<proxy::otlp::DecodeError> : std::true_type {};
