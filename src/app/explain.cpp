#include "app/explain.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <istream>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string_view>

#include <boost/json/parse.hpp>

#include "app/explain_render.hpp"
#include "app/explain_report.hpp"
#include "app/logging.hpp"
#include "queue/span_queue.hpp"
#include "receiver/decompress.hpp"
#include "receiver/export_handler.hpp"
#include "routing/experiment_selector.hpp"
#include "routing/router.hpp"

namespace proxy::app {
namespace {

using namespace explain;
using otlp::BodyEncoding;
namespace fs = std::filesystem;

constexpr std::size_t kUnbounded = std::numeric_limits<std::size_t>::max();

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ExplainArgs {
  std::vector<std::string> config_flags;  // the proxy's own flags, for config::load
  std::optional<std::string> header;
  bool json = false;
  bool full = false;
  std::optional<Stage> stage;
  bool help = false;
  std::string trace = "-";
};

Stage parse_stage(const std::string& text) {
  if (text == "policy") return Stage::policy;
  if (text == "normalize") return Stage::normalize;
  throw UsageError("--stage: expected policy or normalize, got \"" + text + "\"");
}

ExplainArgs parse_args(const std::vector<std::string>& args) {
  ExplainArgs parsed;
  bool have_trace = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    const std::size_t eq = arg.starts_with("--") ? arg.find('=') : std::string::npos;
    const std::string name = arg.substr(0, eq);
    const auto value = [&]() -> std::string {
      if (eq != std::string::npos) return arg.substr(eq + 1);
      if (i + 1 >= args.size()) throw UsageError(name + ": missing value");
      return args[++i];
    };
    if (name == "--help" || name == "-h") {
      parsed.help = true;
    } else if (name == "--json" || name == "--full") {
      (name == "--json" ? parsed.json : parsed.full) = true;
    } else if (name == "--header") {
      parsed.header = value();
    } else if (name == "--stage") {
      parsed.stage = parse_stage(value());
    } else if (name == "--config" || name == "--experiment-id" || name == "--experiment-name") {
      parsed.config_flags.insert(parsed.config_flags.end(), {name, value()});
    } else if ((arg.starts_with("-") && arg != "-") || have_trace) {
      throw UsageError("unexpected argument \"" + arg + "\"");
    } else {
      parsed.trace = arg;
      have_trace = true;
    }
  }
  return parsed;
}

// ---- the input ---------------------------------------------------------------------------------

// The requests of a saved trace, as the proxy would have received them.
struct TraceInput {
  std::string source;  // the path, or "-"
  BodyEncoding encoding = BodyEncoding::protobuf;
  std::string format;                // for the reader: "protobuf", "OTLP-JSON", "gzip, ..."
  std::vector<std::string> bodies;   // one request each
  std::vector<std::size_t> lines;    // JSON lines: the line of each body
};

bool read_all(const std::string& path, std::istream& in, std::string& bytes, std::string& error) {
  if (path == "-") {
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) error = "cannot read stdin";
    return !in.bad();
  }
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    error = "cannot read " + path + ": it is a directory";
    return false;
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    error = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  bytes.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  if (file.bad()) error = "cannot read " + path + ": read error";
  return !file.bad();
}

BodyEncoding detect_encoding(std::string path, std::string_view bytes) {
  if (path.ends_with(".gz")) path.resize(path.size() - 3);
  const std::string extension = fs::path(path).extension().string();
  if (extension == ".json" || extension == ".jsonl" || extension == ".ndjson") return BodyEncoding::json;
  if (extension == ".pb" || extension == ".bin" || extension == ".binpb" || extension == ".protobuf") {
    return BodyEncoding::protobuf;
  }
  // A protobuf ExportTraceServiceRequest never starts with '{' (field 15, a group).
  const std::size_t first = bytes.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && bytes[first] == '{' ? BodyEncoding::json
                                                                 : BodyEncoding::protobuf;
}

// One JSON document per line (as the OpenTelemetry Collector's file exporter writes) is one
// request per line; any other text, pretty-printed JSON included, is one request.
void split_json_lines(TraceInput& trace, std::string text) {
  std::vector<std::pair<std::size_t, std::string>> lines;
  std::size_t number = 0;
  for (std::size_t start = 0; start <= text.size();) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    ++number;
    const std::string_view line(text.data() + start, end - start);
    if (line.find_first_not_of(" \t\r") != std::string_view::npos) lines.emplace_back(number, line);
    start = end + 1;
  }
  boost::system::error_code ec;
  if (lines.size() > 1) boost::json::parse(lines.front().second, ec);
  if (lines.size() <= 1 || ec) {
    trace.bodies.push_back(std::move(text));
    return;
  }
  for (auto& [line, body] : lines) {
    trace.lines.push_back(line);
    trace.bodies.push_back(std::move(body));
  }
  trace.format += " lines";
}

