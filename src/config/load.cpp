#include "config/load.hpp"

#include <unistd.h>  // environ

#include <array>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>
#include <vector>

#include <re2/re2.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include "config/values.hpp"

namespace proxy::config {

namespace {

using namespace std::string_view_literals;

// Durations above this are surely mistakes, and keep deadline arithmetic far from overflow.
constexpr std::chrono::milliseconds kMaxDuration = std::chrono::hours(24);
constexpr std::chrono::milliseconds kMaxPreviewHold = std::chrono::seconds(10);
constexpr std::string_view kPreviewHoldShape = "a duration from 0ms to 10s, such as 50ms";
constexpr std::size_t kMaxBodyBytes = kGiB;
constexpr std::size_t kMaxHeaderBytes = kMiB;
constexpr std::size_t kMaxBatchBytes = kGiB;
constexpr std::uint64_t kMaxThreads = 64;
constexpr std::uint64_t kMaxCount = 1'000'000;
constexpr std::uint64_t kMaxTransient422Retries = 1000;
constexpr std::uint64_t kMaxTruncateBytes = kMiB;

constexpr std::string_view kConfigFileVariable = "OTLP_MLFLOW_PROXY_CONFIG";
constexpr std::string_view kTrackingUri = "MLFLOW_TRACKING_URI";
constexpr std::string_view kExperimentId = "MLFLOW_EXPERIMENT_ID";
constexpr std::string_view kExperimentName = "MLFLOW_EXPERIMENT_NAME";
constexpr std::string_view kTrackingUsername = "MLFLOW_TRACKING_USERNAME";
constexpr std::string_view kTrackingPassword = "MLFLOW_TRACKING_PASSWORD";
constexpr std::string_view kTrackingToken = "MLFLOW_TRACKING_TOKEN";
constexpr std::string_view kServerCertPath = "MLFLOW_TRACKING_SERVER_CERT_PATH";
constexpr std::string_view kClientCertPath = "MLFLOW_TRACKING_CLIENT_CERT_PATH";
constexpr std::string_view kInsecureTls = "MLFLOW_TRACKING_INSECURE_TLS";
constexpr std::array kMlflowVariables{kTrackingUri,      kExperimentId,     kExperimentName,
                                      kTrackingUsername, kTrackingPassword, kTrackingToken,
                                      kServerCertPath,   kClientCertPath,   kInsecureTls};

// The settings that both OTLP_MLFLOW_PROXY_* variables and flags can override.
enum class Setting {
  listen, grpc_listen, mlflow_url, experiment_id, experiment_name, log_level, log_format,
  admin_listen
};

struct Overrides {
  std::optional<Endpoint> listen;
  std::optional<std::optional<Endpoint>> grpc_listen;  // inner nullopt: off
  std::optional<std::string> mlflow_url;
  std::optional<std::string> experiment_id;
  std::optional<std::string> experiment_name;
  std::optional<std::string> log_level;
  std::optional<LogFormat> log_format;
  std::optional<std::optional<Endpoint>> admin_listen;  // nullopt inside: "off"
};

struct OverrideSource {
  std::string_view name;  // flag or variable
  Setting setting;
};

constexpr std::array kOverrideVariables{
    OverrideSource{"OTLP_MLFLOW_PROXY_LISTEN", Setting::listen},
    OverrideSource{"OTLP_MLFLOW_PROXY_GRPC_LISTEN", Setting::grpc_listen},
    OverrideSource{"OTLP_MLFLOW_PROXY_MLFLOW_URL", Setting::mlflow_url},
    OverrideSource{"OTLP_MLFLOW_PROXY_EXPERIMENT_ID", Setting::experiment_id},
    OverrideSource{"OTLP_MLFLOW_PROXY_EXPERIMENT_NAME", Setting::experiment_name},
    OverrideSource{"OTLP_MLFLOW_PROXY_LOG_LEVEL", Setting::log_level},
    OverrideSource{"OTLP_MLFLOW_PROXY_LOG_FORMAT", Setting::log_format},
    OverrideSource{"OTLP_MLFLOW_PROXY_ADMIN_LISTEN", Setting::admin_listen},
};

enum class FlagKind { value, config_file, check_config, version, help };

struct FlagSpec {
  std::string_view name;
  FlagKind kind;
  Setting setting;               // for FlagKind::value
  std::string_view placeholder;  // empty: the flag takes no value
  std::string_view help;
};

// One table for parsing and for usage(), so --help cannot miss a flag.
constexpr std::array kFlags{
    FlagSpec{"--config", FlagKind::config_file, {}, "FILE",
             "YAML config file (default $OTLP_MLFLOW_PROXY_CONFIG)"},
    FlagSpec{"--listen", FlagKind::value, Setting::listen, "HOST:PORT",
             "OTLP/HTTP address (default 127.0.0.1:4318; IPv6: [::1]:4318)"},
    FlagSpec{"--grpc-listen", FlagKind::value, Setting::grpc_listen, "HOST:PORT|off",
             "OTLP/gRPC address (default 127.0.0.1:4317); off disables it"},
    FlagSpec{"--mlflow-url", FlagKind::value, Setting::mlflow_url, "URL",
             "MLflow server (default $MLFLOW_TRACKING_URI, else local :5000)"},
    FlagSpec{"--experiment-id", FlagKind::value, Setting::experiment_id, "ID",
             "MLflow experiment id (digits)"},
    FlagSpec{"--experiment-name", FlagKind::value, Setting::experiment_name, "NAME",
             "MLflow experiment name (created when missing)"},
    FlagSpec{"--log-level", FlagKind::value, Setting::log_level, "LEVEL",
             "trace|debug|info|warn|error|critical|off (default info)"},
    FlagSpec{"--log-format", FlagKind::value, Setting::log_format, "FORMAT",
             "text|json (default text)"},
    FlagSpec{"--admin-listen", FlagKind::value, Setting::admin_listen, "HOST:PORT|off",
             "/healthz, /readyz, /metrics (default 127.0.0.1:13133)"},
    FlagSpec{"--check-config", FlagKind::check_config, {}, {},
             "validate, print the effective config (secrets hidden), exit"},
    FlagSpec{"--version", FlagKind::version, {}, {}, "print the version and exit"},
    FlagSpec{"--help", FlagKind::help, {}, {}, "print this help and exit (also -h)"},
};

struct ParsedFlags {
  Overrides overrides;
  std::optional<std::string> config_file;
  bool check_config = false;
  bool version = false;
  bool help = false;
};

// Settings from a lower layer whose problems only matter if no higher layer replaces them:
// MLflow's variables are shared with other MLflow tools and may hold values the proxy cannot
// use (MLFLOW_TRACKING_URI=databricks) while the proxy's own config says otherwise.
struct Deferred {
  std::optional<std::string> url_error;
  std::optional<std::string> experiment_error;
};

std::string_view lookup(const Environment& env, std::string_view name) {
  auto it = env.find(std::string(name));
  return it == env.end() ? std::string_view{} : std::string_view(it->second);
}

// Experiment selection is one setting: a layer that names an id or a name replaces both.
void set_experiment(MlflowConfig& mlflow, Deferred& deferred,
                    const std::optional<std::string>& id,
                    const std::optional<std::string>& name) {
  if (!id && !name) return;
  mlflow.experiment_id = id.value_or("");
  mlflow.experiment_name = name.value_or("");
  deferred.experiment_error.reset();
}

void set_url(MlflowConfig& mlflow, Deferred& deferred, std::string url) {
  mlflow.url = std::move(url);
  deferred.url_error.reset();
}

void set_grpc_listen(GrpcReceiverConfig& grpc, const std::optional<Endpoint>& listen) {
  grpc.enabled = listen.has_value();
  if (listen) grpc.listen = *listen;
}

void apply_override(Overrides& overrides, Setting setting, std::string_view text) {
  switch (setting) {
    case Setting::listen:
      overrides.listen = parse_endpoint(text);
      break;
    case Setting::grpc_listen:
      overrides.grpc_listen = parse_optional_endpoint(text);
      break;
    case Setting::mlflow_url:
      overrides.mlflow_url = parse_url(text);
      break;
    case Setting::experiment_id:
      overrides.experiment_id = parse_experiment_id(text);
      break;
    case Setting::experiment_name:
      overrides.experiment_name = parse_experiment_name(text);
      break;
    case Setting::log_level:
      overrides.log_level = parse_log_level(text);
      break;
    case Setting::log_format:
      overrides.log_format = parse_log_format(text);
      break;
    case Setting::admin_listen:
      overrides.admin_listen = parse_optional_endpoint(text);
      break;
  }
}

void apply_overrides(const Overrides& overrides, Config& config, Deferred& deferred) {
  if (overrides.listen) config.receiver.listen = *overrides.listen;
  if (overrides.grpc_listen) set_grpc_listen(config.receiver.grpc, *overrides.grpc_listen);
  if (overrides.mlflow_url) set_url(config.mlflow, deferred, *overrides.mlflow_url);
  set_experiment(config.mlflow, deferred, overrides.experiment_id, overrides.experiment_name);
  if (overrides.log_level) config.log.level = *overrides.log_level;
  if (overrides.log_format) config.log.format = *overrides.log_format;
  if (overrides.admin_listen) {
    config.admin.enabled = overrides.admin_listen->has_value();
    if (*overrides.admin_listen) config.admin.listen = **overrides.admin_listen;
  }
}

// ---- flags -------------------------------------------------------------------------------------

const FlagSpec* find_flag(std::string_view name) {
  if (name == "-h") name = "--help";
  for (const FlagSpec& flag : kFlags) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

ParsedFlags parse_flags(const std::vector<std::string>& args) {
  ParsedFlags parsed;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg.size() < 2 || arg.front() != '-') {
      throw ConfigError("unexpected argument " + quoted(arg) + " (see --help)");
    }
    std::string_view name = arg;
    std::optional<std::string_view> value;
    if (auto eq = arg.find('='); eq != std::string_view::npos && arg.starts_with("--")) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    const FlagSpec* flag = find_flag(name);
    if (flag == nullptr) throw ConfigError(std::string(name) + ": unknown flag (see --help)");
    std::string label(flag->name);

    if (flag->placeholder.empty()) {
      if (value) throw ConfigError(label + ": takes no value, got " + quoted(*value));
      if (flag->kind == FlagKind::check_config) parsed.check_config = true;
      if (flag->kind == FlagKind::version) parsed.version = true;
      if (flag->kind == FlagKind::help) parsed.help = true;
      continue;
    }
    // "--config --check-config" is a forgotten value, not a file named "--check-config".
    if (!value && i + 1 < args.size() && !args[i + 1].starts_with("--")) value = args[++i];
    if (!value || value->empty()) {
      throw ConfigError(label + ": missing value (expected " + std::string(flag->placeholder) +
                        ")");
    }
    if (flag->kind == FlagKind::config_file) {
      parsed.config_file = std::string(*value);
      continue;
    }
    try {
      apply_override(parsed.overrides, flag->setting, *value);
    } catch (const ValueError& e) {
      throw ConfigError(label + ": " + e.what());
    }
  }
  return parsed;
}

// ---- environment -------------------------------------------------------------------------------

// Unknown OTLP_MLFLOW_PROXY_* variables are deliberately not errors: Kubernetes injects
// <SERVICE>_PORT and similar for a Service named otlp-mlflow-proxy.
Overrides parse_proxy_environment(const Environment& env) {
  Overrides overrides;
  for (const OverrideSource& variable : kOverrideVariables) {
    std::string_view text = lookup(env, variable.name);
    if (text.empty()) continue;  // set but empty counts as unset, as in most tools
    try {
      apply_override(overrides, variable.setting, text);
    } catch (const ValueError& e) {
      throw ConfigError(std::string(variable.name) + ": " + e.what());
    }
  }
  return overrides;
}

void apply_mlflow_environment(const Environment& env, Config& config, Deferred& deferred) {
  constexpr std::string_view kHint =
      " (set mlflow.url, OTLP_MLFLOW_PROXY_MLFLOW_URL or --mlflow-url)";
  if (std::string_view uri = lookup(env, kTrackingUri); !uri.empty()) {
    try {
      set_url(config.mlflow, deferred, parse_url(uri));
    } catch (const ValueError& e) {
      deferred.url_error = std::string(kTrackingUri) + ": " + e.what() +
                           "; the proxy needs an MLflow tracking server" + std::string(kHint);
    }
  }
  std::optional<std::string> id;
  std::optional<std::string> name;
  std::optional<std::string> id_error;
  if (std::string_view text = lookup(env, kExperimentId); !text.empty()) {
    id = std::string(text);
    try {
      parse_experiment_id(text);
    } catch (const ValueError& e) {
      id_error = std::string(kExperimentId) + ": " + e.what();
    }
  }
  if (std::string_view text = lookup(env, kExperimentName); !text.empty()) {
    name = std::string(text);
  }
  set_experiment(config.mlflow, deferred, id, name);
  deferred.experiment_error = id_error;
  apply_mlflow_client_environment(env, config.mlflow);
}

// MLflow refuses both at once; so does the proxy (within one layer the YAML reader says where).
void check_tls_trust(const MlflowTlsConfig& tls) {
  if (tls.insecure_skip_verify && !tls.ca_file.empty()) {
    throw ConfigError("mlflow.tls: ca_file (or " + std::string(kServerCertPath) +
                      ") and insecure_skip_verify (or " + std::string(kInsecureTls) +
                      "=true) exclude each other; set one");
  }
}

// ---- YAML --------------------------------------------------------------------------------------

std::string read_file(const std::string& path, std::string_view what = "config file") {
  auto fail = [&](int error) {
    return ConfigError("cannot read " + std::string(what) + " " + quoted(path) + ": " +
                       std::strerror(error));
  };
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                        &std::fclose);
  if (!file) throw fail(errno);
  std::string text;
  std::array<char, 8192> buf{};
  while (std::size_t n = std::fread(buf.data(), 1, buf.size(), file.get())) {
    text.append(buf.data(), n);
  }
  if (std::ferror(file.get())) throw fail(errno);  // EISDIR for a directory, EIO...
  return text;
}

