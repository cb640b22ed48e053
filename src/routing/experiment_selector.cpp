#include "routing/experiment_selector.hpp"

#include <algorithm>

namespace proxy::routing {

bool is_experiment_id(std::string_view text) {
  return !text.empty() && text.size() <= 19 &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

ExperimentSelector::ExperimentSelector(const config::MlflowConfig& mlflow)
    : configured_(!mlflow.experiment_id.empty()     ? ExperimentRef::by_id(mlflow.experiment_id)
                  : !mlflow.experiment_name.empty() ? ExperimentRef::by_name(mlflow.experiment_name,
                                                                             mlflow.create_experiments)
                                                    : ExperimentRef::by_id("0")) {}

std::variant<ExperimentRef, RoutingError> ExperimentSelector::select(
    std::optional<std::string_view> client_header) const {
  if (!client_header) return configured_;
  std::string_view value = *client_header;
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty()) return configured_;
  if (!is_experiment_id(value)) {
    return RoutingError{"header x-mlflow-experiment-id must be a numeric MLflow experiment id, got \"" +
                        std::string(value.substr(0, 64)) +
                        "\" (route by name with the proxy's --experiment-name instead)"};
  }
  return ExperimentRef::by_id(std::string(value));
}

}  // namespace proxy::routing
