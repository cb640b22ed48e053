#include "app/systemd_notify.hpp"

#include <cstring>
#include <string>

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

namespace proxy::app {
namespace {

void notify(const std::string& state) {
  // unset_environment=0: the exporter's and admin threads may read the environment concurrently.
  const int result = sd_notify(0, state.c_str());
  if (result < 0) {
    spdlog::warn("sd_notify(\"{}\") failed: {}", state.substr(0, state.find('\n')),
                 std::strerror(-result));
  }
}

}  // namespace

void notify_ready(std::string_view status) {
  notify("READY=1\nSTATUS=" + std::string(status));
}

void notify_stopping(std::string_view status) {
  notify("STOPPING=1\nSTATUS=" + std::string(status));
}

void notify_reloading() { notify("RELOADING=1\nSTATUS=reloading routes and policies"); }

std::optional<std::chrono::microseconds> watchdog_interval() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec / 2);
}

void notify_watchdog() { notify("WATCHDOG=1"); }

}  // namespace proxy::app
