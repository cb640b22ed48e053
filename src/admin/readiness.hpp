// /readyz as a pure function: whether the proxy should be sent spans now, and in words why not.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "exporter/upstream_health.hpp"

namespace proxy::admin {

struct ReadinessInputs {
  bool listening = false;  // the OTLP listeners are open
  bool draining = false;   // SIGTERM: no new work
  exporter::UpstreamHealth::Snapshot upstream;
  std::string upstream_url;  // for the "not checked yet" reason
  std::size_t queue_bytes = 0;
  std::size_t queue_max_bytes = 0;
  std::size_t spool_bytes = 0;      // durability: disk
  std::size_t spool_max_bytes = 0;  // 0: no spool
  bool spool_writable = true;       // false from a failed spool write until it can write again
  std::string spool_dir;
  double queue_high_water = 0.9;
};

struct Readiness {
  bool ready = false;
  std::vector<std::string> reasons;  // empty when ready

  // "ready\n", or "not ready\n" and one reason per line.
  std::string body() const;
};

Readiness evaluate_readiness(const ReadinessInputs& inputs);

}  // namespace proxy::admin
