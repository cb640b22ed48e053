// Attribute count limits on decoded spans, applied the way OpenTelemetry SDKs apply theirs: the
// span (event, link) is kept with its first attributes and the excess is added to its
// dropped_attributes_count, so MLflow still gets the span and readers can see it was cut.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "otlp/types.hpp"

namespace proxy::otlp {

struct AttributeLimits {
  std::size_t per_span = 1024;
  std::size_t per_event = 128;
  std::size_t per_link = 128;
};

struct TrimmedAttributes {
  std::size_t spans = 0;       // spans that lost attributes (their own, or an event's or link's)
  std::size_t attributes = 0;  // attributes removed in all
  // The first cut, e.g. resourceSpans[0].scopeSpans[0].spans[3].events[1] (name "chat"): 500
  // attributes, limit 128
  std::string first;
};

// Adds `count` to a resource's, span's, event's or link's dropped_attributes_count, saturating:
// the field is 32-bit and a client may already send it near the top.
template <typename Owner>
void add_dropped_attributes(Owner& owner, std::uint64_t count) {
  const std::uint64_t total = std::uint64_t{owner.dropped_attributes_count()} + count;
  owner.set_dropped_attributes_count(static_cast<std::uint32_t>(
      std::min<std::uint64_t>(total, std::numeric_limits<std::uint32_t>::max())));
}

// TrimmedAttributes::first for a cut at resourceSpans[r].scopeSpans[s].spans[i], or at its
// `part` ("events", "links") number `index` when `part` is not empty; shared with the wire path.
std::string describe_cut(std::size_t r, std::size_t s, std::size_t i, std::string_view part, std::size_t index,
                         std::string_view span_name, std::size_t limit, std::size_t excess);

TrimmedAttributes trim_attributes(ExportRequest& request, const AttributeLimits& limits);

}  // namespace proxy::otlp
