// Builders for policy tests: spans with attributes, events and links, without the noise.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "otlp/types.hpp"
#include "policy/policy.hpp"

namespace proxy::policy::test {

using AnyValue = otlp::AnyValue;
using KeyValue = otlp::KeyValue;
using Attributes = google::protobuf::RepeatedPtrField<KeyValue>;

inline AnyValue text(std::string_view value) {
  AnyValue v;
  v.set_string_value(std::string(value));
  return v;
}

inline AnyValue integer(std::int64_t value) {
  AnyValue v;
  v.set_int_value(value);
  return v;
}

inline void set(Attributes& attributes, std::string_view key, const AnyValue& value) {
  KeyValue* kv = attributes.Add();
  kv->set_key(std::string(key));
  *kv->mutable_value() = value;
}

inline const AnyValue* find(const Attributes& attributes, std::string_view key) {
  for (const KeyValue& kv : attributes) {
    if (kv.key() == key) return &kv.value();
  }
  return nullptr;
}

// A ResourceSpans with one span; the caller fills it.
struct OneSpan {
  otlp::ResourceSpans resource_spans;
  otlp::Span* span = resource_spans.add_scope_spans()->add_spans();

  Attributes& attributes() { return *span->mutable_attributes(); }
  std::string value(std::string_view key) const {
    const AnyValue* v = find(span->attributes(), key);
    return v ? v->string_value() : std::string("<absent>");
  }
};

inline config::PolicyConfig policy_with(config::PolicyMode content) {
  config::PolicyConfig config;
  config.content = content;
  return config;
}

}  // namespace proxy::policy::test
