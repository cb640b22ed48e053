#include "otlp/response.hpp"

#include "otlp/json.hpp"
#include "otlp/types.hpp"

namespace proxy::otlp {

std::string_view content_type_of(BodyEncoding encoding) {
  return encoding == BodyEncoding::json ? "application/json" : "application/x-protobuf";
}

std::string encode_export_response(BodyEncoding encoding, std::int64_t rejected_spans,
                                   std::string_view message) {
  ExportResponse response;
  if (rejected_spans != 0 || !message.empty()) {
    auto* partial = response.mutable_partial_success();
    partial->set_rejected_spans(rejected_spans);
    partial->set_error_message(std::string(message));
  }
  return encoding == BodyEncoding::json ? encode_json(response) : response.SerializeAsString();
}

std::string encode_error_status(BodyEncoding encoding, int grpc_code, std::string_view message) {
  RpcStatus status;
  status.set_code(grpc_code);
  status.set_message(std::string(message));
  return encoding == BodyEncoding::json ? encode_json(status) : status.SerializeAsString();
}

}  // namespace proxy::otlp
