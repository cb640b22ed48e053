// The policy applied on the wire: one pass over a protobuf ExportTraceServiceRequest that copies
// the bytes it keeps and re-emits only what the policy changes (attribute values, dropped
// attributes and their counts, status messages), fixing the lengths of the enclosing messages.
// It rewrites what apply() rewrites, with the same per-value functions (rewrite_text and
// friends in policy.hpp), so the two paths give requests that parse back equal
// (tests/unit/policy/wire_policy_test.cpp checks that on random requests and policies).
//
// Scope today: the whole request under one policy (a request on one route). Normalization,
// previews, routing splits and attribute limits still run on decoded messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "otlp/attribute_limits.hpp"
#include "otlp/wire_checks.hpp"
#include "otlp/wire_reader.hpp"
#include "otlp/wire_writer.hpp"
#include "policy/policy.hpp"

namespace proxy::policy {

enum class WireOutcome {
  rewritten,    // the rewritten request was appended to the output
  malformed,    // protobuf refuses these bytes too: reject the request
  unsupported,  // valid or not, the message path decides (groups, duplicated singular fields, ...)
};

struct WireResult {
  WireOutcome outcome = WireOutcome::rewritten;
  otlp::wire::WireError error = otlp::wire::WireError::none;
};

// decide(key) by key for one request: a request's spans repeat their keys, and a lookup here
// costs less than the key rules and glob tables. Emptied per request, so a reloaded policy is
// never answered from it.
class KeyDecisions {
 public:
  void clear();
  Decision get(const CompiledPolicy& policy, std::string_view key);

 private:
  struct Slot {
    std::uint32_t generation = 0;
    std::string key;
    Decision decision;
  };
  static constexpr std::size_t kSlots = 256;  // a power of two; full, it stops keeping more

  std::vector<Slot> slots_ = std::vector<Slot>(kSlots);
  std::uint32_t generation_ = 1;
  std::size_t used_ = 0;
};

// Where each ResourceSpans of a request goes, and under which policy: the routing stage answers
// (routing/wire_route.hpp), from what the checks will leave of it.
class WireRoutes {
 public:
  virtual ~WireRoutes() = default;
  virtual std::size_t route_of(const otlp::wire::ResourceSpansScan& resource_spans) = 0;
  virtual const CompiledPolicy& policy_of(std::size_t route) const = 0;
};

// Per route: its ResourceSpans records (resource_spans fields: concatenated, an
// ExportTraceServiceRequest) and their spans.
struct RoutedOutput {
  std::vector<std::string> payloads;
  std::vector<std::uint32_t> spans;
  void reset(std::size_t routes);
};

// One per thread: it keeps its buffers between requests, so a warm rewriter does not allocate
// per span.
class WireRewriter {
 public:
  // Appends the rewritten request to `out` (untouched unless rewritten) and counts into `tally`
  // as apply() would. On malformed or unsupported the tally may hold partial counts: the
  // caller drops it (and the message path counts again).
  WireResult rewrite(const CompiledPolicy& policy, std::string_view request, std::string& out,
                     PolicyTally& tally);

  // The receiver's checks with `limits` (as otlp::wire::SpanChecker counts into `checks`) and
  // each ResourceSpans they leave under its route's policy (as apply() counts into `tally`), in
  // one walk; out.payloads[route] receives the route's records. On malformed or unsupported the
  // counts and outputs are partial: the caller drops them.
  WireResult rewrite_routed(std::string_view request, const otlp::AttributeLimits& limits, WireRoutes& routes,
                            RoutedOutput& out, otlp::wire::ChecksResult& checks, PolicyTally& tally);

 private:
  otlp::wire::Writer writer_;
  KeyDecisions decisions_;
  otlp::wire::ResourceSpansScan scan_;  // rewrite_routed's read-ahead of each ResourceSpans
  std::string text_;  // the rewritten value being planned, before it is copied into the plan
  std::string path_;  // "parent.child" keys of nested key-value lists
};

}  // namespace proxy::policy
