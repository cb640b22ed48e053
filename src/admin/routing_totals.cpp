#include "admin/routing_totals.hpp"

#include <algorithm>

namespace proxy::admin {

std::string experiment_label(const routing::CompiledRoute& route) {
  return route.experiment.value;
}

void RoutingCounts::add(const routing::Router& router) {
  const auto& routes = router.table().routes();
  const auto& stats = router.stats();
  for (std::size_t i = 0; i < routes.size(); ++i) {
    route_spans[{routes[i].name, experiment_label(routes[i])}] +=
        stats.route_spans[i].load(std::memory_order_relaxed);
  }
  const auto& policy = router.policy_stats();
  for (std::size_t mode = 0; mode < policy::kModeCount; ++mode) {
    for (std::size_t family = 0; family < policy::kFamilyCount; ++family) {
      policy_values[mode][family] += policy.values[mode][family].load(std::memory_order_relaxed);
    }
  }
  redaction_matches += policy.redaction_matches.load(std::memory_order_relaxed);
  depth_rejected += policy.depth_rejected.load(std::memory_order_relaxed);
  koog_hidden += policy.koog_hidden.load(std::memory_order_relaxed);
  structured += policy.structured.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < policy::kFallbackCount; ++i) {
    structure_fallbacks[i] += policy.structure_fallbacks[i].load(std::memory_order_relaxed);
  }
  policy_spans += policy.spans.load(std::memory_order_relaxed);
  requests_split += stats.requests_split.load(std::memory_order_relaxed);
  headers_overridden += stats.headers_overridden.load(std::memory_order_relaxed);
  const normalize::NormalizeStats& normalized = router.normalize_stats();
  normalize_spans += normalized.spans.load(std::memory_order_relaxed);
  for (std::size_t rule = 0; rule < normalize::kRuleCount; ++rule) {
    normalize_changes[rule] += normalized.count(static_cast<normalize::Rule>(rule));
  }
  for (std::size_t source = 0; source < normalize::kTypeSourceCount; ++source) {
    for (std::size_t type = 0; type < normalize::kSpanTypeCount; ++type) {
      normalize_typed[source][type] +=
          normalized.typed_count(static_cast<normalize::TypeSource>(source), type);
    }
  }
}

void RoutingCounts::add(const RoutingCounts& other) {
  for (const auto& [labels, spans] : other.route_spans) route_spans[labels] += spans;
  for (std::size_t mode = 0; mode < policy::kModeCount; ++mode) {
    for (std::size_t family = 0; family < policy::kFamilyCount; ++family) {
      policy_values[mode][family] += other.policy_values[mode][family];
    }
  }
  redaction_matches += other.redaction_matches;
  depth_rejected += other.depth_rejected;
  koog_hidden += other.koog_hidden;
  structured += other.structured;
  for (std::size_t i = 0; i < policy::kFallbackCount; ++i) structure_fallbacks[i] += other.structure_fallbacks[i];
  policy_spans += other.policy_spans;
  requests_split += other.requests_split;
  headers_overridden += other.headers_overridden;
  normalize_spans += other.normalize_spans;
  for (std::size_t rule = 0; rule < normalize::kRuleCount; ++rule) {
    normalize_changes[rule] += other.normalize_changes[rule];
  }
  for (std::size_t source = 0; source < normalize::kTypeSourceCount; ++source) {
    for (std::size_t type = 0; type < normalize::kSpanTypeCount; ++type) {
      normalize_typed[source][type] += other.normalize_typed[source][type];
    }
  }
}

void RoutingTotals::set_current(std::shared_ptr<const routing::Router> router) {
  std::lock_guard lock(mutex_);
  if (current_) retired_.push_back(std::move(current_));
  current_ = std::move(router);
}

RoutingCounts RoutingTotals::snapshot() {
  std::lock_guard lock(mutex_);
  // A retired router only we hold can count no more: fold it and let it go.
  std::erase_if(retired_, [this](const std::shared_ptr<const routing::Router>& router) {
    if (router.use_count() > 1) return false;
    folded_.add(*router);
    return true;
  });
  RoutingCounts counts = folded_;
  for (const auto& router : retired_) counts.add(*router);
  if (current_) counts.add(*current_);
  return counts;
}

}  // namespace proxy::admin
