#include <catch2/catch.hpp>

#include "exporter/delivery_attempt.hpp"

using namespace proxy;
using namespace proxy::exporter;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

// A clock that moves only when told and a jitter that returns what it is set to, so delays and
// wake-up times are exact.
struct TestEnvironment {
  Clock::time_point now = Clock::time_point{} + 1000s;
  double jitter = 0.5;

  DeliveryEnvironment make() {
    return {[this] { return now; }, [this] { return jitter; }};
  }
};

DeliverySettings settings(unsigned max_transient = 2, bool gzip_fallback = true) {
  DeliverySettings result;
  result.retry.initial_backoff = 100ms;
  result.retry.max_backoff = 1000ms;
  result.retry.multiplier = 2.0;
  result.retry.max_transient_422_retries = max_transient;
  result.gzip_fallback = gzip_fallback;
  return result;
}

ClassifiedResponse answer(int status, std::string_view body = "{}", std::string_view retry_after = "",
                          bool gzipped = false) {
  return classify_response(status, body, retry_after, gzipped);
}

Resolution resolved(std::string id) {
  Resolution resolution;
  resolution.experiment_id = std::move(id);
  return resolution;
}

Resolution lookup_failure(bool retryable, bool missing = false) {
  Resolution resolution;
  resolution.error = missing ? "experiment \"x\" does not exist" : "connection refused";
  resolution.retryable = retryable;
  resolution.missing = missing;
  return resolution;
}

}  // namespace

TEST_CASE("an id is sent at once and a 2xx is delivered", "[exporter][delivery]") {
  TestEnvironment env;
  DeliveryAttempt attempt(ExperimentRef::by_id("12"), false, settings(), env.make());
  const DeliveryAction first = attempt.start();
  CHECK(first.step == DeliveryStep::send);
  CHECK(attempt.experiment_id() == "12");
  CHECK(attempt.gzip_allowed());
  for (int status : {200, 204}) {
    const DeliveryAction done = attempt.on_response(answer(status));
    CHECK(done.step == DeliveryStep::delivered);
    CHECK(done.status == status);
  }
}

TEST_CASE("a name is looked up before the send, and again after every wait", "[exporter][delivery]") {
  TestEnvironment env;
  DeliveryAttempt attempt(ExperimentRef::by_name("agents"), false, settings(), env.make());
  CHECK(attempt.start().step == DeliveryStep::resolve);
  CHECK(attempt.on_resolved(resolved("7")).step == DeliveryStep::send);
  CHECK(attempt.experiment_id() == "7");
  CHECK(attempt.on_response(answer(503)).step == DeliveryStep::wait);
  CHECK(attempt.resume().step == DeliveryStep::resolve);  // cached by the resolver: cheap
}

TEST_CASE("429, 502, 503 and 504 wait with a growing, jittered backoff, without end",
          "[exporter][delivery]") {
  for (int status : {429, 502, 503, 504}) {
    TestEnvironment env;
    DeliveryAttempt attempt(ExperimentRef::by_id("1"), true, settings(), env.make());
    attempt.start();
    // Full jitter of 0.5: half of 100, 200, 400, 800 ms, then of the 1000 ms cap.
    const std::vector<std::chrono::milliseconds> expected{50ms, 100ms, 200ms, 400ms, 500ms, 500ms};
    for (const auto delay : expected) {
      const DeliveryAction action = attempt.on_response(answer(status));
      REQUIRE(action.step == DeliveryStep::wait);
      CHECK(action.delay == delay);
      CHECK(action.until == env.now + delay);
      CHECK(action.status == status);
      CHECK_THAT(action.reason, Catch::Contains("MLflow answered " + std::to_string(status)));
      CHECK(attempt.resume().step == DeliveryStep::send);
      env.now += delay;
    }
    CHECK(attempt.failures() == expected.size());
    CHECK(attempt.transient_failures() == 0);
  }
}

TEST_CASE("the jitter comes from the injected source", "[exporter][delivery]") {
  TestEnvironment env;
  DeliveryAttempt attempt(ExperimentRef::by_id("1"), false, settings(), env.make());
  env.jitter = 0.0;
  CHECK(attempt.on_response(answer(503)).delay == 0ms);
  env.jitter = 0.999999;
  CHECK(attempt.on_response(answer(503)).delay == 199ms);
}

TEST_CASE("Retry-After sets the wait, shorter or longer than the backoff", "[exporter][delivery]") {
  TestEnvironment env;
  DeliveryAttempt attempt(ExperimentRef::by_id("1"), false, settings(), env.make());
  const DeliveryAction longer = attempt.on_response(answer(503, "{}", "2"));
  CHECK(longer.delay == 2000ms);
  CHECK(longer.until == env.now + 2000ms);
  for (int i = 0; i < 10; ++i) attempt.on_response(answer(503));  // the backoff reaches its cap
  CHECK(attempt.on_response(answer(429, "{}", "0")).delay == 100ms);  // floored: no busy loop
  CHECK(attempt.on_response(answer(503, "{}", "soon")).delay == 500ms);  // unreadable: backoff
}

