// The wire path against the message path (issue 21's reference): the same request and policy
// through decode -> apply() -> serialize and through WireRewriter, parsed back and compared
// field by field. Used by the wire_policy fuzz target and the property test in
// tests/unit/policy/wire_policy_test.cpp.
#pragma once

#include <string>
#include <string_view>

#include "policy/policy.hpp"
#include "policy/wire_policy.hpp"

namespace proxy::fuzz {

struct WireComparison {
  policy::WireOutcome wire = policy::WireOutcome::rewritten;
  bool message_accepted = false;
  std::string mismatch;  // empty when both paths agree
};

// Agreement means: what the wire path calls malformed protobuf refuses too; what protobuf
// refuses the wire path does not rewrite; a rewritten request parses back equal to the message
// path's output, with equal policy counters. An unsupported request is left to the message path.
WireComparison compare_wire_paths(const policy::CompiledPolicy& policy, std::string_view body);

// The first two rules of agreement, on the outcomes alone: empty when they hold.
std::string outcome_mismatch(const WireComparison& comparison);

}  // namespace proxy::fuzz
