// Short names for the generated OTLP messages used across the pipeline.
#pragma once

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

// The outcome of decoding untrusted input: empty message on success, else what is wrong and
// where (for example "resourceSpans[0].scopeSpans[0].spans[2].traceId: ...").
struct DecodeResult {
  bool ok = true;
  std::string message;

  static DecodeResult success() { return {}; }
  static DecodeResult failure(std::string why) { return {false, std::move(why)}; }
};

}  // namespace proxy::otlp