TEST_CASE("401, 403 and 501 keep the spans and wait, however long it takes", "[exporter][delivery]") {
  for (int status : {401, 403, 501}) {
    TestEnvironment env;
    DeliveryAttempt attempt(ExperimentRef::by_id("1"), true, settings(), env.make());
    for (int i = 0; i < 50; ++i) {
      const DeliveryAction action = attempt.on_response(answer(status));
      REQUIRE(action.step == DeliveryStep::wait);
      CHECK(action.cause == DeliveryCause::answered);
    }
    CHECK(attempt.on_response(answer(200)).step == DeliveryStep::delivered);
  }
}

TEST_CASE("a transient 422 and other 5xx are retried a bounded number of times, then dead-lettered",
          "[exporter][delivery]") {
  const std::string locked = R"({"detail":"(sqlite3.OperationalError) database is locked"})";
  for (const auto& [status, body] : std::vector<std::pair<int, std::string>>{
           {422, locked}, {500, "Internal Server Error"}, {507, "full"}}) {
    TestEnvironment env;
    DeliveryAttempt attempt(ExperimentRef::by_id("1"), true, settings(2), env.make());
    CHECK(attempt.on_response(answer(status, body)).step == DeliveryStep::wait);
    CHECK(attempt.on_response(answer(status, body)).step == DeliveryStep::wait);
    const DeliveryAction last = attempt.on_response(answer(status, body));
    CHECK(last.step == DeliveryStep::dead_letter);  // not split: the fault is MLflow's
    CHECK(last.status == status);
    CHECK_THAT(last.reason, Catch::EndsWith("(still failing after 3 attempts)"));
    CHECK(attempt.transient_failures() == 3);
  }
}

TEST_CASE("transient failures count apart from other retries", "[exporter][delivery]") {
  const std::string locked = "database is locked";
  TestEnvironment env;
  DeliveryAttempt attempt(ExperimentRef::by_id("1"), false, settings(1), env.make());
  CHECK(attempt.on_response(answer(422, locked)).step == DeliveryStep::wait);
  for (int i = 0; i < 5; ++i) {
    CHECK(attempt.on_response(answer(503)).step == DeliveryStep::wait);
    CHECK(attempt.on_transport_error().step == DeliveryStep::wait);
  }
  CHECK(attempt.failures() == 11);
  CHECK(attempt.on_response(answer(422, locked)).step == DeliveryStep::dead_letter);
}

TEST_CASE("a connection failure waits and tries again, without end", "[exporter][delivery]") {
  TestEnvironment env;
  DeliveryAttempt attempt(ExperimentRef::by_name("agents"), true, settings(), env.make());
  attempt.on_resolved(resolved("7"));
  for (unsigned i = 1; i <= 20; ++i) {
    const DeliveryAction action = attempt.on_transport_error();
    REQUIRE(action.step == DeliveryStep::wait);
    CHECK(action.cause == DeliveryCause::transport_failed);
    CHECK(action.status == 0);
    CHECK(attempt.failures() == i);
  }
  CHECK(attempt.resume().step == DeliveryStep::resolve);
}

TEST_CASE("an experiment lookup that fails waits, one that cannot succeed dead-letters",
          "[exporter][delivery]") {
  TestEnvironment env;
  DeliveryAttempt attempt(ExperimentRef::by_name("agents", false), false, settings(), env.make());
  const DeliveryAction retry = attempt.on_resolved(lookup_failure(true));
  CHECK(retry.step == DeliveryStep::wait);
  CHECK(retry.cause == DeliveryCause::lookup_failed);
  CHECK(retry.delay == 50ms);
  CHECK(retry.reason == "connection refused");

  const DeliveryAction missing = attempt.on_resolved(lookup_failure(false, true));
  CHECK(missing.step == DeliveryStep::dead_letter);
  CHECK(missing.cause == DeliveryCause::experiment_missing);
  CHECK(missing.status == 404);

  const DeliveryAction refused = attempt.on_resolved(lookup_failure(false));
  CHECK(refused.step == DeliveryStep::dead_letter);
  CHECK(refused.cause == DeliveryCause::lookup_refused);
  CHECK(refused.status == 0);  // MLflow's /v1/traces never answered
}

