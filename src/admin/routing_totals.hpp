// Routing and policy counters that survive a reload: every Router (so every SIGHUP) starts its
// own counters at zero, and Prometheus counters must not go back. A retired router is kept while
// requests still use it, then its counts are folded into plain totals and it is freed.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "normalize/normalize.hpp"
#include "policy/policy.hpp"
#include "routing/router.hpp"

namespace proxy::admin {

struct RoutingCounts {
  // Spans by (route name, the route's configured experiment).
  std::map<std::pair<std::string, std::string>, std::uint64_t> route_spans;
  std::array<std::array<std::uint64_t, policy::kFamilyCount>, policy::kModeCount> policy_values{};
  std::uint64_t redaction_matches = 0;
  std::uint64_t depth_rejected = 0;
  std::uint64_t koog_hidden = 0;
  std::uint64_t structured = 0;
  std::array<std::uint64_t, policy::kFallbackCount> structure_fallbacks{};
  std::uint64_t policy_spans = 0;
  std::uint64_t requests_split = 0;
  std::uint64_t headers_overridden = 0;
  std::uint64_t normalize_spans = 0;
  std::array<std::uint64_t, normalize::kRuleCount> normalize_changes{};
  std::array<std::array<std::uint64_t, normalize::kSpanTypeCount>, normalize::kTypeSourceCount>
      normalize_typed{};

  void add(const routing::Router& router);
  void add(const RoutingCounts& other);
};

// The experiment label of a route: the id or name it sends to unless the client's header picks
// another (header: honor).
std::string experiment_label(const routing::CompiledRoute& route);

class RoutingTotals {
 public:
  // The router now in use (at start and after each reload).
  void set_current(std::shared_ptr<const routing::Router> router);

  // Everything counted so far, by every router this process has used.
  RoutingCounts snapshot();

 private:
  std::mutex mutex_;
  std::shared_ptr<const routing::Router> current_;
  std::vector<std::shared_ptr<const routing::Router>> retired_;  // still held by a request
  RoutingCounts folded_;
};

}  // namespace proxy::admin
