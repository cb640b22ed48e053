// Response bodies in the request's encoding (OTLP/HTTP: the response uses the request's
// Content-Type): ExportTraceServiceResponse on success, google.rpc.Status on failure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace proxy::otlp {

enum class BodyEncoding { protobuf, json };

std::string_view content_type_of(BodyEncoding encoding);

// rejected_spans == 0 and an empty message give the empty response (no partial_success).
std::string encode_export_response(BodyEncoding encoding, std::int64_t rejected_spans,
                                   std::string_view message);

// `grpc_code` is a google.rpc.Code (3 INVALID_ARGUMENT, 8 RESOURCE_EXHAUSTED, 14 UNAVAILABLE...).
std::string encode_error_status(BodyEncoding encoding, int grpc_code, std::string_view message);

}  // namespace proxy::otlp