std::optional<std::string> gunzip(std::string& bytes, const config::ReceiverConfig& limits) {
  std::string plain;
  const receiver::DecompressResult result =
      receiver::decompress(receiver::ContentEncoding::gzip, bytes, plain, limits.max_body_bytes,
                           limits.max_decompression_ratio);
  if (result.status != receiver::DecompressResult::Status::ok) return result.message;
  bytes = std::move(plain);
  return std::nullopt;
}

std::string display_name(const std::string& source) { return source == "-" ? "stdin" : source; }

// The trace, or why it cannot be read.
std::optional<std::string> read_trace(const std::string& path, std::istream& in,
                                      const config::ReceiverConfig& limits, TraceInput& trace) {
  trace.source = path;
  std::string bytes;
  std::string error;
  if (!read_all(path, in, bytes, error)) return error;
  const bool gzipped = bytes.starts_with("\x1f\x8b");
  if (gzipped) {
    if (auto failed = gunzip(bytes, limits)) return display_name(path) + ": " + *failed;
  }
  trace.encoding = detect_encoding(path, bytes);
  trace.format = std::string(gzipped ? "gzip, " : "") +
                 (trace.encoding == BodyEncoding::json ? "OTLP-JSON" : "protobuf");
  if (trace.encoding == BodyEncoding::json) {
    split_json_lines(trace, std::move(bytes));
  } else {
    trace.bodies.push_back(std::move(bytes));
  }
  for (const std::string& body : trace.bodies) {
    if (body.size() > limits.max_body_bytes) {
      return display_name(path) + ": body of " + std::to_string(body.size()) +
             " bytes exceeds the limit of " +
             std::to_string(limits.max_body_bytes) + " bytes (receiver.max_body_bytes)";
    }
  }
  return std::nullopt;
}

// "trace.jsonl:3: " for the third line of JSON lines, else "trace.json: ".
std::string where(const TraceInput& trace, std::size_t body) {
  const std::string name = display_name(trace.source);
  return trace.lines.empty() ? name + ": " : name + ":" + std::to_string(trace.lines[body]) + ": ";
}

// ---- the pipeline ------------------------------------------------------------------------------

// The proxy's ingest path in this process: an ExportHandler over a memory queue with the
// configuration's routes, policies and normalization, and the preview holds the daemon installs.
class Pass {
 public:
  explicit Pass(config::Config config)
      : config_(std::move(config)),
        queue_(kUnbounded),
        router_(std::make_shared<const routing::Router>(config_)),
        holds_(router_->shared_preview_cache()),
        handler_(config_.receiver, config_.queue, routing::ExperimentSelector(config_.mlflow), queue_,
                 stats_) {
    queue_.subscribe(holds_);
    handler_.set_router(router_);
  }

  receiver::IngestOutcome ingest(std::string_view body, BodyEncoding encoding,
                                 std::optional<std::string_view> header) {
    return handler_.ingest(body, encoding, header, "explain");
  }

  // Every queued item, as the exporter would take them once the input has ended: the queue is
  // closed, so held roots go too, filled by PreviewHolds as when their hold ends.
  Output drain() {
    queue_.close();
    Output output;
    for (auto batch = queue_.pop_batch(kUnbounded, kUnbounded); !batch.empty();
         batch = queue_.pop_batch(kUnbounded, kUnbounded)) {
      for (const queue::QueueItem& item : batch) {
        output.requests.emplace_back().ParseFromString(item.payload);
        output.experiments.push_back(item.experiment);
      }
      queue_.release(batch);
    }
    return output;
  }

  const routing::Router& router() const { return *router_; }

 private:
  config::Config config_;
  queue::SpanQueue queue_;
  receiver::ReceiverStats stats_;
  std::shared_ptr<const routing::Router> router_;
  routing::PreviewHolds holds_;
  receiver::ExportHandler handler_;
};

// The same routes with normalization off: what the policies alone do.
config::Config without_normalization(config::Config config) {
  for (config::RouteConfig& route : config.routes) {
    config::NormalizeConfig normalize = route.normalize.value_or(config.default_route.normalize);
    normalize.enabled = false;
    route.normalize = normalize;
  }
  config.default_route.normalize.enabled = false;
  return config;
}

// What the receiver said while accepting the trace.
struct Ingested {
  std::size_t rejected_spans = 0;
  std::vector<std::string> warnings;
  std::optional<std::string> error;  // a request the proxy would refuse, and why
};

Ingested ingest(Pass& pass, const TraceInput& trace, std::optional<std::string_view> header) {
  Ingested ingested;
  for (std::size_t i = 0; i < trace.bodies.size(); ++i) {
    const receiver::IngestOutcome outcome = pass.ingest(trace.bodies[i], trace.encoding, header);
    if (outcome.kind != receiver::IngestOutcome::Kind::accepted) {
      ingested.error = where(trace, i) + outcome.message;
      return ingested;
    }
    ingested.rejected_spans += static_cast<std::size_t>(outcome.rejected_spans);
    if (!outcome.warning.empty()) ingested.warnings.push_back(where(trace, i) + outcome.warning);
  }
  return ingested;
}

