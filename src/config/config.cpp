#include "config/config.hpp"

namespace proxy::config {

std::string Endpoint::to_string() const {
  // An IPv6 address needs brackets, or its colons would run into the port's.
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

const std::vector<NamedPolicy>& builtin_policies() {
  static const std::vector<NamedPolicy> policies = [] {
    PolicyConfig verbose;
    verbose.content = PolicyMode::verbose;
    PolicyConfig redact;
    redact.content = PolicyMode::redact;
    return std::vector<NamedPolicy>{
        {"default", PolicyConfig{}}, {"mask", PolicyConfig{}}, {"verbose", verbose}, {"redact", redact}};
  }();
  return policies;
}

const PolicyConfig* find_policy(const Config& config, std::string_view name) {
  for (const NamedPolicy& named : config.policies) {
    if (named.name == name) return &named.policy;
  }
  for (const NamedPolicy& named : builtin_policies()) {
    if (named.name == name) return &named.policy;
  }
  return nullptr;
}

}  // namespace proxy::config
