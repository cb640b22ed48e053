#include <catch2/catch.hpp>

#include "routing/experiment_selector.hpp"

using namespace proxy;
using routing::ExperimentSelector;

namespace {

ExperimentRef selected(const ExperimentSelector& selector, std::optional<std::string_view> header) {
  auto result = selector.select(header);
  REQUIRE(std::holds_alternative<ExperimentRef>(result));
  return std::get<ExperimentRef>(result);
}

}  // namespace

TEST_CASE("the configured id beats the configured name, and with neither it is 0", "[routing]") {
  config::MlflowConfig mlflow;
  CHECK(selected(ExperimentSelector(mlflow), std::nullopt) == ExperimentRef::by_id("0"));
  mlflow.experiment_name = "koog-agents";
  CHECK(selected(ExperimentSelector(mlflow), std::nullopt) == ExperimentRef::by_name("koog-agents"));
  mlflow.experiment_id = "7";
  CHECK(selected(ExperimentSelector(mlflow), std::nullopt) == ExperimentRef::by_id("7"));
}

TEST_CASE("the client's header wins over the configuration", "[routing]") {
  config::MlflowConfig mlflow;
  mlflow.experiment_name = "koog-agents";
  const ExperimentSelector selector(mlflow);
  CHECK(selected(selector, "12") == ExperimentRef::by_id("12"));
  CHECK(selected(selector, " 12 ") == ExperimentRef::by_id("12"));
  CHECK(selected(selector, "") == ExperimentRef::by_name("koog-agents"));
}

TEST_CASE("a header that is not an experiment id is refused with a reason", "[routing]") {
  const ExperimentSelector selector{config::MlflowConfig{}};
  for (std::string_view bad : {"abc", "12a", "-1", "1.5", "99999999999999999999"}) {
    auto result = selector.select(bad);
    REQUIRE(std::holds_alternative<routing::RoutingError>(result));
    CHECK_THAT(std::get<routing::RoutingError>(result).message, Catch::Contains("numeric"));
  }
}
