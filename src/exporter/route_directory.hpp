// The routes in force, as the exporter needs them: which send to an experiment name, for the
// reason recorded with spans whose experiment is missing. A SIGHUP replaces the routes, so the
// exporter asks each time instead of keeping the routes it started with.
#pragma once

#include <string>
#include <vector>

namespace proxy::exporter {

class RouteDirectory {
 public:
  virtual ~RouteDirectory() = default;
  // The names of the routes that send to `experiment_name`, the default route last.
  virtual std::vector<std::string> routes_to(const std::string& experiment_name) const = 0;
};

}  // namespace proxy::exporter
