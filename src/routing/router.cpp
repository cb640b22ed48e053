#include "routing/router.hpp"

#include <algorithm>
#include <optional>

#include "config/values.hpp"

namespace proxy::routing {
namespace {

std::uint32_t spans_in(const otlp::ResourceSpans& resource_spans) {
  std::uint32_t count = 0;
  for (const otlp::ScopeSpans& scope_spans : resource_spans.scope_spans()) {
    count += static_cast<std::uint32_t>(scope_spans.spans_size());
  }
  return count;
}

std::string describe_match(const CompiledRoute& route, const config::RouteConfig* config) {
  if (config == nullptr) return "everything else";
  std::string text;
  auto add = [&text](const std::string& part) { text += (text.empty() ? "" : ", ") + part; };
  for (const config::AttributeMatch& attribute : config->match.resource) {
    const char* kind = attribute.value.kind == config::ValueMatch::Kind::exact  ? "="
                       : attribute.value.kind == config::ValueMatch::Kind::glob ? " glob "
                                                                               : " regex ";
    add(attribute.key + kind + config::quoted(attribute.value.pattern));
  }
  if (config->match.scope_name) add("scope " + config::quoted(config->match.scope_name->pattern));
  switch (route.header_condition) {
    case config::HeaderCondition::any:
      break;
    case config::HeaderCondition::present:
      add("header present");
      break;
    case config::HeaderCondition::absent:
      add("header absent");
      break;
    case config::HeaderCondition::equals:
      add("header=" + route.header_value);
      break;
  }
  return text.empty() ? "everything" : text;
}

// Moves the root spans of the held traces out of `from` into `to` (same resource, same scopes),
// so a held root travels in an item of its own: the rest of its request is exported without
// waiting, and PreviewHolds re-encodes the roots alone. Scopes left empty are removed.
std::uint32_t take_held_roots(otlp::ResourceSpans& from, const std::vector<std::string>& traces,
                              otlp::ResourceSpans& to) {
  std::uint32_t moved = 0;
  auto& scopes = *from.mutable_scope_spans();
  for (int s = 0; s < scopes.size(); ++s) {
    auto& spans = *scopes[s].mutable_spans();
    otlp::ScopeSpans* scope_out = nullptr;
    int kept = 0;
    for (int i = 0; i < spans.size(); ++i) {
      if (!normalize::is_held_root(spans[i], traces)) {
        if (kept != i) spans.SwapElements(kept, i);
        ++kept;
        continue;
      }
      if (scope_out == nullptr) {
        if (moved == 0) {
          *to.mutable_resource() = from.resource();
          to.set_schema_url(from.schema_url());
        }
        scope_out = to.add_scope_spans();
        *scope_out->mutable_scope() = scopes[s].scope();
        scope_out->set_schema_url(scopes[s].schema_url());
      }
      *scope_out->add_spans() = std::move(spans[i]);
      ++moved;
    }
    spans.DeleteSubrange(kept, spans.size() - kept);
  }
  scopes.erase(std::remove_if(scopes.begin(), scopes.end(),
                              [](const otlp::ScopeSpans& scope) { return scope.spans_size() == 0; }),
               scopes.end());
  return moved;
}

}  // namespace

void append_resource_spans(std::string& out, const otlp::ResourceSpans& resource_spans) {
  const std::size_t size = resource_spans.ByteSizeLong();
  out.push_back('\x0a');  // field 1, length-delimited
  std::size_t length = size;
  while (length >= 0x80) {
    out.push_back(static_cast<char>((length & 0x7f) | 0x80));
    length >>= 7;
  }
  out.push_back(static_cast<char>(length));
  const std::size_t at = out.size();
  out.resize(at + size);
  resource_spans.SerializeWithCachedSizesToArray(reinterpret_cast<std::uint8_t*>(out.data() + at));
}

Router::Router(const config::Config& config, std::shared_ptr<normalize::PreviewCache> previews)
    : table_(config),
      route_configs_(config.routes),
      preview_cache_(previews ? std::move(previews)
                              : std::make_shared<normalize::PreviewCache>(config.preview_cache)) {
  stats_.route_spans = std::make_unique<RouterStats::Counter[]>(table_.routes().size());
  // Stable across reloads (unlike the route's index), and different when the route now sends to
  // another experiment or under another policy.
  for (const CompiledRoute& route : table_.routes()) {
    preview_keys_.push_back(route.name + '\x1f' + route.experiment.describe() + '\x1f' +
                            route.policy_name);
  }
}

// The state of one request's pass through route(): the tallies its policies and normalizers
// add to, the time its previews are stamped with, and the roots left unfilled to wait for their
// trace's invoke_agent (their item is held).
struct Router::Pass {
  policy::PolicyTally tally;
  normalize::NormalizeTally normalized;
  normalize::PreviewCache::Clock::time_point now = normalize::PreviewCache::Clock::now();
  std::vector<std::string> held;
};

// Per route: an item for its spans and, when some of its roots are held, one for those.
struct Router::RouteItems {
  std::optional<queue::QueueItem> spans;
  std::optional<queue::QueueItem> roots;
  std::vector<std::string> held;
};

namespace {

void append_to(std::optional<queue::QueueItem>& item, const ExperimentRef& experiment,
               const otlp::ResourceSpans& resource_spans, std::uint32_t spans) {
  if (!item) item.emplace(queue::QueueItem{experiment, {}, 0});
  append_resource_spans(item->payload, resource_spans);
  item->span_count += spans;
}

}  // namespace

std::variant<std::vector<queue::QueueItem>, RoutingError> Router::route(
    otlp::ExportRequest& request, std::optional<std::string_view> header) const {
  thread_local std::vector<std::size_t> route_of;
  if (match_routes(request, header, route_of)) {
    stats_.requests_split.fetch_add(1, std::memory_order_relaxed);
  }
  thread_local std::vector<std::optional<ExperimentRef>> experiments;
  if (auto error = select_experiments(route_of, header, experiments)) return std::move(*error);

  // Per resource spans: the policy, then normalization on its output (so nothing masked is ever
  // copied back), then the trace previews once every invoke_agent span of the request is known
  // (Koog batches a trace's root with its invoke_agent, each in its own ResourceSpans).
  Pass pass;
  for (int i = 0; i < request.resource_spans_size(); ++i) {
    otlp::ResourceSpans& resource_spans = *request.mutable_resource_spans(i);
    if (spans_in(resource_spans) > 0) transform(route_of[static_cast<std::size_t>(i)], resource_spans, pass);
  }
  std::vector<RouteItems> per_route(table_.routes().size());
  for (int i = 0; i < request.resource_spans_size(); ++i) {
    const std::size_t route = route_of[static_cast<std::size_t>(i)];
    collect(route, *experiments[route], *request.mutable_resource_spans(i), per_route[route], pass);
  }
  policy_stats_.add(pass.tally);
  normalize_stats_.add(pass.normalized);
  return items_of(per_route, pass);
}

// The route of each ResourceSpans into `route_of`; whether they take more than one route.
bool Router::match_routes(const otlp::ExportRequest& request, std::optional<std::string_view> header,
                          std::vector<std::size_t>& route_of) const {
  route_of.clear();
  bool split = false;
  for (const otlp::ResourceSpans& resource_spans : request.resource_spans()) {
    route_of.push_back(table_.match(resource_spans, header));
    split = split || route_of.back() != route_of.front();
  }
  return split;
}

// The experiment of every route used (the default route's for a request without spans), chosen
// before anything changes so that an error leaves no trace.
std::optional<RoutingError> Router::select_experiments(
    const std::vector<std::size_t>& route_of, std::optional<std::string_view> header,
    std::vector<std::optional<ExperimentRef>>& experiments) const {
  experiments.assign(table_.routes().size(), std::nullopt);
  const auto value = header_value(header);
  const std::size_t default_route = table_.default_route();
  for (std::size_t i = 0; i < std::max<std::size_t>(route_of.size(), 1); ++i) {
    const std::size_t route = route_of.empty() ? default_route : route_of[i];
    if (experiments[route]) continue;
    auto selected = table_.experiment(route, header);
    if (auto* error = std::get_if<RoutingError>(&selected)) return std::move(*error);
    experiments[route] = std::get<ExperimentRef>(std::move(selected));
    if (value && table_.routes()[route].header_mode == config::HeaderMode::override_route &&
        !(experiments[route]->kind == ExperimentRef::Kind::id && experiments[route]->value == *value)) {
      stats_.headers_overridden.fetch_add(1, std::memory_order_relaxed);
    }
  }
  return std::nullopt;
}

void Router::transform(std::size_t route, otlp::ResourceSpans& resource_spans, Pass& pass) const {
  const CompiledRoute& compiled = table_.routes()[route];
  policy::apply(*compiled.policy, resource_spans, pass.tally);
  normalize::apply(*compiled.normalizer, resource_spans, pass.normalized);
  normalize::collect_previews(*compiled.normalizer, preview_keys_[route], resource_spans,
                              *preview_cache_, pass.now);
}

// Fills the previews of one ResourceSpans and adds it to its route's items: the roots left
// waiting for their preview to the held item, the rest to the spans item.
void Router::collect(std::size_t route, const ExperimentRef& experiment,
                     otlp::ResourceSpans& resource_spans, RouteItems& out, Pass& pass) const {
  const std::uint32_t spans = spans_in(resource_spans);
  if (spans == 0) return;
  normalize::fill_previews(*table_.routes()[route].normalizer, preview_keys_[route], resource_spans,
                           *preview_cache_, pass.now, pass.normalized, &pass.held);
  if (!pass.held.empty()) {
    otlp::ResourceSpans taken;
    if (const std::uint32_t moved = take_held_roots(resource_spans, pass.held, taken); moved > 0) {
      append_to(out.roots, experiment, taken, moved);
    }
    for (std::string& trace : pass.held) out.held.push_back(std::move(trace));
    pass.held.clear();
  }
  if (const std::uint32_t rest = spans_in(resource_spans); rest > 0) {
    append_to(out.spans, experiment, resource_spans, rest);
  }
  stats_.route_spans[route].fetch_add(spans, std::memory_order_relaxed);
}

// The items in route order, each route's spans before its held roots.
std::vector<queue::QueueItem> Router::items_of(std::vector<RouteItems>& per_route,
                                               const Pass& pass) const {
  std::vector<queue::QueueItem> items;
  for (std::size_t route = 0; route < per_route.size(); ++route) {
    RouteItems& out = per_route[route];
    if (out.spans) items.push_back(std::move(*out.spans));
    if (!out.roots) continue;
    items.push_back(std::move(*out.roots));
    items.back().hold = std::make_shared<const queue::Hold>(queue::Hold{
        pass.now + table_.routes()[route].normalizer->config().preview_hold, preview_keys_[route],
        std::move(out.held)});
  }
  return items;
}

bool PreviewHolds::hold_ready(const queue::QueueItem& item) const {
  const auto now = normalize::PreviewCache::Clock::now();
  for (const std::string& trace : item.hold->traces) {
    if (!previews_->agent_seen(item.hold->key, trace, now)) return false;
  }
  return true;
}

void PreviewHolds::on_hold_released(queue::QueueItem& item) {
  normalize::fill_held_roots(item.hold->key, item.hold->traces, item.payload, *previews_,
                             normalize::PreviewCache::Clock::now());
}

std::vector<std::string> Router::describe() const {
  std::vector<std::string> lines;
  const auto& routes = table_.routes();
  for (std::size_t i = 0; i < routes.size(); ++i) {
    const CompiledRoute& route = routes[i];
    lines.push_back("route " + config::quoted(route.name) + ": " +
                    describe_match(route, i + 1 < routes.size() ? &route_configs_[i] : nullptr) +
                    " -> experiment " + route.experiment.describe() +
                    (route.experiment.kind == ExperimentRef::Kind::name && !route.experiment.create
                         ? " (must exist)"
                         : "") +
                    ", policy " +
                    config::quoted(route.policy_name) + ", header " +
                    std::string(config::format_header_mode(route.header_mode)) + ", normalize " +
                    (route.normalizer->enabled() ? "on" : "off"));
  }
  return lines;
}

}  // namespace proxy::routing
