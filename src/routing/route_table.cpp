#include "routing/route_table.hpp"

#include <map>

#include "common/glob.hpp"

namespace proxy::routing {
namespace {

// A decoded ResourceSpans, as route conditions read it.
class MessageView final : public ResourceView {
 public:
  explicit MessageView(const otlp::ResourceSpans& resource_spans) : resource_spans_(resource_spans) {}

  std::optional<std::string_view> attribute_text(std::string_view key, std::string& buffer) const override {
    for (const otlp::KeyValue& attribute : resource_spans_.resource().attributes()) {
      if (attribute.key() != key) continue;
      const otlp::AnyValue& value = attribute.value();
      switch (value.value_case()) {
        case otlp::AnyValue::kStringValue: return std::string_view(value.string_value());
        case otlp::AnyValue::kIntValue: return int_text(value.int_value(), buffer);
        case otlp::AnyValue::kBoolValue: return bool_text(value.bool_value());
        default: return std::nullopt;
      }
    }
    return std::nullopt;
  }

  bool any_scope_name(const ValueMatcher& matcher) const override {
    for (const otlp::ScopeSpans& scope_spans : resource_spans_.scope_spans()) {
      if (matcher.matches(scope_spans.scope().name())) return true;
    }
    return false;
  }

 private:
  const otlp::ResourceSpans& resource_spans_;
};

bool route_matches(const CompiledRoute& route, const ResourceView& resource_spans,
                   std::optional<std::string_view> header) {
  switch (route.header_condition) {
    case config::HeaderCondition::any:
      break;
    case config::HeaderCondition::present:
      if (!header) return false;
      break;
    case config::HeaderCondition::absent:
      if (header) return false;
      break;
    case config::HeaderCondition::equals:
      if (!header || *header != route.header_value) return false;
      break;
  }
  std::string buffer;
  for (const auto& [key, matcher] : route.resource) {
    const auto text = resource_spans.attribute_text(key, buffer);
    if (!text || !matcher.matches(*text)) return false;
  }
  return !route.scope_name || resource_spans.any_scope_name(*route.scope_name);
}

}  // namespace

std::string_view int_text(std::int64_t value, std::string& buffer) {
  buffer = std::to_string(value);
  return buffer;
}

ValueMatcher::ValueMatcher(const config::ValueMatch& match) : kind_(match.kind), pattern_(match.pattern) {
  if (kind_ == config::ValueMatch::Kind::regex) {
    RE2::Options options;
    options.set_log_errors(false);
    regex_ = std::make_unique<RE2>(pattern_, options);
    if (!regex_->ok()) {
      throw config::ConfigError("route regex \"" + pattern_ + "\": " + regex_->error());
    }
  }
}

bool ValueMatcher::matches(std::string_view value) const {
  switch (kind_) {
    case config::ValueMatch::Kind::exact:
      return value == pattern_;
    case config::ValueMatch::Kind::glob:
      return glob_match(pattern_, value);
    case config::ValueMatch::Kind::regex:
      return RE2::FullMatch(re2::StringPiece(value.data(), value.size()), *regex_);
  }
  return false;
}

std::optional<std::string_view> header_value(std::optional<std::string_view> header) {
  if (!header) return std::nullopt;
  std::string_view value = *header;
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  return value;
}

RouteTable::RouteTable(const config::Config& config) {
  std::map<std::string, std::shared_ptr<const policy::CompiledPolicy>, std::less<>> compiled;
  auto policy_named = [&](const std::string& name, const std::string& route) {
    if (auto it = compiled.find(name); it != compiled.end()) return it->second;
    const config::PolicyConfig* found = config::find_policy(config, name);
    if (found == nullptr) {
      throw config::ConfigError("route " + route + ": unknown policy \"" + name + "\"");
    }
    auto policy = std::make_shared<const policy::CompiledPolicy>(*found);
    compiled.emplace(name, policy);
    return policy;
  };
  const ExperimentRef configured = ExperimentSelector(config.mlflow).configured();

  for (const config::RouteConfig& route : config.routes) {
    CompiledRoute compiled_route;
    compiled_route.name = route.name;
    for (const config::AttributeMatch& attribute : route.match.resource) {
      compiled_route.resource.emplace_back(attribute.key, ValueMatcher(attribute.value));
    }
    if (route.match.scope_name) compiled_route.scope_name.emplace(*route.match.scope_name);
    compiled_route.header_condition = route.match.header;
    compiled_route.header_value = route.match.header_value;
    compiled_route.experiment = !route.experiment_id.empty()     ? ExperimentRef::by_id(route.experiment_id)
                                : !route.experiment_name.empty() ? ExperimentRef::by_name(route.experiment_name)
                                                                 : configured;
    if (compiled_route.experiment.kind == ExperimentRef::Kind::name) {
      compiled_route.experiment.create = route.create_experiment.value_or(config.mlflow.create_experiments);
    }
    compiled_route.header_mode = route.header;
    compiled_route.policy_name = route.policy.empty() ? config.default_route.policy : route.policy;
    compiled_route.policy = policy_named(compiled_route.policy_name, route.name);
    compiled_route.normalizer = std::make_shared<const normalize::Normalizer>(
        route.normalize ? *route.normalize : config.default_route.normalize);
    routes_.push_back(std::move(compiled_route));
  }
  CompiledRoute fallback;
  fallback.name = "default";
  fallback.experiment = configured;
  fallback.header_mode = config.default_route.header;
  fallback.policy_name = config.default_route.policy;
  fallback.policy = policy_named(fallback.policy_name, "default_route");
  fallback.normalizer = std::make_shared<const normalize::Normalizer>(config.default_route.normalize);
  routes_.push_back(std::move(fallback));
}

std::size_t RouteTable::match(const otlp::ResourceSpans& resource_spans,
                              std::optional<std::string_view> header) const {
  return match(MessageView(resource_spans), header);
}

std::size_t RouteTable::match(const ResourceView& resource_spans, std::optional<std::string_view> header) const {
  const auto value = header_value(header);
  for (std::size_t i = 0; i + 1 < routes_.size(); ++i) {
    if (route_matches(routes_[i], resource_spans, value)) return i;
  }
  return default_route();
}

std::vector<std::string> RouteTable::routes_to(const std::string& experiment_name) const {
  std::vector<std::string> names;
  for (const CompiledRoute& route : routes_) {
    if (route.experiment.kind == ExperimentRef::Kind::name && route.experiment.value == experiment_name) {
      names.push_back(route.name);
    }
  }
  return names;
}

std::variant<ExperimentRef, RoutingError> RouteTable::experiment(
    std::size_t route, std::optional<std::string_view> header) const {
  const CompiledRoute& compiled = routes_.at(route);
  const auto value = header_value(header);
  if (!value || compiled.header_mode == config::HeaderMode::ignore) return compiled.experiment;
  if (!is_experiment_id(*value)) {
    return RoutingError{"header x-mlflow-experiment-id must be a numeric MLflow experiment id, got \"" +
                        std::string(value->substr(0, 64)) +
                        "\" (route by name with the proxy's routes or --experiment-name instead)"};
  }
  if (compiled.header_mode == config::HeaderMode::override_route) return compiled.experiment;
  return ExperimentRef::by_id(std::string(*value));
}

}  // namespace proxy::routing
