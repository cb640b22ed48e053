// Retry policy as data, and the pure function that picks the next delay: exponential backoff
// with full jitter (AWS architecture blog, "Exponential Backoff And Jitter"), or exactly what the
// server asked for in Retry-After (at least initial_backoff, at most ten times max_backoff).
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

#include "config/config.hpp"

namespace proxy::exporter {

// `attempt` counts failures so far (1 after the first). `unit_random` is uniform in [0, 1).
std::chrono::milliseconds next_retry_delay(const config::RetryConfig& policy, unsigned attempt,
                                           double unit_random,
                                           std::optional<std::chrono::milliseconds> retry_after);

// Retry-After as delay-seconds; HTTP dates are not used by MLflow or its proxies we know of.
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view header);

}  // namespace proxy::exporter
