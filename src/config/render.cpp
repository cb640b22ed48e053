// render_effective: the configuration as YAML in the schema load() reads, secrets hidden.
#include <string>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "config/load.hpp"
#include "config/values.hpp"

namespace proxy::config {

namespace {

constexpr std::string_view kHidden = "<hidden>";

// Strings are always quoted so "123" stays a string and "[::1]:4318" stays a scalar.
void string_value(YAML::Emitter& out, std::string_view key, std::string_view value) {
  out << YAML::Key << std::string(key) << YAML::Value << YAML::DoubleQuoted << std::string(value);
}

void plain_value(YAML::Emitter& out, std::string_view key, const std::string& value) {
  out << YAML::Key << std::string(key) << YAML::Value << value;
}

template <class Integer>
void integer_value(YAML::Emitter& out, std::string_view key, Integer value) {
  out << YAML::Key << std::string(key) << YAML::Value << value;
}

void secret_value(YAML::Emitter& out, std::string_view key, const std::string& value) {
  string_value(out, key, value.empty() ? std::string_view{} : kHidden);
}

void begin_section(YAML::Emitter& out, std::string_view key) {
  out << YAML::Key << std::string(key) << YAML::Value << YAML::BeginMap;
}

void key_rules(YAML::Emitter& out, std::string_view key, const std::vector<KeyRule>& rules) {
  if (rules.empty()) return;
  out << YAML::Key << std::string(key) << YAML::Value << YAML::BeginSeq;
  for (const KeyRule& rule : rules) {
    out << YAML::Flow << YAML::BeginMap;
    string_value(out, "key", rule.key);
    plain_value(out, "mode", std::string(format_policy_mode(rule.mode)));
    if (rule.truncate_bytes) integer_value(out, "truncate_bytes", rule.truncate_bytes);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
}

void modes_by_name(YAML::Emitter& out, std::string_view key, const std::vector<ModeByName>& modes) {
  if (modes.empty()) return;
  out << YAML::Key << std::string(key) << YAML::Value << YAML::Flow << YAML::BeginMap;
  for (const ModeByName& entry : modes) {
    out << YAML::Key << YAML::DoubleQuoted << entry.name << YAML::Value
        << std::string(format_policy_mode(entry.mode));
  }
  out << YAML::EndMap;
}

void value_match(YAML::Emitter& out, std::string_view key, const ValueMatch& match) {
  static constexpr std::string_view kKinds[] = {"exact", "glob", "regex"};
  out << YAML::Key << std::string(key) << YAML::Value << YAML::Flow << YAML::BeginMap;
  string_value(out, kKinds[static_cast<int>(match.kind)], match.pattern);
  out << YAML::EndMap;
}

void flag_value(YAML::Emitter& out, std::string_view key, bool value) {
  plain_value(out, key, value ? "true" : "false");
}

void render_normalize(YAML::Emitter& out, const NormalizeConfig& n) {
  begin_section(out, "normalize");
  flag_value(out, "enabled", n.enabled);
  out << YAML::Key << "resource_attributes" << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (const std::string& key : n.resource_attributes) out << YAML::DoubleQuoted << key;
  out << YAML::EndSeq;
  plain_value(out, "resource_spans", std::string(format_resource_target(n.resource_target)));
  flag_value(out, "span_kind", n.span_kind);
  flag_value(out, "scope", n.scope);
  flag_value(out, "links", n.links);
  flag_value(out, "span_types", n.span_types);
  if (!n.span_type_rules.empty()) {
    out << YAML::Key << "span_type_rules" << YAML::Value << YAML::BeginSeq;
    for (const SpanTypeRule& rule : n.span_type_rules) {
      out << YAML::Flow << YAML::BeginMap;
      if (!rule.name.empty()) string_value(out, "name", rule.name);
      if (!rule.attribute.empty()) string_value(out, "attribute", rule.attribute);
      if (!rule.value.empty()) string_value(out, "value", rule.value);
      plain_value(out, "type", rule.type);
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }
  flag_value(out, "koog_io", n.koog_io);
  flag_value(out, "system_instructions", n.system_instructions);
  flag_value(out, "session_from_conversation", n.session_from_conversation);
  flag_value(out, "user_from_enduser", n.user_from_enduser);
  flag_value(out, "previews", n.previews);
  plain_value(out, "preview_hold", format_duration(n.preview_hold));
  out << YAML::EndMap;
}

void quoted_list(YAML::Emitter& out, std::string_view key, const std::vector<std::string>& items) {
  if (items.empty()) return;
  out << YAML::Key << std::string(key) << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (const std::string& item : items) out << YAML::DoubleQuoted << item;
  out << YAML::EndSeq;
}

void redact_patterns(YAML::Emitter& out, const std::vector<RedactPattern>& patterns) {
  if (patterns.empty()) return;
  out << YAML::Key << "redact_patterns" << YAML::Value << YAML::BeginSeq;
  for (const RedactPattern& pattern : patterns) {
    out << YAML::Flow << YAML::BeginMap;
    string_value(out, "name", pattern.name);
    string_value(out, "regex", pattern.regex);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
}

// One policy; an hmac key_file by its path only (the key is never part of the config).
void render_policy(YAML::Emitter& out, const NamedPolicy& named) {
  const PolicyConfig& p = named.policy;
  begin_section(out, named.name);
  plain_value(out, "content", std::string(format_policy_mode(p.content)));
  plain_value(out, "errors", std::string(format_policy_mode(p.errors)));
  plain_value(out, "other", std::string(format_policy_mode(p.other)));
  quoted_list(out, "content_keys", p.content_keys);
  key_rules(out, "keys", p.keys);
  key_rules(out, "resource_keys", p.resource_keys);
  redact_patterns(out, p.redact_patterns);
  plain_value(out, "builtin_patterns", p.builtin_patterns ? "true" : "false");
  integer_value(out, "truncate_bytes", p.truncate_bytes);
  integer_value(out, "hash_prefix", p.hash_prefix);
  integer_value(out, "max_depth", p.max_depth);
  plain_value(out, "structure", p.keep_structure ? "keep" : "whole");
  quoted_list(out, "structural_keys", p.structural_keys);
  integer_value(out, "max_structure_bytes", p.max_structure_bytes);
  modes_by_name(out, "messages", p.messages);
  modes_by_name(out, "parts", p.parts);
  if (!p.key_file.empty()) string_value(out, "key_file", p.key_file);
  out << YAML::EndMap;
}

// Policies, routes and the default route, in the schema load() reads.
void render_routing(YAML::Emitter& out, const Config& config) {
  if (!config.policies.empty()) {
    begin_section(out, "policies");
    for (const NamedPolicy& named : config.policies) render_policy(out, named);
    out << YAML::EndMap;
  }
  if (!config.routes.empty()) {
    out << YAML::Key << "routes" << YAML::Value << YAML::BeginSeq;
    for (const RouteConfig& route : config.routes) {
      out << YAML::BeginMap;
      string_value(out, "name", route.name);
      begin_section(out, "match");
      if (!route.match.resource.empty()) {
        begin_section(out, "resource");
        for (const AttributeMatch& attribute : route.match.resource) {
          value_match(out, attribute.key, attribute.value);
        }
        out << YAML::EndMap;
      }
      if (route.match.scope_name) value_match(out, "scope_name", *route.match.scope_name);
      switch (route.match.header) {
        case HeaderCondition::any:
          break;
        case HeaderCondition::present:
          string_value(out, "experiment_header", "present");
          break;
        case HeaderCondition::absent:
          string_value(out, "experiment_header", "absent");
          break;
        case HeaderCondition::equals:
          string_value(out, "experiment_header", route.match.header_value);
          break;
      }
      out << YAML::EndMap;
      if (!route.experiment_id.empty()) string_value(out, "experiment_id", route.experiment_id);
      if (!route.experiment_name.empty()) string_value(out, "experiment_name", route.experiment_name);
      if (!route.policy.empty()) string_value(out, "policy", route.policy);
      plain_value(out, "header", std::string(format_header_mode(route.header)));
      if (route.normalize) render_normalize(out, *route.normalize);
      if (route.experiment_id.empty()) {  // the effective value, whether set or inherited
        plain_value(out, "create_experiment",
                    route.create_experiment.value_or(config.mlflow.create_experiments) ? "true" : "false");
      }
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }
  begin_section(out, "default_route");
  string_value(out, "policy", config.default_route.policy);
  plain_value(out, "header", std::string(format_header_mode(config.default_route.header)));
  render_normalize(out, config.default_route.normalize);
  out << YAML::EndMap;
  begin_section(out, "preview_cache");
  plain_value(out, "max_bytes", format_size(config.preview_cache.max_bytes));
  plain_value(out, "ttl", format_duration(config.preview_cache.ttl));
  out << YAML::EndMap;
}

void render_receiver(YAML::Emitter& out, const ReceiverConfig& receiver) {
  begin_section(out, "receiver");
  string_value(out, "listen", receiver.listen.to_string());
  begin_section(out, "grpc");
  string_value(out, "listen", receiver.grpc.enabled ? receiver.grpc.listen.to_string() : "off");
  out << YAML::EndMap;
  if (receiver.tls.enabled()) {
    begin_section(out, "tls");
    string_value(out, "cert_file", receiver.tls.cert_file);
    string_value(out, "key_file", receiver.tls.key_file);
    if (!receiver.tls.client_ca_file.empty()) {
      string_value(out, "client_ca_file", receiver.tls.client_ca_file);
    }
    plain_value(out, "handshake_timeout", format_duration(receiver.tls.handshake_timeout));
    out << YAML::EndMap;
  }
  if (receiver.auth.enabled()) {
    begin_section(out, "auth");
    if (!receiver.auth.bearer_token_file.empty()) {
      string_value(out, "bearer_token_file", receiver.auth.bearer_token_file);
    } else {
      secret_value(out, "bearer_token", receiver.auth.bearer_token);
    }
    out << YAML::EndMap;
  }
  if (receiver.io_threads == 0) {
    plain_value(out, "io_threads", "auto");
  } else {
    integer_value(out, "io_threads", receiver.io_threads);
  }
  plain_value(out, "max_body_bytes", format_size(receiver.max_body_bytes));
  plain_value(out, "max_header_bytes", format_size(receiver.max_header_bytes));
  plain_value(out, "read_timeout", format_duration(receiver.read_timeout));
  plain_value(out, "idle_timeout", format_duration(receiver.idle_timeout));
  integer_value(out, "max_connections", receiver.max_connections);
  integer_value(out, "max_header_count", receiver.max_header_count);
  integer_value(out, "max_decompression_ratio", receiver.max_decompression_ratio);
  integer_value(out, "max_spans_per_request", receiver.max_spans_per_request);
  integer_value(out, "max_attributes_per_span", receiver.max_attributes_per_span);
  integer_value(out, "max_attributes_per_event", receiver.max_attributes_per_event);
  integer_value(out, "max_attributes_per_link", receiver.max_attributes_per_link);
  out << YAML::EndMap;
}

void render_mlflow(YAML::Emitter& out, const MlflowConfig& mlflow) {
  begin_section(out, "mlflow");
  string_value(out, "url", hide_url_password(mlflow.url));
  string_value(out, "experiment_id", mlflow.experiment_id);
  string_value(out, "experiment_name", mlflow.experiment_name);
  plain_value(out, "create_experiments", mlflow.create_experiments ? "true" : "false");
  plain_value(out, "request_timeout", format_duration(mlflow.request_timeout));
  plain_value(out, "connect_timeout", format_duration(mlflow.connect_timeout));
  plain_value(out, "experiment_cache_ttl", format_duration(mlflow.experiment_cache_ttl));
  string_value(out, "username", mlflow.username);
  secret_value(out, "password", mlflow.password);
  secret_value(out, "token", mlflow.token);
  if (mlflow.tls.configured()) {  // file names only: the key's content is never read here
    begin_section(out, "tls");
    string_value(out, "ca_file", mlflow.tls.ca_file);
    string_value(out, "client_cert_file", mlflow.tls.client_cert_file);
    string_value(out, "client_key_file", mlflow.tls.client_key_file);
    flag_value(out, "insecure_skip_verify", mlflow.tls.insecure_skip_verify);
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
}

void render_queue(YAML::Emitter& out, const QueueConfig& queue) {
  begin_section(out, "queue");
  plain_value(out, "max_bytes", format_size(queue.max_bytes));
  plain_value(out, "retry_after", format_duration(queue.retry_after));
  plain_value(out, "durability", std::string(format_durability(queue.durability)));
  string_value(out, "state_dir", queue.state_dir);
  plain_value(out, "max_disk_bytes", format_size(queue.max_disk_bytes));
  plain_value(out, "fsync", std::string(format_fsync(queue.fsync)));
  plain_value(out, "fsync_interval", format_duration(queue.fsync_interval));
  out << YAML::EndMap;
}

void render_exporter(YAML::Emitter& out, const ExporterConfig& exporter) {
  begin_section(out, "exporter");
  integer_value(out, "concurrency", exporter.concurrency);
  plain_value(out, "max_batch_bytes", format_size(exporter.max_batch_bytes));
  integer_value(out, "max_batch_spans", exporter.max_batch_spans);
  plain_value(out, "batch_linger", format_duration(exporter.batch_linger));
  string_value(out, "dead_letter_file", exporter.dead_letter_file);
  plain_value(out, "compression", std::string(format_upstream_compression(exporter.compression)));
  begin_section(out, "retry");
  plain_value(out, "initial_backoff", format_duration(exporter.retry.initial_backoff));
  plain_value(out, "max_backoff", format_duration(exporter.retry.max_backoff));
  plain_value(out, "multiplier", format_number(exporter.retry.multiplier));
  integer_value(out, "max_transient_422_retries", exporter.retry.max_transient_422_retries);
  out << YAML::EndMap << YAML::EndMap;
}

void render_log_and_admin(YAML::Emitter& out, const Config& config) {
  begin_section(out, "log");
  string_value(out, "level", config.log.level);
  string_value(out, "format", format_log_format(config.log.format));
  out << YAML::EndMap;

  begin_section(out, "admin");
  string_value(out, "listen", config.admin.enabled ? config.admin.listen.to_string() : "off");
  plain_value(out, "queue_high_water", format_number(config.admin.queue_high_water));
  plain_value(out, "probe_interval", format_duration(config.admin.probe_interval));
  integer_value(out, "max_connections", config.admin.max_connections);
  out << YAML::EndMap;
}

}  // namespace

std::string render_effective(const Config& config) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  render_receiver(out, config.receiver);
  render_mlflow(out, config.mlflow);
  render_queue(out, config.queue);
  render_exporter(out, config.exporter);
  render_log_and_admin(out, config);
  plain_value(out, "shutdown_timeout", format_duration(config.shutdown_timeout));
  render_routing(out, config);
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace proxy::config
