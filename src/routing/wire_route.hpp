// Routing on the wire: the route of each ResourceSpans decided from its bytes, with the same
// conditions as RouteTable::match (a WireResourceView is the ResourceView they read), and
// Router::route_wire, which does decode_and_check's checks and route()'s policies in one walk
// over a protobuf request (policy::WireRewriter::rewrite_routed) when no route normalizes.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "otlp/wire_checks.hpp"
#include "queue/queue_item.hpp"
#include "routing/route_table.hpp"

namespace proxy::routing {

// A ResourceSpans scanned on the wire, as route conditions read it.
class WireResourceView final : public ResourceView {
 public:
  explicit WireResourceView(const otlp::wire::ResourceSpansScan& scan) : scan_(scan) {}

  std::optional<std::string_view> attribute_text(std::string_view key, std::string& buffer) const override;
  bool any_scope_name(const ValueMatcher& matcher) const override;

 private:
  const otlp::wire::ResourceSpansScan& scan_;
};

// What Router::route_wire did with a request, in decode_and_check's and route()'s terms.
struct WireRouted {
  enum class Outcome {
    routed,         // items ready to push (none for a request without spans)
    too_many_spans, // over max_spans_per_request: checks.received holds the count
    all_invalid,    // every span removed by the checks
    routing_error,  // a malformed header on a route that reads it: `error`
    malformed,      // protobuf refuses these bytes too
    unsupported,    // the message path decides
  };
  Outcome outcome = Outcome::routed;
  otlp::wire::ChecksResult checks;  // counts and texts as decode_and_check's
  std::vector<queue::QueueItem> items;
  std::string error;
  otlp::wire::WireError wire_error = otlp::wire::WireError::none;  // malformed, unsupported: why
};

}  // namespace proxy::routing
