#include "exporter/request_split.hpp"

#include <map>
#include <set>
#include <string>

#include "otlp/types.hpp"

namespace proxy::exporter {
namespace {

// One part being built: spans arrive in the request's order, so a part's resource and scope
// change only forward and a new ResourceSpans or ScopeSpans starts when they do.
struct PartBuilder {
  otlp::ExportRequest request;
  int resource = -1;
  int scope = -1;
  std::uint32_t spans = 0;
};

void add_span(PartBuilder& part, const otlp::ResourceSpans& resource_spans, int resource,
              const otlp::ScopeSpans& scope_spans, int scope, const otlp::Span& span) {
  if (part.resource != resource) {
    otlp::ResourceSpans& added = *part.request.add_resource_spans();
    *added.mutable_resource() = resource_spans.resource();
    added.set_schema_url(resource_spans.schema_url());
    part.resource = resource;
    part.scope = -1;
  }
  otlp::ResourceSpans& current = *part.request.mutable_resource_spans(part.request.resource_spans_size() - 1);
  if (part.scope != scope) {
    otlp::ScopeSpans& added = *current.add_scope_spans();
    *added.mutable_scope() = scope_spans.scope();
    added.set_schema_url(scope_spans.schema_url());
    part.scope = scope;
  }
  *current.mutable_scope_spans(current.scope_spans_size() - 1)->add_spans() = span;
  ++part.spans;
}

// The request's spans grouped by trace id (first seen first), or one group per span.
std::vector<PartBuilder> group_spans(const otlp::ExportRequest& request, SplitUnit unit) {
  std::vector<PartBuilder> parts;
  std::map<std::string, std::size_t> by_trace;
  for (int r = 0; r < request.resource_spans_size(); ++r) {
    const otlp::ResourceSpans& resource_spans = request.resource_spans(r);
    for (int s = 0; s < resource_spans.scope_spans_size(); ++s) {
      const otlp::ScopeSpans& scope_spans = resource_spans.scope_spans(s);
      for (const otlp::Span& span : scope_spans.spans()) {
        std::size_t index = parts.size();
        if (unit == SplitUnit::trace) {
          index = by_trace.try_emplace(span.trace_id(), parts.size()).first->second;
        }
        if (index == parts.size()) parts.emplace_back();
        add_span(parts[index], resource_spans, r, scope_spans, s, span);
      }
    }
  }
  return parts;
}

std::size_t trace_count(const otlp::ExportRequest& request) {
  std::set<std::string> traces;
  for (const otlp::ResourceSpans& resource_spans : request.resource_spans()) {
    for (const otlp::ScopeSpans& scope_spans : resource_spans.scope_spans()) {
      for (const otlp::Span& span : scope_spans.spans()) traces.insert(span.trace_id());
    }
  }
  return traces.size();
}

RequestSplit split_item(const queue::QueueItem& item) {
  RequestSplit split;
  otlp::ExportRequest request;
  if (!request.ParseFromString(item.payload)) return split;
  split.unit = trace_count(request) > 1 ? SplitUnit::trace : SplitUnit::span;
  for (PartBuilder& built : group_spans(request, split.unit)) {
    // The original's record id stays: the spool's record is released with the whole request.
    queue::QueueItem part{item.experiment, built.request.SerializeAsString(), built.spans,
                          item.record_id, item.enqueued_at, nullptr, item.sequence};
    split.parts.push_back({std::move(part)});
  }
  if (split.parts.size() < 2) split.parts.clear();
  return split;
}

}  // namespace

RequestSplit split_request(const std::vector<queue::QueueItem>& batch) {
  if (batch.size() == 1) return split_item(batch.front());
  RequestSplit split;
  for (const queue::QueueItem& item : batch) split.parts.push_back({item});
  return split;
}

std::string_view split_unit_name(SplitUnit unit) {
  switch (unit) {
    case SplitUnit::request: return "request";
    case SplitUnit::trace: return "trace";
    case SplitUnit::span: return "span";
  }
  return "part";
}

}  // namespace proxy::exporter
