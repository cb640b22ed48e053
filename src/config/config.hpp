// The proxy's whole configuration as plain structs: parsed once at start (YAML < environment <
// flags), validated, then only read. Defaults live here, in one place.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace proxy::config {

using namespace std::chrono_literals;

inline constexpr std::size_t kMiB = 1024 * 1024;

struct Endpoint {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;

  std::string to_string() const;

  bool operator==(const Endpoint&) const = default;
};

// The OTLP/gRPC listener (TraceService/Export). It shares the HTTP listener's limits
// (max_body_bytes is the maximum message size, after decompression) and its TLS settings.
struct GrpcReceiverConfig {
  bool enabled = true;  // "listen: off" (or --grpc-listen off) disables it
  Endpoint listen{"127.0.0.1", 4317};

  bool operator==(const GrpcReceiverConfig&) const = default;
};

// Inbound TLS on both OTLP listeners. Empty cert_file: plaintext. client_ca_file: clients must
// present a certificate signed by it (mTLS).
struct ReceiverTlsConfig {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;
  // OTLP/HTTP: a client must finish its handshake within this (a stalled one holds a connection).
  std::chrono::milliseconds handshake_timeout = 10s;

  bool enabled() const { return !cert_file.empty(); }

  bool operator==(const ReceiverTlsConfig&) const = default;
};

// Inbound authentication: with a token, every export must carry "authorization: Bearer <token>"
// (HTTP 401, gRPC UNAUTHENTICATED otherwise). The token is never printed or logged.
struct ReceiverAuthConfig {
  std::string bearer_token;       // the token itself (after reading bearer_token_file)
  std::string bearer_token_file;  // a file holding it (trailing whitespace ignored)

  bool enabled() const { return !bearer_token.empty(); }

  bool operator==(const ReceiverAuthConfig&) const = default;
};

struct ReceiverConfig {
  Endpoint listen{"127.0.0.1", 4318};
  GrpcReceiverConfig grpc;
  ReceiverTlsConfig tls;
  ReceiverAuthConfig auth;
  unsigned io_threads = 0;  // 0: auto, one per CPU this process may use, at most 2 (app::io_thread_count)
  std::size_t max_body_bytes = 64 * kMiB;   // after decompression; 413 beyond it
  std::size_t max_header_bytes = 16 * 1024;  // request line plus headers; 431 beyond it
  std::chrono::milliseconds read_timeout = 30s;   // one whole request, headers and body
  std::chrono::milliseconds idle_timeout = 120s;  // keep-alive connection with no request
  std::size_t max_connections = 1024;
  // Apache's LimitRequestFields default; an OTLP exporter sends about ten. 431 beyond it.
  std::size_t max_header_count = 100;
  // Decompressed bytes per compressed byte (0: no ratio check); 413 beyond it once the body
  // passes kRatioFreeBytes. OTLP bodies compress 5-30x; a bomb compresses 1000x.
  std::size_t max_decompression_ratio = 100;
  // SDK batches are 512 spans; a request with more is refused whole (413), not split.
  std::size_t max_spans_per_request = 65536;
  // Beyond these the first attributes are kept and the rest counted in dropped_attributes_count,
  // as OpenTelemetry SDKs do (their default is 128; spans get more room for flattened prompts).
  std::size_t max_attributes_per_span = 1024;
  std::size_t max_attributes_per_event = 128;
  std::size_t max_attributes_per_link = 128;

  bool operator==(const ReceiverConfig&) const = default;
};

// TLS to an https:// MLflow. Empty ca_file: the system's CA store. client_cert_file: a client
// certificate (mTLS) whose key is in client_key_file, or in the same file when that is empty (as
// MLFLOW_TRACKING_CLIENT_CERT_PATH has it). insecure_skip_verify: no certificate or host name
// check at all (a warning at start). Ignored for an http:// URL.
struct MlflowTlsConfig {
  std::string ca_file;           // also MLFLOW_TRACKING_SERVER_CERT_PATH (a file or a directory)
  std::string client_cert_file;  // also MLFLOW_TRACKING_CLIENT_CERT_PATH
  std::string client_key_file;
  bool insecure_skip_verify = false;  // also MLFLOW_TRACKING_INSECURE_TLS=true

