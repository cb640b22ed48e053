// Normalization on the wire (docs/architecture.md, "The wire path"): one pass over a protobuf
// ExportTraceServiceRequest (or one ResourceSpans record) that fills the rules' SpanView from the
// bytes, decides with the same rules as apply() (decide_changes in span_view.hpp), and re-emits
// only what they change: new attributes appended to the span, token counts rewritten in place,
// every other byte kept. Malformed and unsupported input as WireRewriter: the caller falls back.
// Previews: the candidates are collected here too (preview_offer, as collect_previews), offered
// only once the whole request was read; filling roots still runs on messages.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "normalize/normalize.hpp"
#include "normalize/preview_cache.hpp"
#include "normalize/span_view.hpp"
#include "otlp/wire_reader.hpp"
#include "otlp/wire_writer.hpp"
#include "policy/wire_policy.hpp"

namespace proxy::normalize {

// One per thread: it keeps its buffers between requests, so a warm normalizer allocates only for
// the values it builds (links and Koog content as JSON, joined system instructions).
// Where collect_previews would offer a request's candidates.
struct PreviewTarget {
  std::string_view route;
  PreviewCache* cache = nullptr;
  PreviewCache::Clock::time_point now;
  // Set: the offers are appended here instead, for the caller to make once it knows the request
  // goes on (their trace ids and most of their bytes view the normalized input, which must
  // outlive them; bytes the rules made are copied into the offers).
  PreviewOffers* deferred = nullptr;
};

// The view of an AnyValue's bytes that a wire pass already checked: the last oneof field, as
// protobuf keeps it.
ValueView view_of_encoded(std::string_view any_value);

class WireNormalizer {
 public:
  // Appends the normalized request to `out` (untouched unless rewritten) and counts into `tally`
  // as apply() on each ResourceSpans would. On malformed or unsupported the tally may hold
  // partial counts: the caller drops it.
  // With `previews`, also offers the request's preview candidates as collect_previews after
  // apply() would (nothing when the request is not rewritten).
  // `checked`: the request is another wire pass's output (every byte checked as protobuf would),
  // so what is kept is copied without checking it again.
  enum class Input { unchecked, checked };
  policy::WireResult normalize(const Normalizer& normalizer, std::string_view request, std::string& out,
                               NormalizeTally& tally, const PreviewTarget* previews = nullptr,
                               Input input = Input::unchecked);
  // The same for one serialized ResourceSpans.
  policy::WireResult normalize_resource_spans(const Normalizer& normalizer, std::string_view resource_spans,
                                              std::string& out, NormalizeTally& tally,
                                              const PreviewTarget* previews = nullptr);

  // Root spans (no parent) the last call read: a payload without any needs no preview filling.
  std::size_t roots() const { return scratch_.roots; }

  // What a pass reuses from span to span.
  struct Scratch {
    otlp::wire::Writer writer;
    std::vector<AttributeView> resource;
    std::vector<AttributeView> attributes;
    std::vector<otlp::wire::Field> attribute_fields;
    std::vector<std::string_view> link_payloads;
    Links links;
    SpanChanges changes;
    std::string content;  // a Koog value as structure, serialized
    PreviewOffers offers;  // held until the request is known good
    std::size_t roots = 0;
  };

 private:
  void begin();
  policy::WireResult finish(otlp::wire::WireError error, std::string& out, const PreviewTarget* previews);

  Scratch scratch_;
};

}  // namespace proxy::normalize
