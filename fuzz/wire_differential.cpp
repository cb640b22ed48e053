#include "wire_differential.hpp"

#include <google/protobuf/arena.h>

#include "differential.hpp"
#include "otlp/protobuf.hpp"

namespace proxy::fuzz {
namespace {

// Empty when the counters agree, else which one differs.
std::string tally_difference(const policy::PolicyTally& a, const policy::PolicyTally& b) {
  for (std::size_t mode = 0; mode < a.values.size(); ++mode) {
    for (std::size_t family = 0; family < a.values[mode].size(); ++family) {
      if (a.values[mode][family] == b.values[mode][family]) continue;
      return "the policy counters differ: mode " + std::to_string(mode) + ", family " + std::to_string(family) +
             ": " + std::to_string(a.values[mode][family]) + " (message path) vs " +
             std::to_string(b.values[mode][family]);
    }
  }
  if (a.redaction_matches != b.redaction_matches) return "the policy counters differ: redaction matches";
  if (a.depth_rejected != b.depth_rejected) return "the policy counters differ: values too deep";
  if (a.koog_hidden != b.koog_hidden) return "the policy counters differ: Koog hidden values";
  if (a.spans != b.spans) return "the policy counters differ: spans";
  if (a.structured != b.structured) return "the policy counters differ: structured values";
  if (a.structure_fallbacks != b.structure_fallbacks) return "the policy counters differ: structure fallbacks";
  return {};
}

// The message path: decode, apply() per ResourceSpans, serialize. False when protobuf refuses.
bool message_path(const policy::CompiledPolicy& policy, std::string_view body, std::string& out,
                  policy::PolicyTally& tally) {
  google::protobuf::Arena arena;
  auto* request = google::protobuf::Arena::CreateMessage<otlp::ExportRequest>(&arena);
  if (!otlp::decode_protobuf(body, *request).ok()) return false;
  for (auto& resource_spans : *request->mutable_resource_spans()) policy::apply(policy, resource_spans, tally);
  out = request->SerializeAsString();
  return true;
}

}  // namespace

WireComparison compare_wire_paths(const policy::CompiledPolicy& policy, std::string_view body) {
  WireComparison comparison;
  std::string message_out;
  policy::PolicyTally message_tally;
  comparison.message_accepted = message_path(policy, body, message_out, message_tally);

  thread_local policy::WireRewriter rewriter;
  std::string wire_out;
  policy::PolicyTally wire_tally;
  comparison.wire = rewriter.rewrite(policy, body, wire_out, wire_tally).outcome;

  comparison.mismatch = outcome_mismatch(comparison);
  if (comparison.mismatch.empty() && comparison.wire == policy::WireOutcome::rewritten) {
    const auto difference = parsed_difference<otlp::ExportRequest>(message_out, wire_out, kMessageVsWire);
    comparison.mismatch = difference ? "outputs differ: " + *difference : tally_difference(message_tally, wire_tally);
  }
  return comparison;
}

std::string outcome_mismatch(const WireComparison& comparison) {
  using policy::WireOutcome;
  if (comparison.wire == WireOutcome::malformed && comparison.message_accepted) {
    return "the wire path calls malformed a request protobuf accepts";
  }
  if (comparison.wire == WireOutcome::rewritten && !comparison.message_accepted) {
    return "the wire path rewrote a request protobuf refuses";
  }
  return {};
}

}  // namespace proxy::fuzz