  bool configured() const {
    return !ca_file.empty() || !client_cert_file.empty() || insecure_skip_verify;
  }

  bool operator==(const MlflowTlsConfig&) const = default;
};

// Where spans go in MLflow. Secrets (password, token) are never printed or logged.
struct MlflowConfig {
  std::string url = "http://127.0.0.1:5000";
  std::string experiment_id;    // empty: not configured
  std::string experiment_name;  // empty: not configured
  bool create_experiments = true;  // create an experiment by name when it is missing
  std::chrono::milliseconds request_timeout = 30s;
  std::chrono::milliseconds connect_timeout = 5s;
  std::chrono::seconds experiment_cache_ttl = 300s;
  std::string username;  // MLFLOW_TRACKING_USERNAME
  std::string password;  // MLFLOW_TRACKING_PASSWORD
  std::string token;     // MLFLOW_TRACKING_TOKEN
  MlflowTlsConfig tls;

  bool operator==(const MlflowConfig&) const = default;
};

// memory: acknowledged spans live in RAM until delivered. disk: also in a spool under state_dir.
enum class Durability { memory, disk };
// When spool writes are flushed: before acknowledging (always), every fsync_interval, or never.
enum class FsyncPolicy { always, interval, never };

struct QueueConfig {
  std::size_t max_bytes = 256 * kMiB;  // bytes of encoded spans held; 429 beyond it
  std::chrono::seconds retry_after = 2s;  // Retry-After sent with 429/503
  Durability durability = Durability::memory;
  std::string state_dir;  // spool directory; required with durability: disk
  std::size_t max_disk_bytes = 1024 * kMiB;  // spool size on disk; 429 beyond it
  FsyncPolicy fsync = FsyncPolicy::always;
  std::chrono::milliseconds fsync_interval = 1s;  // with fsync: interval, the loss window

  bool operator==(const QueueConfig&) const = default;
};

struct RetryConfig {
  std::chrono::milliseconds initial_backoff = 200ms;
  std::chrono::milliseconds max_backoff = 30s;
  double multiplier = 2.0;
  unsigned max_transient_422_retries = 5;  // "database is locked" and similar

  bool operator==(const RetryConfig&) const = default;
};

// Content-Encoding of requests to MLflow. automatic: gzip when GET /version says 3.7 or newer
// (3.6 cannot decode it), none until the version is known.
enum class UpstreamCompression { automatic, gzip, none };

struct ExporterConfig {
  unsigned concurrency = 2;  // concurrent requests to MLflow (SQLite serializes writers)
  std::size_t max_batch_bytes = 4 * kMiB;
  std::size_t max_batch_spans = 8192;
  std::chrono::milliseconds batch_linger = 10ms;  // how long a small batch waits to fill up
  // Spans MLflow rejects for good; empty: <queue.state_dir>/dead-letter.otlpdl, or
  // ./otlp-mlflow-proxy.otlpdl without a state_dir.
  std::string dead_letter_file;
  RetryConfig retry;
  UpstreamCompression compression = UpstreamCompression::automatic;

  bool operator==(const ExporterConfig&) const = default;
};

// The admin listener (/healthz, /readyz, /metrics), loopback by default; "off" disables it.
struct AdminConfig {
  bool enabled = true;
  Endpoint listen{"127.0.0.1", 13133};
  double queue_high_water = 0.9;  // /readyz fails while the queue holds more of queue.max_bytes
  std::chrono::milliseconds probe_interval = 5s;  // MLflow's /health, when no export went out
  // Open connections (probes, scrapers); more are closed at once. Header size and read and idle
  // time follow the receiver's settings.
  std::size_t max_connections = 16;

  bool operator==(const AdminConfig&) const = default;
};

enum class LogFormat { text, json };

struct LogConfig {
  std::string level = "info";  // trace, debug, info, warn, error, critical, off
  LogFormat format = LogFormat::text;

  bool operator==(const LogConfig&) const = default;
};

// ---- policy: what content reaches MLflow (docs/architecture.md, "Stages") -----------------------

