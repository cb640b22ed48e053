// What the proxy last learned about MLflow, for /readyz: whether it is reachable and accepting
// spans, and in words why not. Fed by every export request and by a probe of MLflow's /health
// while no export talks to it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace proxy::exporter {

class UpstreamHealth {
 public:
  enum class State {
    unknown,      // not contacted yet
    accepting,    // the last request was answered, and not with a refusal
    unreachable,  // connection refused, timed out, reset
    refusing,     // answered, but not taking spans now (401/403/501, 429, 5xx)
  };

  struct Snapshot {
    State state = State::unknown;
    std::string reason;  // empty unless unreachable or refusing
    std::chrono::steady_clock::time_point since{};
  };

  void record_accepting() { record(State::accepting, {}); }
  void record_unreachable(std::string reason) { record(State::unreachable, std::move(reason)); }
  void record_refusing(std::string reason) { record(State::refusing, std::move(reason)); }

  Snapshot snapshot() const {
    std::lock_guard lock(mutex_);
    return snapshot_;
  }

  // How many times MLflow became unreachable: what was learned about it before may be stale.
  std::uint64_t outages() const { return outages_.load(std::memory_order_relaxed); }

  // When anything was last heard from MLflow (or tried): the probe stays quiet while exports run.
  std::chrono::steady_clock::time_point last_contact() const {
    return std::chrono::steady_clock::time_point(
        std::chrono::steady_clock::duration(last_contact_.load(std::memory_order_relaxed)));
  }

 private:
  void record(State state, std::string reason) {
    const auto now = std::chrono::steady_clock::now();
    last_contact_.store(now.time_since_epoch().count(), std::memory_order_relaxed);
    std::lock_guard lock(mutex_);
    if (state == State::unreachable && snapshot_.state != State::unreachable) {
      outages_.fetch_add(1, std::memory_order_relaxed);
    }
    if (snapshot_.state != state || snapshot_.reason != reason) {
      snapshot_ = Snapshot{state, std::move(reason), now};
    }
  }

  mutable std::mutex mutex_;
  Snapshot snapshot_;
  std::atomic<std::int64_t> last_contact_{0};
  std::atomic<std::uint64_t> outages_{0};
};

}  // namespace proxy::exporter
