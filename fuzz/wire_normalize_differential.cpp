#include "wire_normalize_differential.hpp"

#include <chrono>
#include <set>
#include <vector>

#include <google/protobuf/arena.h>

#include "differential.hpp"
#include "normalize/preview_cache.hpp"
#include "normalize/wire_normalize.hpp"
#include "otlp/protobuf.hpp"

namespace proxy::fuzz {
namespace {

using normalize::NormalizeTally;

// Empty when the counters agree, else which one differs.
std::string tally_difference(const NormalizeTally& a, const NormalizeTally& b) {
  for (std::size_t rule = 0; rule < normalize::kRuleCount; ++rule) {
    if (a.changes[rule] == b.changes[rule]) continue;
    return "the normalize counters differ: " + std::string(normalize::rule_name(static_cast<normalize::Rule>(rule))) +
           ": " + std::to_string(a.changes[rule]) + " (message path) vs " + std::to_string(b.changes[rule]);
  }
  if (a.spans != b.spans) return "the normalize counters differ: spans";
  if (a.typed != b.typed) return "the normalize counters differ: span types by source";
  return {};
}

template <class Message>
std::string compare_messages(std::string_view message_out, std::string_view wire_out) {
  const auto difference = parsed_difference<Message>(message_out, wire_out, kMessageVsWire);
  return difference ? "outputs differ: " + *difference : std::string();
}

constexpr std::string_view kRoute = "route";

// Both paths offer previews at the same time, into caches of their own.
struct Caches {
  normalize::PreviewCache::Clock::time_point now = normalize::PreviewCache::Clock::now();
  normalize::PreviewCache message{config::PreviewCacheConfig{}};
  normalize::PreviewCache wire{config::PreviewCacheConfig{}};
};

struct MessagePath {
  bool accepted = false;
  std::set<std::string> traces;
  std::string out;
  NormalizeTally tally;
  std::vector<std::string> records_in;   // each ResourceSpans as decoded, serialized
  std::vector<std::string> records_out;  // and normalized
  std::vector<NormalizeTally> record_tallies;
};

MessagePath message_path(const normalize::Normalizer& normalizer, std::string_view body, Caches& caches) {
  MessagePath path;
  google::protobuf::Arena arena;
  auto* request = google::protobuf::Arena::CreateMessage<otlp::ExportRequest>(&arena);
  if (!otlp::decode_protobuf(body, *request).ok()) return path;
  path.accepted = true;
  for (auto& resource_spans : *request->mutable_resource_spans()) {
    path.records_in.push_back(resource_spans.SerializeAsString());
    NormalizeTally record;
    normalize::apply(normalizer, resource_spans, record);
    normalize::collect_previews(normalizer, kRoute, resource_spans, caches.message, caches.now);
    for (const auto& scope_spans : resource_spans.scope_spans()) {
      for (const auto& span : scope_spans.spans()) path.traces.insert(span.trace_id());
    }
    path.records_out.push_back(resource_spans.SerializeAsString());
    path.record_tallies.push_back(record);
  }
  for (const NormalizeTally& record : path.record_tallies) {
    for (std::size_t rule = 0; rule < normalize::kRuleCount; ++rule) path.tally.changes[rule] += record.changes[rule];
    path.tally.spans += record.spans;
    for (std::size_t s = 0; s < normalize::kTypeSourceCount; ++s) {
      for (std::size_t t = 0; t < normalize::kSpanTypeCount; ++t) path.tally.typed[s][t] += record.typed[s][t];
    }
  }
  path.out = request->SerializeAsString();
  return path;
}

// Each record alone through normalize_resource_spans, from the bytes protobuf would re-encode.
std::string compare_records(const normalize::Normalizer& normalizer, const MessagePath& path,
                            normalize::WireNormalizer& wire) {
  for (std::size_t i = 0; i < path.records_in.size(); ++i) {
    std::string out;
    NormalizeTally tally;
    if (wire.normalize_resource_spans(normalizer, path.records_in[i], out, tally).outcome !=
        policy::WireOutcome::rewritten) {
      return "a record protobuf wrote is not rewritten alone";
    }
    std::string mismatch = compare_messages<otlp::ResourceSpans>(path.records_out[i], out);
    if (mismatch.empty()) mismatch = tally_difference(path.record_tallies[i], tally);
    if (!mismatch.empty()) return "record " + std::to_string(i) + ": " + mismatch;
  }
  return {};
}

// Empty when both caches hold the same previews for the request's traces.
std::string compare_previews(const MessagePath& path, Caches& caches) {
  if (caches.message.entries() != caches.wire.entries() || caches.message.bytes() != caches.wire.bytes()) {
    return "the preview caches differ in entries or bytes: " + std::to_string(caches.message.entries()) + " vs " +
           std::to_string(caches.wire.entries());
  }
  for (const std::string& trace : path.traces) {
    if (caches.message.agent_seen(kRoute, trace, caches.now) != caches.wire.agent_seen(kRoute, trace, caches.now)) {
      return "the preview caches differ: invoke_agent seen";
    }
    const auto expected = caches.message.take(kRoute, trace, caches.now);
    const auto actual = caches.wire.take(kRoute, trace, caches.now);
    if (expected.has_value() != actual.has_value()) return "the preview caches differ: a trace's preview";
    if (expected && (expected->inputs != actual->inputs || expected->outputs != actual->outputs)) {
      return "the preview caches differ: a trace's inputs or outputs";
    }
  }
  return {};
}

}  // namespace

NormalizeComparison compare_wire_normalize(const normalize::Normalizer& normalizer, std::string_view body) {
  NormalizeComparison comparison;
  Caches caches;
  const MessagePath path = message_path(normalizer, body, caches);
  comparison.message_accepted = path.accepted;

  thread_local normalize::WireNormalizer wire;
  std::string wire_out;
  NormalizeTally wire_tally;
  const normalize::PreviewTarget previews{kRoute, &caches.wire, caches.now};
  comparison.wire = wire.normalize(normalizer, body, wire_out, wire_tally, &previews).outcome;
  if (comparison.wire != policy::WireOutcome::rewritten && caches.wire.entries() != 0) {
    comparison.mismatch = "the wire path offered previews from a request it did not rewrite";
    return comparison;
  }

  comparison.mismatch = outcome_mismatch(comparison);
  if (comparison.mismatch.empty() && comparison.wire == policy::WireOutcome::rewritten) {
    comparison.mismatch = compare_messages<otlp::ExportRequest>(path.out, wire_out);
    if (comparison.mismatch.empty()) comparison.mismatch = tally_difference(path.tally, wire_tally);
    if (comparison.mismatch.empty()) comparison.mismatch = compare_previews(path, caches);
    if (comparison.mismatch.empty()) comparison.mismatch = compare_records(normalizer, path, wire);
  }
  return comparison;
}

config::NormalizeConfig normalize_config_from(std::uint8_t switches, std::uint8_t options) {
  config::NormalizeConfig config;
  config.enabled = (switches & 0x01) == 0 || (options & 0x80) == 0;
  config.span_kind = (switches & 0x02) == 0;
  config.scope = (switches & 0x04) == 0;
  config.links = (switches & 0x08) != 0;
  config.span_types = (switches & 0x10) == 0;
  config.koog_io = (switches & 0x20) == 0;
  config.system_instructions = (switches & 0x40) == 0;
  config.session_from_conversation = (switches & 0x80) == 0;
  config.user_from_enduser = (options & 0x01) == 0;
  config.resource_target = static_cast<config::ResourceTarget>((options >> 1) % 3);
  config.previews = ((options >> 1) & 3) != 3;
  if (options & 0x08) {
    // Keys other rules read, so a copied resource attribute feeds them.
    config.resource_attributes = {"gen_ai.usage.input_tokens", "koog.node.input", "gen_ai.conversation.id",
                                  "mlflow.spanInputs", "otel.span.kind", "service.name"};
  }
  if (options & 0x10) config.span_type_rules.push_back({"tool *", "", "", "TOOL"});
  if (options & 0x20) config.span_type_rules.push_back({"", "koog.node.id", "", "RETRIEVER"});
  if (options & 0x40) config.span_type_rules.push_back({"", "gen_ai.system", "openai", "CHAT_MODEL"});
  return config;
}

}  // namespace proxy::fuzz
