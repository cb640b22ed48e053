// The fuzzed entry points, one per kind of untrusted input. libFuzzer drives them in the fuzz
// build (fuzz_main.cpp); the unit tests replay the seed corpus and every regression input
// through the same functions in every build, so a crash once found stays fixed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace proxy::fuzz {

// A raw HTTP/1.1 request, parsed with the receiver's limits and run through the export handler.
void http_request(const std::uint8_t* data, std::size_t size);
// A protobuf ExportTraceServiceRequest body: decode, validate, re-encode as protobuf and JSON.
void otlp_protobuf(const std::uint8_t* data, std::size_t size);
// An OTLP-JSON body: decode; what decodes must re-encode and decode again.
void otlp_json(const std::uint8_t* data, std::size_t size);
// First byte picks the encoding, the rest is the compressed body; output stays within the limit.
void decompress(const std::uint8_t* data, std::size_t size);
// A YAML config file.
void config_yaml(const std::uint8_t* data, std::size_t size);
// Two bytes choose the policy (modes for content, errors and other keys, max_depth, truncate
// size), the rest is a protobuf request: the policy walk over hostile nesting, in every mode
// (structure kept, except for byte 0 >= 216: all masked whole, where no text may survive).
void policy_walk(const std::uint8_t* data, std::size_t size);
// Byte 0 picks max_depth and whether role and part selectors are set, the rest is the text of a
// content value: the structure-kept walk must give valid JSON with every non-structural leaf
// masked, or fall back.
void json_structure(const std::uint8_t* data, std::size_t size);
// A spool segment file (and optionally its ack file) recovered by Spool::open: never a crash,
// every damaged byte reported as a torn tail or a corrupt record, recovery idempotent.
void spool_records(const std::uint8_t* data, std::size_t size);

// Two bytes choose the policy as for policy_walk (plus resource rules and an override rule from
// byte 1's high bits), the rest is a protobuf request: the wire path (policy/wire_policy.hpp)
// must agree with the message path, parsed back field by field, malformed input included.
void wire_policy(const std::uint8_t* data, std::size_t size);
// Three bytes choose the attribute limits per span, event and link (0-15 each), the rest is a
// protobuf request: the receiver's checks on the wire (otlp/wire_checks.hpp) must agree with
// the message path, parsed back field by field, counts and texts included, malformed input too.
void wire_checks(const std::uint8_t* data, std::size_t size);
// Byte 0 chooses two routes' conditions, header conditions, modes and normalization, byte 1 and 2 two policies
// (as wire_policy's) and the limits, byte 3 the client's experiment header; the rest is a
// protobuf request: the fused wire pass (Router::route_wire) must agree with decode_and_check
// and Router::route, refusals, counters and items (parsed back) included.
void wire_route(const std::uint8_t* data, std::size_t size);
// Two bytes choose the normalizer (normalize_config_from), the rest is a protobuf request:
// normalization on the wire (normalize/wire_normalize.hpp) must agree with the message path,
// the whole request and each ResourceSpans alone, counters included, malformed input too.
void wire_normalize(const std::uint8_t* data, std::size_t size);

struct Target {
  std::string_view name;
  void (*run)(const std::uint8_t*, std::size_t);
};

inline constexpr Target kTargets[] = {
    {"http_request", &http_request}, {"otlp_protobuf", &otlp_protobuf}, {"otlp_json", &otlp_json},
    {"decompress", &decompress},     {"config_yaml", &config_yaml},   {"policy_walk", &policy_walk},
    {"spool_records", &spool_records}, {"json_structure", &json_structure},
    {"wire_policy", &wire_policy},   {"wire_checks", &wire_checks},   {"wire_route", &wire_route},
    {"wire_normalize", &wire_normalize},
};

}  // namespace proxy::fuzz
