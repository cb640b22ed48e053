// Trace previews on the wire: what Router::collect does to each ResourceSpans of a route
// (normalize::fill_previews, then the held roots moved into an item of their own), done on the
// route's normalized payload, a serialized ExportTraceServiceRequest the wire path wrote. Nothing
// is decoded: a root span's view (name, trace, attributes) is read from its bytes and decided by
// the same decide_root_fill as on messages; a root filled from the cache gets the preview's parts
// appended as attributes, a held root moves to the held payload under a copy of its resource and
// scope, and the scopes and resources it leaves empty go, as on the message path.
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
    std::string_view trace_id;
    std::string inputs;   // serialized AnyValues to append as mlflow.spanInputs / spanOutputs
    std::string outputs;
    bool filled() const { return !inputs.empty() || !outputs.empty(); }
  };

  bool resource_spans(const PreviewFill& fill, const otlp::wire::Field& field, normalize::NormalizeTally& tally,
                      FilledPayload& out);
  void emit(const otlp::wire::Field& field, const std::vector<std::string>& held, otlp::wire::Writer& writer,
            bool taking_held, std::uint32_t& moved);
  bool emit_scope(const otlp::wire::Field& field, const std::vector<std::string>& held, otlp::wire::Writer& writer,
                  bool taking_held, std::uint32_t& moved);
  void decide(const PreviewFill& fill, std::string_view span, std::vector<std::string>& held,
              normalize::NormalizeTally& tally);
  void write_span(const otlp::wire::Field& span, const Root* root, otlp::wire::Writer& writer) const;
  const Root* root_at(const char* at) const;

  std::vector<Root> roots_;
  std::size_t root_count_ = 0;  // roots_ in use (their strings keep their capacity)
  std::vector<normalize::AttributeView> attributes_;
  otlp::wire::Writer spans_writer_;
  otlp::wire::Writer held_writer_;
};

}  // namespace proxy::routing
