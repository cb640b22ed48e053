// OTLP-JSON (OTLP spec, "JSON Protobuf Encoding"): protobuf's JSON mapping with these
// differences, which protobuf's own JsonStringToMessage gets wrong:
//  - traceId, spanId, parentSpanId (spans and links) are hex strings, not base64;
//  - enums (span kind, status code) are integers (enum names are accepted too);
//  - keys are lowerCamelCase (the original snake_case names are accepted too);
//  - 64-bit integers may be strings or numbers; unknown fields are ignored.
#pragma once

#include <string>
#include <string_view>

#include "otlp/types.hpp"

namespace proxy::otlp {

// Fills `out` (typically arena-allocated by the caller) from an OTLP-JSON body. On failure the
// message names the JSON path and what was expected, and `out` is left partially filled.
DecodeResult decode_json(std::string_view body, ExportRequest& out);

std::string encode_json(const ExportRequest& request);
std::string encode_json(const ExportResponse& response);
std::string encode_json(const RpcStatus& status);

}  // namespace proxy::otlp
