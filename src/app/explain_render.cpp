#include "app/explain_render.hpp"

#include <string_view>

#include <boost/json.hpp>

#include "common/hex.hpp"
#include "config/values.hpp"
#include "normalize/json_value.hpp"
#include "policy/content_keys.hpp"

namespace proxy::app::explain {
namespace {

constexpr std::string_view kEllipsis = "\xE2\x80\xA6";  // …

// The length of the valid UTF-8 sequence at text[i], or 0.
std::size_t utf8_length(std::string_view text, std::size_t i) {
  const auto lead = static_cast<unsigned char>(text[i]);
  const std::size_t length = lead < 0x80                ? 1
                             : lead >= 0xC2 && lead < 0xE0 ? 2
                             : (lead & 0xF0) == 0xE0       ? 3
                             : lead >= 0xF0 && lead < 0xF5 ? 4
                                                           : 0;
  if (length == 0 || i + length > text.size()) return 0;
  for (std::size_t k = 1; k < length; ++k) {
    if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return 0;
  }
  return length;
}

std::string hex_escape(const char* prefix, unsigned char byte) {
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string(prefix) + kHex[byte >> 4] + kHex[byte & 0x0f];
}

// The character at text[i] as it is shown, and how many bytes it took.
std::pair<std::string, std::size_t> shown_character(std::string_view text, std::size_t i,
                                                    bool quoted) {
  const auto byte = static_cast<unsigned char>(text[i]);
  const std::size_t length = utf8_length(text, i);
  if (length == 0) return {hex_escape("\\x", byte), 1};
  if (length == 2 && byte == 0xC2 && static_cast<unsigned char>(text[i + 1]) < 0xA0) {
    return {hex_escape("\\u00", static_cast<unsigned char>(text[i + 1])), 2};  // C1 control
  }
  if (length > 1) return {std::string(text.substr(i, length)), length};
  if (quoted && (byte == '"' || byte == '\\')) return {std::string{'\\', static_cast<char>(byte)}, 1};
  switch (byte) {
    case '\n': return {"\\n", 1};
    case '\r': return {"\\r", 1};
    case '\t': return {"\\t", 1};
    default: break;
  }
  if (byte < 0x20 || byte == 0x7f) return {hex_escape("\\u00", byte), 1};
  return {std::string(1, static_cast<char>(byte)), 1};
}

// `text` made safe for a terminal, at most `limit` characters (0: all), "…" where cut.
DisplayValue shown(std::string_view text, std::size_t limit, bool quoted) {
  DisplayValue value;
  std::size_t characters = 0;
  for (std::size_t i = 0; i < text.size();) {
    auto [piece, length] = shown_character(text, i, quoted);
    if (limit != 0 && characters + 1 > limit) {
      value.text += kEllipsis;
      value.shortened = true;
      break;
    }
    value.text += piece;
    characters += 1;
    i += length;
  }
  return value;
}

std::string json_text(const otlp::AnyValue& value) {
  return boost::json::serialize(normalize::to_json(value));
}

std::string_view type_name(const otlp::AnyValue& value) {
  switch (value.value_case()) {
    case otlp::AnyValue::kStringValue: return "string";
    case otlp::AnyValue::kBoolValue: return "bool";
    case otlp::AnyValue::kIntValue: return "int";
    case otlp::AnyValue::kDoubleValue: return "double";
    case otlp::AnyValue::kArrayValue: return "array";
    case otlp::AnyValue::kKvlistValue: return "kvlist";
    case otlp::AnyValue::kBytesValue: return "bytes";
    case otlp::AnyValue::VALUE_NOT_SET: break;
  }
  return "empty";
}

std::string_view stage_name(Stage stage) { return stage == Stage::policy ? "policy" : "normalize"; }

std::string_view kind_name(ChangeKind kind) {
  switch (kind) {
    case ChangeKind::changed: return "changed";
    case ChangeKind::added: return "added";
    case ChangeKind::dropped: break;
  }
  return "dropped";
}

std::string_view place_name(Place place) {
  switch (place) {
    case Place::span: return "span";
    case Place::event: return "event";
    case Place::link: return "link";
    case Place::resource: return "resource";
    case Place::status: break;
  }
  return "status";
}

std::string plural(std::size_t n, std::string_view word) {
  return std::to_string(n) + " " + std::string(word) + (n == 1 ? "" : "s");
}

std::string describe_experiment(const std::optional<ExperimentRef>& experiment) {
  if (!experiment) return "none (no span passed)";
  const bool must_exist = experiment->kind == ExperimentRef::Kind::name && !experiment->create;
  return experiment->describe() + (must_exist ? " (must exist)" : "");
}

std::string describe_route(const RouteChoice& route, const std::optional<ExperimentRef>& experiment) {
  return "route " + config::quoted(route.route) + " -> experiment " + describe_experiment(experiment) +
         ", policy " + config::quoted(route.policy);
}

// ---- text -------------------------------------------------------------------------------------

std::string label(const Change& change) {
  const std::string index = "[" + std::to_string(change.index) + "]";
  const std::string key = change.key.empty() ? "" : ": " + change.key;
  switch (change.place) {
    case Place::event: return "event" + index + " " + change.event_name + key;
    case Place::link: return "link" + index + key;
    case Place::status: return "status.message";
    case Place::span:
    case Place::resource: break;
  }
  return change.key;
}

std::string value_text(const std::optional<otlp::AnyValue>& value, const TextOptions& options) {
  if (!value) return "(none)";
  const DisplayValue display = display_value(*value, options.value_limit);
  return display.shortened ? display.text + " (" + std::to_string(value_bytes(*value)) + " bytes)"
                           : display.text;
}

void write_change(std::string& out, const Change& change, const TextOptions& options) {
  static constexpr std::string_view kSign[] = {"~", "+", "-"};
  out += "    ";
  out += kSign[static_cast<std::size_t>(change.kind)];
  out += " " + label(change) + " (" + std::string(stage_name(change.stage)) + ")";
  switch (change.kind) {
    case ChangeKind::changed:
      out += "\n        before: " + value_text(change.before, options) +
             "\n        after:  " + value_text(change.after, options) + "\n";
      return;
    case ChangeKind::added:
      out += (change.after ? ": " + value_text(change.after, options) : std::string()) + "\n";
      return;
    case ChangeKind::dropped:
      out += (change.before ? ", was: " + value_text(change.before, options) : std::string()) + "\n";
      return;
  }
}

// The changes the options show: all, or one stage's.
std::vector<const Change*> shown_changes(const std::vector<Change>& changes, const TextOptions& options) {
  std::vector<const Change*> shown;
  for (const Change& change : changes) {
    if (!options.stage || change.stage == *options.stage) shown.push_back(&change);
  }
  return shown;
}

void write_span(std::string& out, const SpanReport& span, std::string& trace,
                const TextOptions& options) {
  if (span.trace_id != trace) {
    trace = span.trace_id;
    out += "  trace " + trace + "\n";
  }
  out += "  span " + config::quoted(span.name) + " " + span.span_id +
         (span.parent_span_id.empty() ? " (root)" : "");
  const std::vector<const Change*> changes = shown_changes(span.changes, options);
  if (!span.passed) {
    out += ": not in the proxy's output\n";
    return;
  }
  if (changes.empty()) {
    out += ": unchanged\n";
    return;
  }
  out += ": " + plural(changes.size(), "change") + "\n";
  for (const Change* change : changes) write_change(out, *change, options);
}

// Who the spans below belong to and where they go; printed again only when it changes (Koog
// sends each span in a ResourceSpans of its own).
std::string resource_heading(const ResourceReport& resource, const RunSummary& run) {
  std::string heading = resource.service_name.empty()
                            ? std::string("resource without service.name")
                            : "service.name " + config::quoted(resource.service_name);
  if (run.requests > 1) heading += " (request " + std::to_string(resource.request + 1) + ")";
  return heading + "\n  " + describe_route(resource.route, resource.experiment) +
         ", normalization " + (resource.route.normalize ? "on" : "off") + "\n";
}

void write_resources(std::string& out, const Report& report, const RunSummary& run,
                     const TextOptions& options) {
  std::string heading;
  std::string trace;
  for (const ResourceReport& resource : report.resources) {
    if (std::string next = resource_heading(resource, run); next != heading) {
      heading = std::move(next);
      out += "\n" + heading;
      trace.clear();
    }
    const std::vector<const Change*> changes = shown_changes(resource.changes, options);
    if (!changes.empty()) out += "  resource attributes: " + plural(changes.size(), "change") + "\n";
    for (const Change* change : changes) write_change(out, *change, options);
    for (const SpanReport& span : resource.spans) write_span(out, span, trace, options);
  }
}

std::string change_counts(const Totals& totals, Stage stage) {
  const auto& counts = totals.changes[static_cast<std::size_t>(stage)];
  return std::to_string(counts[0]) + " changed, " + std::to_string(counts[1]) + " added, " +
         std::to_string(counts[2]) + " dropped";
}

std::string normalize_summary(const normalize::NormalizeStats& stats) {
  std::string text = plural(stats.spans.load(), "span");
  std::string rules;
  for (std::size_t rule = 0; rule < normalize::kRuleCount; ++rule) {
    const std::uint64_t n = stats.changes[rule].load();
    if (n == 0) continue;
    rules += (rules.empty() ? "" : ", ") + std::string(normalize::rule_name(static_cast<normalize::Rule>(rule))) +
             " " + std::to_string(n);
  }
  return text + (rules.empty() ? "; nothing added" : "; " + rules);
}

void write_tally(std::string& out, const Totals& totals, const RunSummary& run) {
  out += "\ntally\n  spans: " + std::to_string(totals.spans) + " in " +
         plural(totals.resources, "resource") + " from " + plural(run.requests, "request") + "; " +
         std::to_string(totals.changed_spans) + " changed, " +
         std::to_string(totals.spans - totals.changed_spans - totals.not_passed) + " unchanged";
  if (totals.not_passed > 0) out += ", " + std::to_string(totals.not_passed) + " not passed";
  out += "; " + std::to_string(run.rejected_spans) + " invalid (rejected by the receiver)\n";
  for (const RouteTotal& route : totals.routes) {
    out += "  " + describe_route(route.route, route.experiment) + ": " + plural(route.spans, "span") + "\n";
  }
  out += "  attributes by the policy: " + change_counts(totals, Stage::policy) + "\n";
  out += "  attributes by normalization: " + change_counts(totals, Stage::normalize) + "\n";
  if (run.policy != nullptr) out += "  policy stats: " + policy::summarize(*run.policy) + "\n";
  if (run.normalize != nullptr) out += "  normalize stats: " + normalize_summary(*run.normalize) + "\n";
}

void write_header(std::string& out, const RunSummary& run, const TextOptions& options) {
  out += "explain " + (run.source == "-" ? std::string("stdin") : run.source) + ": " + run.format +
         ", " + plural(run.requests, "request") + ", " + plural(run.received_spans, "span") +
         "\n(nothing is sent anywhere; experiments are shown as configured, not looked up in MLflow)\n";
  if (run.header) out += "routed with x-mlflow-experiment-id: " + *run.header + "\n";
  for (const std::string& warning : run.warnings) out += "receiver: " + warning + "\n";
  out += options.stage ? "~ changed, + added, - dropped; only the " + std::string(stage_name(*options.stage)) +
                             " stage's changes are shown\n"
                       : std::string("~ changed, + added, - dropped; (policy) or (normalize): the stage that did it\n");
}

// ---- JSON -------------------------------------------------------------------------------------

boost::json::value json_value(const std::optional<otlp::AnyValue>& value) {
  if (!value) return nullptr;
  return {{"type", type_name(*value)},
          {"bytes", value_bytes(*value)},
          {"value", normalize::to_json(*value)}};
}

boost::json::value json_experiment(const std::optional<ExperimentRef>& experiment) {
  if (!experiment) return nullptr;
  boost::json::object object{{"kind", experiment->kind == ExperimentRef::Kind::id ? "id" : "name"},
                             {"value", experiment->value}};
  if (experiment->kind == ExperimentRef::Kind::name) object["create"] = experiment->create;
  return object;
}

boost::json::array json_changes(const std::vector<Change>& changes) {
  boost::json::array array;
  for (const Change& change : changes) {
    boost::json::object object{{"stage", stage_name(change.stage)},
                               {"change", kind_name(change.kind)},
                               {"place", place_name(change.place)},
                               {"key", change.key}};
    if (change.place == Place::event || change.place == Place::link) object["index"] = change.index;
    if (change.place == Place::event) object["event"] = change.event_name;
    object["before"] = json_value(change.before);
    object["after"] = json_value(change.after);
    array.push_back(std::move(object));
  }
  return array;
}

boost::json::object json_span(const SpanReport& span) {
  return {{"name", span.name},
          {"trace_id", span.trace_id},
          {"span_id", span.span_id},
          {"parent_span_id", span.parent_span_id},
          {"passed", span.passed},
          {"changes", json_changes(span.changes)}};
}

boost::json::object json_resource(const ResourceReport& resource) {
  boost::json::array spans;
  for (const SpanReport& span : resource.spans) spans.push_back(json_span(span));
  return {{"request", resource.request},
          {"service_name", resource.service_name},
          {"route", resource.route.route},
          {"policy", resource.route.policy},
          {"normalize", resource.route.normalize},
          {"experiment", json_experiment(resource.experiment)},
          {"changes", json_changes(resource.changes)},
          {"spans", std::move(spans)}};
}

boost::json::object json_change_counts(const Totals& totals, Stage stage) {
  const auto& counts = totals.changes[static_cast<std::size_t>(stage)];
  return {{"changed", counts[0]}, {"added", counts[1]}, {"dropped", counts[2]}};
}

boost::json::object json_fallbacks(const policy::PolicyStats& stats) {
  boost::json::object fallbacks;
  for (std::size_t i = 1; i < policy::kFallbackCount; ++i) {
    fallbacks[policy::fallback_name(static_cast<policy::Fallback>(i))] = stats.structure_fallbacks[i].load();
  }
  return fallbacks;
}

boost::json::object json_policy_stats(const policy::PolicyStats& stats) {
  boost::json::array values;
  for (std::size_t mode = 0; mode < policy::kModeCount; ++mode) {
    for (std::size_t family = 0; family < policy::kFamilyCount; ++family) {
      const std::uint64_t n = stats.values[mode][family].load();
      if (n == 0) continue;
      values.push_back({{"mode", config::format_policy_mode(static_cast<policy::PolicyMode>(mode))},
                        {"family", policy::family_name(static_cast<policy::Family>(family))},
                        {"count", n}});
    }
  }
  return {{"values", std::move(values)},
          {"redaction_matches", stats.redaction_matches.load()},
          {"depth_rejected", stats.depth_rejected.load()},
          {"koog_hidden", stats.koog_hidden.load()},
          {"structured", stats.structured.load()},
          {"structure_fallbacks", json_fallbacks(stats)},
          {"spans", stats.spans.load()},
          {"summary", policy::summarize(stats)}};
}

boost::json::object json_normalize_stats(const normalize::NormalizeStats& stats) {
  boost::json::object rules;
  for (std::size_t rule = 0; rule < normalize::kRuleCount; ++rule) {
    rules[normalize::rule_name(static_cast<normalize::Rule>(rule))] = stats.changes[rule].load();
  }
  boost::json::array typed;
  for (std::size_t source = 0; source < normalize::kTypeSourceCount; ++source) {
    for (std::size_t type = 0; type < normalize::kSpanTypeCount; ++type) {
      const std::uint64_t n = stats.typed[source][type].load();
      if (n == 0) continue;
      typed.push_back({{"type", config::kSpanTypes[type]},
                       {"source", normalize::type_source_name(static_cast<normalize::TypeSource>(source))},
                       {"count", n}});
    }
  }
  return {{"spans", stats.spans.load()}, {"changes", std::move(rules)}, {"typed", std::move(typed)}};
}

boost::json::object json_tally(const Totals& totals, const RunSummary& run) {
  boost::json::array routes;
  for (const RouteTotal& route : totals.routes) {
    routes.push_back({{"route", route.route.route},
                      {"policy", route.route.policy},
                      {"experiment", json_experiment(route.experiment)},
                      {"spans", route.spans}});
  }
  boost::json::object tally{{"resources", totals.resources},
                            {"spans", totals.spans},
                            {"changed_spans", totals.changed_spans},
                            {"not_passed_spans", totals.not_passed},
                            {"routes", std::move(routes)},
                            {"changes", {{"policy", json_change_counts(totals, Stage::policy)},
                                         {"normalize", json_change_counts(totals, Stage::normalize)}}}};
  if (run.policy != nullptr) tally["policy"] = json_policy_stats(*run.policy);
  if (run.normalize != nullptr) tally["normalize"] = json_normalize_stats(*run.normalize);
  return tally;
}

boost::json::object json_input(const RunSummary& run) {
  boost::json::array warnings;
  for (const std::string& warning : run.warnings) warnings.push_back(boost::json::string(warning));
  return {{"source", run.source},
          {"format", run.format},
          {"requests", run.requests},
          {"spans", run.received_spans},
          {"rejected_spans", run.rejected_spans},
          {"warnings", std::move(warnings)},
          {"header", run.header ? boost::json::value(*run.header) : boost::json::value(nullptr)}};
}

}  // namespace

std::size_t value_bytes(const otlp::AnyValue& value) {
  switch (value.value_case()) {
    case otlp::AnyValue::kStringValue: return value.string_value().size();
    case otlp::AnyValue::kBytesValue: return value.bytes_value().size();
    default: return json_text(value).size();
  }
}

DisplayValue display_value(const otlp::AnyValue& value, std::size_t limit) {
  if (value.value_case() == otlp::AnyValue::kStringValue) {
    DisplayValue display = shown(value.string_value(), limit, true);
    display.text = "\"" + display.text + "\"";
    return display;
  }
  if (value.value_case() == otlp::AnyValue::kBytesValue) {
    DisplayValue display = shown(to_hex(value.bytes_value()), limit, false);
    display.text = "0x" + display.text;
    return display;
  }
  return shown(json_text(value), limit, false);
}

std::string render_text(const Report& report, const RunSummary& run, const TextOptions& options) {
  std::string out;
  write_header(out, run, options);
  write_resources(out, report, run, options);
  write_tally(out, count(report), run);
  return out;
}

std::string render_json(const Report& report, const RunSummary& run) {
  boost::json::array resources;
  for (const ResourceReport& resource : report.resources) resources.push_back(json_resource(resource));
  const boost::json::object document{{"explain", 1},
                                     {"input", json_input(run)},
                                     {"resources", std::move(resources)},
                                     {"tally", json_tally(count(report), run)}};
  return boost::json::serialize(document) + "\n";
}

}  // namespace proxy::app::explain
