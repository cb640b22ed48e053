// The policy stage: what of a span's content reaches MLflow. A PolicyConfig is compiled once
// into an immutable CompiledPolicy; apply() then rewrites decoded spans in place (on the
// request's arena), with no I/O and no clock (docs/architecture.md, "Stages").
//
// Content holding JSON (structure: keep, the default) is rewritten leaf by leaf, keys, roles,
// part types and tool names kept (see json_structure.hpp); role and part selectors give a message
// or part its own mode. Per value type: strings become "[masked: N bytes]", "sha256:<hex prefix>", their first bytes
// plus "[truncated: N bytes]", or keep their text with secrets replaced by "[redacted:<name>]".
// Bytes are masked, hashed and truncated the same way and never redacted (binary). Numbers and
// booleans are zeroed by mask and hash (their type stays), kept by truncate and redact. Arrays and
// key-value lists keep their shape and keys (and, with structure: keep, the values of structural
// keys); the mode applies to every other leaf. Empty strings and
// Koog's "HIDDEN:non-empty" pass untouched. drop removes the attribute and counts it in the
// span's (event's, link's) dropped_attributes_count.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/glob.hpp"
#include "config/config.hpp"
#include "otlp/types.hpp"
#include "policy/content_keys.hpp"
#include "policy/hmac_key.hpp"
#include "policy/json_structure.hpp"
#include "policy/redactor.hpp"

namespace proxy::policy {

using config::PolicyMode;
inline constexpr std::size_t kModeCount = 7;

// What to do with one value, and which counter says so.
struct Decision {
  PolicyMode mode = PolicyMode::verbose;
  Family family = Family::other;
  std::size_t truncate_bytes = 0;
};

// Counts for one apply() call, plain integers; added to PolicyStats once per request so the
// I/O threads do not fight over shared cache lines per attribute.
struct PolicyTally {
  // Values changed (or dropped) by mode and key family; verbose is never counted.
  std::array<std::array<std::uint64_t, kFamilyCount>, kModeCount> values{};
  std::uint64_t redaction_matches = 0;
  std::uint64_t depth_rejected = 0;  // values nested deeper than max_depth, replaced
  std::uint64_t koog_hidden = 0;     // "HIDDEN:non-empty" values passed through
  std::uint64_t spans = 0;
  std::uint64_t structured = 0;      // JSON values rewritten leaf by leaf (structure: keep)
  // JSON-looking values (or strings inside them) that got the whole-value mode, by Fallback.
  std::array<std::uint64_t, kFallbackCount> structure_fallbacks{};

  std::uint64_t count(PolicyMode mode, Family family) const {
    return values[static_cast<std::size_t>(mode)][static_cast<std::size_t>(family)];
  }
  std::uint64_t total(PolicyMode mode) const;
};

struct PolicyStats {
  using Counter = std::atomic<std::uint64_t>;
  std::array<std::array<Counter, kFamilyCount>, kModeCount> values{};
  Counter redaction_matches{0};
  Counter depth_rejected{0};
  Counter koog_hidden{0};
  Counter spans{0};
  Counter structured{0};
  std::array<Counter, kFallbackCount> structure_fallbacks{};

  void add(const PolicyTally& tally);
  std::uint64_t count(PolicyMode mode, Family family) const {
    return values[static_cast<std::size_t>(mode)][static_cast<std::size_t>(family)].load(
        std::memory_order_relaxed);
  }
};

// One line for the logs: "mask: genai 12, koog 30; redact: error 2; 3 redaction matches, ...".
std::string summarize(const PolicyStats& stats);

// The message a key flattened from a message list belongs to, up to its first index segment:
// "llm.input_messages.0" for "llm.input_messages.0.message.content"; empty without one.
std::string_view flattened_message(std::string_view key);
// Whether sibling attribute `key` holds the role of `message`: 1 for "<message>.message.role"
// (OpenInference), 2 for "<message>.role" (Traceloop), 0 otherwise. The first sibling of the
// lowest rank wins.
int role_key_rank(std::string_view message, std::string_view key);

class CompiledPolicy {
 public:
  // Throws config::ConfigError for a redaction pattern RE2 rejects, and for an hmac policy
  // without a usable key (read here, so a reload picks up a rotated key).
  explicit CompiledPolicy(const config::PolicyConfig& config);

