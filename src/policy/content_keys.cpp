#include "policy/content_keys.hpp"

#include <array>

namespace proxy::policy {
namespace {

constexpr std::array kContentKeys{
    ContentKey{"gen_ai.input.messages", Family::genai},
    ContentKey{"gen_ai.output.messages", Family::genai},
    ContentKey{"gen_ai.system_instructions", Family::genai},
    ContentKey{"gen_ai.tool.definitions", Family::genai},
    ContentKey{"gen_ai.tool.call.arguments", Family::genai},
    ContentKey{"gen_ai.tool.call.result", Family::genai},
    ContentKey{"gen_ai.prompt*", Family::genai},
    ContentKey{"gen_ai.completion*", Family::genai},
    ContentKey{"system_instructions", Family::koog},
    ContentKey{"koog.node.input", Family::koog},
    ContentKey{"koog.node.output", Family::koog},
    ContentKey{"koog.subgraph.input", Family::koog},
    ContentKey{"koog.subgraph.output", Family::koog},
    ContentKey{"koog.moderation.result", Family::koog},
    ContentKey{"koog.planner.*", Family::koog},
    ContentKey{"input.value", Family::openinference},
    ContentKey{"output.value", Family::openinference},
    ContentKey{"llm.input_messages*", Family::openinference},
    ContentKey{"llm.output_messages*", Family::openinference},
    ContentKey{"llm.prompts*", Family::openinference},
    ContentKey{"tool.parameters", Family::openinference},
    ContentKey{"traceloop.entity.input", Family::traceloop},
    ContentKey{"traceloop.entity.output", Family::traceloop},
    ContentKey{"mlflow.spanInputs", Family::mlflow},
    ContentKey{"mlflow.spanOutputs", Family::mlflow},
};

constexpr std::array<std::string_view, 7> kContentEvents{
    "gen_ai.system.message", "gen_ai.user.message",      "gen_ai.assistant.message",
    "gen_ai.tool.message",   "gen_ai.choice",            "gen_ai.moderation.result",
    "gen_ai.content.prompt",
};

constexpr std::array<std::string_view, 9> kContentEventFields{
    "content", "message", "message.*", "arguments", "tool_calls", "tool_calls.*",
    "gen_ai.prompt", "gen_ai.completion", "gen_ai.event.content",
};

constexpr std::array<std::string_view, 2> kErrorKeys{"exception.message", "exception.stacktrace"};

constexpr std::array<std::string_view, kFamilyCount> kFamilyNames{
    "genai", "koog", "openinference", "traceloop", "mlflow", "custom",
    "event", "error", "rule", "other", "resource"};

}  // namespace

std::string_view family_name(Family family) { return kFamilyNames[static_cast<std::size_t>(family)]; }
std::span<const ContentKey> builtin_content_keys() { return kContentKeys; }
std::span<const std::string_view> content_event_names() { return kContentEvents; }
std::span<const std::string_view> content_event_fields() { return kContentEventFields; }
std::span<const std::string_view> error_keys() { return kErrorKeys; }

}  // namespace proxy::policy
