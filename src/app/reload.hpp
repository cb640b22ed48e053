// SIGHUP: the configuration is loaded again (same flags, file and environment) and its routes,
// policies, default route and default experiment replace the running ones; the trace preview
// cache is kept (with the new preview_cache limits). Requests in flight
// finish with the router they started with; the swap drops no connection and no span. A file
// that does not load, or routes that do not compile, change nothing: the error is logged.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "admin/routing_totals.hpp"
#include "config/config.hpp"
#include "receiver/export_handler.hpp"

namespace proxy::app {

struct ReloadStats {
  std::atomic<std::uint64_t> applied{0};
  std::atomic<std::uint64_t> rejected{0};
};

// Loads the configuration as at start; throws config::ConfigError.
using ConfigSource = std::function<config::Config()>;

// The top-level sections (receiver, queue...) whose settings differ between `running` and
// `next` and that a reload does not apply: they need a restart.
std::vector<std::string> sections_needing_restart(const config::Config& running,
                                                  const config::Config& next);

// Loads, builds the new router and swaps it in; logs what happened. Returns true if applied.
bool reload_routing(const ConfigSource& source, const config::Config& running,
                    receiver::ExportHandler& handler, admin::RoutingTotals& totals,
                    ReloadStats& stats);

}  // namespace proxy::app