  // Span and link attributes; nested key-value lists are decided by "parent.child" paths.
  Decision decide(std::string_view key) const;
  // A span or link attribute among its siblings: the content of a message flattened into keys
  // ("llm.input_messages.0.message.content", "gen_ai.prompt.0.content") takes its role's
  // selector (messages:). `role_of(message)` returns the role its siblings give the message
  // ("llm.input_messages.0"; see role_key_rank), as the agent sent it, or an empty view.
  template <class RoleOf>
  Decision decide_among(std::string_view key, const RoleOf& role_of) const {
    return decide_among(decide(key), key, role_of);
  }
  // The same from `decision`, decide(key)'s result, for a caller that keeps those by key.
  template <class RoleOf>
  Decision decide_among(const Decision& decision, std::string_view key, const RoleOf& role_of) const {
    if (config_.messages.empty() || decision.mode == PolicyMode::verbose) return decision;
    const std::string_view message = flattened_message(key);
    return message.empty() ? decision : for_role(decision, role_of(message));
  }
  bool has_role_selectors() const { return !config_.messages.empty(); }
  // Event attributes: the fields of GenAI message events are content too, and a message event's
  // name gives its role ("gen_ai.user.message"; "gen_ai.choice" is the assistant's).
  Decision decide_event(std::string_view event_name, std::string_view key) const {
    return decide_event(decide(key), event_name, key);
  }
  // The same from `decided`, decide(key)'s result.
  Decision decide_event(const Decision& decided, std::string_view event_name, std::string_view key) const;
  // Resource attributes: only resource_keys rules apply, verbose otherwise.
  Decision decide_resource(std::string_view key) const;
  // Span status messages.
  Decision errors() const { return {config_.errors, Family::error, config_.truncate_bytes}; }
  // A content decision narrowed by the selector of `role`, if the policy names it.
  Decision for_role(Decision decision, std::string_view role) const;
  // How JSON content is walked (structure: keep); valid while the policy lives.
  StructureOptions structure_options() const;

  const config::PolicyConfig& config() const { return config_; }
  const Redactor& redactor() const { return redactor_; }
  // The hmac key, null unless a mode of the policy is hmac.
  const HmacKey* hmac_key() const { return hmac_key_.get(); }

 private:
  config::PolicyConfig config_;
  GlobTable content_;        // tag: Family
  GlobTable error_keys_;
  GlobTable event_fields_;
  GlobTable structural_;
  std::vector<std::string_view> content_events_;
  Redactor redactor_;
  std::shared_ptr<const HmacKey> hmac_key_;
};

// Applies the policy to every span, event, link and (per resource_keys) resource attribute,
// and to span status messages.
void apply(const CompiledPolicy& policy, otlp::ResourceSpans& resource_spans, PolicyTally& tally);

// One value under a decision (exposed for the table-driven tests and the benchmark). Returns
// true when the value changed. `depth` is 1 for an attribute's own value.
bool apply_value(const CompiledPolicy& policy, const Decision& decision, otlp::AnyValue& value,
                 unsigned depth, PolicyTally& tally);

// The per-value pieces of apply_value, over plain text, shared by the message path and the wire
// path (wire_policy.hpp) so both rewrite alike.
// A string value's (binary: bytes value's) new text under the decision into `out` (cleared
// first): JSON leaves with structure: keep, else the whole text. False when it stays as it is.
bool rewrite_text(const CompiledPolicy& policy, const Decision& decision, std::string_view text, bool binary,
                  unsigned depth, std::string& out, PolicyTally& tally);
// A span status message's new text under policy.errors(); false when it stays.
bool rewrite_status_message(const CompiledPolicy& policy, const Decision& decision, std::string_view text,
                            std::string& out, PolicyTally& tally);
// The string that replaces a value nested deeper than max_depth, into `out`; counted.
void too_deep_text(const CompiledPolicy& policy, std::string& out, PolicyTally& tally);
// Whether a mode zeroes numbers and booleans (mask, hash, hmac).
bool zeroes_scalars(PolicyMode mode);
// Whether a key-value list entry under `key` keeps its scalar value (structure: keep).
bool keeps_structural_entry(const CompiledPolicy& policy, std::string_view key, bool container);
// Counts a value changed or dropped under the decision.
void count_change(PolicyTally& tally, const Decision& decision);

}  // namespace proxy::policy
