// Trace previews on the wire: what Router::collect does to each ResourceSpans of a route
// (normalize::fill_previews, then the held roots moved into an item of their own), done on the
// route's normalized payload, a serialized ExportTraceServiceRequest the wire path wrote. Only
// root spans are decoded, one span at a time; every other byte is copied. A root filled from the
// cache is re-encoded in its place, a held root moves to the held payload under a copy of its
// resource and scope, and the scopes and resources it leaves empty go, as on the message path.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "normalize/normalize.hpp"
#include "normalize/preview_cache.hpp"
#include "otlp/types.hpp"
#include "otlp/wire_reader.hpp"
#include "otlp/wire_writer.hpp"

namespace proxy::routing {

struct FilledPayload {
  std::string spans;             // the route's payload, roots filled, held roots taken out
  std::uint32_t span_count = 0;  // spans left in `spans`
  std::string held_roots;        // the held roots as ResourceSpans records; empty: none
  std::uint32_t held_count = 0;
  std::vector<std::string> held_traces;  // in the order fill_previews holds them
};

struct PreviewFill {
  const normalize::Normalizer& normalizer;
  std::string_view route;  // the route's preview key
  normalize::PreviewCache& cache;
  normalize::PreviewCache::Clock::time_point now;
};

// One per thread: it keeps its buffers between requests.
class WirePreviewFiller {
 public:
  // Fills `payload`'s roots into `out`, `spans` being the spans it holds. The payload must be
  // one the wire path wrote (already checked); false if it does not read as one.
  bool fill(const PreviewFill& fill, std::string_view payload, std::uint32_t spans,
            normalize::NormalizeTally& tally, FilledPayload& out);

 private:
  struct Root {
    const char* at = nullptr;  // the span's payload in the input
    std::size_t decoded = 0;  // into pool_
    bool filled = false;
  };

  bool resource_spans(const PreviewFill& fill, const otlp::wire::Field& field, normalize::NormalizeTally& tally,
                      FilledPayload& out);
  void emit(const otlp::wire::Field& field, const std::vector<std::string>& held, otlp::wire::Writer& writer,
            bool taking_held, std::uint32_t& moved);
  bool emit_scope(const otlp::wire::Field& field, const std::vector<std::string>& held, otlp::wire::Writer& writer,
                  bool taking_held, std::uint32_t& moved);
  const Root* root_at(const char* at) const;

  std::vector<Root> roots_;
  std::vector<otlp::Span> pool_;  // decoded roots, reused
  std::string encoded_;  // a filled root, re-encoded
  otlp::wire::Writer spans_writer_;
  otlp::wire::Writer held_writer_;
};

}  // namespace proxy::routing