// receiver.auth.bearer_token_file: read once at start; a trailing newline is not part of it.
void load_bearer_token(ReceiverAuthConfig& auth) {
  if (auth.bearer_token_file.empty()) return;
  std::string token = read_file(auth.bearer_token_file, "receiver.auth.bearer_token_file");
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  if (token.empty()) {
    throw ConfigError("receiver.auth.bearer_token_file: " + quoted(auth.bearer_token_file) +
                      " is empty");
  }
  auth.bearer_token = std::move(token);
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      return quoted(node.Scalar());
    default:
      return "nothing";
  }
}

// A key and its value, with where to point at when the value is wrong.
struct Field {
  std::string path;  // receiver.listen
  YAML::Mark key_mark;
  YAML::Node value;

  // An empty value has no position of its own (yaml-cpp gives the next token's): use the key's.
  YAML::Mark mark() const {
    if (value.IsNull() || value.Mark().line < 0) return key_mark;
    return value.Mark();
  }
};

using Handler = std::function<void(const Field&)>;
using Handlers = std::initializer_list<std::pair<std::string_view, Handler>>;

// Where each document of a YAML stream starts, at most two of them, without building nodes.
//
// yaml-cpp 0.7's LoadAll collects documents for as long as the parser says there is another. On
// a token that cannot start a node (a ',', ']' or '}' at the top of a document) the parser
// reports an empty document without consuming the token, forever, and LoadAll allocates without
// bound (jbeder/yaml-cpp#1040; fixed upstream after 0.8.0 by #1319). So the proxy never calls
// LoadAll: it loads the first document with Load, which parses one, and counts documents with
// this bounded handler; a second document starting where the first did is that stuck token.
class DocumentStarts : public YAML::EventHandler {
 public:
  struct Document {
    YAML::Mark start;    // the document's first token ("---" if it has one)
    YAML::Mark content;  // its top node
    bool has_content = false;
  };
  std::vector<Document> documents;

