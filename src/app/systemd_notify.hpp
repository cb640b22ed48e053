// systemd's readiness protocol (sd_notify(3)) for Type=notify units. Every call is a no-op when
// the proxy does not run under systemd ($NOTIFY_SOCKET unset), and a failure to notify is logged,
// never fatal: the proxy works the same without a service manager.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace proxy::app {

// The listeners are open: systemd starts the units ordered after this one.
void notify_ready(std::string_view status);
// SIGTERM: draining (systemd shows "deactivating").
void notify_stopping(std::string_view status);
// SIGHUP: a reload begins; notify_ready() again when it is done.
void notify_reloading();

// WatchdogSec= in the unit: how often to send notify_watchdog() (half the watchdog timeout).
std::optional<std::chrono::microseconds> watchdog_interval();
void notify_watchdog();

}  // namespace proxy::app