// verbose keeps; mask replaces with "[masked: N bytes]" (same type); hash keeps a stable SHA-256
// prefix; truncate keeps the first bytes; drop removes the attribute; redact scrubs secrets/PII.
// hmac: a keyed pseudonym, HMAC-SHA256 with the policy's key (see policy/hmac_key.hpp).
enum class PolicyMode { verbose, mask, hash, truncate, drop, redact, hmac };

// An override for attribute keys matching a glob ('*' any run, '?' one character).
struct KeyRule {
  std::string key;
  PolicyMode mode = PolicyMode::mask;
  std::size_t truncate_bytes = 0;  // truncate only; 0: the policy's truncate_bytes

  bool operator==(const KeyRule&) const = default;
};

// A user redaction pattern (RE2 syntax). With a capturing group only group 1 is replaced.
struct RedactPattern {
  std::string name;
  std::string regex;

  bool operator==(const RedactPattern&) const = default;
};

// A message role or part type and the mode of the content under it (structure: keep only).
struct ModeByName {
  std::string name;
  PolicyMode mode = PolicyMode::mask;

  bool operator==(const ModeByName&) const = default;
};

struct PolicyConfig {
  PolicyMode content = PolicyMode::mask;  // the content keys: built-in set plus content_keys
  PolicyMode errors = PolicyMode::redact;  // span status messages, exception.message/stacktrace
  PolicyMode other = PolicyMode::verbose;  // every other span, event and link attribute
  std::vector<std::string> content_keys;   // globs added to the built-in content set
  std::vector<KeyRule> keys;               // overrides, first match wins, before the families
  std::vector<KeyRule> resource_keys;      // resource attributes: kept unless a rule matches
  std::vector<RedactPattern> redact_patterns;
  bool builtin_patterns = true;  // API keys, tokens, URL passwords, e-mails, card numbers
  std::size_t truncate_bytes = 256;
  unsigned hash_prefix = 16;  // hex characters of the SHA-256 kept
  unsigned max_depth = 8;     // nested arrays/kvlists deeper than this are replaced and counted
  // keep: content holding JSON is masked leaf by leaf, keys and structural values kept;
  // whole: the mode applies to the whole string.
  bool keep_structure = true;
  std::vector<std::string> structural_keys;  // globs kept besides role, type, name, id, ...
  std::size_t max_structure_bytes = 256 * 1024;  // larger JSON text gets the whole-value mode
  std::vector<ModeByName> messages;  // per role ("system", "user", ...); unset: content
  std::vector<ModeByName> parts;     // per part type ("text", "tool_call_response", ...)
  // hmac: the key's file (its path only: the key itself is never part of the config); empty:
  // the OTLP_MLFLOW_PROXY_HMAC_KEY variable.
  std::string key_file;

  bool operator==(const PolicyConfig&) const = default;
};

struct NamedPolicy {
  std::string name;
  PolicyConfig policy;

  bool operator==(const NamedPolicy&) const = default;
};

// ---- routing: which experiment and policy (docs/architecture.md, "Where to add things") ---------

struct ValueMatch {
  enum class Kind { exact, glob, regex };  // regex: RE2, the whole value must match
  Kind kind = Kind::exact;
  std::string pattern;

  bool operator==(const ValueMatch&) const = default;
};

struct AttributeMatch {
  std::string key;
  ValueMatch value;

  bool operator==(const AttributeMatch&) const = default;
};

// What a route requires of the client's x-mlflow-experiment-id header.
enum class HeaderCondition { any, present, absent, equals };

// What the client's x-mlflow-experiment-id header does on a route: honor (a valid header picks
// the experiment), override (the route's experiment wins; a malformed header is still a 400),
// ignore (the route's experiment; the header is not even checked).
enum class HeaderMode { honor, override_route, ignore };

struct RouteMatch {
  std::vector<AttributeMatch> resource;  // all must match
  std::optional<ValueMatch> scope_name;  // any scope of the resource spans
  HeaderCondition header = HeaderCondition::any;
  std::string header_value;  // for HeaderCondition::equals

  bool operator==(const RouteMatch&) const = default;
};

// ---- normalize: what MLflow would otherwise lose (docs/architecture.md, "Stages") ---------------

// Which spans get the kept resource attributes: every span, the trace's root only, or none.
enum class ResourceTarget { all, root, none };