  void OnDocumentStart(const YAML::Mark& mark) override { documents.push_back({mark, mark, false}); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    node(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    node(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    node(mark);
  }
  void OnMapEnd() override {}

 private:
  void node(const YAML::Mark& mark) {
    if (documents.empty() || documents.back().has_content) return;
    documents.back().content = mark;
    documents.back().has_content = true;
  }
};

class YamlLoader {
 public:
  YamlLoader(std::string file, Config& config, Deferred& deferred)
      : file_(std::move(file)), config_(config), deferred_(deferred) {}

  void load(const std::string& text) {
    YAML::Node document;
    DocumentStarts documents;
    try {
      std::istringstream stream(text);
      YAML::Parser parser(stream);
      while (documents.documents.size() < 2 && parser.HandleNextDocument(documents)) {
      }
      document = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      throw ConfigError(location(e.mark) + "invalid YAML: " + e.msg);
    }
    if (documents.documents.size() > 1) {
      const YAML::Mark& second = documents.documents[1].start;
      if (second.pos == documents.documents[0].start.pos && second.pos >= 0 &&
          static_cast<std::size_t>(second.pos) < text.size()) {
        throw ConfigError(location(second) + "invalid YAML: unexpected '" +
                          std::string(1, text[static_cast<std::size_t>(second.pos)]) +
                          "' where a value should start");
      }
      throw ConfigError(location(documents.documents[1].content) +
                        "expected one YAML document, found a second one");
    }
    if (documents.documents.empty()) return;  // an empty file: all defaults
    YAML::Mark start;
    start.line = 0;
    start.column = 0;
    root(Field{"top level", start, document});
    check_policy_references();
  }

 private:
  std::string location(const YAML::Mark& mark) const {
    // yaml-cpp counts from 0; editors and compilers from 1.
    int line = mark.line < 0 ? 1 : mark.line + 1;
    int column = mark.column < 0 ? 1 : mark.column + 1;
    return file_ + ":" + std::to_string(line) + ":" + std::to_string(column) + ": ";
  }

  [[noreturn]] void fail(const YAML::Mark& mark, std::string_view path,
                         std::string_view what) const {
    throw ConfigError(location(mark) + std::string(path) + ": " + std::string(what));
  }

  // Calls the handler of each key of a mapping; unknown and repeated keys are errors.
  void for_each_field(const Field& section, bool top_level, Handlers handlers) const {
    if (section.value.IsNull()) return;  // "receiver:" with every key commented out
    if (!section.value.IsMap()) {
      fail(section.mark(), section.path, "expected a mapping, got " + describe(section.value));
    }
    std::set<std::string> seen;
    for (auto it = section.value.begin(); it != section.value.end(); ++it) {
      // Copies: the iterator hands out a temporary pair, references into it would dangle.
      YAML::Node key = it->first;
      YAML::Node value = it->second;
      if (!key.IsScalar()) {
        fail(key.Mark(), section.path, "expected a key name, got " + describe(key));
      }
      std::string name = key.Scalar();
      std::string path = top_level ? name : section.path + "." + name;
      const Handler* handler = nullptr;
      std::string expected;
      for (const auto& [known, known_handler] : handlers) {
        if (known == name) handler = &known_handler;
        expected += (expected.empty() ? "" : ", ") + std::string(known);
      }
      if (handler == nullptr) {
        fail(key.Mark(), path, "unknown key (expected one of: " + expected + ")");
      }
      if (!seen.insert(name).second) fail(key.Mark(), path, "duplicate key");
      (*handler)(Field{path, key.Mark(), value});
    }
  }

  template <class Parse>
  auto read(const Field& field, std::string_view shape, Parse&& parse) const {
    if (!field.value.IsScalar()) {
      fail(field.mark(), field.path,
           "expected " + std::string(shape) + ", got " + describe(field.value));
    }
    try {
      return parse(std::string_view(field.value.Scalar()));
    } catch (const ValueError& e) {
      fail(field.mark(), field.path, e.what());
    }
  }

  // Free-form strings where empty (or no value at all) means "not set".
  std::string read_optional_string(const Field& field) const {
    if (field.value.IsNull()) return {};
    return read(field, kStringShape, [](std::string_view text) { return std::string(text); });
  }

  std::size_t read_size(const Field& field, std::size_t max = SIZE_MAX) const {
    return read(field, kSizeShape, [max](std::string_view text) { return parse_size(text, max); });
  }

  std::chrono::milliseconds read_duration(const Field& field, std::chrono::milliseconds min) const {
    return read(field, kDurationShape,
                [min](std::string_view text) { return parse_duration(text, min, kMaxDuration); });
  }

  std::chrono::seconds read_seconds(const Field& field, std::chrono::seconds min) const {
    return read(field, kDurationShape, [min](std::string_view text) {
      return parse_seconds(text, min,
                           std::chrono::duration_cast<std::chrono::seconds>(kMaxDuration));
    });
  }

  template <class T>
  T read_integer(const Field& field, std::uint64_t min, std::uint64_t max) const {
    return static_cast<T>(read(field, kIntegerShape, [min, max](std::string_view text) {
      return parse_integer(text, min, max);
    }));
  }

  // "auto" (0: sized at start to the CPUs the process may use) or a count.
  unsigned read_thread_count(const Field& field) const {
    return read(field, "auto or " + std::string(kIntegerShape), [](std::string_view text) {
      return parse_thread_count(text, kMaxThreads);
    });
  }

  void root(const Field& field) {
    auto& c = config_;
    for_each_field(field, true,
                   {
                       {"receiver", [this](const Field& f) { receiver(f); }},
                       {"mlflow", [this](const Field& f) { mlflow(f); }},
                       {"queue", [this](const Field& f) { queue(f); }},
                       {"exporter", [this](const Field& f) { exporter(f); }},
                       {"log", [this](const Field& f) { log(f); }},
                       {"admin", [this](const Field& f) { admin(f); }},
                       {"policies", [this](const Field& f) { policies(f); }},
                       {"routes", [this](const Field& f) { routes(f); }},
                       {"default_route", [this](const Field& f) { default_route(f); }},
                       {"preview_cache", [this](const Field& f) { preview_cache(f); }},
                       {"shutdown_timeout",
                        [&](const Field& f) { c.shutdown_timeout = read_duration(f, 0ms); }},
                   });
  }

  void receiver(const Field& field) {
    auto& r = config_.receiver;
    for_each_field(
        field, false,
        {
            {"listen", [&](const Field& f) { r.listen = read(f, kEndpointShape, parse_endpoint); }},
            {"io_threads", [&](const Field& f) { r.io_threads = read_thread_count(f); }},
            {"max_body_bytes",
             [&](const Field& f) { r.max_body_bytes = read_size(f, kMaxBodyBytes); }},
            {"max_header_bytes",
             [&](const Field& f) { r.max_header_bytes = read_size(f, kMaxHeaderBytes); }},
            {"read_timeout", [&](const Field& f) { r.read_timeout = read_duration(f, 1ms); }},
            {"idle_timeout", [&](const Field& f) { r.idle_timeout = read_duration(f, 1ms); }},
            {"max_connections",
             [&](const Field& f) {
               r.max_connections = read_integer<std::size_t>(f, 1, kMaxCount);
             }},
            {"max_header_count",
             [&](const Field& f) {
               r.max_header_count = read_integer<std::size_t>(f, 1, kMaxCount);
             }},
            {"max_decompression_ratio",
             [&](const Field& f) {
               r.max_decompression_ratio = read_integer<std::size_t>(f, 0, kMaxCount);
             }},
            {"max_spans_per_request",
             [&](const Field& f) {
               r.max_spans_per_request = read_integer<std::size_t>(f, 1, kMaxCount);
             }},
            {"max_attributes_per_span",
             [&](const Field& f) {
               r.max_attributes_per_span = read_integer<std::size_t>(f, 1, kMaxCount);
             }},
            {"max_attributes_per_event",
             [&](const Field& f) {
               r.max_attributes_per_event = read_integer<std::size_t>(f, 1, kMaxCount);
             }},
            {"max_attributes_per_link",
             [&](const Field& f) {
               r.max_attributes_per_link = read_integer<std::size_t>(f, 1, kMaxCount);
             }},
            {"grpc", [this](const Field& f) { receiver_grpc(f); }},
            {"tls", [this](const Field& f) { receiver_tls(f); }},
            {"auth", [this](const Field& f) { receiver_auth(f); }},
        });
  }

  void receiver_grpc(const Field& field) {
    auto& g = config_.receiver.grpc;
    for_each_field(field, false,
                   {
                       {"listen",
                        [&](const Field& f) {
                          set_grpc_listen(g, read(f, kOptionalEndpointShape,
                                                  parse_optional_endpoint));
                        }},
                   });
  }

  void receiver_tls(const Field& field) {
    auto& t = config_.receiver.tls;
    for_each_field(field, false,
                   {
                       {"cert_file", [&](const Field& f) { t.cert_file = read_optional_string(f); }},
                       {"key_file", [&](const Field& f) { t.key_file = read_optional_string(f); }},
                       {"client_ca_file",
                        [&](const Field& f) { t.client_ca_file = read_optional_string(f); }},
                       {"handshake_timeout",
                        [&](const Field& f) { t.handshake_timeout = read_duration(f, 1ms); }},
                   });
    if (t.cert_file.empty() != t.key_file.empty()) {
      fail(field.mark(), field.path, "cert_file and key_file go together (both or neither)");
    }
    if (!t.client_ca_file.empty() && t.cert_file.empty()) {
      fail(field.mark(), field.path, "client_ca_file needs cert_file and key_file");
    }
  }

  void receiver_auth(const Field& field) {
    auto& a = config_.receiver.auth;
    for_each_field(field, false,
                   {
                       {"bearer_token",
                        [&](const Field& f) { a.bearer_token = read_optional_string(f); }},
                       {"bearer_token_file",
                        [&](const Field& f) { a.bearer_token_file = read_optional_string(f); }},
                   });
    if (!a.bearer_token.empty() && !a.bearer_token_file.empty()) {
      fail(field.mark(), field.path, "set bearer_token or bearer_token_file, not both");
    }
  }

  void admin(const Field& field) {
    auto& a = config_.admin;
    for_each_field(
        field, false,
        {
            {"listen",
             [&](const Field& f) {
               const auto endpoint = read(f, kOptionalEndpointShape, parse_optional_endpoint);
               a.enabled = endpoint.has_value();
               if (endpoint) a.listen = *endpoint;
             }},
            {"queue_high_water",
             [&](const Field& f) {
               a.queue_high_water = read(f, kFractionShape, parse_fraction);
             }},
            {"probe_interval", [&](const Field& f) { a.probe_interval = read_duration(f, 100ms); }},
            {"max_connections",
             [&](const Field& f) {
               a.max_connections = read_integer<std::size_t>(f, 1, kMaxCount);
             }},
        });
  }

  void mlflow(const Field& field) {
    auto& m = config_.mlflow;
    std::optional<std::string> id;
    std::optional<std::string> name;
    for_each_field(
        field, false,
        {
            {"url",
             [&](const Field& f) { set_url(m, deferred_, read(f, kUrlShape, parse_url)); }},
            {"experiment_id",
             [&](const Field& f) {
               std::string text = read_optional_string(f);
               id = text.empty() ? text : read(f, kExperimentIdShape, parse_experiment_id);
             }},
            {"experiment_name", [&](const Field& f) { name = read_optional_string(f); }},
            {"create_experiments",
             [&](const Field& f) { m.create_experiments = read(f, kBoolShape, parse_bool); }},
            {"request_timeout", [&](const Field& f) { m.request_timeout = read_duration(f, 1ms); }},
            {"connect_timeout", [&](const Field& f) { m.connect_timeout = read_duration(f, 1ms); }},
            {"experiment_cache_ttl",
             [&](const Field& f) { m.experiment_cache_ttl = read_seconds(f, 1s); }},
            {"username", [&](const Field& f) { m.username = read_optional_string(f); }},
            {"password", [&](const Field& f) { m.password = read_optional_string(f); }},
            {"token", [&](const Field& f) { m.token = read_optional_string(f); }},
            {"tls", [this](const Field& f) { mlflow_tls(f); }},
        });
    set_experiment(m, deferred_, id, name);
  }

  // Like the experiment, trust (ca_file or insecure_skip_verify) and the client certificate
  // (file and key) are each one setting: naming part of one here replaces it from MLflow's
  // variables, so a CA from the environment never meets insecure_skip_verify from the file.
  void mlflow_tls(const Field& field) {
    auto& t = config_.mlflow.tls;
    std::optional<std::string> ca;
    std::optional<bool> insecure;
    std::optional<std::string> cert;
    std::optional<std::string> key;
    for_each_field(field, false,
                   {
                       {"ca_file", [&](const Field& f) { ca = read_optional_string(f); }},
                       {"client_cert_file", [&](const Field& f) { cert = read_optional_string(f); }},
                       {"client_key_file", [&](const Field& f) { key = read_optional_string(f); }},
                       {"insecure_skip_verify",
                        [&](const Field& f) { insecure = read(f, kBoolShape, parse_bool); }},
                   });
    if (insecure.value_or(false) && !ca.value_or("").empty()) {
      fail(field.mark(), field.path, "set ca_file or insecure_skip_verify: true, not both");
    }
    if (!key.value_or("").empty() && cert.value_or("").empty()) {
      fail(field.mark(), field.path, "client_key_file needs client_cert_file");
    }
    if (ca || insecure) {
      t.ca_file = ca.value_or("");
      t.insecure_skip_verify = insecure.value_or(false);
    }
    if (cert || key) {
      t.client_cert_file = cert.value_or("");
      t.client_key_file = key.value_or("");
    }
  }

  void queue(const Field& field) {
    auto& q = config_.queue;
    for_each_field(field, false,
                   {
                       {"max_bytes", [&](const Field& f) { q.max_bytes = read_size(f); }},
                       {"retry_after",
                        [&](const Field& f) { q.retry_after = read_seconds(f, 1s); }},
                       {"durability",
                        [&](const Field& f) {
                          q.durability = read(f, kDurabilityShape, parse_durability);
                        }},
                       {"state_dir", [&](const Field& f) { q.state_dir = read_optional_string(f); }},
                       {"max_disk_bytes", [&](const Field& f) { q.max_disk_bytes = read_size(f); }},
                       {"fsync", [&](const Field& f) { q.fsync = read(f, kFsyncShape, parse_fsync); }},
                       {"fsync_interval",
                        [&](const Field& f) { q.fsync_interval = read_duration(f, 1ms); }},
                   });
    if (q.durability == Durability::disk && q.state_dir.empty()) {
      fail(field.mark(), field.path, "durability: disk needs a state_dir for the spool");
    }
  }

  void exporter(const Field& field) {
    auto& e = config_.exporter;
    for_each_field(
        field, false,
        {
            {"concurrency",
             [&](const Field& f) { e.concurrency = read_integer<unsigned>(f, 1, kMaxThreads); }},
            {"max_batch_bytes",
             [&](const Field& f) { e.max_batch_bytes = read_size(f, kMaxBatchBytes); }},
            {"max_batch_spans",
             [&](const Field& f) {
               e.max_batch_spans = read_integer<std::size_t>(f, 1, kMaxCount);
             }},
            {"batch_linger", [&](const Field& f) { e.batch_linger = read_duration(f, 0ms); }},
            {"dead_letter_file",
             [&](const Field& f) { e.dead_letter_file = read_optional_string(f); }},
            {"retry", [this](const Field& f) { retry(f); }},
            {"compression",
             [&](const Field& f) {
               e.compression = read(f, kCompressionShape, parse_upstream_compression);
             }},
        });
  }

  void retry(const Field& field) {
    auto& r = config_.exporter.retry;
    for_each_field(
        field, false,
        {
            {"initial_backoff", [&](const Field& f) { r.initial_backoff = read_duration(f, 1ms); }},
            {"max_backoff", [&](const Field& f) { r.max_backoff = read_duration(f, 1ms); }},
            {"multiplier",
             [&](const Field& f) {
               r.multiplier = read(f, kNumberShape, [](std::string_view text) {
                 return parse_number(text, 1.0);
               });
             }},
            {"max_transient_422_retries",
             [&](const Field& f) {
               r.max_transient_422_retries =
                   read_integer<unsigned>(f, 0, kMaxTransient422Retries);
             }},
        });
    if (r.initial_backoff > r.max_backoff) {
      fail(field.mark(), field.path,
           "initial_backoff (" + format_duration(r.initial_backoff) + ") exceeds max_backoff (" +
               format_duration(r.max_backoff) + ")");
    }
  }

  void log(const Field& field) {
    auto& l = config_.log;
    for_each_field(
        field, false,
        {
            {"level", [&](const Field& f) { l.level = read(f, kLogLevelShape, parse_log_level); }},
            {"format",
             [&](const Field& f) { l.format = read(f, kLogFormatShape, parse_log_format); }},
        });
  }

  // ---- policies and routes ----

  // Calls `item` for each element of a list, with the path "routes[2]".
  void for_each_item(const Field& list, const std::function<void(const Field&)>& item) const {
    if (list.value.IsNull()) return;
    if (!list.value.IsSequence()) {
      fail(list.mark(), list.path, "expected a list, got " + describe(list.value));
    }
    for (std::size_t i = 0; i < list.value.size(); ++i) {
      YAML::Node element = list.value[i];
      item(Field{list.path + "[" + std::to_string(i) + "]", element.Mark(), element});
    }
  }

  std::string read_required_string(const Field& field) const {
    std::string text = read_optional_string(field);
    if (text.empty()) fail(field.mark(), field.path, "must not be empty");
    return text;
  }

  // An RE2 pattern, compiled now so that a mistake is reported with its position.
  std::string read_regex(const Field& field, bool allow_empty_match) const {
    std::string pattern = read_required_string(field);
    RE2::Options options;
    options.set_log_errors(false);
    RE2 compiled(pattern, options);
    if (!compiled.ok()) fail(field.mark(), field.path, "invalid RE2 regex: " + compiled.error());
    if (!allow_empty_match && RE2::FullMatch("", compiled)) {
      fail(field.mark(), field.path, "the regex matches the empty string");
    }
    return pattern;
  }

  KeyRule key_rule(const Field& field) const {
    KeyRule rule;
    bool has_key = false;
    bool has_mode = false;
    for_each_field(field, false,
                   {
                       {"key",
                        [&](const Field& f) {
                          rule.key = read_required_string(f);
                          has_key = true;
                        }},
                       {"mode",
                        [&](const Field& f) {
                          rule.mode = read(f, kPolicyModeShape, parse_policy_mode);
                          has_mode = true;
                        }},
                       {"truncate_bytes",
                        [&](const Field& f) {
                          rule.truncate_bytes = read_integer<std::size_t>(f, 1, kMaxTruncateBytes);
                        }},
                   });
    if (!field.value.IsMap() || !has_key || !has_mode) {
      fail(field.mark(), field.path, "expected a mapping with key and mode");
    }
    return rule;
  }

  void policy(const Field& field, PolicyConfig& p) const {
    auto mode = [this](const Field& f) { return read(f, kPolicyModeShape, parse_policy_mode); };
    for_each_field(
        field, false,
        {
            {"content", [&](const Field& f) { p.content = mode(f); }},
            {"errors", [&](const Field& f) { p.errors = mode(f); }},
            {"other", [&](const Field& f) { p.other = mode(f); }},
            {"content_keys",
             [&](const Field& f) {
               for_each_item(f, [&](const Field& item) {
                 p.content_keys.push_back(read_required_string(item));
               });
             }},
            {"keys",
             [&](const Field& f) {
               for_each_item(f, [&](const Field& item) { p.keys.push_back(key_rule(item)); });
             }},
            {"resource_keys",
             [&](const Field& f) {
               for_each_item(f, [&](const Field& item) {
                 p.resource_keys.push_back(key_rule(item));
               });
             }},
            {"redact_patterns",
             [&](const Field& f) {
               for_each_item(f, [&](const Field& item) {
                 RedactPattern pattern;
                 for_each_field(item, false,
                                {
                                    {"name",
                                     [&](const Field& g) { pattern.name = read_required_string(g); }},
                                    {"regex",
                                     [&](const Field& g) { pattern.regex = read_regex(g, false); }},
                                });
                 if (pattern.name.empty() || pattern.regex.empty()) {
                   fail(item.mark(), item.path, "expected a mapping with name and regex");
                 }
                 p.redact_patterns.push_back(std::move(pattern));
               });
             }},
            {"builtin_patterns",
             [&](const Field& f) { p.builtin_patterns = read(f, kBoolShape, parse_bool); }},
            {"truncate_bytes",
             [&](const Field& f) {
               p.truncate_bytes = read_integer<std::size_t>(f, 1, kMaxTruncateBytes);
             }},
            {"hash_prefix",
             [&](const Field& f) { p.hash_prefix = read_integer<unsigned>(f, 8, 64); }},
            {"max_depth", [&](const Field& f) { p.max_depth = read_integer<unsigned>(f, 1, 64); }},
            {"structure", [&](const Field& f) { p.keep_structure = read_structure(f); }},
            {"structural_keys",
             [&](const Field& f) {
               for_each_item(f, [&](const Field& item) {
                 p.structural_keys.push_back(read_required_string(item));
               });
             }},
            {"max_structure_bytes", [&](const Field& f) { p.max_structure_bytes = read_size(f, kGiB); }},
            {"messages", [&](const Field& f) { p.messages = modes_by_name(f); }},
            {"parts", [&](const Field& f) { p.parts = modes_by_name(f); }},
            {"key_file", [&](const Field& f) { p.key_file = read_optional_string(f); }},
        });
  }

  bool read_structure(const Field& field) const {
    return read(field, "keep or whole", [](std::string_view text) {
      if (text == "keep") return true;
      if (text == "whole") return false;
      throw ValueError("expected keep or whole, got \"" + std::string(text) + "\"");
    });
  }

  // {system: redact, user: mask, ...}: drop has no meaning inside a JSON value.
  std::vector<ModeByName> modes_by_name(const Field& field) const {
    std::vector<ModeByName> modes;
    if (field.value.IsNull()) return modes;
    if (!field.value.IsMap()) fail(field.mark(), field.path, "expected a mapping, got " + describe(field.value));
    for (auto it = field.value.begin(); it != field.value.end(); ++it) {
      YAML::Node key = it->first;
      if (!key.IsScalar() || key.Scalar().empty()) fail(key.Mark(), field.path, "expected a name");
      const Field item{field.path + "." + key.Scalar(), key.Mark(), it->second};
      const PolicyMode mode = read(item, kPolicyModeShape, parse_policy_mode);
      if (mode == PolicyMode::drop) fail(item.mark(), item.path, "drop cannot apply inside a value");
      for (const ModeByName& existing : modes) {
        if (existing.name == key.Scalar()) fail(key.Mark(), item.path, "duplicate key");
      }
      modes.push_back({key.Scalar(), mode});
    }
    return modes;
  }

  void policies(const Field& field) {
    if (field.value.IsNull()) return;
    if (!field.value.IsMap()) {
      fail(field.mark(), field.path, "expected a mapping of policy names, got " + describe(field.value));
    }
    for (auto it = field.value.begin(); it != field.value.end(); ++it) {
      YAML::Node key = it->first;
      YAML::Node value = it->second;
      if (!key.IsScalar() || key.Scalar().empty()) {
        fail(key.Mark(), field.path, "expected a policy name, got " + describe(key));
      }
      const std::string path = field.path + "." + key.Scalar();
      for (const NamedPolicy& existing : config_.policies) {
        if (existing.name == key.Scalar()) fail(key.Mark(), path, "duplicate policy");
      }
      NamedPolicy named{key.Scalar(), {}};
      policy(Field{path, key.Mark(), value}, named.policy);
      config_.policies.push_back(std::move(named));
    }
  }

  ValueMatch value_match(const Field& field) const {
    if (field.value.IsScalar()) return {ValueMatch::Kind::exact, field.value.Scalar()};
    if (!field.value.IsMap() || field.value.size() != 1) {
      fail(field.mark(), field.path,
           "expected a string (exact) or a mapping with one of exact, glob, regex, got " +
               describe(field.value));
    }
    ValueMatch match;
    for_each_field(field, false,
                   {
                       {"exact",
                        [&](const Field& f) {
                          match = {ValueMatch::Kind::exact, read_optional_string(f)};
                        }},
                       {"glob",
                        [&](const Field& f) {
                          match = {ValueMatch::Kind::glob, read_required_string(f)};
                        }},
                       {"regex",
                        [&](const Field& f) {
                          match = {ValueMatch::Kind::regex, read_regex(f, true)};
                        }},
                   });
    return match;
  }

  HeaderMode read_header_mode(const Field& field) const {
    return read(field, kHeaderModeShape, parse_header_mode);
  }

  void route_match(const Field& field, RouteMatch& match) const {
    for_each_field(
        field, false,
        {
            {"resource",
             [&](const Field& f) {
               if (!f.value.IsMap()) {
                 fail(f.mark(), f.path,
                      "expected a mapping of resource attribute keys, got " + describe(f.value));
               }
               for (auto it = f.value.begin(); it != f.value.end(); ++it) {
                 YAML::Node key = it->first;
                 YAML::Node value = it->second;
                 if (!key.IsScalar() || key.Scalar().empty()) {
                   fail(key.Mark(), f.path, "expected an attribute key, got " + describe(key));
                 }
                 match.resource.push_back(
                     {key.Scalar(), value_match(Field{f.path + "." + key.Scalar(), key.Mark(), value})});
               }
             }},
            {"scope_name", [&](const Field& f) { match.scope_name = value_match(f); }},
            {"experiment_header",
             [&](const Field& f) {
               const std::string text = read_required_string(f);
               if (text == "present") {
                 match.header = HeaderCondition::present;
               } else if (text == "absent") {
                 match.header = HeaderCondition::absent;
               } else if (text == "any") {
                 match.header = HeaderCondition::any;
               } else if (text.find_first_not_of("0123456789") == std::string::npos) {
                 match.header = HeaderCondition::equals;
                 match.header_value = text;
               } else {
                 fail(f.mark(), f.path,
                      "expected present, absent, any or an experiment id, got " + quoted(text));
               }
             }},
        });
  }

  void routes(const Field& field) {
    for_each_item(field, [&](const Field& item) {
      RouteConfig route;
      route.name = item.path;
      std::optional<YAML::Mark> create_mark;
      for_each_field(
          item, false,
          {
              {"name", [&](const Field& f) { route.name = read_required_string(f); }},
              {"match", [&](const Field& f) { route_match(f, route.match); }},
              {"experiment_id",
               [&](const Field& f) {
                 route.experiment_id = read(f, kExperimentIdShape, parse_experiment_id);
               }},
              {"experiment_name",
               [&](const Field& f) {
                 route.experiment_name = read(f, kStringShape, parse_experiment_name);
               }},
              {"policy",
               [&](const Field& f) {
                 route.policy = read_required_string(f);
                 policy_references_.push_back({route.policy, f.mark(), f.path});
               }},
              {"header", [&](const Field& f) { route.header = read_header_mode(f); }},
              {"normalize",
               [&](const Field& f) {
                 route.normalize.emplace();
                 normalize(f, *route.normalize);
               }},
              {"create_experiment",
               [&](const Field& f) {
                 route.create_experiment = read(f, kBoolShape, parse_bool);
                 create_mark = f.mark();
               }},
          });
      if (!item.value.IsMap()) fail(item.mark(), item.path, "expected a mapping, got " + describe(item.value));
      if (!route.experiment_id.empty() && !route.experiment_name.empty()) {
        fail(item.mark(), item.path, "set experiment_id or experiment_name, not both");
      }
      if (route.create_experiment && !route.experiment_id.empty()) {
        fail(*create_mark, item.path + ".create_experiment",
             "applies to experiment names only; this route sends to experiment_id " + route.experiment_id);
      }
      for (const RouteConfig& earlier : config_.routes) {
        if (earlier.name == route.name) fail(item.mark(), item.path, "duplicate route name " + quoted(route.name));
      }
      config_.routes.push_back(std::move(route));
    });
  }

  void default_route(const Field& field) {
    auto& d = config_.default_route;
    for_each_field(field, false,
                   {
                       {"policy",
                        [&](const Field& f) {
                          d.policy = read_required_string(f);
                          policy_references_.push_back({d.policy, f.mark(), f.path});
                        }},
                       {"header", [&](const Field& f) { d.header = read_header_mode(f); }},
                       {"normalize", [&](const Field& f) { normalize(f, d.normalize); }},
                   });
  }

  SpanTypeRule span_type_rule(const Field& field) const {
    SpanTypeRule rule;
    for_each_field(field, false,
                   {
                       {"name", [&](const Field& f) { rule.name = read_required_string(f); }},
                       {"attribute",
                        [&](const Field& f) { rule.attribute = read_required_string(f); }},
                       {"value", [&](const Field& f) { rule.value = read_required_string(f); }},
                       {"type",
                        [&](const Field& f) { rule.type = read(f, kSpanTypeShape, parse_span_type); }},
                   });
    if (!field.value.IsMap() || rule.type.empty() || (rule.name.empty() && rule.attribute.empty())) {
      fail(field.mark(), field.path, "expected a mapping with type and a name or an attribute");
    }
    if (!rule.value.empty() && rule.attribute.empty()) {
      fail(field.mark(), field.path, "value needs an attribute");
    }
    return rule;
  }

  void normalize(const Field& field, NormalizeConfig& n) const {
    auto flag = [this](const Field& f) { return read(f, kBoolShape, parse_bool); };
    for_each_field(
        field, false,
        {
            {"enabled", [&](const Field& f) { n.enabled = flag(f); }},
            {"resource_attributes",
             [&](const Field& f) {
               n.resource_attributes.clear();
               for_each_item(f, [&](const Field& item) {
                 n.resource_attributes.push_back(read_required_string(item));
               });
             }},
            {"resource_spans",
             [&](const Field& f) {
               n.resource_target = read(f, kResourceTargetShape, parse_resource_target);
             }},
            {"span_kind", [&](const Field& f) { n.span_kind = flag(f); }},
            {"scope", [&](const Field& f) { n.scope = flag(f); }},
            {"links", [&](const Field& f) { n.links = flag(f); }},
            {"span_types", [&](const Field& f) { n.span_types = flag(f); }},
            {"span_type_rules",
             [&](const Field& f) {
               for_each_item(f, [&](const Field& item) {
                 n.span_type_rules.push_back(span_type_rule(item));
               });
             }},
            {"koog_io", [&](const Field& f) { n.koog_io = flag(f); }},
            {"system_instructions", [&](const Field& f) { n.system_instructions = flag(f); }},
            {"session_from_conversation",
             [&](const Field& f) { n.session_from_conversation = flag(f); }},
            {"user_from_enduser", [&](const Field& f) { n.user_from_enduser = flag(f); }},
            {"previews", [&](const Field& f) { n.previews = flag(f); }},
            {"preview_hold",
             [&](const Field& f) {
               // Bounded: a held root delays its trace's completion in MLflow by this much.
               n.preview_hold = read(f, kPreviewHoldShape, [](std::string_view text) {
                 return parse_duration(text, 0ms, kMaxPreviewHold);
               });
             }},
        });
  }

  void preview_cache(const Field& field) {
    auto& p = config_.preview_cache;
    for_each_field(field, false,
                   {
                       {"max_bytes", [&](const Field& f) { p.max_bytes = read_size(f); }},
                       {"ttl", [&](const Field& f) { p.ttl = read_seconds(f, 1s); }},
                   });
  }

  // Routes may name policies defined further down the file, so references are checked last.
  void check_policy_references() const {
    for (const PolicyReference& reference : policy_references_) {
      if (find_policy(config_, reference.name) == nullptr) {
        std::string known;
        for (const NamedPolicy& named : config_.policies) known += (known.empty() ? "" : ", ") + named.name;
        for (const NamedPolicy& named : builtin_policies()) known += (known.empty() ? "" : ", ") + named.name;
        fail(reference.mark, reference.path,
             "unknown policy " + quoted(reference.name) + " (known: " + known + ")");
      }
    }
  }

  struct PolicyReference {
    std::string name;
    YAML::Mark mark;
    std::string path;
  };

  std::string file_;
  Config& config_;
  Deferred& deferred_;
  std::vector<PolicyReference> policy_references_;
};

// "  A, B, C,\n  D\n" kept under 90 columns.
std::string wrap_names(const std::vector<std::string_view>& names) {
  std::string text;
  std::string line = " ";
  for (std::size_t i = 0; i < names.size(); ++i) {
    // Appended, not `" " + std::string(...)`: GCC 12 at -O3 reports a false -Wrestrict there.
    std::string item(" ");
    item.append(names[i]);
    if (i + 1 < names.size()) item.push_back(',');
    if (line.size() + item.size() > 90) {
      text += line + "\n";
      line = " ";
    }
    line += item;
  }
  return text + line + "\n";
}

}  // namespace

LoadedConfig load(const std::vector<std::string>& args, const Environment& env) {
  ParsedFlags flags = parse_flags(args);
  LoadedConfig loaded;
  // Help and version must work even where the configuration is broken.
  if (flags.help) {
    loaded.action = Action::print_help;
    return loaded;
  }
  if (flags.version) {
    loaded.action = Action::print_version;
    return loaded;
  }
  if (flags.check_config) loaded.action = Action::check_config;

  Overrides env_overrides = parse_proxy_environment(env);
  Config& config = loaded.config;
  Deferred deferred;
  apply_mlflow_environment(env, config, deferred);
  loaded.config_file =
      flags.config_file ? *flags.config_file : std::string(lookup(env, kConfigFileVariable));
  if (!loaded.config_file.empty()) {
    YamlLoader(loaded.config_file, config, deferred).load(read_file(loaded.config_file));
  }
  apply_overrides(env_overrides, config, deferred);
  apply_overrides(flags.overrides, config, deferred);
  if (deferred.url_error) throw ConfigError(*deferred.url_error);
  if (deferred.experiment_error) throw ConfigError(*deferred.experiment_error);
  load_bearer_token(config.receiver.auth);
  check_tls_trust(config.mlflow.tls);
  return loaded;
}

void apply_mlflow_client_environment(const Environment& env, MlflowConfig& mlflow) {
  if (std::string_view text = lookup(env, kTrackingUsername); !text.empty()) {
    mlflow.username = std::string(text);
  }
  if (std::string_view text = lookup(env, kTrackingPassword); !text.empty()) {
    mlflow.password = std::string(text);
  }
  if (std::string_view text = lookup(env, kTrackingToken); !text.empty()) {
    mlflow.token = std::string(text);
  }
  if (std::string_view text = lookup(env, kServerCertPath); !text.empty()) {
    mlflow.tls.ca_file = std::string(text);
  }
  if (std::string_view text = lookup(env, kClientCertPath); !text.empty()) {
    mlflow.tls.client_cert_file = std::string(text);  // MLflow's file holds the key too
  }
  if (std::string_view text = lookup(env, kInsecureTls); !text.empty()) {
    // MLflow's boolean variables also take 1 and 0.
    if (text == "1" || text == "0") {
      mlflow.tls.insecure_skip_verify = text == "1";
    } else {
      try {
        mlflow.tls.insecure_skip_verify = parse_bool(text);
      } catch (const ValueError& e) {
        throw ConfigError(std::string(kInsecureTls) + ": " + e.what());
      }
    }
  }
}

Environment process_environment() {
  Environment env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    auto eq = text.find('=');
    if (eq == std::string_view::npos) continue;
    // The hmac key is read from the process environment when a policy is built, and never
    // copied into the config's environment (which lives on for reloads).
    if (text.substr(0, eq) == "OTLP_MLFLOW_PROXY_HMAC_KEY") continue;
    env.emplace(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
  }
  return env;
}

std::string usage() {
  std::string text =
      "Usage: otlp-mlflow-proxy [options]\n"
      "       otlp-mlflow-proxy replay [--mlflow-url URL] FILE|SPOOL_DIR  (replay --help)\n"
      "       otlp-mlflow-proxy explain [--config FILE] [--json] [TRACE]  (explain --help)\n"
      "Accepts OTLP trace exports (OTLP/HTTP POST /v1/traces, OTLP/gRPC TraceService/Export) and\n"
      "forwards them to an MLflow server.\n"
      "\n"
      "Options (--flag VALUE or --flag=VALUE):\n";
  for (const FlagSpec& flag : kFlags) {
    std::string left = "  " + std::string(flag.name);
    if (!flag.placeholder.empty()) left += " " + std::string(flag.placeholder);
    if (left.size() < 28) left.resize(28, ' ');
    else left += "  ";
    text += left + std::string(flag.help) + "\n";
  }
  std::vector<std::string_view> proxy_variables{kConfigFileVariable};
  for (const OverrideSource& variable : kOverrideVariables) {
    proxy_variables.push_back(variable.name);
  }
  text += "\nEnvironment (flags override these, these override the file):\n";
  text += wrap_names(proxy_variables);
  text += "MLflow's own variables, used as defaults (the file overrides them):\n";
  text += wrap_names({kMlflowVariables.begin(), kMlflowVariables.end()});
  text +=
      "\n"
      "Precedence, lowest first: defaults, MLFLOW_* variables, the YAML file,\n"
      "OTLP_MLFLOW_PROXY_* variables, flags. Setting an experiment id or name in one place\n"
      "replaces both from lower ones.\n";
  return text;
}

}  // namespace proxy::config
