#include "policy/policy.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <memory>

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

// "<prefix><number><suffix>" in one append: written once per masked leaf. The literals' sizes
// are constants, so their copies are a few stores; append(pointer, size) is std::string's plain
// append (an iterator pair went through its general replace).
template <std::size_t Prefix, std::size_t Suffix>
void append_marker(std::string& out, const char (&prefix)[Prefix], std::uint64_t number,
                   const char (&suffix)[Suffix]) {
  char marker[Prefix + Suffix + 24];
  std::memcpy(marker, prefix, Prefix - 1);
  char* end = std::to_chars(marker + Prefix - 1, marker + Prefix + 23, number).ptr;
  std::memcpy(end, suffix, Suffix - 1);
  end += Suffix - 1;
  out.append(marker, static_cast<std::size_t>(end - marker));
}

// SHA-256 with the algorithm fetched once and a context reused per thread: EVP_Digest with
// EVP_sha256() looks the provider up and allocates a context on every call, which costs more
// than hashing a short leaf.
bool sha256(std::string_view text, unsigned char* digest, unsigned int& length) {
  static const std::unique_ptr<EVP_MD, decltype(&EVP_MD_free)> algorithm(EVP_MD_fetch(nullptr, "SHA256", nullptr),
                                                                         &EVP_MD_free);
  thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(),
                                                                                    &EVP_MD_CTX_free);
  return algorithm && context && EVP_DigestInit_ex2(context.get(), algorithm.get(), nullptr) == 1 &&
         EVP_DigestUpdate(context.get(), text.data(), text.size()) == 1 &&
         EVP_DigestFinal_ex(context.get(), digest, &length) == 1;
}

