#include "fuzz_targets.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <sys/mman.h>
#include <unistd.h>
#include <variant>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/json/parse.hpp>
#include <boost/beast/http.hpp>
#include <google/protobuf/arena.h>
#include <spdlog/spdlog.h>

#include "config/load.hpp"
#include "otlp/json.hpp"
#include "otlp/protobuf.hpp"
#include "policy/content_keys.hpp"
#include "policy/json_structure.hpp"
#include "policy/policy.hpp"
#include "queue/record_file.hpp"
#include "queue/span_queue.hpp"
#include "queue/spool.hpp"
#include "receiver/decompress.hpp"
#include "receiver/export_handler.hpp"
#include "wire_differential.hpp"
#include "wire_checks_differential.hpp"
#include "wire_route_differential.hpp"
#include "wire_normalize_differential.hpp"

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

// A differential harness's finding: its description of the disagreement, then the crash.
void require_agreement(const std::string& mismatch, const char* what) {
  if (!mismatch.empty()) std::fprintf(stderr, "%s\n", mismatch.c_str());
  require(mismatch.empty(), what);
}

// A policy (its built-in redaction patterns), normalizer or router pair costs milliseconds to
// build: what the first `key_bytes` bytes build is kept, a bounded number of them (2 bytes could
// ask for 65536). Each call site's lambda is its own type, so each call site has its own cache.
template <class Built, class Argument>
const Built& built_from(const std::uint8_t* data, std::size_t key_bytes, const Argument& argument) {
  static std::map<std::string, std::unique_ptr<Built>> cache;
  const std::string key(reinterpret_cast<const char*>(data), key_bytes);
  if (cache.size() >= 64 && cache.count(key) == 0) cache.clear();
  auto& slot = cache[key];
  if (!slot) slot = std::make_unique<Built>(argument());
  return *slot;
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
  http::request_parser<receiver::ReceivedBody> parser;  // as the receiver reads requests
  parser.header_limit(static_cast<std::uint32_t>(harness.receiver.max_header_bytes));
  parser.body_limit(harness.receiver.max_body_bytes);
  parser.eager(true);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (!ec && !parser.is_done()) parser.put_eof(ec);
  if (ec || !parser.is_done()) return;
  const receiver::HeaderCheck checked = harness.handler.check_header(parser.get().base(), "fuzz");
  if (const auto* refused = std::get_if<receiver::Response>(&checked)) {
    require(refused->result_int() >= 400, "a refusal with a success status");
    return;
  }
  const auto response = harness.handler.handle(
      parser.get(), std::get<receiver::AcceptedHeader>(checked), "fuzz");
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
  if (!otlp::decode_protobuf(body, *request).ok()) return;
  otlp::remove_invalid_spans(*request);
  const std::string json = otlp::encode_json(*request);
  // Link ids are not validated on the protobuf path (they are forwarded as they came), so the
  // JSON of such a request may not decode; whatever does must keep every span.
  otlp::ExportRequest again;
  if (otlp::decode_json(json, again).ok()) {
    require(otlp::count_spans(again) == otlp::count_spans(*request), "span count changed through JSON");
  }
}

