// What the proxy knows about MLflow's version, read from `GET /version` at start and again after
// every outage (the server may have been upgraded or downgraded meanwhile). Until it is known,
// and from the moment an outage begins until it is read again, gzip is off: uncompressed OTLP
// is what every MLflow with /v1/traces accepts.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

namespace proxy::exporter {

class UpstreamVersion {
 public:
  struct Snapshot {
    std::string version;  // as MLflow reported it; empty while unknown
    bool gzip = false;    // whether that version decodes gzip request bodies
  };

  // GET /version answered (`version` empty when the answer was not a version) while the upstream
  // had gone through `outages` outages. Returns whether gzip may be sent: `gzip`, unless this
  // same version refused a gzip body before.
  bool record(std::string version, bool gzip, std::uint64_t outages) {
    std::lock_guard lock(mutex_);
    if (version != refused_) refused_.clear();
    if (!refused_.empty()) gzip = false;
    snapshot_ = Snapshot{std::move(version), gzip};
    outages_at_read_.store(outages, std::memory_order_relaxed);
    gzip_.store(gzip, std::memory_order_relaxed);
    stale_.store(false, std::memory_order_relaxed);
    return gzip;
  }

  // MLflow refused a gzip body although its version said it would take one (a router in front
  // of it, or a version string that lies): no gzip until /version reports another version.
  void forget() {
    std::lock_guard lock(mutex_);
    refused_ = snapshot_.version;
    snapshot_.gzip = false;
    gzip_.store(false, std::memory_order_relaxed);
    stale_.store(true, std::memory_order_relaxed);
  }

  // Whether /version should be read (again): never read, forgotten, or an outage since.
  bool needs_reading(std::uint64_t outages) const {
    return stale_.load(std::memory_order_relaxed) ||
           outages != outages_at_read_.load(std::memory_order_relaxed);
  }

  // gzip may be sent now: the version read takes it and no outage began since it was read.
  bool gzip_ok(std::uint64_t outages) const {
    return gzip_.load(std::memory_order_relaxed) &&
           outages == outages_at_read_.load(std::memory_order_relaxed) &&
           !stale_.load(std::memory_order_relaxed);
  }

  Snapshot snapshot() const {
    std::lock_guard lock(mutex_);
    return snapshot_;
  }

 private:
  mutable std::mutex mutex_;
  Snapshot snapshot_;
  std::string refused_;  // the version that refused a gzip body, until another one answers
  std::atomic<bool> gzip_{false};
  std::atomic<bool> stale_{true};  // not read yet
  std::atomic<std::uint64_t> outages_at_read_{0};
};

}  // namespace proxy::exporter
