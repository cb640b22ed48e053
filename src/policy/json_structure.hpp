// Structure-kept masking: a content string that holds a JSON object or array is rewritten leaf by
// leaf, so MLflow still sees messages, roles, part types and tool names while the text is masked.
// The walk streams over the text with a hand-rolled tokenizer (no DOM): the output is written as
// the input is read, and the only memory is the caller's output buffer plus thread-local scratch
// buffers reused from value to value.
//
// Kept: every object key, JSON null, and the scalar values of structural keys (role, type, name,
// id, tool_call_id, finish_reason, model, Koog's tool, and the policy's structural_keys globs). Rewritten by
// the leaf's mode: every other string, number and boolean. A string leaf that itself holds a JSON
// object or array (OpenAI's function.arguments, Koog's node inputs) is walked once more and
// written back as a string. Anything the walker cannot vouch for (not JSON, deeper than
// max_depth, larger than max_bytes, not UTF-8) is reported, never passed: the caller then applies
// the whole-value mode.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/glob.hpp"
#include "config/config.hpp"

namespace proxy::policy {

// Why a value that looked like JSON got the whole-value mode instead.
enum class Fallback : std::uint8_t { none, not_json, too_deep, too_large, invalid_utf8 };
inline constexpr std::size_t kFallbackCount = 5;
std::string_view fallback_name(Fallback fallback);

// The deepest nesting a walk follows (the config's limit for max_depth); a larger max_depth
// counts as this.
inline constexpr unsigned kMaxStructureDepth = 64;

struct StructureOptions {
  unsigned max_depth = 8;
  std::size_t max_bytes = 256 * 1024;
  const GlobTable* structural_keys = nullptr;  // extra structural keys, besides the built-in ones
  // Objects with a "role" (a "type") named here: the mode of their leaves; the part type wins.
  // Names are compared ignoring ASCII case.
  std::span<const config::ModeByName> roles;
  std::span<const config::ModeByName> parts;
};

// Rewrites one string leaf (already unescaped) under a mode: appends the replacement to `out`
// and returns true, or returns false to keep the text as it is. `key` is the member's key as
// written (empty in an array): redaction needs it, "password": "hunter2" is a secret by its key.
class LeafRewriter {
 public:
  virtual ~LeafRewriter() = default;
  virtual bool rewrite(config::PolicyMode mode, std::string_view key, std::string_view text,
                       std::string& out) const = 0;
};

struct StructureResult {
  Fallback fallback = Fallback::none;  // none: `out` holds the rewritten JSON
  // JSON-looking strings inside that were rewritten whole, by reason.
  std::array<std::uint32_t, kFallbackCount> nested{};
  std::uint32_t rewritten = 0;  // leaves changed; 0: the text needs no change (bar whitespace)
};

// The selector (a role's or a part type's) named `name`, ignoring ASCII case; null if none.
const config::ModeByName* find_selector(std::span<const config::ModeByName> selectors,
                                      std::string_view name);

// True when `text` starts (after JSON whitespace) with '{' or '[': worth a structured walk.
bool looks_like_json(std::string_view text);

// True for the built-in structural keys or one of the options' globs.
bool is_structural_key(const StructureOptions& options, std::string_view key);

// Appends the rewritten JSON to `out` (appended only on success). `mode` applies to leaves
// outside any selected role or part; `depth` is the nesting level of the text itself.
StructureResult rewrite_structure(std::string_view text, config::PolicyMode mode,
                                  const StructureOptions& options, const LeafRewriter& rewriter,
                                  std::string& out, unsigned depth = 1);

}  // namespace proxy::policy
