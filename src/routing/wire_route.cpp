#include "routing/wire_route.hpp"

#include <algorithm>
#include <cstdint>
#include <functional>

#include "otlp/wire_pass.hpp"
#include "otlp/wire_schema.hpp"
#include "policy/wire_policy.hpp"
#include "normalize/wire_normalize.hpp"
#include "routing/router.hpp"
#include "routing/wire_previews.hpp"

namespace proxy::routing {
namespace {

using otlp::wire::Field;
using otlp::wire::is_length;
using otlp::wire::Reader;
using otlp::wire::WireError;

// An AnyValue's contents as attribute_text reads them (the scan let through one oneof field).
std::optional<std::string_view> value_text(std::string_view any_value, std::string& buffer) {
  Reader reader(any_value);
  Field field;
  while (reader.next(field)) {
    if (!otlp::wire::is_value_case(field)) continue;
    switch (field.number) {
      case otlp::wire::kString: return field.payload;
      case otlp::wire::kBool: return bool_text(field.value != 0);
      case otlp::wire::kInt: return int_text(static_cast<std::int64_t>(field.value), buffer);
      default: return std::nullopt;
    }
  }
  return std::nullopt;
}

// The routes of a request's ResourceSpans, decided on their bytes as RouteTable::match decides.
class TableRoutes final : public policy::WireRoutes {
 public:
  TableRoutes(const RouteTable& table, std::optional<std::string_view> header, std::vector<std::size_t>& route_of)
      : table_(table), header_(header), route_of_(route_of) {}

  std::size_t route_of(const otlp::wire::ResourceSpansScan& scan) override {
    route_of_.push_back(table_.match(WireResourceView(scan), header_));
    return route_of_.back();
  }
  const policy::CompiledPolicy& policy_of(std::size_t route) const override { return *table_.routes()[route].policy; }

