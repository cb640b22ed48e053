// Routes a decoded request and applies each route's policy: one queue item per route, so one
// incoming request whose resource spans match different routes becomes one outgoing batch per
// experiment. Spans stay with their ResourceSpans, so a trace's spans from one service travel
// together. Works in place on the request (normally on the receiver's arena).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/config.hpp"
#include "normalize/normalize.hpp"
#include "normalize/preview_cache.hpp"
#include "otlp/types.hpp"
#include "policy/policy.hpp"
#include "queue/queue_item.hpp"
#include "queue/queue_observer.hpp"
#include "otlp/attribute_limits.hpp"
#include "policy/wire_policy.hpp"
#include "routing/route_table.hpp"
#include "routing/wire_route.hpp"

namespace proxy::routing {

struct RouterStats {
  using Counter = std::atomic<std::uint64_t>;
  Counter requests_split{0};       // requests that became more than one queue item
  Counter headers_overridden{0};   // a client header replaced by the route's experiment
  std::unique_ptr<Counter[]> route_spans;  // spans per route, the default route last
};

class Router {
 public:
  // Throws config::ConfigError (see RouteTable). `previews`: the trace preview cache, shared
  // with the routers before and after this one (reloads); null: a cache of its own.
  explicit Router(const config::Config& config,
                  std::shared_ptr<normalize::PreviewCache> previews = nullptr);

  // Routes and applies the policies; the items are ready to push. A malformed client header on
  // a route that honors or overrides it is a RoutingError (400).
  std::variant<std::vector<queue::QueueItem>, RoutingError> route(
      otlp::ExportRequest& request, std::optional<std::string_view> header) const;

  // decode_and_check's checks and route() on a protobuf request's bytes (routing/wire_route.hpp):
  // the checks and policies in one walk, then each normalizing route's payload normalized and its
  // roots given their previews; the same items, counters and refusals. On unsupported nothing
  // was counted or cached, and the caller takes the message path.
  WireRouted route_wire(std::string_view body, std::optional<std::string_view> header,
                        const otlp::AttributeLimits& limits, std::size_t max_spans) const;

  const RouteTable& table() const { return table_; }
  const policy::PolicyStats& policy_stats() const { return policy_stats_; }
  const RouterStats& stats() const { return stats_; }
  const normalize::NormalizeStats& normalize_stats() const { return normalize_stats_; }
  const normalize::PreviewCache& preview_cache() const { return *preview_cache_; }
  const std::shared_ptr<normalize::PreviewCache>& shared_preview_cache() const {
    return preview_cache_;
  }

  // One line per route for the start-up log: name, match, experiment, policy, header mode.
  std::vector<std::string> describe() const;

 private:
  struct Pass;
  struct RouteItems;

  // route()'s steps, in order.
  bool match_routes(const otlp::ExportRequest& request, std::optional<std::string_view> header,
                    std::vector<std::size_t>& route_of) const;
  std::optional<RoutingError> select_experiments(
      const std::vector<std::size_t>& route_of, std::optional<std::string_view> header,
      std::vector<std::optional<ExperimentRef>>& experiments) const;
  void transform(std::size_t route, otlp::ResourceSpans& resource_spans, Pass& pass) const;
  void collect(std::size_t route, const ExperimentRef& experiment,
               otlp::ResourceSpans& resource_spans, RouteItems& out, Pass& pass) const;
  std::vector<queue::QueueItem> items_of(std::vector<RouteItems>& per_route, const Pass& pass) const;
  // route_wire()'s steps after the fused pass.
  struct WireNormalized {
    std::vector<std::string> payloads;  // per route, when `done`
    std::vector<normalize::PreviewOffers> offers;  // made once the request goes on
    std::vector<char> done;
    std::vector<std::size_t> roots;  // per route: root spans in its payload (none: nothing to fill)
    normalize::NormalizeTally tally;
    normalize::PreviewCache::Clock::time_point now;
    void reset(const policy::RoutedOutput& out);
  };
  bool normalize_wire(const policy::RoutedOutput& out, WireNormalized& normalized) const;
  void deliver_wire(const std::vector<std::size_t>& route_of, std::optional<std::string_view> header,
                    policy::RoutedOutput& out, const policy::PolicyTally& tally, WireNormalized& normalized,
                    WireRouted& routed) const;
  void items_wire(std::size_t route, const ExperimentRef& experiment, std::uint32_t spans, WireNormalized& normalized,
                  std::vector<queue::QueueItem>& items) const;

  RouteTable table_;
  std::vector<config::RouteConfig> route_configs_;  // for describe()
  mutable policy::PolicyStats policy_stats_;
  mutable RouterStats stats_;
  mutable normalize::NormalizeStats normalize_stats_;
  std::shared_ptr<normalize::PreviewCache> preview_cache_;  // shared by all routes, keyed by route
  std::vector<std::string> preview_keys_;  // per route: name, experiment, policy
};

// The queue observer for items held for a trace preview (normalize.preview_hold): lets them go as
// soon as their traces' invoke_agent has arrived, and fills their roots from `previews` when they
// go. Whoever owns the queue subscribes it; routing itself never touches the queue.
class PreviewHolds final : public queue::QueueObserver {
 public:
  explicit PreviewHolds(std::shared_ptr<normalize::PreviewCache> previews)
      : previews_(std::move(previews)) {}

  bool hold_ready(const queue::QueueItem& item) const override;
  void on_hold_released(queue::QueueItem& item) override;

 private:
  std::shared_ptr<normalize::PreviewCache> previews_;
};

// Appends `resource_spans` to `out` as field 1 of an ExportTraceServiceRequest: serialized
// requests concatenate, so a batch is built by appending.
void append_resource_spans(std::string& out, const otlp::ResourceSpans& resource_spans);

}  // namespace proxy::routing