// The trace as the receiver checked it, each ResourceSpans with the route the table gives it.
std::vector<InputResource> checked_input(const TraceInput& trace, const config::ReceiverConfig& limits,
                                         const routing::Router& router,
                                         std::optional<std::string_view> header,
                                         std::size_t& received) {
  std::vector<InputResource> input;
  for (std::size_t i = 0; i < trace.bodies.size(); ++i) {
    otlp::ExportRequest request;
    received += receiver::decode_and_check(trace.bodies[i], trace.encoding, limits, request).received;
    for (otlp::ResourceSpans& resource_spans : *request.mutable_resource_spans()) {
      const routing::CompiledRoute& route =
          router.table().routes()[router.table().match(resource_spans, header)];
      input.push_back({i, std::move(resource_spans),
                       {route.name, route.policy_name, route.normalizer->enabled()}});
    }
  }
  return input;
}

config::Config load_config(const ExplainArgs& args, const config::Environment& env) {
  config::Config config = config::load(args.config_flags, env).config;
  // The receiver's partial-success warnings are part of the report; logs would repeat them.
  config::LogConfig quiet = config.log;
  quiet.level = "error";
  setup_logging(quiet);
  return config;
}

int run(const ExplainArgs& args, const config::Environment& env, std::istream& in,
        std::ostream& out, std::ostream& err) {
  const config::Config config = load_config(args, env);
  TraceInput trace;
  if (auto error = read_trace(args.trace, in, config.receiver, trace)) {
    err << "otlp-mlflow-proxy explain: " << *error << "\n";
    return 1;
  }
  const std::optional<std::string_view> header = args.header;
  Pass proxy(config);
  Pass policy_only(without_normalization(config));
  const Ingested ingested = ingest(proxy, trace, header);
  if (ingested.error) {
    err << "otlp-mlflow-proxy explain: " << *ingested.error << "\n";
    return 1;
  }
  ingest(policy_only, trace, header);
  RunSummary run{trace.source, trace.format, trace.bodies.size(), 0, ingested.rejected_spans,
                 ingested.warnings, args.header, &proxy.router().policy_stats(),
                 &proxy.router().normalize_stats()};
  const std::vector<InputResource> input =
      checked_input(trace, config.receiver, proxy.router(), header, run.received_spans);
  const Report report = build_report(input, policy_only.drain(), proxy.drain());
  const TextOptions options{args.full ? 0 : TextOptions{}.value_limit, args.stage};
  out << (args.json ? render_json(report, run) : render_text(report, run, options));
  return 0;
}

}  // namespace

std::string explain_usage() {
  return "Usage: otlp-mlflow-proxy explain [--config FILE] [--header ID] [--json] [--full]\n"
         "                                 [--stage policy|normalize] [TRACE]\n"
         "Shows what the proxy would do to a trace, span by span: the route and experiment each\n"
         "span takes, its policy, and every attribute (span, event, link, resource, status\n"
         "message) that the policy or normalization changes, adds or drops, before and after;\n"
         "then a tally. The trace goes through the proxy's own stages in this process: nothing\n"
         "is sent, looked up in MLflow or written.\n"
         "\n"
         "TRACE: an OTLP export, read from stdin when absent or \"-\". OTLP-JSON (one request, or\n"
         "one per line) or a protobuf ExportTraceServiceRequest (captured requests concatenated\n"
         "read as one), optionally gzipped; the extension (.json, .jsonl, .pb, .bin) or else the\n"
         "content tells which.\n"
         "\n"
         "  --config FILE           the proxy's YAML config (default $OTLP_MLFLOW_PROXY_CONFIG);\n"
         "                          OTLP_MLFLOW_PROXY_* and MLflow's variables apply as for the proxy\n"
         "  --header ID             route as if the client sent x-mlflow-experiment-id: ID\n"
         "  --experiment-id ID      as the proxy's flag (the default route's experiment)\n"
         "  --experiment-name NAME  as the proxy's flag\n"
         "  --json                  one JSON document instead of text (fields: see the README)\n"
         "  --full                  values whole instead of cut at 72 characters\n"
         "  --stage policy|normalize  only that stage's changes (the tally stays whole)\n"
         "\n"
         "Exit status: 0 shown; 1 the trace or the configuration cannot be read, decoded or\n"
         "routed (the message says why); 2 wrong usage.\n";
}

int explain_main(const std::vector<std::string>& args, const config::Environment& env,
                 std::istream& in, std::ostream& out, std::ostream& err) {
  ExplainArgs parsed;
  try {
    parsed = parse_args(args);
  } catch (const UsageError& e) {
    err << "otlp-mlflow-proxy explain: " << e.what() << "\n" << explain_usage();
    return 2;
  }
  if (parsed.help) {
    out << explain_usage();
    return 0;
  }
  try {
    return run(parsed, env, in, out, err);
  } catch (const config::ConfigError& e) {
    err << "otlp-mlflow-proxy explain: configuration error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace proxy::app
