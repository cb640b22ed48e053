// Routing rules (docs/architecture.md, "Stages"), compiled once from the config: ordered routes,
// the first match wins, then the default route. A route matches a ResourceSpans on its resource
// attributes, on the instrumentation scope names of its ScopeSpans (any of them: a trace's spans
// from several libraries stay together) and on the client's x-mlflow-experiment-id header.
// Pure: no I/O, no clocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <re2/re2.h>

#include "config/config.hpp"
#include "mlflow/experiment_ref.hpp"
#include "normalize/normalize.hpp"
#include "otlp/types.hpp"
#include "policy/policy.hpp"
#include "routing/experiment_selector.hpp"

namespace proxy::routing {

// exact, glob or regex (RE2, the whole value must match).
class ValueMatcher {
 public:
  explicit ValueMatcher(const config::ValueMatch& match);
  bool matches(std::string_view value) const;

 private:
  config::ValueMatch::Kind kind_;
  std::string pattern_;
  std::unique_ptr<RE2> regex_;
};

// What a route's conditions read of one ResourceSpans, filled from a decoded message
// (RouteTable::match) or from its bytes (routing/wire_route.hpp), so both paths match alike.
class ResourceView {
 public:
  virtual ~ResourceView() = default;
  // The first resource attribute named `key` as text (a string, an int in decimal, a bool as
  // true or false; `buffer` may hold it); nullopt when absent or of another type.
  virtual std::optional<std::string_view> attribute_text(std::string_view key, std::string& buffer) const = 0;
  // Whether the scope of one of its ScopeSpans has a name `matcher` takes.
  virtual bool any_scope_name(const ValueMatcher& matcher) const = 0;
};

// An int or bool attribute as a route condition reads it.
std::string_view int_text(std::int64_t value, std::string& buffer);
inline std::string_view bool_text(bool value) { return value ? "true" : "false"; }

struct CompiledRoute {
  std::string name;
  std::vector<std::pair<std::string, ValueMatcher>> resource;
  std::optional<ValueMatcher> scope_name;
  config::HeaderCondition header_condition = config::HeaderCondition::any;
  std::string header_value;
  ExperimentRef experiment;
  config::HeaderMode header_mode = config::HeaderMode::honor;
  std::string policy_name;
  std::shared_ptr<const policy::CompiledPolicy> policy;  // shared by routes naming one policy
  std::shared_ptr<const normalize::Normalizer> normalizer;  // runs after the policy
};

class RouteTable {
 public:
  // Throws config::ConfigError for an unknown policy or a regex RE2 rejects (the loader checks
  // both first, with YAML positions).
  explicit RouteTable(const config::Config& config);

  // The first route that matches, else the default route (index routes().size() - 1).
  std::size_t match(const otlp::ResourceSpans& resource_spans,
                    std::optional<std::string_view> header) const;
  std::size_t match(const ResourceView& resource_spans, std::optional<std::string_view> header) const;

  // The experiment for spans on the route, given the client's header and the route's mode.
  std::variant<ExperimentRef, RoutingError> experiment(std::size_t route,
                                                       std::optional<std::string_view> header) const;

  // Every route, the default one last.
  const std::vector<CompiledRoute>& routes() const { return routes_; }
  // The names of the routes that send to the experiment named `experiment_name`, in order.
  std::vector<std::string> routes_to(const std::string& experiment_name) const;
  std::size_t default_route() const { return routes_.size() - 1; }

 private:
  std::vector<CompiledRoute> routes_;
};

// The header's value without surrounding blanks; nullopt when absent or blank.
std::optional<std::string_view> header_value(std::optional<std::string_view> header);

}  // namespace proxy::routing
