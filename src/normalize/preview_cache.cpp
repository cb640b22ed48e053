#include "normalize/preview_cache.hpp"

#include <algorithm>
#include <initializer_list>

#include "normalize/json_value.hpp"
#include "normalize/span_view.hpp"

namespace proxy::normalize {
namespace {

// Per entry beyond its strings: the list node, the hash node and bucket, the strings' headers.
constexpr std::size_t kEntryOverhead = 160;

// The roles the inputs and the outputs are shown as.
constexpr std::string_view kUser = "user";
constexpr std::string_view kAssistant = "assistant";

// What the root will show, in the chat shape MLflow previews best: GenAI messages as messages;
// a JSON string, or text that is not JSON (masked, hashed, hidden: kept as it is), as one message
// of `role`; other JSON (objects, arrays) as structure. A non-string value as it is.
std::string converted(PreviewForm form, std::string text, std::string_view role) {
  if (form == PreviewForm::serialized || text.empty()) return text;
  std::string out;
  encode_preview_text(text, role, out);
  return out;
}

// A candidate's rank: raised by `bonus` when its text is GenAI messages holding a message of
// `role` (chat_summary reads them as converted()'s encode_preview_text does).
int rank_of(const PreviewPart& part, std::string_view role, int rank, int bonus) {
  if (bonus == 0 || part.form != PreviewForm::text) return rank;
  return chat_summary(part.bytes(), role).has_role ? rank + bonus : rank;
}

// A normalized span as collect_previews reads it: the view and its changes.
class ChangedSpan {
 public:
  ChangedSpan(const SpanView& span, const SpanChanges& changes) : span_(span), changes_(changes) {}

  const SpanView& view() const { return span_; }
  // A string attribute (the keys asked never hold a Koog value turned into JSON).
  std::string_view string(std::string_view key) const {
    const FoundValue found = find_changed(span_, changes_, key);
    return found.value == nullptr ? std::string_view{} : found.value->string();
  }
  // The first present value of the keys, as MLflow would read the span's inputs/outputs, into
  // `part` (left empty when none).
  void first_present(std::initializer_list<std::string_view> keys, PreviewPart& part) {
    for (std::string_view key : keys) {
      if (candidate(find_changed(span_, changes_, key), part)) return;
    }
  }

 private:
  // The value as the message path holds it after apply(), into `part`; false when absent or not
  // present. Strings the span holds are viewed; what the changes made is copied.
  bool candidate(const FoundValue& found, PreviewPart& part) {
    if (found.value == nullptr || (found.addition == nullptr && found.value->type == ValueType::unset)) return false;
    const NewValueKind kind = found.addition == nullptr ? NewValueKind::copy : found.addition->kind;
    if (kind == NewValueKind::copy && found.value->type == ValueType::string) {
      return text_part(found.value->text, false, part);
    }
    if (kind == NewValueKind::text) return text_part(found.value->text, true, part);
    return built_part(as_message(found, scratch_), part);
  }
  static bool text_part(std::string_view text, bool copy, PreviewPart& part) {
    if (text.empty()) return false;
    part.form = PreviewForm::text;
    part.owned = copy;
    if (copy) part.copy.assign(text);
    else part.source = text;
    return true;
  }
  // Rare: a value that is not a string, or a Koog value as JSON; built as the message path has it.
  static bool built_part(const otlp::AnyValue* value, PreviewPart& part) {
    if (value == nullptr || value->value_case() == otlp::AnyValue::VALUE_NOT_SET) return false;
    if (value->value_case() == otlp::AnyValue::kStringValue) return text_part(value->string_value(), true, part);
    part.form = PreviewForm::serialized;
    part.owned = true;
    value->SerializeToString(&part.copy);
    return true;
  }

