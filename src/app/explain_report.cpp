#include "app/explain_report.hpp"

#include <algorithm>
#include <deque>
#include <string_view>
#include <unordered_map>

#include "common/hex.hpp"

namespace proxy::app::explain {
namespace {

using Attributes = google::protobuf::RepeatedPtrField<otlp::KeyValue>;

// A span of an output, with what it travels with.
struct Located {
  const otlp::Span* span = nullptr;
  const otlp::ResourceSpans* resource = nullptr;
  const ExperimentRef* experiment = nullptr;
};

// The spans of an output by trace and span id, each handed out once: a client may repeat ids,
// and then the n-th input span with them is the n-th output span with them.
class SpanIndex {
 public:
  explicit SpanIndex(const Output& output) {
    for (std::size_t i = 0; i < output.requests.size(); ++i) {
      for (const otlp::ResourceSpans& resource : output.requests[i].resource_spans()) {
        for (const otlp::ScopeSpans& scope : resource.scope_spans()) {
          for (const otlp::Span& span : scope.spans()) {
            spans_[key(span)].push_back({&span, &resource, &output.experiments[i]});
          }
        }
      }
    }
  }

  std::optional<Located> take(const otlp::Span& span) {
    const auto it = spans_.find(key(span));
    if (it == spans_.end() || it->second.empty()) return std::nullopt;
    Located found = it->second.front();
    it->second.pop_front();
    return found;
  }

 private:
  // Checked ids have fixed lengths (16 and 8 bytes), so the concatenation is unambiguous.
  static std::string key(const otlp::Span& span) { return span.trace_id() + span.span_id(); }