TEST_CASE("an unknown experiment id re-resolves its name once, then dead-letters",
          "[exporter][delivery]") {
  const std::string unknown = R"({"detail":"Experiment with id '7' not found"})";
  TestEnvironment env;
  DeliveryAttempt attempt(ExperimentRef::by_name("agents"), true, settings(), env.make());
  attempt.on_resolved(resolved("7"));
  const DeliveryAction again = attempt.on_response(answer(404, unknown));
  CHECK(again.step == DeliveryStep::reresolve);
  CHECK(attempt.reresolved());
  CHECK(attempt.on_resolved(resolved("8")).step == DeliveryStep::send);
  CHECK(attempt.experiment_id() == "8");
  const DeliveryAction last = attempt.on_response(answer(422, "Experiment 8 does not exist"));
  CHECK(last.step == DeliveryStep::dead_letter);  // not split: no part would do better
  CHECK(last.status == 422);

  // An id from the configuration or the client's header has no name to look up again.
  DeliveryAttempt by_id(ExperimentRef::by_id("7"), true, settings(), env.make());
  CHECK(by_id.on_response(answer(404, unknown)).step == DeliveryStep::dead_letter);
}

TEST_CASE("any other answer splits a request of several spans, dead-letters a single one",
          "[exporter][delivery]") {
  for (int status : {400, 409, 413, 422}) {
    TestEnvironment env;
    DeliveryAttempt several(ExperimentRef::by_id("1"), true, settings(), env.make());
    const DeliveryAction split = several.on_response(answer(status, "bad span"));
    CHECK(split.step == DeliveryStep::split);
    CHECK(split.status == status);
    CHECK(split.reason == "MLflow answered " + std::to_string(status) + ": bad span");
    CHECK(several.failures() == 0);  // nothing was retried

    DeliveryAttempt single(ExperimentRef::by_id("1"), false, settings(), env.make());
    const DeliveryAction dead = single.on_response(answer(status, "bad span"));
    CHECK(dead.step == DeliveryStep::dead_letter);
    CHECK(dead.cause == DeliveryCause::answered);
    CHECK(dead.status == status);
  }
}

TEST_CASE("a gzip body MLflow 3.6 cannot read is sent again plain, once", "[exporter][delivery]") {
  const std::string invalid = R"({"detail":"Invalid OpenTelemetry protobuf format"})";
  TestEnvironment env;
  DeliveryAttempt attempt(ExperimentRef::by_name("agents"), true, settings(), env.make());
  attempt.on_resolved(resolved("7"));
  const DeliveryAction plain = attempt.on_response(answer(400, invalid, "", true));
  CHECK(plain.step == DeliveryStep::resolve);  // then the send, as after any wait
  CHECK(plain.cause == DeliveryCause::gzip_refused);
  CHECK_FALSE(attempt.gzip_allowed());
  CHECK(attempt.failures() == 0);
  // Refused plain too: about the spans after all.
  CHECK(attempt.on_response(answer(400, invalid, "", false)).step == DeliveryStep::split);
}

TEST_CASE("a 415 to gzip falls back; a 400 about the spans does not", "[exporter][delivery]") {
  TestEnvironment env;
  DeliveryAttempt unsupported(ExperimentRef::by_id("1"), false, settings(), env.make());
  const DeliveryAction plain = unsupported.on_response(answer(415, "", "", true));
  CHECK(plain.step == DeliveryStep::send);
  CHECK(plain.cause == DeliveryCause::gzip_refused);

  DeliveryAttempt bad_span(ExperimentRef::by_id("1"), false, settings(), env.make());
  CHECK(bad_span.on_response(answer(400, "span 3 has no name", "", true)).step ==
        DeliveryStep::dead_letter);
  CHECK(bad_span.gzip_allowed());
}

TEST_CASE("with compression: gzip there is no fallback", "[exporter][delivery]") {
  TestEnvironment env;
  DeliveryAttempt attempt(ExperimentRef::by_id("1"), true, settings(2, false), env.make());
  const DeliveryAction action = attempt.on_response(answer(400, "Invalid OpenTelemetry protobuf format", "", true));
  CHECK(action.step == DeliveryStep::split);
  CHECK(attempt.gzip_allowed());
}

TEST_CASE("an answer is classified once: verdict, Retry-After, gzip refusal", "[exporter][delivery]") {
  const ClassifiedResponse busy = classify_response(503, "{}", " 3 ", false);
  CHECK(busy.verdict.action == ExportAction::retry);
  CHECK(busy.retry_after == 3000ms);
  CHECK_FALSE(busy.refuses_gzip);
  CHECK(classify_response(415, "", "", true).refuses_gzip);
  CHECK_FALSE(classify_response(415, "", "", false).refuses_gzip);
  CHECK(classify_response(400, "not protobuf", "", true).refuses_gzip);
  CHECK_FALSE(classify_response(400, "bad span", "", true).refuses_gzip);
}
