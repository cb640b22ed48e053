// `otlp-mlflow-proxy explain`, the comparison: what the proxy's stages did to each span. Three
// versions of the same spans are compared: as the receiver decoded and checked them, after the
// routes' policies alone, and as the proxy would send them (policy, then normalization). A
// difference between the first two is the policy's, between the last two normalization's. Spans
// are found again in the outputs by trace and span id, since routing regroups them per
// experiment. Pure: no I/O.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "mlflow/experiment_ref.hpp"
#include "otlp/types.hpp"

namespace proxy::app::explain {

enum class Stage { policy, normalize };
inline constexpr std::size_t kStageCount = 2;

enum class ChangeKind { changed, added, dropped };
inline constexpr std::size_t kChangeKindCount = 3;

// Where a changed value lives: a span's attribute, an event's or a link's, the resource's, or
// the span's status message.
enum class Place { span, event, link, resource, status };

struct Change {
  Stage stage = Stage::policy;
  ChangeKind kind = ChangeKind::changed;
  Place place = Place::span;
  int index = 0;            // the event's or link's position in its span
  std::string event_name;   // events only
  std::string key;          // the attribute's key ("message" for the status)
  std::optional<otlp::AnyValue> before;  // none when added
  std::optional<otlp::AnyValue> after;   // none when dropped
};

struct SpanReport {
  std::string name;
  std::string trace_id;        // hex
  std::string span_id;         // hex
  std::string parent_span_id;  // hex; empty for a root
  bool passed = true;          // false: not in the proxy's output
  std::vector<Change> changes;
};

// The route a ResourceSpans takes, as the route table chose it.
struct RouteChoice {
  std::string route;
  std::string policy;
  bool normalize = true;
};

// One ResourceSpans of the input, as the receiver checked it, and its route.
struct InputResource {
  std::size_t request = 0;  // which request of the input it came in
  otlp::ResourceSpans spans;
  RouteChoice route;
};

// What one run of the pipeline would send: the requests of its queue items, with the
// experiment of each.
struct Output {
  std::vector<otlp::ExportRequest> requests;
  std::vector<ExperimentRef> experiments;  // per request
};

struct ResourceReport {
  std::size_t request = 0;
  std::string service_name;  // the resource's service.name, for the reader
  RouteChoice route;
  std::optional<ExperimentRef> experiment;  // from the output; none when no span passed
  std::vector<Change> changes;              // resource attributes
  std::vector<SpanReport> spans;
};

struct Report {
  std::vector<ResourceReport> resources;
};

// `policy_only`: the same input through the same routes with normalization off.
Report build_report(const std::vector<InputResource>& input, const Output& policy_only,
                    const Output& output);

// Appends the differences between two attribute lists: an attribute is the same one when its
// key is (the first not yet matched, for repeated keys). `place`, `index` and `event_name` are
// copied into each change.
void diff_attributes(const google::protobuf::RepeatedPtrField<otlp::KeyValue>& before,
                     const google::protobuf::RepeatedPtrField<otlp::KeyValue>& after,
                     const Change& where, std::vector<Change>& out);

// Everything a span's stage changed: attributes, events', links', the status message.
void diff_span(const otlp::Span& before, const otlp::Span& after, Stage stage,
               std::vector<Change>& out);

struct RouteTotal {
  RouteChoice route;
  std::optional<ExperimentRef> experiment;
  std::size_t spans = 0;
};

// The counts of the report: for the tally at the end.
struct Totals {
  std::size_t resources = 0;
  std::size_t spans = 0;
  std::size_t changed_spans = 0;  // with at least one change
  std::size_t not_passed = 0;     // spans missing from the output
  std::array<std::array<std::size_t, kChangeKindCount>, kStageCount> changes{};  // [stage][kind]
  std::vector<RouteTotal> routes;  // by route and experiment, in order of first use
};
Totals count(const Report& report);

}  // namespace proxy::app::explain
