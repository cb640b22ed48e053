#include "app/reload.hpp"

#include <memory>

#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include "app/systemd_notify.hpp"
#include "config/load.hpp"
#include "routing/router.hpp"

namespace proxy::app {
namespace {

// What a reload applies: routes, policies, the default route, the default experiment
// (mlflow.experiment_id / experiment_name, which the default route sends to) and the preview
// cache's limits.
config::Config without_reloadable(config::Config config) {
  config.policies.clear();
  config.routes.clear();
  config.default_route = {};
  config.mlflow.experiment_id.clear();
  config.mlflow.experiment_name.clear();
  config.preview_cache = {};
  return config;
}

}  // namespace

std::vector<std::string> sections_needing_restart(const config::Config& running,
                                                  const config::Config& next) {
  // Compared as rendered YAML, section by section: every setting is in the rendering.
  const YAML::Node before = YAML::Load(config::render_effective(without_reloadable(running)));
  const YAML::Node after = YAML::Load(config::render_effective(without_reloadable(next)));
  std::vector<std::string> changed;
  for (auto it = before.begin(); it != before.end(); ++it) {
    const std::string section = it->first.Scalar();
    if (YAML::Dump(it->second) != YAML::Dump(after[section])) changed.push_back(section);
  }
  return changed;
}

bool reload_routing(const ConfigSource& source, const config::Config& running,
                    receiver::ExportHandler& handler, admin::RoutingTotals& totals,
                    ReloadStats& stats) {
  notify_reloading();
  spdlog::info("SIGHUP: reloading routes and policies");
  bool applied = false;
  try {
    const config::Config next = source();
    // The preview cache carries over (traces in progress keep their previews), with the new
    // limits once the new routes compiled.
    const auto previews = handler.router() ? handler.router()->shared_preview_cache() : nullptr;
    auto router = std::make_shared<const routing::Router>(next, previews);
    router->shared_preview_cache()->reconfigure(next.preview_cache,
                                                normalize::PreviewCache::Clock::now());
    handler.set_router(router);
    totals.set_current(router);
    applied = true;
    stats.applied.fetch_add(1, std::memory_order_relaxed);
    spdlog::info("reload applied: {} routes (the default included)", router->table().routes().size());
    for (const std::string& line : router->describe()) spdlog::info("{}", line);
    std::string restart;
    for (const std::string& section : sections_needing_restart(running, next)) {
      restart += (restart.empty() ? "" : ", ") + section;
    }
    if (!restart.empty()) {
      spdlog::warn("reload: changed settings in {} take effect only after a restart", restart);
    }
  } catch (const config::ConfigError& e) {
    stats.rejected.fetch_add(1, std::memory_order_relaxed);
    spdlog::error("reload rejected, the previous routes and policies stay in force: {}", e.what());
  } catch (const std::exception& e) {
    stats.rejected.fetch_add(1, std::memory_order_relaxed);
    spdlog::error("reload failed, the previous routes and policies stay in force: {}", e.what());
  }
  notify_ready(applied ? "reloaded; accepting OTLP" : "reload rejected; accepting OTLP");
  return applied;
}

}  // namespace proxy::app
