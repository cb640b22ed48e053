// The built-in content keys (docs/architecture.md, "Stages"): where agents put prompts, responses,
// tool arguments and results. Globs, grouped by the convention that defines them so counters can
// say whose keys were masked.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace proxy::policy {

// The key families counted separately. content families first.
enum class Family : std::uint8_t {
  genai,          // OpenTelemetry GenAI semantic conventions
  koog,           // Koog's own keys
  openinference,  // Arize OpenInference
  traceloop,      // Traceloop / OpenLLMetry
  mlflow,         // MLflow's span inputs and outputs
  custom,         // the policy's content_keys
  event,          // fields of GenAI message events (content, arguments, tool_calls...)
  error,          // span status messages, exception.message and exception.stacktrace
  rule,           // a key matched by one of the policy's keys overrides
  other,          // any other attribute
  resource,       // resource attributes (only through resource_keys)
};
inline constexpr std::size_t kFamilyCount = 11;

std::string_view family_name(Family family);

struct ContentKey {
  std::string_view pattern;
  Family family;
};

// Span, event and link attribute keys holding content.
std::span<const ContentKey> builtin_content_keys();

// Events whose attributes carry message content (older GenAI conventions, Koog before 1.0).
std::span<const std::string_view> content_event_names();
// The attributes of such events that hold content; the rest (role, index, finish_reason) stay.
std::span<const std::string_view> content_event_fields();

// Keys of exception events, treated like span status messages.
std::span<const std::string_view> error_keys();

// Koog writes this instead of content when not verbose; it passes every policy untouched.
inline constexpr std::string_view kKoogHidden = "HIDDEN:non-empty";

}  // namespace proxy::policy
