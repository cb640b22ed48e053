#include "fuzz_targets.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <google/protobuf/arena.h>
#include <spdlog/spdlog.h>

#include "config/load.hpp"
#include "otlp/json.hpp"
#include "otlp/protobuf.hpp"
#include "receiver/decompress.hpp"
#include "receiver/export_handler.hpp"

namespace proxy::fuzz {
namespace {

namespace http = boost::beast::http;

// Crashes the process with a message, so libFuzzer and the replay test both see the finding.
void require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
    std::abort();
  }
}

struct HandlerHarness {
  config::ReceiverConfig receiver;
  config::QueueConfig queue_config;
  config::MlflowConfig mlflow;
  queue::SpanQueue queue{64 << 20};
  receiver::ReceiverStats stats;
  receiver::ExportHandler handler{receiver, queue_config, routing::ExperimentSelector(mlflow), queue, stats};

  HandlerHarness() {
    receiver.max_body_bytes = 1 << 20;
    spdlog::set_level(spdlog::level::off);
  }
};

}  // namespace

void http_request(const std::uint8_t* data, std::size_t size) {
  static HandlerHarness harness;
  http::request_parser<http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(harness.receiver.max_header_bytes));
  parser.body_limit(harness.receiver.max_body_bytes);
  parser.eager(true);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (!ec && !parser.is_done()) parser.put_eof(ec);
  if (ec || !parser.is_done()) return;
  if (auto refused = harness.handler.check_header(parser.get().base(), "fuzz")) {
    require(refused->result_int() >= 400, "a refusal with a success status");
    return;
  }
  const auto response = harness.handler.handle(parser.get(), "fuzz");
  require(response.result_int() >= 200 && response.result_int() < 600, "status out of range");
  // Keep the queue from filling up over a long run.
  for (auto batch = harness.queue.pop_batch(1 << 30, 1u << 30); !batch.empty();
       batch = harness.queue.pop_batch(1 << 30, 1u << 30)) {
    for (const auto& item : batch) {
      otlp::ExportRequest queued;
      require(queued.ParseFromString(item.payload), "queued payload does not parse");
      require(otlp::count_spans(queued) == item.span_count, "queued span count is wrong");
      harness.queue.release(item.payload.size());
    }
  }
}

void otlp_protobuf(const std::uint8_t* data, std::size_t size) {
  google::protobuf::Arena arena;
  auto* request = google::protobuf::Arena::CreateMessage<otlp::ExportRequest>(&arena);
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  if (!otlp::decode_protobuf(body, *request).ok) return;
  otlp::remove_invalid_spans(*request);
  const std::string json = otlp::encode_json(*request);
  // Link ids are not validated on the protobuf path (they are forwarded as they came), so the
  // JSON of such a request may not decode; whatever does must keep every span.
  otlp::ExportRequest again;
  if (otlp::decode_json(json, again).ok) {
    require(otlp::count_spans(again) == otlp::count_spans(*request), "span count changed through JSON");
  }
}

void otlp_json(const std::uint8_t* data, std::size_t size) {
  google::protobuf::Arena arena;
  auto* request = google::protobuf::Arena::CreateMessage<otlp::ExportRequest>(&arena);
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  if (!otlp::decode_json(body, *request).ok) return;
  const std::string json = otlp::encode_json(*request);
  otlp::ExportRequest again;
  require(otlp::decode_json(json, again).ok, "encoded JSON does not decode");
  require(again.SerializeAsString() == request->SerializeAsString(), "JSON round trip changed the request");
}

void decompress(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return;
  constexpr std::size_t kLimit = 1 << 20;
  const auto encoding = static_cast<receiver::ContentEncoding>(data[0] % 4);
  std::string out;
  const auto result = receiver::decompress(
      encoding, std::string_view(reinterpret_cast<const char*>(data + 1), size - 1), out, kLimit);
  require(out.size() <= kLimit + 1, "decompressed past the limit");
  require(result.status != receiver::DecompressResult::Status::ok || out.size() <= kLimit,
          "ok with a body over the limit");
  require(result.status == receiver::DecompressResult::Status::ok || !result.message.empty(),
          "an error without a message");
}

void config_yaml(const std::uint8_t* data, std::size_t size) {
  static const std::string path = [] {
    return (std::filesystem::temp_directory_path() / ("proxy-fuzz-config-" + std::to_string(getpid()) + ".yaml")).string();
  }();
  {
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    const auto loaded = config::load({"--config", path}, {});
    // What loads must render into YAML that loads back.
    const std::string rendered = config::render_effective(loaded.config);
    std::ofstream(path, std::ios::binary | std::ios::trunc) << rendered;
    config::load({"--config", path}, {});
  } catch (const config::ConfigError&) {
  }
}

}  // namespace proxy::fuzz
