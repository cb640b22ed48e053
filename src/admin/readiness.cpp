#include "admin/readiness.hpp"

#include <cmath>
#include <string_view>

namespace proxy::admin {

std::string Readiness::body() const {
  if (ready) return "ready\n";
  std::string text = "not ready\n";
  for (const std::string& reason : reasons) text += reason + "\n";
  return text;
}

Readiness evaluate_readiness(const ReadinessInputs& inputs) {
  Readiness readiness;
  auto& reasons = readiness.reasons;
  if (inputs.draining) reasons.push_back("shutting down: draining the queue, taking no new spans");
  if (!inputs.listening) reasons.push_back("the OTLP listeners are not open yet");
  using State = exporter::UpstreamHealth::State;
  switch (inputs.upstream.state) {
    case State::accepting:
      break;
    case State::unknown:
      reasons.push_back("MLflow at " + inputs.upstream_url + " not contacted yet");
      break;
    case State::unreachable:
    case State::refusing:
      reasons.push_back(inputs.upstream.reason);
      break;
  }
  const auto check_fill = [&](std::string_view what, std::size_t bytes, std::size_t max_bytes) {
    const auto high_water = static_cast<std::size_t>(
        std::floor(static_cast<double>(max_bytes) * inputs.queue_high_water));
    if (max_bytes == 0 || bytes <= high_water) return;
    reasons.push_back(std::string(what) + " holds " + std::to_string(bytes) + " of " +
                      std::to_string(max_bytes) + " bytes, above the high-water mark of " +
                      std::to_string(high_water) + " (admin.queue_high_water)");
  };
  if (!inputs.spool_writable) {
    reasons.push_back("the spool cannot write to " + inputs.spool_dir +
                      " (file system full, read-only or removed): spans are refused until it can");
  }
  check_fill("the queue", inputs.queue_bytes, inputs.queue_max_bytes);
  check_fill("the spool", inputs.spool_bytes, inputs.spool_max_bytes);
  readiness.ready = reasons.empty();
  return readiness;
}

}  // namespace proxy::admin