void otlp_json(const std::uint8_t* data, std::size_t size) {
  google::protobuf::Arena arena;
  auto* request = google::protobuf::Arena::CreateMessage<otlp::ExportRequest>(&arena);
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  if (!otlp::decode_json(body, *request).ok()) return;
  const std::string json = otlp::encode_json(*request);
  otlp::ExportRequest again;
  require(otlp::decode_json(json, again).ok(), "encoded JSON does not decode");
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

namespace {

// The fuzzer's input as the config file: an in-memory file (memfd) read through /proc/self/fd, so
// no file is left behind in /tmp when the fuzzer exits.
class MemoryFile {
 public:
  MemoryFile() : fd_(memfd_create("proxy-fuzz-config", MFD_CLOEXEC)) {
    if (fd_ < 0) std::abort();
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  void replace(const void* data, std::size_t size) const {
    if (ftruncate(fd_, 0) != 0) std::abort();
    const auto* bytes = static_cast<const char*>(data);
    for (std::size_t done = 0; done < size;) {
      const ssize_t wrote = pwrite(fd_, bytes + done, size - done, static_cast<off_t>(done));
      if (wrote <= 0) std::abort();
      done += static_cast<std::size_t>(wrote);
    }
  }
  const std::string& path() const { return path_; }

 private:
  int fd_;
  std::string path_;
};

}  // namespace

void config_yaml(const std::uint8_t* data, std::size_t size) {
  static const MemoryFile file;
  const std::string& path = file.path();
  file.replace(data, size);
  try {
    const auto loaded = config::load({"--config", path}, {});
    // What loads must render into YAML that loads back.
    const std::string rendered = config::render_effective(loaded.config);
    file.replace(rendered.data(), rendered.size());
    config::load({"--config", path}, {});
  } catch (const config::ConfigError&) {
  }
}

namespace {

using config::PolicyMode;
using otlp::AnyValue;

constexpr PolicyMode kModes[] = {PolicyMode::verbose, PolicyMode::mask,     PolicyMode::hash,
                                 PolicyMode::truncate, PolicyMode::drop, PolicyMode::redact};

bool is_container(const AnyValue& value) {
  return value.value_case() == AnyValue::kArrayValue || value.value_case() == AnyValue::kKvlistValue;
}

// Calls visit(value, depth) for a value and everything nested in it (depth 1: an attribute's own).
template <class Visit>
void each_value(const AnyValue& value, unsigned depth, const Visit& visit) {
  visit(value, depth);
  if (value.value_case() == AnyValue::kArrayValue) {
    for (const AnyValue& element : value.array_value().values()) each_value(element, depth + 1, visit);
  } else if (value.value_case() == AnyValue::kKvlistValue) {
    for (const auto& entry : value.kvlist_value().values()) each_value(entry.value(), depth + 1, visit);
  }
}

template <class Visit>
void each_attribute_value(const otlp::ResourceSpans& resource_spans, const Visit& visit) {
  auto all = [&](const auto& attributes) {
    for (const auto& attribute : attributes) each_value(attribute.value(), 1, visit);
  };
  for (const auto& scope : resource_spans.scope_spans()) {
    for (const auto& span : scope.spans()) {
      all(span.attributes());
      for (const auto& event : span.events()) all(event.attributes());
      for (const auto& link : span.links()) all(link.attributes());
    }
  }
}

// What mask leaves of a string: empty, Koog's placeholder, the mask marker or the depth marker.
bool masked_text(std::string_view text) {
  return text.empty() || text == policy::kKoogHidden || text.starts_with("[masked: ") ||
         text.starts_with("[rejected: nested deeper than ");
}

bool masked_json(const boost::json::value& value, const policy::StructureOptions& options, bool nested);

// A string leaf the walk left: masked, or (once) a string holding JSON that is itself masked.
bool masked_leaf(std::string_view text, const policy::StructureOptions& options, bool nested) {
  if (masked_text(text)) return true;
  if (nested || !policy::looks_like_json(text)) return false;
  boost::system::error_code error;
  const boost::json::value inner = boost::json::parse(text, error);
  return !error && masked_json(inner, options, true);
}

// Every leaf of the walk's output is masked, except null and the scalars of structural keys.
bool masked_json(const boost::json::value& value, const policy::StructureOptions& options, bool nested) {
  switch (value.kind()) {
    case boost::json::kind::object:
      for (const auto& member : value.get_object()) {
        const bool scalar = !member.value().is_object() && !member.value().is_array();
        if (scalar && policy::is_structural_key(options, member.key())) continue;
        if (!masked_json(member.value(), options, nested)) return false;
      }
      return true;
    case boost::json::kind::array:
      for (const auto& element : value.get_array()) {
        if (!masked_json(element, options, nested)) return false;
      }
      return true;
    case boost::json::kind::string:
      return masked_leaf(value.get_string(), options, nested);
    case boost::json::kind::bool_:
      return !value.get_bool();
    case boost::json::kind::int64:
      return value.get_int64() == 0;
    case boost::json::kind::uint64:
      return value.get_uint64() == 0;
    case boost::json::kind::double_:
      return value.get_double() == 0.0;
    case boost::json::kind::null:
      return true;
  }
  return false;
}

// Masks every leaf (any mode: the selectors' hash too), like the policy's mask.
class MaskingRewriter final : public policy::LeafRewriter {
 public:
  bool rewrite(PolicyMode, std::string_view, std::string_view text, std::string& out) const override {
    out += "[masked: " + std::to_string(text.size()) + " bytes]";
    return true;
  }
};

// Everything masked as whole values: no text, number or truth value of the client's is left.
void require_all_masked(const otlp::ResourceSpans& resource_spans) {
  each_attribute_value(resource_spans, [&](const AnyValue& value, unsigned) {
    switch (value.value_case()) {
      case AnyValue::kStringValue:
        require(masked_text(value.string_value()), "a string survived mask");
        break;
      case AnyValue::kBytesValue:
        require(value.bytes_value().empty() || value.bytes_value().starts_with("[masked: "),
                "bytes survived mask");
        break;
      case AnyValue::kIntValue:
        require(value.int_value() == 0, "an integer survived mask");
        break;
      case AnyValue::kDoubleValue:
        require(value.double_value() == 0.0, "a double survived mask");
        break;
      case AnyValue::kBoolValue:
        require(!value.bool_value(), "a boolean survived mask");
        break;
      default:
        break;
    }
  });
  for (const auto& scope : resource_spans.scope_spans()) {
    for (const auto& span : scope.spans()) {
      require(masked_text(span.status().message()), "a status message survived mask");
    }
  }
}

}  // namespace

void policy_walk(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return;
  config::PolicyConfig config;
  config.content = kModes[data[0] % 6];
  config.errors = kModes[(data[0] / 6) % 6];
  config.other = kModes[(data[0] / 36) % 6];
  // 216 and up: everything masked as whole values, so no client text may survive anywhere
  // (json_structure checks the structure-kept walk, which keeps roles and tool names).
  if (data[0] >= 216) config.content = config.errors = config.other = PolicyMode::mask;
  config.keep_structure = data[0] < 216;
  config.max_depth = 1u + data[1] % 16;
  config.truncate_bytes = 1u + data[1] / 16;
  const auto& policy = built_from<policy::CompiledPolicy>(data, 2, [&config] { return config; });

  google::protobuf::Arena arena;
  auto* request = google::protobuf::Arena::CreateMessage<otlp::ExportRequest>(&arena);
  if (!otlp::decode_protobuf(std::string_view(reinterpret_cast<const char*>(data + 2), size - 2),
                             *request).ok()) {
    return;
  }
  policy::PolicyTally tally;
  for (auto& resource_spans : *request->mutable_resource_spans()) {
    policy::apply(policy, resource_spans, tally);
    // Hostile nesting never survives the walk: past max_depth only the depth marker is left.
    each_attribute_value(resource_spans, [&](const AnyValue& value, unsigned depth) {
      require(depth <= config.max_depth || !is_container(value), "a container past max_depth survived");
      require(depth <= config.max_depth + 1, "a value nested past max_depth + 1 survived");
    });
    if (config.content == PolicyMode::mask && config.errors == PolicyMode::mask &&
        config.other == PolicyMode::mask && !config.keep_structure) {
      require_all_masked(resource_spans);
    }
    if (config.content == PolicyMode::drop && config.errors == PolicyMode::drop &&
        config.other == PolicyMode::drop) {
      for (const auto& scope : resource_spans.scope_spans()) {
        for (const auto& span : scope.spans()) {
          require(span.attributes_size() == 0 && span.status().message().empty(),
                  "an attribute or status message survived drop");
          for (const auto& event : span.events()) require(event.attributes_size() == 0, "an event attribute survived drop");
          for (const auto& link : span.links()) require(link.attributes_size() == 0, "a link attribute survived drop");
        }
      }
    }
  }
  // What the policy leaves is still a request the exporter can send.
  otlp::ExportRequest again;
  require(again.ParseFromString(request->SerializeAsString()), "the policy's output does not parse");
}

namespace {

// The wire target's policy from two bytes: modes as policy_walk, then byte 1 picks max_depth,
// a resource rule, an override rule and whether JSON keeps its structure.
config::PolicyConfig wire_policy_config(std::uint8_t modes, std::uint8_t options) {
  config::PolicyConfig config;
  config.content = kModes[modes % 6];
  config.errors = kModes[(modes / 6) % 6];
  config.other = kModes[(modes / 36) % 6];
  config.max_depth = 1u + options % 8;
  config.truncate_bytes = 1u + options % 5;
  if (options & 0x10) config.resource_keys.push_back({"service.*", kModes[(modes + 1) % 6], 0});
  if (options & 0x20) config.resource_keys.push_back({"*", PolicyMode::drop, 0});
  if (options & 0x40) config.keys.push_back({"llm.*", kModes[(modes + 2) % 6], 3});
  config.keep_structure = (options & 0x80) == 0;
  return config;
}

}  // namespace

void wire_policy(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return;
  const auto& policy =
      built_from<policy::CompiledPolicy>(data, 2, [data] { return wire_policy_config(data[0], data[1]); });
  const WireComparison comparison =
      compare_wire_paths(policy, std::string_view(reinterpret_cast<const char*>(data + 2), size - 2));
  require_agreement(comparison.mismatch, "the wire path and the message path disagree");
}

void wire_checks(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return;
  const otlp::AttributeLimits limits{data[0] % 16u, data[1] % 16u, data[2] % 16u};
  const WireChecksComparison comparison =
      compare_wire_checks(std::string_view(reinterpret_cast<const char*>(data + 3), size - 3), limits);
  require_agreement(comparison.mismatch, "the wire checks and the message path disagree");
}

void wire_normalize(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return;
  const auto& normalizer =
      built_from<normalize::Normalizer>(data, 2, [data] { return normalize_config_from(data[0], data[1]); });
  const NormalizeComparison comparison =
      compare_wire_normalize(normalizer, std::string_view(reinterpret_cast<const char*>(data + 2), size - 2));
  require_agreement(comparison.mismatch, "normalization on the wire and on messages disagree");
}

namespace {

config::RouteConfig fuzzed_route(std::string name, std::uint8_t bits) {
  config::RouteConfig route;
  route.name = std::move(name);
  if (bits & 1) route.match.resource.push_back({"service.name", {config::ValueMatch::Kind::glob, "svc*"}});
  if (bits & 2) route.match.scope_name = config::ValueMatch{config::ValueMatch::Kind::regex, "ai\\..*"};
  route.match.header = static_cast<config::HeaderCondition>((bits >> 2) & 3);
  route.match.header_value = "12";
  route.header = static_cast<config::HeaderMode>(((bits >> 4) & 3) % 3);
  route.normalize = config::NormalizeConfig{};
  route.normalize->enabled = (bits & 0x40) != 0;  // with previews, held 0.5 s
  route.normalize->preview_hold = std::chrono::milliseconds(500);
  return route;
}

// The wire_route target's config from three bytes (see fuzz_targets.hpp).
config::Config wire_route_config(std::uint8_t routes, std::uint8_t modes, std::uint8_t limits) {
  config::Config config;
  config.mlflow.experiment_name = "configured";
  config.policies.push_back({"a", wire_policy_config(modes, limits)});
  config.policies.push_back({"b", wire_policy_config(static_cast<std::uint8_t>(modes * 7 + 3), routes)});
  config::RouteConfig first = fuzzed_route("first", routes);
  first.experiment_id = "1";
  first.policy = "a";
  config::RouteConfig second = fuzzed_route("second", static_cast<std::uint8_t>(routes >> 2));
  second.experiment_name = "two";
  second.policy = "b";
  config.routes = {first, second};
  config.default_route.policy = routes & 0x80 ? "a" : "b";
  config.default_route.normalize.enabled = (routes & 0x40) != 0;
  config.receiver.max_spans_per_request = (limits & 7) == 0 ? 4 : 65536;
  config.receiver.max_attributes_per_span = (limits >> 3) & 7;
  config.receiver.max_attributes_per_event = (limits >> 5) & 3;
  config.receiver.max_attributes_per_link = (limits >> 6) & 3;
  return config;
}

struct RoutePair {
  config::Config config;
  routing::Router message;
  routing::Router wire;
  explicit RoutePair(config::Config from) : config(std::move(from)), message(config), wire(config) {}
};

}  // namespace

void wire_route(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return;
  const auto& pair = built_from<RoutePair>(data, 3, [data] { return wire_route_config(data[0], data[1], data[2]); });
  static const char* const kHeaders[] = {"12", " 7 ", "abc", ""};
  const std::optional<std::string_view> header =
      data[3] < 128 ? std::nullopt : std::optional<std::string_view>(kHeaders[data[3] % 4]);
  const WireRouteComparison comparison =
      compare_wire_routes(pair.message, pair.wire, pair.config.receiver,
                          std::string_view(reinterpret_cast<const char*>(data + 4), size - 4), header);
  require_agreement(comparison.mismatch, "the fused wire pass and the message path disagree");
}

namespace {

namespace fs = std::filesystem;

struct Recovered {
  queue::RecoveryReport report;
  std::size_t items = 0;
  std::uint64_t spans = 0;
};

Recovered recover(const std::string& directory) {
  queue::SpanQueue queue{std::size_t{1} << 30};
  queue::SpoolOptions options;
  options.directory = directory;
  options.sync = queue::SyncPolicy::never;
  Recovered recovered;
  {
    queue::Spool spool(options, queue);
    try {
      recovered.report = spool.open();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "spool open threw: %s\n", e.what());
      std::abort();
    }
    for (const auto& item : queue.take_all()) {
      ++recovered.items;
      recovered.spans += item.span_count;
    }
    spool.close();
  }
  return recovered;
}

}  // namespace

void spool_records(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return;
  static const std::string directory = [] {
    spdlog::set_level(spdlog::level::off);
    return (fs::temp_directory_path() / ("proxy-fuzz-spool-" + std::to_string(getpid()))).string();
  }();
  // data[0]: bit 0 prepends the segment header (so the fuzzer need not find it), bits 1-3 say how
  // many 12-byte ack entries follow; the rest is the segment file.
  const bool header = (data[0] & 1) != 0;
  const std::size_t ack_bytes = std::min<std::size_t>(12u * ((data[0] >> 1) & 7), size - 1);
  const std::string_view acks(reinterpret_cast<const char*>(data + 1), ack_bytes);
  std::string segment = header ? std::string("OMPSPL01") : std::string();
  segment.append(reinterpret_cast<const char*>(data + 1 + ack_bytes), size - 1 - ack_bytes);

  // The scan alone: records lie in order inside the valid prefix, and any byte outside it is
  // reported as a torn tail or corruption.
  const queue::ScanResult scan = queue::scan_records(segment);
  std::size_t covered = std::min(segment.size(), queue::kFileMagicBytes);
  bool contiguous = true;
  for (const auto& record : scan.records) {
    require(record.offset >= covered, "records overlap or go backwards");
    contiguous &= record.offset == covered;
    covered = record.offset + queue::framed_size(record.body.size());
    require(covered <= scan.valid_end, "a record ends past valid_end");
  }
  require(scan.valid_end <= segment.size(), "valid_end past the file");
  const bool damaged = !contiguous || covered != segment.size();
  require(!damaged || scan.torn_tail || scan.corrupt_records > 0, "damage went unreported by the scan");

  std::error_code ec;
  fs::remove_all(directory, ec);
  fs::create_directories(directory);
  const std::string path = (fs::path(directory) / "segment-00000000000000000001.spool").string();
  std::ofstream(path, std::ios::binary) << segment;
  if (!acks.empty()) {
    std::ofstream((fs::path(directory) / "segment-00000000000000000001.acks").string(),
                  std::ios::binary)
        << acks;
  }
  const Recovered first = recover(directory);
  require(first.items == first.report.records, "recovered records and queued items differ");
  require(first.spans == first.report.spans, "recovered span count and queued spans differ");
  const bool has_header = segment.size() >= queue::kFileMagicBytes && segment.starts_with("OMPSPL01");
  if (!has_header || damaged) {
    require(first.report.torn_tails + first.report.corrupt_records > 0, "a damaged segment was not reported");
  }
  // The torn tail was cut off: a second recovery finds the same records and no tail to repair.
  const Recovered second = recover(directory);
  require(second.report.torn_tails == 0, "a torn tail survived recovery");
  require(second.items == first.items, "a second recovery found different records");
}

}  // namespace proxy::fuzz

namespace proxy::fuzz {

void json_structure(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return;
  static const std::vector<config::ModeByName> roles{{"system", PolicyMode::hash}, {"user", PolicyMode::mask}};
  static const std::vector<config::ModeByName> parts{{"tool_call_response", PolicyMode::hash}};
  policy::StructureOptions options;
  options.max_depth = 1u + data[0] % 16;
  if (data[0] & 0x80) {
    options.roles = roles;
    options.parts = parts;
  }
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string out = "prefix";
  const policy::StructureResult result =
      policy::rewrite_structure(text, PolicyMode::mask, options, MaskingRewriter{}, out);
  if (result.fallback != policy::Fallback::none) {
    require(out == "prefix", "a failed walk left output behind");
    return;
  }
  require(out.starts_with("prefix"), "the walk did not append");
  boost::system::error_code error;
  const boost::json::value parsed = boost::json::parse(std::string_view(out).substr(6), error);
  require(!error, "the walk's output is not valid JSON");
  require(masked_json(parsed, options, false), "a leaf survived the structure-kept mask");
}

}  // namespace proxy::fuzz
