#include "exporter/retry_policy.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace proxy::exporter {

std::chrono::milliseconds next_retry_delay(const config::RetryConfig& policy, unsigned attempt,
                                           double unit_random,
                                           std::optional<std::chrono::milliseconds> retry_after) {
  // The server's own estimate wins over our guess, in both directions (OTLP/HTTP spec: the
  // client SHOULD wait what Retry-After says): after a long outage the backoff has grown to
  // max_backoff, yet an MLflow that says "1" is back within a second. Floored at initial_backoff
  // so that "Retry-After: 0" from a broken server is not a busy loop.
  if (retry_after) {
    return std::clamp(*retry_after, std::chrono::milliseconds(policy.initial_backoff),
                      std::max(std::chrono::milliseconds(policy.initial_backoff),
                               std::chrono::milliseconds(policy.max_backoff) * 10));
  }
  const double initial = static_cast<double>(policy.initial_backoff.count());
  const double cap = static_cast<double>(policy.max_backoff.count());
  const double exponent = static_cast<double>(attempt > 0 ? attempt - 1 : 0);
  const double ceiling = std::min(cap, initial * std::pow(policy.multiplier, std::min(exponent, 64.0)));
  const double jittered = std::clamp(unit_random, 0.0, 1.0) * ceiling;
  return std::chrono::milliseconds(static_cast<std::int64_t>(jittered));
}

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view header) {
  while (!header.empty() && header.front() == ' ') header.remove_prefix(1);
  while (!header.empty() && header.back() == ' ') header.remove_suffix(1);
  unsigned long seconds = 0;
  const auto [end, ec] = std::from_chars(header.data(), header.data() + header.size(), seconds);
  if (header.empty() || ec != std::errc() || end != header.data() + header.size()) return std::nullopt;
  return std::chrono::milliseconds(std::min<unsigned long>(seconds, 3600) * 1000);
}

}  // namespace proxy::exporter