// Gives spans that MLflow cannot classify an mlflow.spanType. A rule matches on the span name
// (glob), on an attribute (present, or equal to value), or both; the first match wins.
struct SpanTypeRule {
  std::string name;       // glob on the span name; empty: any name
  std::string attribute;  // attribute key that must be present; empty: none needed
  std::string value;      // with attribute: the value it must have; empty: any value
  std::string type;       // one of MLflow's span types (LLM, CHAIN, AGENT, TOOL, ...)

  bool operator==(const SpanTypeRule&) const = default;
};

struct NormalizeConfig {
  bool enabled = true;
  // Resource attributes copied onto spans under their own keys, unless a span has the key.
  std::vector<std::string> resource_attributes{"service.name", "service.version",
                                               "deployment.environment.name",
                                               "telemetry.sdk.language"};
  ResourceTarget resource_target = ResourceTarget::all;
  bool span_kind = true;   // otel.span.kind: INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER
  bool scope = true;       // otel.scope.name, otel.scope.version
  bool links = false;      // otel.links: the links as compact JSON (MLflow 3.6 drops links)
  bool span_types = true;  // built-in rules (Koog strategy/node/subgraph, agents, LLM) after rules
  std::vector<SpanTypeRule> span_type_rules;
  bool koog_io = true;                 // koog.node/subgraph.input/output -> span inputs/outputs
  bool system_instructions = true;  // span inputs: gen_ai.input.messages with Koog's system_instructions
  bool session_from_conversation = true;  // gen_ai.conversation.id -> session.id
  bool user_from_enduser = true;          // enduser.id -> user.id
  bool previews = true;  // a root without inputs/outputs takes its trace's invoke_agent ones
  // A root that arrives before its trace's invoke_agent (Koog sends a trace in concurrent
  // requests) is acknowledged at once but exported at most this much later, so its preview can be
  // filled; 0: never held.
  std::chrono::milliseconds preview_hold = 50ms;

  bool operator==(const NormalizeConfig&) const = default;
};

// The invoke_agent inputs/outputs remembered until their trace's root arrives. Shared by all
// routes; bounded by bytes and by age, the oldest evicted first (and counted).
struct PreviewCacheConfig {
  std::size_t max_bytes = 16 * kMiB;
  std::chrono::seconds ttl = 600s;

  bool operator==(const PreviewCacheConfig&) const = default;
};

struct RouteConfig {
  std::string name;
  RouteMatch match;
  std::string experiment_id;    // at most one of id and name; neither: mlflow.experiment_*
  std::string experiment_name;
  std::string policy;  // from policies or a built-in; empty: default_route's policy
  HeaderMode header = HeaderMode::honor;
  std::optional<NormalizeConfig> normalize;  // unset: default_route's
  // May spans on this route create their experiment name in MLflow? Unset: create_experiments
  // of the mlflow section. When not, spans for a missing experiment are dead-lettered.
  std::optional<bool> create_experiment;

  bool operator==(const RouteConfig&) const = default;
};

struct DefaultRouteConfig {
  std::string policy = "default";
  HeaderMode header = HeaderMode::honor;
  NormalizeConfig normalize;

  bool operator==(const DefaultRouteConfig&) const = default;
};

struct Config {
  ReceiverConfig receiver;
  MlflowConfig mlflow;
  QueueConfig queue;
  ExporterConfig exporter;
  LogConfig log;
  AdminConfig admin;
  std::vector<NamedPolicy> policies;  // user policies; built-ins are added by the policy stage
  std::vector<RouteConfig> routes;    // ordered, first match wins
  DefaultRouteConfig default_route;
  PreviewCacheConfig preview_cache;
  std::chrono::milliseconds shutdown_timeout = 15s;  // drain deadline on SIGTERM

  bool operator==(const Config&) const = default;
};

// The policies every configuration has: "default" and "mask" (content masked), "verbose"
// (content kept), "redact" (content kept, secrets and PII scrubbed). A user policy of the same
// name replaces one.
const std::vector<NamedPolicy>& builtin_policies();

// The user's policy of that name, else the built-in one, else nullptr.
const PolicyConfig* find_policy(const Config& config, std::string_view name);

// A configuration error: what is wrong and where (YAML path with line and column, a variable
// name or a flag). Thrown only while loading, never on the hot path.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace proxy::config
