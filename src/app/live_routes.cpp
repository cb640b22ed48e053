#include "app/live_routes.hpp"

namespace proxy::app {

std::vector<std::string> LiveRoutes::routes_to(const std::string& experiment_name) const {
  const auto router = handler_.router();
  if (!router) return {};
  return router->table().routes_to(experiment_name);
}

}  // namespace proxy::app
