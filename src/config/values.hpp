// Parsing and printing of single configuration values (sizes, durations, addresses, URLs...),
// shared by the YAML, environment and flag layers so each accepts exactly the same spellings.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace proxy::config {

// A value that does not parse or is out of range. The message says what is wrong
// ("expected ..., got ..."); the caller prefixes where (YAML path, variable or flag).
class ValueError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What each kind of value looks like, for "expected <shape>, got <something else>" messages.
inline constexpr std::string_view kSizeShape = "a size such as 64MiB";
inline constexpr std::string_view kDurationShape = "a duration such as 30s or 500ms";
inline constexpr std::string_view kEndpointShape = "HOST:PORT";
inline constexpr std::string_view kOptionalEndpointShape = "HOST:PORT or off";
inline constexpr std::string_view kFractionShape = "a number above 0 and at most 1, such as 0.9";
inline constexpr std::string_view kUrlShape = "an http:// or https:// URL with a host";
inline constexpr std::string_view kBoolShape = "true or false";
inline constexpr std::string_view kNumberShape = "a number";
inline constexpr std::string_view kIntegerShape = "a whole number";
inline constexpr std::string_view kStringShape = "a string";
inline constexpr std::string_view kLogLevelShape =
    "one of trace, debug, info, warn, error, critical, off";
inline constexpr std::string_view kLogFormatShape = "text or json";
inline constexpr std::string_view kDurabilityShape = "memory or disk";
inline constexpr std::string_view kFsyncShape = "always, interval or never";
inline constexpr std::string_view kCompressionShape = "auto, gzip or none";
inline constexpr std::string_view kExperimentIdShape =
    "a numeric experiment id (MLflow experiment ids are digits, such as 123)";

inline constexpr std::size_t kKiB = 1024;
inline constexpr std::size_t kGiB = 1024 * kMiB;

// Bytes, with an optional unit: B, KiB, MiB, GiB (binary) or KB, MB, GB (decimal). Rejects 0
// and values above max_bytes.
std::size_t parse_size(std::string_view text, std::size_t max_bytes = SIZE_MAX);

// An integer with a unit: ms, s, m or h. A bare number is rejected: its unit would be a guess.
std::chrono::milliseconds parse_duration(std::string_view text, std::chrono::milliseconds min,
                                         std::chrono::milliseconds max);
// The same, for settings kept in whole seconds (a sub-second remainder is an error).
std::chrono::seconds parse_seconds(std::string_view text, std::chrono::seconds min,
                                   std::chrono::seconds max);

// A plain non-negative integer within [min, max], no unit.
std::uint64_t parse_integer(std::string_view text, std::uint64_t min, std::uint64_t max);
// "auto" (0) or a whole number from 1 to max.
unsigned parse_thread_count(std::string_view text, unsigned max);

// A finite decimal number of at least min.
double parse_number(std::string_view text, double min);

bool parse_bool(std::string_view text);

// "host:port" or "[v6 address]:port"; the brackets are not kept in Endpoint::host.
Endpoint parse_endpoint(std::string_view text);

// parse_endpoint, or "off" (also "none", "disabled"): a listener that can be switched off.
// Returns nullopt for off.
std::optional<Endpoint> parse_optional_endpoint(std::string_view text);

// A share in (0, 1].
double parse_fraction(std::string_view text);

// http(s)://[userinfo@]host[:port][/path]; returns it with the scheme lower-cased and trailing
// slashes removed, so "{url}/v1/traces" is always well-formed.
std::string parse_url(std::string_view text);

// Returns the level lower-cased ("INFO" is accepted as "info").
std::string parse_log_level(std::string_view text);
LogFormat parse_log_format(std::string_view text);

inline constexpr std::string_view kPolicyModeShape =
    "one of verbose, mask, hash, truncate, drop, redact, hmac";
inline constexpr std::string_view kHeaderModeShape = "one of honor, override, ignore";

PolicyMode parse_policy_mode(std::string_view text);
std::string_view format_policy_mode(PolicyMode mode);
HeaderMode parse_header_mode(std::string_view text);
std::string_view format_header_mode(HeaderMode mode);

// MLflow experiment ids are decimal digits.
std::string parse_experiment_id(std::string_view text);
// A non-empty experiment name.
std::string parse_experiment_name(std::string_view text);

// Exact unit when there is one ("64MiB", "16KiB"), otherwise plain bytes ("1000").
std::string format_size(std::size_t bytes);
// The largest exact unit: "2m", "30s", "200ms".
std::string format_duration(std::chrono::milliseconds duration);
std::string format_number(double value);
std::string_view format_log_format(LogFormat format);

Durability parse_durability(std::string_view text);
FsyncPolicy parse_fsync(std::string_view text);
std::string_view format_durability(Durability durability);
std::string_view format_fsync(FsyncPolicy policy);
UpstreamCompression parse_upstream_compression(std::string_view text);
std::string_view format_upstream_compression(UpstreamCompression compression);

inline constexpr std::string_view kResourceTargetShape = "one of all, root, none";
inline constexpr std::string_view kSpanTypeShape =
    "one of MLflow's span types: LLM, CHAIN, AGENT, TOOL, CHAT_MODEL, RETRIEVER, PARSER, "
    "EMBEDDING, RERANKER, MEMORY, UNKNOWN, WORKFLOW, TASK, GUARDRAIL, EVALUATOR";

// MLflow's SpanType constants (mlflow/entities/span.py).
inline constexpr std::array<std::string_view, 15> kSpanTypes{
    "LLM",      "CHAIN",  "AGENT",   "TOOL",     "CHAT_MODEL", "RETRIEVER", "PARSER",   "EMBEDDING",
    "RERANKER", "MEMORY", "UNKNOWN", "WORKFLOW", "TASK",       "GUARDRAIL", "EVALUATOR"};

ResourceTarget parse_resource_target(std::string_view text);
std::string_view format_resource_target(ResourceTarget target);
// Returns MLflow's spelling (upper case); "chain" is accepted as "CHAIN".
std::string parse_span_type(std::string_view text);

// The URL with the password of its userinfo replaced by "<hidden>" (http://u:<hidden>@host).
std::string hide_url_password(std::string_view url);

// `"text"` with quotes, for messages that echo a bad value.
std::string quoted(std::string_view text);

}  // namespace proxy::config
