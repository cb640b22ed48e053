#include "normalize/preview_cache.hpp"

#include <initializer_list>

#include "normalize/json_value.hpp"

namespace proxy::normalize {
namespace {

// Per entry beyond its strings: the list node, the hash node and bucket, the strings' headers.
constexpr std::size_t kEntryOverhead = 160;

// The first present string value of the keys, as MLflow would read the span's inputs/outputs.
const otlp::AnyValue* first_present(const otlp::Span& span,
                                    std::initializer_list<std::string_view> keys) {
  for (std::string_view key : keys) {
    const otlp::AnyValue* value = find_attribute(span, key);
    if (value != nullptr && value->value_case() != otlp::AnyValue::VALUE_NOT_SET &&
        !(value->value_case() == otlp::AnyValue::kStringValue && value->string_value().empty())) {
      return value;
    }
  }
  return nullptr;
}

// One message in the chat shape: {"messages":[{"role":role,"content":text}]}.
otlp::AnyValue one_message(std::string_view role, std::string text) {
  otlp::AnyValue out;
  auto* messages = out.mutable_kvlist_value()->add_values();
  messages->set_key("messages");
  auto* message = messages->mutable_value()->mutable_array_value()->add_values()->mutable_kvlist_value();
  auto* role_value = message->add_values();
  role_value->set_key("role");
  role_value->mutable_value()->set_string_value(std::string(role));
  auto* content = message->add_values();
  content->set_key("content");
  content->mutable_value()->set_string_value(std::move(text));
  return out;
}

// True when the chat-shaped value has a message of that role.
bool has_role(const otlp::AnyValue& chat, std::string_view role) {
  for (const otlp::KeyValue& messages : chat.kvlist_value().values()) {
    for (const otlp::AnyValue& message : messages.value().array_value().values()) {
      for (const otlp::KeyValue& field : message.kvlist_value().values()) {
        if (field.key() == "role" && field.value().string_value() == role) return true;
      }
    }
  }
  return false;
}

// What the root will show, in the chat shape MLflow previews best: GenAI messages as messages;
// a JSON string, or text that is not JSON (masked, hashed, hidden: kept as it is), as one message
// of `role`; other JSON (objects, arrays) as structure. `rank` is raised by `bonus` when the
// GenAI messages hold a message of `role`.
PreviewPart part_of(const otlp::AnyValue* value, std::string_view role, int rank, int bonus,
                    std::uint64_t time) {
  if (value == nullptr) return {};
  if (value->value_case() != otlp::AnyValue::kStringValue) {
    return {value->SerializeAsString(), rank, time};
  }
  const std::string& text = value->string_value();
  if (auto chat = chat_preview(text)) {
    return {chat->SerializeAsString(), has_role(*chat, role) ? rank + bonus : rank, time};
  }
  if (auto parsed = parse_json_value(text)) {
    if (parsed->value_case() == otlp::AnyValue::kStringValue) {
      return {one_message(role, parsed->string_value()).SerializeAsString(), rank, time};
    }
    return {parsed->SerializeAsString(), rank, time};
  }
  return {one_message(role, text).SerializeAsString(), rank, time};
}

std::string_view string_of(const otlp::AnyValue* value) {
  if (value == nullptr || value->value_case() != otlp::AnyValue::kStringValue) return {};
  return value->string_value();
}

// Whether `candidate` should replace `current` (an empty current always loses).
bool is_agent_invocation(const otlp::Span& span) {
  return string_of(find_attribute(span, "gen_ai.operation.name")) == "invoke_agent";
}

bool better(const PreviewPart& candidate, const PreviewPart& current, bool earliest) {
  if (candidate.value.empty()) return false;
  if (current.value.empty()) return true;
  if (candidate.rank != current.rank) return candidate.rank > current.rank;
  return earliest ? candidate.time < current.time : candidate.time > current.time;
}

}  // namespace

PreviewCache::PreviewCache(const config::PreviewCacheConfig& config) : config_(config) {}

std::string PreviewCache::key_of(std::size_t route, std::string_view trace_id) {
  std::string key(trace_id);
  key += '/';
  key += std::to_string(route);
  return key;
}

std::size_t PreviewCache::entry_bytes(std::string_view trace_id, std::size_t value_bytes) {
  return trace_id.size() + 8 + value_bytes + kEntryOverhead;
}

void PreviewCache::erase_locked(std::list<Entry>::iterator it) {
  bytes_ -= it->bytes;
  index_.erase(std::string_view(it->key));
  order_.erase(it);
}

void PreviewCache::expire_locked(Clock::time_point now) {
  while (!order_.empty() && order_.front().expires <= now) {
    erase_locked(order_.begin());
    stats_.evicted_expired.fetch_add(1, std::memory_order_relaxed);
  }
}

void PreviewCache::offer(std::size_t route, std::string_view trace_id, PreviewPart inputs,
                         PreviewPart outputs, Clock::time_point now) {
  if (inputs.value.empty() && outputs.value.empty()) return;
  std::lock_guard lock(mutex_);
  expire_locked(now);
  std::string key = key_of(route, trace_id);
  auto found = index_.find(std::string_view(key));
  std::list<Entry>::iterator entry;
  if (found == index_.end()) {
    order_.push_back(Entry{std::move(key), {}, {}, now + config_.ttl, 0});
    entry = std::prev(order_.end());
    index_.emplace(std::string_view(entry->key), entry);
    stats_.stored.fetch_add(1, std::memory_order_relaxed);
  } else {
    entry = found->second;
  }
  if (better(inputs, entry->inputs, true)) entry->inputs = std::move(inputs);
  if (better(outputs, entry->outputs, false)) entry->outputs = std::move(outputs);
  const std::size_t bytes =
      entry_bytes(trace_id, entry->inputs.value.size() + entry->outputs.value.size());
  bytes_ = bytes_ - entry->bytes + bytes;
  entry->bytes = bytes;
  if (bytes > config_.max_bytes) {  // this trace alone does not fit
    erase_locked(entry);
    stats_.too_large.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  while (bytes_ > config_.max_bytes && order_.begin() != entry) {
    erase_locked(order_.begin());
    stats_.evicted_full.fetch_add(1, std::memory_order_relaxed);
  }
}

std::optional<Preview> PreviewCache::take(std::size_t route, std::string_view trace_id,
                                          Clock::time_point now) {
  std::lock_guard lock(mutex_);
  expire_locked(now);
  if (index_.empty()) return std::nullopt;
  const std::string key = key_of(route, trace_id);
  auto found = index_.find(std::string_view(key));
  if (found == index_.end()) return std::nullopt;
  Preview preview{std::move(found->second->inputs.value), std::move(found->second->outputs.value)};
  erase_locked(found->second);
  stats_.used.fetch_add(1, std::memory_order_relaxed);
  return preview;
}

std::size_t PreviewCache::bytes() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

std::size_t PreviewCache::entries() const {
  std::lock_guard lock(mutex_);
  return order_.size();
}

void collect_previews(const Normalizer& normalizer, std::size_t route,
                      const otlp::ResourceSpans& resource_spans, PreviewCache& cache,
                      PreviewCache::Clock::time_point now) {
  if (!normalizer.enabled() || !normalizer.config().previews) return;
  for (const otlp::ScopeSpans& scope_spans : resource_spans.scope_spans()) {
    for (const otlp::Span& span : scope_spans.spans()) {
      if (span.parent_span_id().empty()) continue;  // a root is filled, not a source
      const std::uint64_t start = span.start_time_unix_nano();
      const std::uint64_t end = span.end_time_unix_nano();
      if (is_agent_invocation(span)) {
        cache.offer(route, span.trace_id(),
                    part_of(first_present(span, {kSpanInputs, "gen_ai.input.messages", "input.value"}),
                            "user", 1, 2, start),
                    part_of(first_present(span, {kSpanOutputs, "gen_ai.output.messages", "output.value"}),
                            "assistant", 1, 2, end),
                    now);
        continue;
      }
      const std::string_view node = string_of(find_attribute(span, "koog.node.id"));
      if (node == "__start__") {
        cache.offer(route, span.trace_id(),
                    part_of(first_present(span, {"koog.node.input"}), "user", 2, 0, start), {}, now);
      } else if (node == "__finish__") {
        cache.offer(route, span.trace_id(), {},
                    part_of(first_present(span, {"koog.node.output"}), "assistant", 2, 0, end), now);
      }
    }
  }
}

void fill_previews(const Normalizer& normalizer, std::size_t route,
                   otlp::ResourceSpans& resource_spans, PreviewCache& cache,
                   PreviewCache::Clock::time_point now, NormalizeTally& tally) {
  if (!normalizer.enabled() || !normalizer.config().previews) return;
  for (otlp::ScopeSpans& scope_spans : *resource_spans.mutable_scope_spans()) {
    for (otlp::Span& span : *scope_spans.mutable_spans()) {
      if (!span.parent_span_id().empty()) continue;
      const bool need_inputs = !has_inputs(span);
      const bool need_outputs = !has_outputs(span);
      if (!need_inputs && !need_outputs) continue;
      auto preview = cache.take(route, span.trace_id(), now);
      if (!preview) continue;
      bool filled = false;
      auto fill = [&](std::string_view key, const std::string& bytes) {
        otlp::AnyValue value;
        if (bytes.empty() || !value.ParseFromString(bytes)) return;
        otlp::KeyValue* attribute = span.add_attributes();
        attribute->set_key(std::string(key));
        *attribute->mutable_value() = std::move(value);
        filled = true;
      };
      if (need_inputs) fill(kSpanInputs, preview->inputs);
      if (need_outputs) fill(kSpanOutputs, preview->outputs);
      if (filled) tally.add(Rule::preview);
    }
  }
}

}  // namespace proxy::normalize
