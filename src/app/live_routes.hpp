// The exporter's view of the routes in force: those of the router the receiver uses now, which a
// SIGHUP replaces.
#pragma once

#include <string>
#include <vector>

#include "exporter/route_directory.hpp"
#include "receiver/export_handler.hpp"

namespace proxy::app {

class LiveRoutes final : public exporter::RouteDirectory {
 public:
  explicit LiveRoutes(const receiver::ExportHandler& handler) : handler_(handler) {}

  std::vector<std::string> routes_to(const std::string& experiment_name) const override;

 private:
  const receiver::ExportHandler& handler_;
};

}  // namespace proxy::app
