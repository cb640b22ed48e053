#include "otlp/attribute_limits.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>

namespace proxy::otlp {
namespace {

// Cuts `attributes` to `limit` and adds the cut to dropped_attributes_count.
// Returns how many were cut.
template <typename Owner>
std::size_t trim(Owner& owner, std::size_t limit) {
  auto& attributes = *owner.mutable_attributes();
  const auto size = static_cast<std::size_t>(attributes.size());
  if (size <= limit) return 0;
  const std::size_t excess = size - limit;
  attributes.DeleteSubrange(static_cast<int>(limit), static_cast<int>(excess));
  add_dropped_attributes(owner, excess);
  return excess;
}

}  // namespace

std::string describe_cut(std::size_t r, std::size_t s, std::size_t i, std::string_view part, std::size_t index,
                         std::string_view span_name, std::size_t limit, std::size_t excess) {
  std::string first = "resourceSpans[" + std::to_string(r) + "].scopeSpans[" + std::to_string(s) + "].spans[" +
                      std::to_string(i) + "]";
  if (!part.empty()) first += "." + std::string(part) + "[" + std::to_string(index) + "]";
  return first + " (name \"" + std::string(span_name.substr(0, 128)) + "\"): " + std::to_string(limit + excess) +
         " attributes, limit " + std::to_string(limit);
}

TrimmedAttributes trim_attributes(ExportRequest& request, const AttributeLimits& limits) {
  TrimmedAttributes trimmed;
  auto& resources = *request.mutable_resource_spans();
  for (int r = 0; r < resources.size(); ++r) {
    auto& scopes = *resources[r].mutable_scope_spans();
    for (int s = 0; s < scopes.size(); ++s) {
      auto& spans = *scopes[s].mutable_spans();
      for (int i = 0; i < spans.size(); ++i) {
        Span& span = spans[i];
        bool cut = false;
        // Records a cut; the path of the first one is built only then (the hot path builds none).
        auto note = [&](std::size_t excess, std::size_t limit, const char* part, int index) {
          if (excess == 0) return;
          cut = true;
          trimmed.attributes += excess;
          if (!trimmed.first.empty()) return;
          trimmed.first = describe_cut(static_cast<std::size_t>(r), static_cast<std::size_t>(s),
                                       static_cast<std::size_t>(i), part, static_cast<std::size_t>(index),
                                       span.name(), limit, excess);
        };
        note(trim(span, limits.per_span), limits.per_span, "", 0);
        for (int e = 0; e < span.events_size(); ++e) {
          note(trim(*span.mutable_events(e), limits.per_event), limits.per_event, "events", e);
        }
        for (int l = 0; l < span.links_size(); ++l) {
          note(trim(*span.mutable_links(l), limits.per_link), limits.per_link, "links", l);
        }
        if (cut) ++trimmed.spans;
      }
    }
  }
  return trimmed;
}

}  // namespace proxy::otlp
