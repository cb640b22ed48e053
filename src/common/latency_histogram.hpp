// A fixed-bucket latency histogram of relaxed atomics: cheap to observe from any thread, read
// (not exactly simultaneously, which a scrape tolerates) for the Prometheus exposition.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace proxy {

class LatencyHistogram {
 public:
  // Upper bounds in seconds; MLflow answers in milliseconds when idle, seconds under SQLite load.
  static constexpr std::array<double, 13> kBounds{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                  0.25,  0.5,    1.0,   2.5,  5.0,   10.0};

  struct Snapshot {
    std::array<std::uint64_t, kBounds.size() + 1> counts{};  // per bucket, the last is +Inf
    std::uint64_t count = 0;
    double sum_seconds = 0;
  };

  void observe(std::chrono::steady_clock::duration elapsed) {
    const auto nanoseconds = std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count();
    const double seconds = static_cast<double>(nanoseconds) / 1e9;
    std::size_t bucket = 0;
    while (bucket < kBounds.size() && seconds > kBounds[bucket]) ++bucket;
    counts_[bucket].fetch_add(1, std::memory_order_relaxed);
    sum_nanoseconds_.fetch_add(static_cast<std::uint64_t>(nanoseconds < 0 ? 0 : nanoseconds),
                               std::memory_order_relaxed);
  }

  Snapshot snapshot() const {
    Snapshot snapshot;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      snapshot.counts[i] = counts_[i].load(std::memory_order_relaxed);
      snapshot.count += snapshot.counts[i];
    }
    snapshot.sum_seconds =
        static_cast<double>(sum_nanoseconds_.load(std::memory_order_relaxed)) / 1e9;
    return snapshot;
  }

 private:
  std::array<std::atomic<std::uint64_t>, kBounds.size() + 1> counts_{};
  std::atomic<std::uint64_t> sum_nanoseconds_{0};
};

}  // namespace proxy