  const SpanView& span_;
  const SpanChanges& changes_;
  otlp::AnyValue scratch_;
};

// The span's candidate for inputs (outputs) among the keys, ranked; empty when none.
void offer_part(ChangedSpan& span, std::initializer_list<std::string_view> keys, std::string_view role, int rank,
                int bonus, std::uint64_t time, PreviewPart& part) {
  span.first_present(keys, part);
  if (part.empty()) return;
  part.rank = rank_of(part, role, rank, bonus);
  part.time = time;
}

// A model call (GenAI chat or text completion), whose messages are what the agent was asked.
bool is_llm_call(std::string_view operation) {
  return operation == "chat" || operation == "text_completion" || operation == "generate_content";
}

// Koog 1.x puts the conversation on its chat spans, not on invoke_agent: the first call's
// messages with a user message rank with invoke_agent's (which, starting earlier, still wins when
// it has one); the last call's answer ranks with the graph's exit node (which ends later).
void llm_call_offer(ChangedSpan& span, PreviewOffer& offer) {
  offer_part(span, {kSpanInputs, "gen_ai.input.messages"}, kUser, 1, 2, span.view().start_time, offer.inputs);
  offer_part(span, {kSpanOutputs, "gen_ai.output.messages"}, kAssistant, 1, 1, span.view().end_time,
             offer.outputs);
}

void agent_offer(ChangedSpan& span, PreviewOffer& offer) {
  offer_part(span, {kSpanInputs, "gen_ai.input.messages", "input.value"}, kUser, 1, 2, span.view().start_time,
             offer.inputs);
  offer_part(span, {kSpanOutputs, "gen_ai.output.messages", "output.value"}, kAssistant, 1, 2,
             span.view().end_time, offer.outputs);
  offer.from_agent = true;
}

bool better(const PreviewPart& candidate, const PreviewPart& current, bool earliest) {
  if (candidate.empty()) return false;
  if (current.empty()) return true;
  if (candidate.rank != current.rank) return candidate.rank > current.rank;
  return earliest ? candidate.time < current.time : candidate.time > current.time;
}

}  // namespace

void PreviewPart::clear() {
  source = {};
  rank = 0;
  time = 0;
  form = PreviewForm::serialized;
  owned = false;
  copy.clear();
}

void PreviewPart::assign(const PreviewPart& other) {
  copy.assign(other.bytes());
  source = {};
  owned = true;
  rank = other.rank;
  time = other.time;
  form = other.form;
}

PreviewOffer& PreviewOffers::add() {
  if (size_ == offers_.size()) offers_.emplace_back();
  PreviewOffer& offer = offers_[size_++];
  offer.trace_id = {};
  offer.inputs.clear();
  offer.outputs.clear();
  offer.from_agent = false;
  return offer;
}

void PreviewOffers::append(const PreviewOffers& other) {
  for (const PreviewOffer& offer : other) {
    PreviewOffer& copy = add();
    copy.trace_id = offer.trace_id;
    copy.inputs = offer.inputs;  // a copy assignment keeps `copy`'s capacity
    copy.outputs = offer.outputs;
    copy.from_agent = offer.from_agent;
  }
}

PreviewCache::PreviewCache(const config::PreviewCacheConfig& config) : config_(config) {}

std::string_view PreviewCache::key_of(std::string_view route, std::string_view trace_id) {
  thread_local std::string key;
  key.clear();
  key += trace_id;
  key += '/';
  key += route;
  return key;
}

std::size_t PreviewCache::entry_bytes(std::string_view key, std::size_t value_bytes) {
  return key.size() + value_bytes + kEntryOverhead;
}

void PreviewCache::erase_locked(std::list<Entry>::iterator it) {
  bytes_ -= it->bytes;
  index_.erase(std::string_view(it->key));
  order_.erase(it);
}

void PreviewCache::expire_locked(Clock::time_point now) {
  while (!order_.empty() && order_.front().created + config_.ttl <= now) {
    erase_locked(order_.begin());
    stats_.evicted_ttl.fetch_add(1, std::memory_order_relaxed);
  }
}

// Evicts the oldest entries (never `keep`) until the cache fits max_bytes.
void PreviewCache::shrink_locked(std::list<Entry>::iterator keep) {
  while (bytes_ > config_.max_bytes && !order_.empty() && order_.begin() != keep) {
    erase_locked(order_.begin());
    stats_.evicted_size.fetch_add(1, std::memory_order_relaxed);
  }
}

void PreviewCache::reconfigure(const config::PreviewCacheConfig& config, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  config_ = config;
  expire_locked(now);
  shrink_locked(order_.end());
}

config::PreviewCacheConfig PreviewCache::config() const {
  std::lock_guard lock(mutex_);
  return config_;
}

void PreviewCache::offer(std::string_view route, std::string_view trace_id, const PreviewPart& inputs,
                         const PreviewPart& outputs, bool from_agent, Clock::time_point now) {
  if (inputs.empty() && outputs.empty() && !from_agent) return;
  std::lock_guard lock(mutex_);
  expire_locked(now);
  const std::string_view key = key_of(route, trace_id);
  auto found = index_.find(key);
  std::list<Entry>::iterator entry;
  if (found == index_.end()) {
    order_.push_back(Entry{std::string(key), {}, {}, now, 0, false});
    entry = std::prev(order_.end());
    index_.emplace(std::string_view(entry->key), entry);
    stats_.stored.fetch_add(1, std::memory_order_relaxed);
  } else {
    entry = found->second;
  }
  entry->agent_seen = entry->agent_seen || from_agent;
  if (better(inputs, entry->inputs, true)) entry->inputs.assign(inputs);
  if (better(outputs, entry->outputs, false)) entry->outputs.assign(outputs);
  const std::size_t bytes = entry_bytes(entry->key, entry->inputs.copy.size() + entry->outputs.copy.size());
  bytes_ = bytes_ - entry->bytes + bytes;
  entry->bytes = bytes;
  if (bytes > config_.max_bytes) {  // this trace alone does not fit
    erase_locked(entry);
    stats_.evicted_oversize.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  shrink_locked(entry);
}

std::optional<Preview> PreviewCache::take(std::string_view route, std::string_view trace_id,
                                          Clock::time_point now) {
  PreviewPart inputs;
  PreviewPart outputs;
  {
    std::lock_guard lock(mutex_);
    expire_locked(now);
    auto found = index_.empty() ? index_.end() : index_.find(key_of(route, trace_id));
    if (found == index_.end()) {
      stats_.misses.fetch_add(1, std::memory_order_relaxed);
      return std::nullopt;
    }
    inputs = std::move(found->second->inputs);
    outputs = std::move(found->second->outputs);
    erase_locked(found->second);
    stats_.hits.fetch_add(1, std::memory_order_relaxed);
  }
  // Converted out of the lock: the one conversion of the trace's candidates.
  return Preview{converted(inputs.form, std::move(inputs.copy), kUser),
                 converted(outputs.form, std::move(outputs.copy), kAssistant)};
}

bool PreviewCache::agent_seen(std::string_view route, std::string_view trace_id,
                              Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  if (index_.empty()) return false;
  const auto found = index_.find(key_of(route, trace_id));
  return found != index_.end() && found->second->agent_seen &&
         found->second->created + config_.ttl > now;
}

std::size_t PreviewCache::bytes() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

std::size_t PreviewCache::entries() const {
  std::lock_guard lock(mutex_);
  return order_.size();
}

bool preview_offer(const SpanView& span, const SpanChanges& changes, PreviewOffer& offer) {
  if (span.root) return false;  // a root is filled, not a source
  ChangedSpan changed(span, changes);
  offer.trace_id = span.trace_id;
  offer.inputs.clear();
  offer.outputs.clear();
  offer.from_agent = false;
  const std::string_view operation = changed.string("gen_ai.operation.name");
  if (operation == "invoke_agent") {
    agent_offer(changed, offer);
    return true;
  }
  if (is_llm_call(operation)) {
    llm_call_offer(changed, offer);
    return true;
  }
  const std::string_view node = changed.string("koog.node.id");
  if (node == "__start__") {
    offer_part(changed, {"koog.node.input"}, kUser, 2, 0, span.start_time, offer.inputs);
    return true;
  }
  if (node == "__finish__") {
    offer_part(changed, {"koog.node.output"}, kAssistant, 2, 0, span.end_time, offer.outputs);
    return true;
  }
  return false;
}

void collect_previews(const Normalizer& normalizer, std::string_view route,
                      const otlp::ResourceSpans& resource_spans, PreviewCache& cache,
                      PreviewCache::Clock::time_point now) {
  if (!normalizer.enabled() || !normalizer.config().previews) return;
  thread_local std::vector<AttributeView> attributes;
  thread_local PreviewOffers offers;  // one at a time, offered at once (its bytes view the span)
  const SpanChanges none;
  for (const otlp::ScopeSpans& scope_spans : resource_spans.scope_spans()) {
    for (const otlp::Span& span : scope_spans.spans()) {
      offers.clear();
      PreviewOffer& offer = offers.add();
      if (!preview_offer(view_of_span(span, attributes), none, offer)) continue;
      cache.offer(route, offer.trace_id, offer.inputs, offer.outputs, offer.from_agent, now);
    }
  }
}

namespace {

// Adds the preview's parts the root lacks; true when it got any.
bool fill_root(otlp::Span& span, const Preview& preview, bool need_inputs, bool need_outputs) {
  bool filled = false;
  auto fill = [&](std::string_view key, const std::string& bytes) {
    otlp::AnyValue value;
    if (bytes.empty() || !value.ParseFromString(bytes)) return;
    otlp::KeyValue* attribute = span.add_attributes();
    attribute->set_key(std::string(key));
    *attribute->mutable_value() = std::move(value);
    filled = true;
  };
  if (need_inputs) fill(kSpanInputs, preview.inputs);
  if (need_outputs) fill(kSpanOutputs, preview.outputs);
  return filled;
}

}  // namespace

namespace {

std::string_view first_string(const SpanView& span, std::string_view key) {
  for (const AttributeView& attribute : span.attributes) {
    if (attribute.key == key) return attribute.value.string();
  }
  return {};
}

// A root that starts an agent (Koog's create_agent): its trace will have an invoke_agent, worth
// waiting for. Other roots are never held: nothing says content is coming.
bool is_agent_root(const SpanView& span) {
  const std::string_view operation = first_string(span, "gen_ai.operation.name");
  if (operation == "create_agent" || operation == "invoke_agent") return true;
  return span.name == "create_agent" || span.name.starts_with("create_agent ");
}

}  // namespace

RootFill decide_root_fill(std::string_view route, const SpanView& span, PreviewCache& cache,
                          PreviewCache::Clock::time_point now, bool may_hold) {
  RootFill fill;
  if (!span.root) return fill;
  fill.inputs = !has_inputs(span);
  fill.outputs = !has_outputs(span);
  if (!fill.inputs && !fill.outputs) return fill;
  if (may_hold && is_agent_root(span) && !cache.agent_seen(route, span.trace_id, now)) {
    fill.held = true;
    cache.stats().held.fetch_add(1, std::memory_order_relaxed);
    return fill;
  }
  fill.preview = cache.take(route, span.trace_id, now);
  return fill;
}

bool fill_root_span(std::string_view route, otlp::Span& span, PreviewCache& cache,
                    PreviewCache::Clock::time_point now, NormalizeTally& tally, std::vector<std::string>* held) {
  if (!span.parent_span_id().empty()) return false;
  thread_local std::vector<AttributeView> attributes;
  const RootFill fill = decide_root_fill(route, view_of_span(span, attributes), cache, now, held != nullptr);
  if (fill.held) held->push_back(span.trace_id());
  if (!fill.preview || !fill_root(span, *fill.preview, fill.inputs, fill.outputs)) return false;
  tally.add(Rule::preview);
  return true;
}

void fill_previews(const Normalizer& normalizer, std::string_view route,
                   otlp::ResourceSpans& resource_spans, PreviewCache& cache,
                   PreviewCache::Clock::time_point now, NormalizeTally& tally,
                   std::vector<std::string>* held) {
  if (!normalizer.enabled() || !normalizer.config().previews) return;
  std::vector<std::string>* may_hold = normalizer.config().preview_hold.count() > 0 ? held : nullptr;
  for (otlp::ScopeSpans& scope_spans : *resource_spans.mutable_scope_spans()) {
    for (otlp::Span& span : *scope_spans.mutable_spans()) fill_root_span(route, span, cache, now, tally, may_hold);
  }
}

bool is_held_root(const otlp::Span& span, const std::vector<std::string>& traces) {
  return span.parent_span_id().empty() &&
         std::find(traces.begin(), traces.end(), span.trace_id()) != traces.end();
}

bool fill_held_roots(std::string_view route, const std::vector<std::string>& traces,
                     std::string& payload, PreviewCache& cache, PreviewCache::Clock::time_point now) {
  otlp::ExportRequest request;
  if (traces.empty() || !request.ParseFromString(payload)) return false;
  std::size_t filled = 0;
  std::size_t released = 0;
  for (otlp::ResourceSpans& resource_spans : *request.mutable_resource_spans()) {
    for (otlp::ScopeSpans& scope_spans : *resource_spans.mutable_scope_spans()) {
      for (otlp::Span& span : *scope_spans.mutable_spans()) {
        if (!is_held_root(span, traces)) continue;
        const bool need_inputs = !has_inputs(span);
        const bool need_outputs = !has_outputs(span);
        if (!need_inputs && !need_outputs) continue;
        ++released;
        auto preview = cache.take(route, span.trace_id(), now);
        if (preview && fill_root(span, *preview, need_inputs, need_outputs)) ++filled;
      }
    }
  }
  cache.stats().filled_after_hold.fetch_add(filled, std::memory_order_relaxed);
  cache.stats().released_unfilled.fetch_add(released - filled, std::memory_order_relaxed);
  if (filled == 0) return false;
  payload = request.SerializeAsString();
  return true;
}

}  // namespace proxy::normalize
