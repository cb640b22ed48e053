// Bad clients can send thousands of bad requests a second; logging each one would turn a client
// bug into a disk-filling incident. A RateLimitedLog lets a burst through, then one line per
// interval that says how many were suppressed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>

#include <spdlog/spdlog.h>

namespace proxy {

class RateLimitedLog {
 public:
  explicit RateLimitedLog(std::uint32_t per_second = 10) : per_second_(per_second) {}

  // True when this event may be logged now; `suppressed` is set to the number of events dropped
  // since the last allowed one, so the caller can say so.
  bool allow(std::uint64_t& suppressed) {
    const auto now_s = static_cast<std::int64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(
            std::chrono::steady_clock::now().time_since_epoch())
            .count());
    std::int64_t window = window_.load(std::memory_order_relaxed);
    if (now_s != window && window_.compare_exchange_strong(window, now_s)) {
      count_.store(0, std::memory_order_relaxed);
    }
    if (count_.fetch_add(1, std::memory_order_relaxed) < per_second_) {
      suppressed = suppressed_.exchange(0, std::memory_order_relaxed);
      return true;
    }
    suppressed_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }

 private:
  std::uint32_t per_second_;
  std::atomic<std::int64_t> window_{0};
  std::atomic<std::uint32_t> count_{0};
  std::atomic<std::uint64_t> suppressed_{0};
};

}  // namespace proxy