void append_hash(std::string& out, std::string_view text, unsigned prefix) {
  static constexpr char kHex[] = "0123456789abcdef";
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  out += "sha256:";
  if (!sha256(text, digest, length)) {
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
      append_marker(out, "[masked: ", text.size(), " bytes]");
      return true;
    case PolicyMode::hash:
      append_hash(out, text, policy.config().hash_prefix);
      return true;
    case PolicyMode::hmac:
      policy.hmac_key()->append(out, text, policy.config().hash_prefix);
      return true;
    case PolicyMode::truncate: {
      std::size_t cut = decision.truncate_bytes;
      if (text.size() <= cut) return false;
      // Cut at a UTF-8 character boundary so MLflow still gets valid text.
      while (!binary && cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
      out.append(text.substr(0, cut));
      append_marker(out, "[truncated: ", text.size(), " bytes]");
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

// Rewrites JSON leaves with the policy's text modes; a leaf's redaction matches are counted.
class PolicyLeafRewriter final : public LeafRewriter {
 public:
  PolicyLeafRewriter(const CompiledPolicy& policy, const Decision& decision, PolicyTally& tally)
      : policy_(policy), decision_(decision), tally_(tally) {}

  bool rewrite(PolicyMode mode, std::string_view key, std::string_view text, std::string& out) const override {
    if (text == kKoogHidden) return false;
    if (mode == PolicyMode::redact && !key.empty()) return redact_member(key, text, out);
    return transform_text(policy_, {mode, decision_.family, decision_.truncate_bytes}, text, false, out,
                          tally_);
  }

 private:
  // Patterns such as "password": "..." need the key: the member is redacted as `key: text`, and
  // the key, which stays in the JSON, is cut off again.
  bool redact_member(std::string_view key, std::string_view text, std::string& out) const {
    thread_local std::string member;
    thread_local std::string redacted;
    member.assign(key);
    member += ": ";
    const std::size_t prefix = member.size();
    member += text;
    redacted.clear();
    const std::size_t matches = policy_.redactor().redact(member, redacted);
    if (matches == 0) return false;
    if (std::string_view(redacted).substr(0, prefix) == std::string_view(member).substr(0, prefix)) {
      tally_.redaction_matches += matches;
      out.append(std::string_view(redacted).substr(prefix));
      return true;
    }
    // A match in the key itself (kept as written): the text alone.
    return transform_text(policy_, {PolicyMode::redact, decision_.family, 0}, text, false, out, tally_);
  }

  const CompiledPolicy& policy_;
  const Decision& decision_;
  PolicyTally& tally_;
};

// A value that kept its structure went to `out`; otherwise the fallback is counted and the caller
// applies the whole-value mode.
bool rewrite_json(const CompiledPolicy& policy, const Decision& decision, std::string_view text,
                  unsigned depth, std::string& out, PolicyTally& tally) {
  const PolicyLeafRewriter rewriter(policy, decision, tally);
  const StructureResult result =
      rewrite_structure(text, decision.mode, policy.structure_options(), rewriter, out, depth);
  for (std::size_t i = 1; i < kFallbackCount; ++i) tally.structure_fallbacks[i] += result.nested[i];
  if (result.fallback != Fallback::none) {
    ++tally.structure_fallbacks[static_cast<std::size_t>(result.fallback)];
    return false;
  }
  ++tally.structured;
  if (result.rewritten == 0) out.clear();  // nothing to change: the text stays as written
  return true;
}

bool walks_structure(const CompiledPolicy& policy, const Decision& decision, std::string_view text) {
  return policy.config().keep_structure && decision.mode != PolicyMode::verbose &&
         decision.mode != PolicyMode::drop && looks_like_json(text);
}

// A string value: its JSON leaves (structure: keep) or the whole text. True when it changed.
bool apply_text(const CompiledPolicy& policy, const Decision& decision, AnyValue& value, unsigned depth,
                PolicyTally& tally) {
  std::string& out = scratch();
  if (!rewrite_text(policy, decision, value.string_value(), false, depth, out, tally)) return false;
  value.set_string_value(out);
  return true;
}

// A scalar under a structural key ("role", "name", ...) of a key-value list keeps its value.
bool keeps_entry(const CompiledPolicy& policy, const otlp::KeyValue& entry) {
  const auto kind = entry.value().value_case();
  return keeps_structural_entry(policy, entry.key(), kind == AnyValue::kArrayValue || kind == AnyValue::kKvlistValue);
}

void reject_too_deep(const CompiledPolicy& policy, AnyValue& value, PolicyTally& tally) {
  std::string& marker = scratch();
  too_deep_text(policy, marker, tally);
  value.set_string_value(marker);
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

// A field of a message list flattened into keys ("llm.input_messages.0.message.role",
// "gen_ai.prompt.1.role"): an index segment, and a structural key last.
bool is_flattened_structure(const StructureOptions& options, std::string_view key) {
  const std::size_t dot = key.rfind('.');
  if (dot == std::string_view::npos || !is_structural_key(options, key.substr(dot + 1))) return false;
  for (std::size_t i = key.find('.'); i < dot; i = key.find('.', i + 1)) {
    std::size_t digits = i + 1;
    while (digits < key.size() && key[digits] >= '0' && key[digits] <= '9') ++digits;
    if (digits > i + 1 && digits < key.size() && key[digits] == '.') return true;
  }
  return false;
}

// The roles a span's (link's) attributes give flattened messages, read before any is rewritten,
// so a role a key rule masks still selects its message's mode. Filled only when the policy has
// role selectors; reused per thread.
class SiblingRoles {
 public:
  void read(const CompiledPolicy& policy, const Attributes& attributes) {
    roles_.clear();
    if (!policy.has_role_selectors()) return;
    for (const otlp::KeyValue& attribute : attributes) {
      if (attribute.key().ends_with("role") && attribute.value().has_string_value()) {
        roles_.emplace_back(attribute.key(), attribute.value().string_value());
      }
    }
  }
  std::string_view operator()(std::string_view message) const {
    for (const int rank : {1, 2}) {
      for (const auto& [key, role] : roles_) {
        if (role_key_rank(message, key) == rank) return role;
      }
    }
    return {};
  }

 private:
  std::vector<std::pair<std::string, std::string>> roles_;
};

// GenAI message events carry the role in their name.
std::string_view event_role(std::string_view event_name) {
  if (event_name == "gen_ai.choice") return "assistant";
  constexpr std::string_view prefix = "gen_ai.", suffix = ".message";
  if (event_name.size() > prefix.size() + suffix.size() && event_name.starts_with(prefix) &&
      event_name.ends_with(suffix)) {
    return event_name.substr(prefix.size(), event_name.size() - prefix.size() - suffix.size());
  }
  return {};
}

// Content families a role selector may narrow; key rules (an explicit choice), errors and other
// attributes keep their mode.
bool is_message_content(Family family) {
  return family != Family::rule && family != Family::error && family != Family::other &&
         family != Family::resource;
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
  if (tally.structured) structured.fetch_add(tally.structured, std::memory_order_relaxed);
  for (std::size_t i = 0; i < kFallbackCount; ++i) {
    if (tally.structure_fallbacks[i]) {
      structure_fallbacks[i].fetch_add(tally.structure_fallbacks[i], std::memory_order_relaxed);
    }
  }
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
          std::to_string(stats.structured.load(std::memory_order_relaxed)) + " JSON values kept their structure, ";
  std::uint64_t fallbacks = 0;
  for (const auto& n : stats.structure_fallbacks) fallbacks += n.load(std::memory_order_relaxed);
  text += std::to_string(fallbacks) + " masked whole (not JSON, too deep or large, not UTF-8), " +
          std::to_string(stats.spans.load(std::memory_order_relaxed)) + " spans";
  return text;
}

CompiledPolicy::CompiledPolicy(const config::PolicyConfig& config)
    : config_(config),
      redactor_(config.redact_patterns, config.builtin_patterns),
      hmac_key_(uses_hmac(config) ? HmacKey::load(config.key_file) : nullptr) {
  for (const ContentKey& key : builtin_content_keys()) {
    content_.add(key.pattern, static_cast<std::uint8_t>(key.family));
  }
  for (const std::string& pattern : config_.content_keys) {
    content_.add(pattern, static_cast<std::uint8_t>(Family::custom));
  }
  for (const std::string& pattern : config_.structural_keys) structural_.add(pattern, 0);
  for (std::string_view key : error_keys()) error_keys_.add(key, 0);
  for (std::string_view field : content_event_fields()) event_fields_.add(field, 0);
  content_events_.assign(content_event_names().begin(), content_event_names().end());
}

StructureOptions CompiledPolicy::structure_options() const {
  return {config_.max_depth, config_.max_structure_bytes, structural_.empty() ? nullptr : &structural_,
          config_.messages, config_.parts};
}

Decision CompiledPolicy::decide(std::string_view key) const {
  for (const config::KeyRule& rule : config_.keys) {
    if (glob_match(rule.key, key)) {
      return {rule.mode, Family::rule, rule.truncate_bytes ? rule.truncate_bytes : config_.truncate_bytes};
    }
  }
  if (const std::uint8_t* family = content_.find(key)) {
    if (config_.keep_structure && is_flattened_structure(structure_options(), key)) {
      return {PolicyMode::verbose, static_cast<Family>(*family), config_.truncate_bytes};
    }
    return {config_.content, static_cast<Family>(*family), config_.truncate_bytes};
  }
  if (error_keys_.find(key) != nullptr) return {config_.errors, Family::error, config_.truncate_bytes};
  return {config_.other, Family::other, config_.truncate_bytes};
}

Decision CompiledPolicy::for_role(Decision decision, std::string_view role) const {
  if (role.empty() || decision.mode == PolicyMode::verbose || !is_message_content(decision.family)) {
    return decision;
  }
  if (const config::ModeByName* selector = find_selector(config_.messages, role)) {
    decision.mode = selector->mode;
  }
  return decision;
}

std::string_view flattened_message(std::string_view key) {
  for (std::size_t dot = key.find('.'); dot != std::string_view::npos; dot = key.find('.', dot + 1)) {
    std::size_t end = dot + 1;
    while (end < key.size() && key[end] >= '0' && key[end] <= '9') ++end;
    if (end > dot + 1 && end < key.size() && key[end] == '.') return key.substr(0, end);
  }
  return {};
}

int role_key_rank(std::string_view message, std::string_view key) {
  if (!key.starts_with(message)) return 0;
  const std::string_view rest = key.substr(message.size());
  if (rest == ".message.role") return 1;
  return rest == ".role" ? 2 : 0;
}

Decision CompiledPolicy::decide_event(const Decision& decided, std::string_view event_name,
                                      std::string_view key) const {
  Decision decision = decided;
  if (decision.family == Family::other &&
      std::find(content_events_.begin(), content_events_.end(), event_name) != content_events_.end() &&
      event_fields_.find(key) != nullptr) {
    decision = {config_.content, Family::event, config_.truncate_bytes};
  }
  if (config_.messages.empty()) return decision;
  return for_role(decision, event_role(event_name));
}

Decision CompiledPolicy::decide_resource(std::string_view key) const {
  for (const config::KeyRule& rule : config_.resource_keys) {
    if (glob_match(rule.key, key)) {
      return {rule.mode, Family::resource, rule.truncate_bytes ? rule.truncate_bytes : config_.truncate_bytes};
    }
  }
  return {PolicyMode::verbose, Family::resource, config_.truncate_bytes};
}

bool rewrite_text(const CompiledPolicy& policy, const Decision& decision, std::string_view text, bool binary,
                  unsigned depth, std::string& out, PolicyTally& tally) {
  out.clear();
  if (text.empty()) return false;
  if (binary) return transform_text(policy, decision, text, true, out, tally);
  if (text == kKoogHidden) {
    ++tally.koog_hidden;
    return false;
  }
  if (walks_structure(policy, decision, text) && rewrite_json(policy, decision, text, depth, out, tally)) {
    return !out.empty();
  }
  out.clear();
  return transform_text(policy, decision, text, false, out, tally);
}

bool rewrite_status_message(const CompiledPolicy& policy, const Decision& decision, std::string_view text,
                            std::string& out, PolicyTally& tally) {
  out.clear();
  return transform_text(policy, decision, text, false, out, tally);
}

void too_deep_text(const CompiledPolicy& policy, std::string& out, PolicyTally& tally) {
  out.clear();
  out += "[rejected: nested deeper than ";
  append_number(out, policy.config().max_depth);
  out += " levels]";
  ++tally.depth_rejected;
}

bool zeroes_scalars(PolicyMode mode) {
  return mode == PolicyMode::mask || mode == PolicyMode::hash || mode == PolicyMode::hmac;
}

bool keeps_structural_entry(const CompiledPolicy& policy, std::string_view key, bool container) {
  return policy.config().keep_structure && !container && is_structural_key(policy.structure_options(), key);
}

void count_change(PolicyTally& tally, const Decision& decision) { count(tally, decision); }

bool apply_value(const CompiledPolicy& policy, const Decision& decision, AnyValue& value,
                 unsigned depth, PolicyTally& tally) {
  if (depth > policy.config().max_depth) {
    reject_too_deep(policy, value, tally);
    return true;
  }
  const bool zero = zeroes_scalars(decision.mode);
  switch (value.value_case()) {
    case AnyValue::kStringValue:
      return apply_text(policy, decision, value, depth, tally);
    case AnyValue::kBytesValue: {
      std::string& out = scratch();
      if (!rewrite_text(policy, decision, value.bytes_value(), true, depth, out, tally)) return false;
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
        if (keeps_entry(policy, entry)) continue;
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
  if (!policy.config().resource_keys.empty() && resource_spans.has_resource()) {
    auto& resource = *resource_spans.mutable_resource();
    const auto decide_resource = [&policy](std::string_view key) { return policy.decide_resource(key); };
    const std::uint32_t dropped =
        process_attributes(policy, *resource.mutable_attributes(), decide_resource, tally);
    if (dropped) otlp::add_dropped_attributes(resource, dropped);
  }
  thread_local SiblingRoles roles;
  for (auto& scope_spans : *resource_spans.mutable_scope_spans()) {
    for (otlp::Span& span : *scope_spans.mutable_spans()) {
      ++tally.spans;
      roles.read(policy, span.attributes());
      const auto decide = [&policy](std::string_view key) { return policy.decide_among(key, roles); };
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
        roles.read(policy, link.attributes());
        const auto decide_link = [&policy](std::string_view key) { return policy.decide_among(key, roles); };
        if (const std::uint32_t dropped =
                process_attributes(policy, *link.mutable_attributes(), decide_link, tally)) {
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
          if (rewrite_status_message(policy, decision, span.status().message(), out, tally)) {
            span.mutable_status()->set_message(out);
            count(tally, decision);
          }
        }
      }
    }
  }
}

}  // namespace proxy::policy
