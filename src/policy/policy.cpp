#include "policy/policy.hpp"

#include <algorithm>
#include <charconv>

#include <openssl/evp.h>

#include "config/values.hpp"
#include "otlp/attribute_limits.hpp"

namespace proxy::policy {
namespace {

using Attributes = google::protobuf::RepeatedPtrField<otlp::KeyValue>;
using otlp::AnyValue;

void count(PolicyTally& tally, const Decision& decision) {
  ++tally.values[static_cast<std::size_t>(decision.mode)][static_cast<std::size_t>(decision.family)];
}

// Scratch space for rewritten values, reused by each I/O thread: no allocation per value once
// it has grown to the largest value seen.
std::string& scratch() {
  thread_local std::string text;
  text.clear();
  return text;
}

void append_number(std::string& out, std::uint64_t number) {
  char digits[24];
  const auto result = std::to_chars(digits, digits + sizeof digits, number);
  out.append(digits, result.ptr);
}

void append_hash(std::string& out, std::string_view text, unsigned prefix) {
  static constexpr char kHex[] = "0123456789abcdef";
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  out += "sha256:";
  if (EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    out += "unavailable";  // libcrypto failed (no SHA-256 provider): never leak the value
    return;
  }
  for (unsigned i = 0; i < length && 2 * i < prefix; ++i) {
    out += kHex[digest[i] >> 4];
    if (2 * i + 1 < prefix) out += kHex[digest[i] & 0x0f];
  }
}

// The rewritten text under the decision, into `out`; false when the text stays as it is.
bool transform_text(const CompiledPolicy& policy, const Decision& decision, std::string_view text,
                    bool binary, std::string& out, PolicyTally& tally) {
  switch (decision.mode) {
    case PolicyMode::verbose:
    case PolicyMode::drop:
      return false;
    case PolicyMode::mask:
      out += "[masked: ";
      append_number(out, text.size());
      out += " bytes]";
      return true;
    case PolicyMode::hash:
      append_hash(out, text, policy.config().hash_prefix);
      return true;
    case PolicyMode::truncate: {
      std::size_t cut = decision.truncate_bytes;
      if (text.size() <= cut) return false;
      // Cut at a UTF-8 character boundary so MLflow still gets valid text.
      while (!binary && cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
      out.append(text.substr(0, cut));
      out += "[truncated: ";
      append_number(out, text.size());
      out += " bytes]";
      return true;
    }
    case PolicyMode::redact: {
      if (binary) return false;
      const std::size_t matches = policy.redactor().redact(text, out);
      tally.redaction_matches += matches;
      return matches > 0;
    }
  }
  return false;
}

void reject_too_deep(const CompiledPolicy& policy, AnyValue& value, PolicyTally& tally) {
  std::string& marker = scratch();
  marker += "[rejected: nested deeper than ";
  append_number(marker, policy.config().max_depth);
  marker += " levels]";
  value.set_string_value(marker);
  ++tally.depth_rejected;
}

// Under a verbose decision nested key-value lists are looked at key by key ("parent.child"),
// so that content inside a structured attribute is still found; depth is limited either way.
template <class Decide>
bool walk_verbose(const CompiledPolicy& policy, AnyValue& value, std::string& path, unsigned depth,
                  const Decide& decide, PolicyTally& tally) {
  if (depth > policy.config().max_depth) {
    reject_too_deep(policy, value, tally);
    return true;
  }
  bool changed = false;
  if (value.value_case() == AnyValue::kArrayValue) {
    for (AnyValue& element : *value.mutable_array_value()->mutable_values()) {
      changed |= walk_verbose(policy, element, path, depth + 1, decide, tally);
    }
  } else if (value.value_case() == AnyValue::kKvlistValue) {
    Attributes& entries = *value.mutable_kvlist_value()->mutable_values();
    int keep = 0;
    const int size = entries.size();
    for (int i = 0; i < size; ++i) {
      otlp::KeyValue& entry = entries[i];
      const std::size_t parent = path.size();
      path += '.';
      path += entry.key();
      const Decision decision = decide(std::string_view(path));
      bool dropped = false;
      if (decision.mode == PolicyMode::drop) {
        count(tally, decision);
        dropped = true;
      } else if (decision.mode == PolicyMode::verbose) {
        changed |= walk_verbose(policy, *entry.mutable_value(), path, depth + 1, decide, tally);
      } else if (apply_value(policy, decision, *entry.mutable_value(), depth + 1, tally)) {
        count(tally, decision);
        changed = true;
      }
      path.resize(parent);
      if (dropped) continue;
      if (keep != i) entries.SwapElements(keep, i);
      ++keep;
    }
    if (keep < size) {
      entries.DeleteSubrange(keep, size - keep);
      changed = true;
    }
  }
  return changed;
}

// Applies the decisions to a list of attributes; returns how many were dropped.
template <class Decide>
std::uint32_t process_attributes(const CompiledPolicy& policy, Attributes& attributes,
                                 const Decide& decide, PolicyTally& tally) {
  thread_local std::string path;
  int keep = 0;
  const int size = attributes.size();
  for (int i = 0; i < size; ++i) {
    otlp::KeyValue& attribute = attributes[i];
    const Decision decision = decide(std::string_view(attribute.key()));
    if (decision.mode == PolicyMode::drop) {
      count(tally, decision);
      continue;
    }
    if (decision.mode == PolicyMode::verbose) {
      const auto kind = attribute.value().value_case();
      if (kind == AnyValue::kArrayValue || kind == AnyValue::kKvlistValue) {
        path.assign(attribute.key());
        walk_verbose(policy, *attribute.mutable_value(), path, 1, decide, tally);
      }
    } else if (apply_value(policy, decision, *attribute.mutable_value(), 1, tally)) {
      count(tally, decision);
    }
    if (keep != i) attributes.SwapElements(keep, i);
    ++keep;
  }
  if (keep < size) attributes.DeleteSubrange(keep, size - keep);
  return static_cast<std::uint32_t>(size - keep);
}

}  // namespace

std::uint64_t PolicyTally::total(PolicyMode mode) const {
  std::uint64_t sum = 0;
  for (std::uint64_t n : values[static_cast<std::size_t>(mode)]) sum += n;
  return sum;
}

void PolicyStats::add(const PolicyTally& tally) {
  for (std::size_t mode = 0; mode < kModeCount; ++mode) {
    for (std::size_t family = 0; family < kFamilyCount; ++family) {
      if (tally.values[mode][family] != 0) {
        values[mode][family].fetch_add(tally.values[mode][family], std::memory_order_relaxed);
      }
    }
  }
  if (tally.redaction_matches) redaction_matches.fetch_add(tally.redaction_matches, std::memory_order_relaxed);
  if (tally.depth_rejected) depth_rejected.fetch_add(tally.depth_rejected, std::memory_order_relaxed);
  if (tally.koog_hidden) koog_hidden.fetch_add(tally.koog_hidden, std::memory_order_relaxed);
  if (tally.spans) spans.fetch_add(tally.spans, std::memory_order_relaxed);
}

std::string summarize(const PolicyStats& stats) {
  std::string text;
  for (std::size_t mode = 0; mode < kModeCount; ++mode) {
    std::string families;
    for (std::size_t family = 0; family < kFamilyCount; ++family) {
      const std::uint64_t n = stats.values[mode][family].load(std::memory_order_relaxed);
      if (n == 0) continue;
      families += (families.empty() ? "" : ", ") + std::string(family_name(static_cast<Family>(family))) +
                  " " + std::to_string(n);
    }
    if (families.empty()) continue;
    text += std::string(config::format_policy_mode(static_cast<PolicyMode>(mode))) + ": " + families + "; ";
  }
  if (text.empty()) text = "no value changed; ";
  text += std::to_string(stats.redaction_matches.load(std::memory_order_relaxed)) + " redaction matches, " +
          std::to_string(stats.depth_rejected.load(std::memory_order_relaxed)) + " values too deep, " +
          std::to_string(stats.koog_hidden.load(std::memory_order_relaxed)) + " Koog HIDDEN values kept, " +
          std::to_string(stats.spans.load(std::memory_order_relaxed)) + " spans";
  return text;
}

CompiledPolicy::CompiledPolicy(const config::PolicyConfig& config)
    : config_(config), redactor_(config.redact_patterns, config.builtin_patterns) {
  for (const ContentKey& key : builtin_content_keys()) {
    content_.add(key.pattern, static_cast<std::uint8_t>(key.family));
  }
  for (const std::string& pattern : config_.content_keys) {
    content_.add(pattern, static_cast<std::uint8_t>(Family::custom));
  }
  for (std::string_view key : error_keys()) error_keys_.add(key, 0);
  for (std::string_view field : content_event_fields()) event_fields_.add(field, 0);
  content_events_.assign(content_event_names().begin(), content_event_names().end());
}

Decision CompiledPolicy::decide(std::string_view key) const {
  for (const config::KeyRule& rule : config_.keys) {
    if (glob_match(rule.key, key)) {
      return {rule.mode, Family::rule, rule.truncate_bytes ? rule.truncate_bytes : config_.truncate_bytes};
    }
  }
  if (const std::uint8_t* family = content_.find(key)) {
    return {config_.content, static_cast<Family>(*family), config_.truncate_bytes};
  }
  if (error_keys_.find(key) != nullptr) return {config_.errors, Family::error, config_.truncate_bytes};
  return {config_.other, Family::other, config_.truncate_bytes};
}

Decision CompiledPolicy::decide_event(std::string_view event_name, std::string_view key) const {
  Decision decision = decide(key);
  if (decision.family == Family::other &&
      std::find(content_events_.begin(), content_events_.end(), event_name) != content_events_.end() &&
      event_fields_.find(key) != nullptr) {
    return {config_.content, Family::event, config_.truncate_bytes};
  }
  return decision;
}

Decision CompiledPolicy::decide_resource(std::string_view key) const {
  for (const config::KeyRule& rule : config_.resource_keys) {
    if (glob_match(rule.key, key)) {
      return {rule.mode, Family::resource, rule.truncate_bytes ? rule.truncate_bytes : config_.truncate_bytes};
    }
  }
  return {PolicyMode::verbose, Family::resource, config_.truncate_bytes};
}

bool apply_value(const CompiledPolicy& policy, const Decision& decision, AnyValue& value,
                 unsigned depth, PolicyTally& tally) {
  if (depth > policy.config().max_depth) {
    reject_too_deep(policy, value, tally);
    return true;
  }
  const bool zero = decision.mode == PolicyMode::mask || decision.mode == PolicyMode::hash;
  switch (value.value_case()) {
    case AnyValue::kStringValue: {
      const std::string& text = value.string_value();
      if (text.empty()) return false;
      if (text == kKoogHidden) {
        ++tally.koog_hidden;
        return false;
      }
      std::string& out = scratch();
      if (!transform_text(policy, decision, text, false, out, tally)) return false;
      value.set_string_value(out);
      return true;
    }
    case AnyValue::kBytesValue: {
      if (value.bytes_value().empty()) return false;
      std::string& out = scratch();
      if (!transform_text(policy, decision, value.bytes_value(), true, out, tally)) return false;
      value.set_bytes_value(out);
      return true;
    }
    case AnyValue::kIntValue:
      if (!zero || value.int_value() == 0) return false;
      value.set_int_value(0);
      return true;
    case AnyValue::kDoubleValue:
      if (!zero || value.double_value() == 0.0) return false;
      value.set_double_value(0.0);
      return true;
    case AnyValue::kBoolValue:
      if (!zero || !value.bool_value()) return false;
      value.set_bool_value(false);
      return true;
    case AnyValue::kArrayValue: {
      bool changed = false;
      for (AnyValue& element : *value.mutable_array_value()->mutable_values()) {
        changed |= apply_value(policy, decision, element, depth + 1, tally);
      }
      return changed;
    }
    case AnyValue::kKvlistValue: {
      bool changed = false;
      for (otlp::KeyValue& entry : *value.mutable_kvlist_value()->mutable_values()) {
        changed |= apply_value(policy, decision, *entry.mutable_value(), depth + 1, tally);
      }
      return changed;
    }
    case AnyValue::VALUE_NOT_SET:
      return false;
  }
  return false;
}

void apply(const CompiledPolicy& policy, otlp::ResourceSpans& resource_spans, PolicyTally& tally) {
  const auto decide = [&policy](std::string_view key) { return policy.decide(key); };
  if (!policy.config().resource_keys.empty() && resource_spans.has_resource()) {
    auto& resource = *resource_spans.mutable_resource();
    const auto decide_resource = [&policy](std::string_view key) { return policy.decide_resource(key); };
    const std::uint32_t dropped =
        process_attributes(policy, *resource.mutable_attributes(), decide_resource, tally);
    if (dropped) otlp::add_dropped_attributes(resource, dropped);
  }
  for (auto& scope_spans : *resource_spans.mutable_scope_spans()) {
    for (otlp::Span& span : *scope_spans.mutable_spans()) {
      ++tally.spans;
      if (const std::uint32_t dropped = process_attributes(policy, *span.mutable_attributes(), decide, tally)) {
        otlp::add_dropped_attributes(span, dropped);
      }
      for (auto& event : *span.mutable_events()) {
        const std::string_view name = event.name();
        const auto decide_event = [&policy, name](std::string_view key) {
          return policy.decide_event(name, key);
        };
        if (const std::uint32_t dropped =
                process_attributes(policy, *event.mutable_attributes(), decide_event, tally)) {
          otlp::add_dropped_attributes(event, dropped);
        }
      }
      for (auto& link : *span.mutable_links()) {
        if (const std::uint32_t dropped = process_attributes(policy, *link.mutable_attributes(), decide, tally)) {
          otlp::add_dropped_attributes(link, dropped);
        }
      }
      if (span.has_status() && !span.status().message().empty()) {
        const Decision decision = policy.errors();
        if (decision.mode == PolicyMode::drop) {
          span.mutable_status()->clear_message();
          count(tally, decision);
        } else {
          std::string& out = scratch();
          if (transform_text(policy, decision, span.status().message(), false, out, tally)) {
            span.mutable_status()->set_message(out);
            count(tally, decision);
          }
        }
      }
    }
  }
}

}  // namespace proxy::policy
