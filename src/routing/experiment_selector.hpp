// Chooses the MLflow experiment for an incoming request. Pure: no I/O, no clocks.
// Order: the client's x-mlflow-experiment-id header, then the configured experiment id, then the
// configured experiment name (resolved by the exporter), then "0", MLflow's default experiment.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "config/config.hpp"
#include "mlflow/experiment_ref.hpp"

namespace proxy::routing {

inline constexpr std::string_view kExperimentHeader = "x-mlflow-experiment-id";

// A request the selector cannot route: why, for the 400 body.
struct RoutingError {
  std::string message;
};

class ExperimentSelector {
 public:
  explicit ExperimentSelector(const config::MlflowConfig& mlflow);

  // `client_header` is the x-mlflow-experiment-id value, or nullopt when absent.
  std::variant<ExperimentRef, RoutingError> select(
      std::optional<std::string_view> client_header) const;

  const ExperimentRef& configured() const { return configured_; }

 private:
  ExperimentRef configured_;
};

// MLflow experiment ids are decimal numbers.
bool is_experiment_id(std::string_view text);

}  // namespace proxy::routing
