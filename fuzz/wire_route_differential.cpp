#include "wire_route_differential.hpp"

#include <cstdint>
#include <vector>

#include "differential.hpp"
#include "otlp/protobuf.hpp"
#include "receiver/export_handler.hpp"

namespace proxy::fuzz {
namespace {

using Outcome = routing::WireRouted::Outcome;

// Every counter route() and route_wire() add to, in a fixed order.
std::vector<std::uint64_t> counters(const routing::Router& router) {
  std::vector<std::uint64_t> all;
  const auto add = [&all](const auto& counter) { all.push_back(counter.load(std::memory_order_relaxed)); };
  add(router.stats().requests_split);
  add(router.stats().headers_overridden);
  for (std::size_t route = 0; route < router.table().routes().size(); ++route) add(router.stats().route_spans[route]);
  const policy::PolicyStats& policy = router.policy_stats();
  for (const auto& mode : policy.values) {
    for (const auto& counter : mode) add(counter);
  }
  for (const auto* counter : {&policy.redaction_matches, &policy.depth_rejected, &policy.koog_hidden, &policy.spans,
                              &policy.structured}) {
    add(*counter);
  }
  for (const auto& counter : policy.structure_fallbacks) add(counter);
  const normalize::NormalizeStats& normalized = router.normalize_stats();
  for (const auto& counter : normalized.changes) add(counter);
  add(normalized.spans);
  for (const auto& source : normalized.typed) {
    for (const auto& counter : source) add(counter);
  }
  const normalize::PreviewCacheStats& previews = router.preview_cache().stats();
  for (const auto* counter : {&previews.stored, &previews.hits, &previews.misses, &previews.evicted_size,
                              &previews.evicted_ttl, &previews.evicted_oversize, &previews.held}) {
    add(*counter);
  }
  return all;
}

std::vector<std::uint64_t> added(const std::vector<std::uint64_t>& before, const std::vector<std::uint64_t>& after) {
  std::vector<std::uint64_t> difference(after.size());
  for (std::size_t i = 0; i < after.size(); ++i) difference[i] = after[i] - before[i];
  return difference;
}

// The message path's answer, in the wire path's terms.
struct MessagePath {
  bool decoded = false;
  Outcome outcome = Outcome::routed;
  receiver::CheckedRequest checked;
  std::vector<queue::QueueItem> items;
  std::string error;
};

MessagePath message_path(const routing::Router& router, const config::ReceiverConfig& receiver, std::string_view body,
                         std::optional<std::string_view> header) {
  MessagePath path;
  otlp::ExportRequest request;
  path.checked = receiver::decode_and_check(body, otlp::BodyEncoding::protobuf, receiver, request);
  path.decoded = path.checked.decoded.ok();
  if (!path.decoded) return path;
  if (path.checked.too_many_spans) {
    path.outcome = Outcome::too_many_spans;
  } else if (path.checked.valid == 0 && path.checked.invalid.rejected > 0) {
    path.outcome = Outcome::all_invalid;
  } else {
    auto routed = router.route(request, header);
    if (auto* error = std::get_if<routing::RoutingError>(&routed)) {
      path.outcome = Outcome::routing_error;
      path.error = error->message;
    } else {
      path.items = std::get<std::vector<queue::QueueItem>>(std::move(routed));
    }
  }
  return path;
}

std::string compare_checks(const otlp::wire::ChecksResult& wire, const receiver::CheckedRequest& expected,
                           Outcome outcome) {
  if (wire.received != expected.received) return "received spans differ";
  if (outcome == Outcome::too_many_spans) return {};
  if (wire.valid != expected.valid) return "valid spans differ";
  if (wire.trimmed.spans != expected.trimmed.spans || wire.trimmed.attributes != expected.trimmed.attributes ||
      wire.trimmed.first != expected.trimmed.first) {
    return "trim counts differ: \"" + wire.trimmed.first + "\" vs \"" + expected.trimmed.first + "\"";
  }
  if (wire.invalid.rejected != expected.invalid.rejected || wire.invalid.first_problem != expected.invalid.first_problem) {
    return "invalid span counts differ: \"" + wire.invalid.first_problem + "\" vs \"" +
           expected.invalid.first_problem + "\"";
  }
  return {};
}

std::string compare_items(const std::vector<queue::QueueItem>& wire, const std::vector<queue::QueueItem>& expected) {
  if (wire.size() != expected.size()) {
    return "item counts differ: " + std::to_string(wire.size()) + " vs " + std::to_string(expected.size());
  }
  for (std::size_t i = 0; i < wire.size(); ++i) {
    if (wire[i].experiment.describe() != expected[i].experiment.describe()) return "item experiments differ";
    if (wire[i].span_count != expected[i].span_count) {
      return "item " + std::to_string(i) + " span counts differ: " + std::to_string(wire[i].span_count) + " vs " +
             std::to_string(expected[i].span_count);
    }
    if ((wire[i].hold == nullptr) != (expected[i].hold == nullptr)) return "item " + std::to_string(i) + " held by one path only";
    if (wire[i].hold && (wire[i].hold->key != expected[i].hold->key || wire[i].hold->traces != expected[i].hold->traces)) {
      return "item " + std::to_string(i) + " holds other traces";
    }
    const auto difference =
        parsed_difference<otlp::ExportRequest>(expected[i].payload, wire[i].payload, kMessageVsWire);
    if (difference) return "item " + std::to_string(i) + " differs: " + *difference;
  }
  return {};
}

std::string compare_paths(const routing::WireRouted& wire, const MessagePath& expected) {
  const bool malformed = wire.outcome == Outcome::malformed;
  if (malformed || !expected.decoded) return malformed == expected.decoded ? "refused by one path only" : "";
  if (wire.outcome != expected.outcome) {
    return "outcomes differ: " + std::to_string(static_cast<int>(wire.outcome)) + " vs " +
           std::to_string(static_cast<int>(expected.outcome));
  }
  if (std::string checks = compare_checks(wire.checks, expected.checked, wire.outcome); !checks.empty()) return checks;
  if (wire.error != expected.error) return "routing errors differ: " + wire.error + " vs " + expected.error;
  return compare_items(wire.items, expected.items);
}

}  // namespace

WireRouteComparison compare_wire_routes(const routing::Router& message_router, const routing::Router& wire_router,
                                        const config::ReceiverConfig& receiver, std::string_view body,
                                        std::optional<std::string_view> header) {
  WireRouteComparison comparison;
  const auto message_before = counters(message_router);
  const auto wire_before = counters(wire_router);
  const MessagePath expected = message_path(message_router, receiver, body, header);
  const otlp::AttributeLimits limits{receiver.max_attributes_per_span, receiver.max_attributes_per_event,
                                     receiver.max_attributes_per_link};
  const routing::WireRouted wire = wire_router.route_wire(body, header, limits, receiver.max_spans_per_request);
  comparison.wire = wire.outcome;
  comparison.wire_error = wire.wire_error;
  if (wire.outcome == Outcome::unsupported) return comparison;
  comparison.mismatch = compare_paths(wire, expected);
  if (comparison.mismatch.empty() && added(message_before, counters(message_router)) != added(wire_before, counters(wire_router))) {
    comparison.mismatch = "the routers' counters differ";
  }
  return comparison;
}

}  // namespace proxy::fuzz
