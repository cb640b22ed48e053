// The fused wire pass (routing::Router::route_wire: the receiver's checks and each route's policy
// in one walk) against the message path it replaces: decode_and_check, then Router::route. Both
// routers come from one config whose routes all have normalization off. Used by the wire_route
// fuzz target and tests/unit/routing/wire_route_test.cpp.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "routing/router.hpp"
#include "routing/wire_route.hpp"

namespace proxy::fuzz {

struct WireRouteComparison {
  routing::WireRouted::Outcome wire = routing::WireRouted::Outcome::routed;
  otlp::wire::WireError wire_error = otlp::wire::WireError::none;
  std::string mismatch;  // empty when both paths agree
};

// Agreement: the same refusal (malformed exactly when protobuf refuses, too many spans, every
// span invalid, a routing error with the same text), the same counts and texts of the checks,
// the same counters added to both routers, and the same items: route by route, the same
// experiment and span count and payloads that parse back equal. An unsupported request is left
// to the message path. The routers keep their counters: only what this call adds is compared.
WireRouteComparison compare_wire_routes(const routing::Router& message_router, const routing::Router& wire_router,
                                        const config::ReceiverConfig& receiver, std::string_view body,
                                        std::optional<std::string_view> header);

}  // namespace proxy::fuzz
