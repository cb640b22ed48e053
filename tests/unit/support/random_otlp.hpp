// Random OTLP trace requests and corrupted bytes for the wire path's property tests, which hold
// it against the message path (otlp/wire_checks, policy/wire_policy, routing/wire_route,
// normalize/wire_normalize).
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>

#include <google/protobuf/unknown_field_set.h>

#include "config/config.hpp"
#include "otlp/types.hpp"

namespace proxy::testing {

using Random = std::mt19937;

inline int pick(Random& random, int below) { return std::uniform_int_distribution<int>(0, below - 1)(random); }

template <class T, std::size_t N>
const T& one_of(Random& random, const T (&items)[N]) {
  return items[pick(random, static_cast<int>(N))];
}

// Truncates, flips or inserts bytes.
inline std::string corrupt(Random& random, std::string bytes) {
  if (bytes.empty()) return "\x0a";
  const auto at = static_cast<std::size_t>(pick(random, static_cast<int>(bytes.size())));
  switch (pick(random, 3)) {
    case 0: bytes.resize(at); break;
    case 1: bytes[at] = static_cast<char>(bytes[at] ^ (1 << pick(random, 8))); break;
    default: bytes.insert(at, 1, static_cast<char>(pick(random, 256)));
  }
  return bytes;
}

// What random attribute values are made of: the keys and texts a component's rules look at.
struct ValueTables {
  std::span<const char* const> keys;
  std::span<const char* const> texts;
  int max_nesting = 9;          // values deeper than this are scalars
  bool unknown_fields = false;  // one value in ten carries a field a newer sender adds
};

inline const char* one_of(Random& random, std::span<const char* const> items) {
  return items[static_cast<std::size_t>(pick(random, static_cast<int>(items.size())))];
}

// Zero, small counts, or large values of either sign.
inline std::int64_t random_int(Random& random) {
  switch (pick(random, 3)) {
    case 0: return 0;
    case 1: return pick(random, 1000) - 10;
    default: return pick(random, 1 << 20) - (1 << 19);
  }
}

inline double random_double(Random& random) {
  if (pick(random, 3) != 0) return 1.5 * pick(random, 9);
  return pick(random, 2) ? 0.0 : -0.0;
}

inline void random_value(Random& random, const ValueTables& tables, otlp::AnyValue& value, int depth);

// Table keys mostly, one in eight a key no rule names.
inline void random_key_values(Random& random, const ValueTables& tables,
                              google::protobuf::RepeatedPtrField<otlp::KeyValue>& out, int count, int depth) {
  for (int i = 0; i < count; ++i) {
    otlp::KeyValue* kv = out.Add();
    kv->set_key(pick(random, 8) == 0 ? "r" + std::to_string(pick(random, 100)) : one_of(random, tables.keys));
    if (pick(random, 12) != 0) random_value(random, tables, *kv->mutable_value(), depth + 1);
  }
}

// Every kind of AnyValue (empty arrays and lists included), nested up to tables.max_nesting.
inline void random_value(Random& random, const ValueTables& tables, otlp::AnyValue& value, int depth) {
  switch (depth > tables.max_nesting ? pick(random, 7) : pick(random, 9)) {
    case 0: case 1: case 2: value.set_string_value(one_of(random, tables.texts)); break;
    case 3: value.set_bool_value(pick(random, 2) == 1); break;
    case 4: value.set_int_value(random_int(random)); break;
    case 5: value.set_double_value(random_double(random)); break;
    case 6: value.set_bytes_value(std::string(static_cast<std::size_t>(pick(random, 40)), '\xff')); break;
    case 7:
      for (int i = pick(random, 4); i > 0; --i) {
        random_value(random, tables, *value.mutable_array_value()->add_values(), depth + 1);
      }
      if (value.value_case() == otlp::AnyValue::VALUE_NOT_SET) value.mutable_array_value();
      break;
    default:
      random_key_values(random, tables, *value.mutable_kvlist_value()->mutable_values(), pick(random, 4), depth);
      if (value.value_case() == otlp::AnyValue::VALUE_NOT_SET) value.mutable_kvlist_value();
  }
  if (tables.unknown_fields && pick(random, 10) == 0) {
    value.GetReflection()->MutableUnknownFields(&value)->AddVarint(99, 7);
  }
}

// Requests for the checks: good ids mostly, attribute counts around the limits.
namespace checks {

// Good ids mostly; else short, long, empty or all zero.
inline std::string random_id(Random& random, std::size_t size) {
  switch (pick(random, 12)) {
    case 0: return {};
    case 1: return std::string(size, '\0');
    case 2: return std::string(size - 1, '\x05');
    case 3: return std::string(size + 1, '\x05');
    default: return std::string(size, static_cast<char>(1 + pick(random, 200)));
  }
}

template <class Owner>
void random_attributes(Random& random, Owner& owner, int most) {
  for (int a = pick(random, most + 1); a > 0; --a) {
    otlp::KeyValue& kv = *owner.add_attributes();
    kv.set_key("k" + std::to_string(pick(random, 50)));
    if (pick(random, 2)) kv.mutable_value()->set_string_value(std::string(static_cast<std::size_t>(pick(random, 9)), 'v'));
    else if (pick(random, 2)) kv.mutable_value()->set_int_value(pick(random, 1000));
  }
  if (pick(random, 4) == 0) owner.set_dropped_attributes_count(pick(random, 3) ? 3u : 0xFFFFFFF0u);
}

inline void random_span(Random& random, otlp::Span& span) {
  span.set_trace_id(random_id(random, 16));
  span.set_span_id(random_id(random, 8));
  if (pick(random, 2)) span.set_parent_span_id(pick(random, 6) ? std::string(8, '\x09') : std::string(3, '\x09'));
  span.set_name("span" + std::to_string(pick(random, 10)));
  span.set_start_time_unix_nano(1'700'000'000'000'000'000ULL + static_cast<unsigned>(pick(random, 1000)));
  random_attributes(random, span, 12);
  for (int e = pick(random, 4); e > 0; --e) {
    otlp::Span::Event& event = *span.add_events();
    event.set_name("event");
    random_attributes(random, event, 6);
  }
  for (int l = pick(random, 3); l > 0; --l) {
    otlp::Span::Link& link = *span.add_links();
    link.set_trace_id(std::string(16, '\x07'));
    random_attributes(random, link, 6);
  }
  if (pick(random, 3) == 0) span.mutable_status()->set_message("failed");
}

inline std::string random_request(Random& random) {
  otlp::ExportRequest request;
  for (int r = pick(random, 4); r > 0; --r) {
    otlp::ResourceSpans& resource_spans = *request.add_resource_spans();
    if (pick(random, 2)) random_attributes(random, *resource_spans.mutable_resource(), 3);
    for (int s = pick(random, 3); s > 0; --s) {
      otlp::ScopeSpans& scope_spans = *resource_spans.add_scope_spans();
      scope_spans.mutable_scope()->set_name("ai.koog");
      for (int i = pick(random, 5); i > 0; --i) random_span(random, *scope_spans.add_spans());
    }
  }
  return request.SerializeAsString();
}

}  // namespace checks

// Requests for the policy: the keys, texts and nested values its rules and selectors look at.
namespace policy {

inline const char* const kKeys[] = {
    "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.prompt.0.content", "gen_ai.prompt.1.role",
    "gen_ai.prompt.1.content", "gen_ai.prompt.0.role", "llm.input_messages.0.role", "gen_ai.prompt.1.message.role",
    "llm.input_messages.0.message.role", "llm.input_messages.0.message.content", "koog.node.input",
    "input.value", "exception.message", "exception.stacktrace", "service.name", "service.version", "content",
    "message", "role", "name", "type", "text", "arguments", "tool_calls", "gen_ai.request.model", "custom.key",
    "k", ""};

inline const char* const kTexts[] = {
    "",
    "HIDDEN:non-empty",
    "hello",
    "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 and a longer sentence that goes past a few truncate limits",
    "mail jane.doe@example.com and key sk-abcdefghijklmnopqrstuvwxyz0123456789",
    R"([{"role":"user","parts":[{"type":"text","content":"hi jane.doe@example.com"}]}])",
    R"({"password": "hunter2", "name": "tool", "arguments": {"q": [1, 2.5, true, null, "x"]}})",
    R"([{"role":"system","content":"be brief"},{"role":"assistant","tool_calls":[{"id":"c1","name":"f"}]}])",
    "{not json",
    "[]",
    "system",
    "System",
    "user",
};

inline const char* const kEventNames[] = {"gen_ai.user.message", "gen_ai.system.message", "gen_ai.choice",
                                          "exception", "log", ""};

inline const ValueTables kValues{kKeys, kTexts};

inline void random_span(Random& random, otlp::Span& span) {
  span.set_trace_id(std::string(16, static_cast<char>(1 + pick(random, 200))));
  span.set_span_id(std::string(8, static_cast<char>(1 + pick(random, 200))));
  span.set_name(one_of(random, kEventNames));
  span.set_start_time_unix_nano(1'700'000'000'000'000'000ULL + static_cast<unsigned>(pick(random, 1000)));
  random_key_values(random, kValues, *span.mutable_attributes(), pick(random, 8), 0);
  if (pick(random, 4) == 0) span.set_dropped_attributes_count(pick(random, 3) ? 4u : 0xFFFFFFFFu);
  for (int e = pick(random, 3); e > 0; --e) {
    auto* event = span.add_events();
    event->set_name(one_of(random, kEventNames));
    random_key_values(random, kValues, *event->mutable_attributes(), pick(random, 4), 0);
    if (pick(random, 5) == 0) event->set_dropped_attributes_count(2);
  }
  for (int l = pick(random, 2); l > 0; --l) {
    auto* link = span.add_links();
    link->set_trace_id(std::string(16, '\x07'));
    random_key_values(random, kValues, *link->mutable_attributes(), pick(random, 3), 0);
  }
  if (pick(random, 2) == 0) {
    span.mutable_status()->set_code(opentelemetry::proto::trace::v1::Status::STATUS_CODE_ERROR);
    if (pick(random, 4) != 0) span.mutable_status()->set_message(one_of(random, kTexts));
  }
}

inline std::string random_request(Random& random) {
  otlp::ExportRequest request;
  for (int r = 1 + pick(random, 2); r > 0; --r) {
    auto* resource_spans = request.add_resource_spans();
    if (pick(random, 5) != 0) {
      random_key_values(random, kValues, *resource_spans->mutable_resource()->mutable_attributes(), pick(random, 4), 0);
    }
    for (int s = 1 + pick(random, 2); s > 0; --s) {
      auto* scope_spans = resource_spans->add_scope_spans();
      scope_spans->mutable_scope()->set_name("ai.koog");
      random_key_values(random, kValues, *scope_spans->mutable_scope()->mutable_attributes(), pick(random, 2), 0);
      for (int i = 1 + pick(random, 3); i > 0; --i) random_span(random, *scope_spans->add_spans());
    }
  }
  return request.SerializeAsString();
}

inline config::PolicyMode random_mode(Random& random) { return static_cast<config::PolicyMode>(pick(random, 7)); }

inline config::PolicyConfig random_policy(Random& random) {
  config::PolicyConfig config;
  config.content = random_mode(random);
  config.errors = random_mode(random);
  config.other = pick(random, 2) ? config::PolicyMode::verbose : random_mode(random);
  config.keep_structure = pick(random, 4) != 0;
  config.max_depth = 1u + static_cast<unsigned>(pick(random, 6));
  config.truncate_bytes = 1u + static_cast<unsigned>(pick(random, 40));
  config.hash_prefix = 4u + static_cast<unsigned>(pick(random, 12));
  if (pick(random, 2)) config.resource_keys.push_back({"service.*", random_mode(random), 0});
  if (pick(random, 3) == 0) config.resource_keys.push_back({"*", random_mode(random), 2});
  if (pick(random, 2)) config.keys.push_back({"*.role", random_mode(random), 0});
  if (pick(random, 3) == 0) config.keys.push_back({"k*", random_mode(random), 5});
  if (pick(random, 3) == 0) config.messages.push_back({"system", random_mode(random)});
  if (pick(random, 3) == 0) config.messages.push_back({"assistant", random_mode(random)});
  if (pick(random, 3) == 0) config.parts.push_back({"text", random_mode(random)});
  if (pick(random, 3) == 0) config.structural_keys.push_back("q");
  return config;
}

}  // namespace policy

}  // namespace proxy::testing
