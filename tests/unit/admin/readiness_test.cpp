#include <catch2/catch.hpp>

#include "admin/readiness.hpp"

namespace {

using proxy::admin::evaluate_readiness;
using proxy::admin::ReadinessInputs;
using State = proxy::exporter::UpstreamHealth::State;

ReadinessInputs healthy() {
  ReadinessInputs inputs;
  inputs.listening = true;
  inputs.upstream.state = State::accepting;
  inputs.upstream_url = "http://mlflow:5000";
  inputs.queue_bytes = 0;
  inputs.queue_max_bytes = 1000;
  inputs.queue_high_water = 0.9;
  return inputs;
}

}  // namespace

TEST_CASE("ready when listening, MLflow accepts and the queue is below its high-water mark",
          "[admin][readiness]") {
  const auto readiness = evaluate_readiness(healthy());
  CHECK(readiness.ready);
  CHECK(readiness.reasons.empty());
  CHECK(readiness.body() == "ready\n");
}

TEST_CASE("each reason alone makes the proxy not ready, and says so", "[admin][readiness]") {
  SECTION("listeners not open") {
    auto inputs = healthy();
    inputs.listening = false;
    const auto readiness = evaluate_readiness(inputs);
    CHECK_FALSE(readiness.ready);
    CHECK(readiness.body() == "not ready\nthe OTLP listeners are not open yet\n");
  }
  SECTION("draining") {
    auto inputs = healthy();
    inputs.draining = true;
    CHECK(evaluate_readiness(inputs).reasons ==
          std::vector<std::string>{"shutting down: draining the queue, taking no new spans"});
  }
  SECTION("MLflow never contacted") {
    auto inputs = healthy();
    inputs.upstream.state = State::unknown;
    CHECK(evaluate_readiness(inputs).reasons ==
          std::vector<std::string>{"MLflow at http://mlflow:5000 not contacted yet"});
  }
  SECTION("MLflow unreachable or refusing: the recorded reason") {
    for (State state : {State::unreachable, State::refusing}) {
      auto inputs = healthy();
      inputs.upstream.state = state;
      inputs.upstream.reason = "MLflow at http://mlflow:5000 is unreachable (connect: refused)";
      CHECK(evaluate_readiness(inputs).reasons == std::vector<std::string>{inputs.upstream.reason});
    }
  }
  SECTION("queue above the high-water mark; at the mark is still ready") {
    auto inputs = healthy();
    inputs.queue_bytes = 900;
    CHECK(evaluate_readiness(inputs).ready);
    inputs.queue_bytes = 901;
    const auto readiness = evaluate_readiness(inputs);
    CHECK_FALSE(readiness.ready);
    CHECK(readiness.reasons == std::vector<std::string>{
                                   "the queue holds 901 of 1000 bytes, above the high-water mark "
                                   "of 900 (admin.queue_high_water)"});
  }
  SECTION("spool above the high-water mark") {
    auto inputs = healthy();
    inputs.spool_max_bytes = 100;
    inputs.spool_bytes = 91;
    CHECK(evaluate_readiness(inputs).reasons ==
          std::vector<std::string>{"the spool holds 91 of 100 bytes, above the high-water mark of "
                                   "90 (admin.queue_high_water)"});
  }
  SECTION("spool unable to write") {
    auto inputs = healthy();
    inputs.spool_max_bytes = 100;
    inputs.spool_writable = false;
    inputs.spool_dir = "/var/lib/otlp-mlflow-proxy";
    CHECK(evaluate_readiness(inputs).reasons ==
          std::vector<std::string>{"the spool cannot write to /var/lib/otlp-mlflow-proxy (file "
                                   "system full, read-only or removed): spans are refused until "
                                   "it can"});
  }
}

TEST_CASE("every reason is listed, one per line", "[admin][readiness]") {
  auto inputs = healthy();
  inputs.draining = true;
  inputs.upstream.state = State::refusing;
  inputs.upstream.reason = "MLflow answered 503";
  inputs.queue_bytes = 1000;
  const auto readiness = evaluate_readiness(inputs);
  CHECK(readiness.reasons.size() == 3);
  CHECK(readiness.body().starts_with("not ready\nshutting down"));
}
