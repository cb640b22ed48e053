// Normalization on the wire against the message path: the same request and normalizer through
// decode -> normalize::apply() -> serialize and through WireNormalizer (the whole request, and
// each ResourceSpans record alone), parsed back and compared field by field, counters included,
// and the previews both offer (collect_previews after apply() against the wire path's offers).
// Used by the wire_normalize fuzz target and tests/unit/normalize/wire_normalize_test.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "normalize/normalize.hpp"
#include "wire_differential.hpp"

namespace proxy::fuzz {

// The same outcomes and mismatch as the policy's comparison.
using NormalizeComparison = WireComparison;

// Agreement as for compare_wire_paths: malformed on the wire is refused by protobuf too, what
// protobuf refuses is not rewritten, a rewritten request parses back equal with equal counters.
NormalizeComparison compare_wire_normalize(const normalize::Normalizer& normalizer, std::string_view body);

// A normalizer's config from two bytes (the fuzz target's): each rule on or off, the resource
// target (and previews), resource keys (the defaults, or ones other rules read), span type rules.
config::NormalizeConfig normalize_config_from(std::uint8_t switches, std::uint8_t options);

}  // namespace proxy::fuzz