 private:
  const RouteTable& table_;
  std::optional<std::string_view> header_;
  std::vector<std::size_t>& route_of_;
};

// A request over max_spans_per_request, refused once its bytes are known to parse (the message
// path decodes before it counts): true when `routed` holds the answer.
bool refused_by_count(std::string_view body, std::size_t max_spans, WireRouted& routed) {
  const std::size_t spans = otlp::wire::count_request_spans(body);
  if (spans <= max_spans) return false;
  const WireError error = otlp::wire::check_message(otlp::wire::MessageKind::request, body, 0);
  routed.checks.received = spans;
  routed.wire_error = error;
  routed.outcome = error == WireError::none        ? WireRouted::Outcome::too_many_spans
                   : otlp::wire::is_malformed(error) ? WireRouted::Outcome::malformed
                                                     : WireRouted::Outcome::unsupported;
  return true;
}

}  // namespace

std::optional<std::string_view> WireResourceView::attribute_text(std::string_view key, std::string& buffer) const {
  Reader attributes(scan_.resource);
  Field attribute;
  while (attributes.next(attribute)) {
    if (!is_length(attribute, 1)) continue;
    std::string_view name;
    std::string_view value;
    Reader key_value(attribute.payload);
    Field field;
    while (key_value.next(field)) {
      if (is_length(field, 1)) name = field.payload;
      if (is_length(field, 2)) value = field.payload;
    }
    if (name == key) return value_text(value, buffer);
  }
  return std::nullopt;
}

bool WireResourceView::any_scope_name(const ValueMatcher& matcher) const {
  for (const std::string_view name : scan_.scope_names) {
    if (matcher.matches(name)) return true;
  }
  return false;
}

WireRouted Router::route_wire(std::string_view body, std::optional<std::string_view> header,
                              const otlp::AttributeLimits& limits, std::size_t max_spans) const {
  WireRouted routed;
  if (refused_by_count(body, max_spans, routed)) return routed;
  thread_local policy::WireRewriter rewriter;
  thread_local policy::RoutedOutput out;
  thread_local std::vector<std::size_t> route_of;
  out.reset(table_.routes().size());
  route_of.clear();
  TableRoutes routes(table_, header, route_of);
  policy::PolicyTally tally;
  const policy::WireResult result = rewriter.rewrite_routed(body, limits, routes, out, routed.checks, tally);
  if (result.outcome != policy::WireOutcome::rewritten) {
    routed.wire_error = result.error;
    routed.outcome = result.outcome == policy::WireOutcome::malformed ? WireRouted::Outcome::malformed
                                                                       : WireRouted::Outcome::unsupported;
    return routed;
  }
  if (routed.checks.valid == 0 && routed.checks.invalid.rejected > 0) {
    routed.outcome = WireRouted::Outcome::all_invalid;
    return routed;
  }
  thread_local WireNormalized normalized;
  if (!normalize_wire(out, normalized)) {
    routed.outcome = WireRouted::Outcome::unsupported;
    return routed;
  }
  deliver_wire(route_of, header, out, tally, normalized, routed);
  return routed;
}

void Router::WireNormalized::reset(const policy::RoutedOutput& out) {
  const std::size_t routes = out.payloads.size();
  payloads.resize(routes);
  for (std::string& payload : payloads) payload.clear();
  offers.resize(routes);
  for (auto& route_offers : offers) route_offers.clear();
  done.assign(routes, 0);
  roots.assign(routes, 0);
  tally = {};
  now = normalize::PreviewCache::Clock::now();
}

// Each normalizing route's payload through the normalization rules (normalize::WireNormalizer),
// its preview offers kept back until the request is known to go on; false when a payload is one
// the wire path leaves to the message path. Nothing is counted or offered yet.
bool Router::normalize_wire(const policy::RoutedOutput& out, WireNormalized& normalized) const {
  thread_local normalize::WireNormalizer normalizer;
  normalized.reset(out);
  for (std::size_t route = 0; route < out.payloads.size(); ++route) {
    const normalize::Normalizer& rules = *table_.routes()[route].normalizer;
    if (out.spans[route] == 0 || !rules.enabled()) continue;
    normalize::PreviewTarget previews{preview_keys_[route], preview_cache_.get(), normalized.now,
                                      &normalized.offers[route]};
    if (normalizer
            .normalize(rules, out.payloads[route], normalized.payloads[route], normalized.tally, &previews,
                       normalize::WireNormalizer::Input::checked)
            .outcome != policy::WireOutcome::rewritten) {
      return false;
    }
    normalized.done[route] = true;
    normalized.roots[route] = normalizer.roots();
  }
  return true;
}

// route()'s end on the wire path's output: the experiments, the previews offered and filled,
// the items and the counters.
void Router::deliver_wire(const std::vector<std::size_t>& route_of, std::optional<std::string_view> header,
                          policy::RoutedOutput& out, const policy::PolicyTally& tally, WireNormalized& normalized,
                          WireRouted& routed) const {
  if (std::adjacent_find(route_of.begin(), route_of.end(), std::not_equal_to<>()) != route_of.end()) {
    stats_.requests_split.fetch_add(1, std::memory_order_relaxed);
  }
  thread_local std::vector<std::optional<ExperimentRef>> experiments;
  if (auto error = select_experiments(route_of, header, experiments)) {
    routed.outcome = WireRouted::Outcome::routing_error;
    routed.error = std::move(error->message);
    return;
  }
  for (std::size_t route = 0; route < out.spans.size(); ++route) {
    for (const normalize::PreviewOffer& offer : normalized.offers[route]) {
      preview_cache_->offer(preview_keys_[route], offer.trace_id, offer.inputs, offer.outputs, offer.from_agent,
                            normalized.now);
    }
  }
  for (std::size_t route = 0; route < out.spans.size(); ++route) {
    const std::uint32_t spans = out.spans[route];
    if (spans == 0) continue;
    stats_.route_spans[route].fetch_add(spans, std::memory_order_relaxed);
    if (!normalized.done[route]) {
      routed.items.push_back(queue::QueueItem{*experiments[route], std::move(out.payloads[route]), spans});
      continue;
    }
    items_wire(route, *experiments[route], spans, normalized, routed.items);
  }
  policy_stats_.add(tally);
  normalize_stats_.add(normalized.tally);
}

// A normalized route's items: its spans with their roots filled, then its held roots.
void Router::items_wire(std::size_t route, const ExperimentRef& experiment, std::uint32_t spans,
                        WireNormalized& normalized, std::vector<queue::QueueItem>& items) const {
  thread_local WirePreviewFiller filler;
  thread_local FilledPayload filled;
  const normalize::Normalizer& rules = *table_.routes()[route].normalizer;
  std::string& payload = normalized.payloads[route];
  const PreviewFill fill{rules, preview_keys_[route], *preview_cache_, normalized.now};
  // The payload is the wire path's own output, so it reads; if it did not, it goes unfilled.
  // Without roots there is nothing to fill or hold (most batches of a long trace).
  if (!rules.config().previews || normalized.roots[route] == 0 || !filler.fill(fill, payload, spans, normalized.tally, filled)) {
    items.push_back(queue::QueueItem{experiment, std::move(payload), spans});
    return;
  }
  if (filled.span_count > 0) items.push_back(queue::QueueItem{experiment, std::move(filled.spans), filled.span_count});
  if (filled.held_count == 0) return;
  items.push_back(queue::QueueItem{experiment, std::move(filled.held_roots), filled.held_count});
  items.back().hold = std::make_shared<const queue::Hold>(
      queue::Hold{normalized.now + rules.config().preview_hold, preview_keys_[route], std::move(filled.held_traces)});
}

}  // namespace proxy::routing