  std::unordered_map<std::string, std::deque<Located>> spans_;
};

bool same(const otlp::AnyValue& a, const otlp::AnyValue& b) {
  return a.SerializeAsString() == b.SerializeAsString();
}

Change whole(const Change& where, ChangeKind kind) {
  Change change = where;
  change.kind = kind;
  return change;
}

// Events and links are compared by position: no stage adds or removes one today, and one that
// did would show as such.
template <class Item, class Name>
void diff_items(const google::protobuf::RepeatedPtrField<Item>& before,
                const google::protobuf::RepeatedPtrField<Item>& after, Change where,
                const Name& name_of, std::vector<Change>& out) {
  const int count = std::max(before.size(), after.size());
  for (int i = 0; i < count; ++i) {
    where.index = i;
    where.event_name = name_of(i < before.size() ? before[i] : after[i]);
    if (i >= after.size()) {
      out.push_back(whole(where, ChangeKind::dropped));
    } else if (i >= before.size()) {
      out.push_back(whole(where, ChangeKind::added));
    } else {
      diff_attributes(before[i].attributes(), after[i].attributes(), where, out);
    }
  }
}

std::optional<otlp::AnyValue> string_value(const std::string& text) {
  if (text.empty()) return std::nullopt;
  otlp::AnyValue value;
  value.set_string_value(text);
  return value;
}

void diff_status(const otlp::Span& before, const otlp::Span& after, Stage stage,
                 std::vector<Change>& out) {
  const std::string& was = before.status().message();
  const std::string& is = after.status().message();
  if (was == is) return;
  Change change;
  change.stage = stage;
  change.place = Place::status;
  change.key = "message";
  change.kind = was.empty() ? ChangeKind::added : is.empty() ? ChangeKind::dropped : ChangeKind::changed;
  change.before = string_value(was);
  change.after = string_value(is);
  out.push_back(std::move(change));
}

SpanReport span_report(const otlp::Span& span, const std::optional<Located>& policy,
                       const std::optional<Located>& output) {
  SpanReport report{span.name(), to_hex(span.trace_id()), to_hex(span.span_id()),
                    to_hex(span.parent_span_id()), true, {}};
  if (!output) {
    report.passed = false;
    return report;
  }
  const otlp::Span& after_policy = policy ? *policy->span : span;
  if (policy) diff_span(span, after_policy, Stage::policy, report.changes);
  diff_span(after_policy, *output->span, Stage::normalize, report.changes);
  return report;
}

void diff_resource(const otlp::ResourceSpans& input, const otlp::ResourceSpans* policy,
                   const otlp::ResourceSpans* output, std::vector<Change>& out) {
  Change where;
  where.place = Place::resource;
  const otlp::ResourceSpans& after_policy = policy != nullptr ? *policy : input;
  if (policy != nullptr) {
    diff_attributes(input.resource().attributes(), after_policy.resource().attributes(), where, out);
  }
  if (output != nullptr) {
    where.stage = Stage::normalize;
    diff_attributes(after_policy.resource().attributes(), output->resource().attributes(), where,
                    out);
  }
}

std::string service_name(const otlp::ResourceSpans& resource_spans) {
  for (const otlp::KeyValue& attribute : resource_spans.resource().attributes()) {
    if (attribute.key() == "service.name") return attribute.value().string_value();
  }
  return {};
}

ResourceReport resource_report(const InputResource& input, SpanIndex& policy_spans,
                               SpanIndex& output_spans) {
  ResourceReport report;
  report.request = input.request;
  report.service_name = service_name(input.spans);
  report.route = input.route;
  const otlp::ResourceSpans* policy_resource = nullptr;
  const otlp::ResourceSpans* output_resource = nullptr;
  for (const otlp::ScopeSpans& scope : input.spans.scope_spans()) {
    for (const otlp::Span& span : scope.spans()) {
      const std::optional<Located> policy = policy_spans.take(span);
      const std::optional<Located> output = output_spans.take(span);
      report.spans.push_back(span_report(span, policy, output));
      if (policy && policy_resource == nullptr) policy_resource = policy->resource;
      if (output && output_resource == nullptr) {
        output_resource = output->resource;
        report.experiment = *output->experiment;
      }
    }
  }
  diff_resource(input.spans, policy_resource, output_resource, report.changes);
  return report;
}

void add_route_total(const ResourceReport& resource, std::size_t spans, std::vector<RouteTotal>& routes) {
  const auto it = std::find_if(routes.begin(), routes.end(), [&](const RouteTotal& total) {
    return total.route.route == resource.route.route && total.experiment == resource.experiment;
  });
  if (it != routes.end()) {
    it->spans += spans;
  } else {
    routes.push_back({resource.route, resource.experiment, spans});
  }
}

}  // namespace

void diff_attributes(const Attributes& before, const Attributes& after, const Change& where,
                     std::vector<Change>& out) {
  std::vector<bool> matched(static_cast<std::size_t>(after.size()), false);
  for (const otlp::KeyValue& was : before) {
    int found = 0;
    while (found < after.size() && (matched[static_cast<std::size_t>(found)] || after[found].key() != was.key())) {
      ++found;
    }
    Change change = where;
    change.key = was.key();
    change.before = was.value();
    if (found == after.size()) {
      change.kind = ChangeKind::dropped;
      out.push_back(std::move(change));
      continue;
    }
    matched[static_cast<std::size_t>(found)] = true;
    if (same(was.value(), after[found].value())) continue;
    change.kind = ChangeKind::changed;
    change.after = after[found].value();
    out.push_back(std::move(change));
  }
  for (int i = 0; i < after.size(); ++i) {
    if (matched[static_cast<std::size_t>(i)]) continue;
    Change change = where;
    change.kind = ChangeKind::added;
    change.key = after[i].key();
    change.after = after[i].value();
    out.push_back(std::move(change));
  }
}

void diff_span(const otlp::Span& before, const otlp::Span& after, Stage stage,
               std::vector<Change>& out) {
  Change where;
  where.stage = stage;
  diff_attributes(before.attributes(), after.attributes(), where, out);
  where.place = Place::event;
  diff_items(before.events(), after.events(), where,
             [](const otlp::Span::Event& event) { return event.name(); }, out);
  where.place = Place::link;
  diff_items(before.links(), after.links(), where,
             [](const otlp::Span::Link&) { return std::string(); }, out);
  diff_status(before, after, stage, out);
}

Report build_report(const std::vector<InputResource>& input, const Output& policy_only,
                    const Output& output) {
  SpanIndex policy_spans(policy_only);
  SpanIndex output_spans(output);
  Report report;
  for (const InputResource& resource : input) {
    report.resources.push_back(resource_report(resource, policy_spans, output_spans));
  }
  return report;
}

Totals count(const Report& report) {
  Totals totals;
  const auto tally = [&totals](const std::vector<Change>& changes) {
    for (const Change& change : changes) {
      ++totals.changes[static_cast<std::size_t>(change.stage)][static_cast<std::size_t>(change.kind)];
    }
  };
  for (const ResourceReport& resource : report.resources) {
    ++totals.resources;
    tally(resource.changes);
    std::size_t passed = 0;
    for (const SpanReport& span : resource.spans) {
      ++totals.spans;
      passed += span.passed ? 1 : 0;
      totals.not_passed += span.passed ? 0 : 1;
      totals.changed_spans += span.changes.empty() ? 0 : 1;
      tally(span.changes);
    }
    add_route_total(resource, passed, totals.routes);
  }
  return totals;
}

}  // namespace proxy::app::explain
