#include <unistd.h>

#include <filesystem>
#include <atomic>
#include <fstream>
#include <thread>

#include <catch2/catch.hpp>

#include "config/load.hpp"
#include "queue/span_queue.hpp"
#include "routing/router.hpp"

using namespace proxy;
using routing::Router;

namespace {

// The config as the proxy would load it from this YAML text.
config::Config load_yaml(const std::string& yaml) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("router-test-" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(path) << yaml;
  struct Remove {
    std::filesystem::path path;
    ~Remove() { std::filesystem::remove(path); }
  } remove{path};
  return config::load({"--config", path.string()}, {}).config;
}

std::string load_error(const std::string& yaml) {
  try {
    load_yaml(yaml);
  } catch (const config::ConfigError& e) {
    return e.what();
  }
  return "<no error>";
}

otlp::ResourceSpans* add_resource(otlp::ExportRequest& request, const std::string& service,
                                  const std::string& scope = "ai.koog", const std::string& prompt = "hello") {
  auto* resource_spans = request.add_resource_spans();
  auto* attribute = resource_spans->mutable_resource()->add_attributes();
  attribute->set_key("service.name");
  attribute->mutable_value()->set_string_value(service);
  auto* scope_spans = resource_spans->add_scope_spans();
  scope_spans->mutable_scope()->set_name(scope);
  auto* span = scope_spans->add_spans();
  span->set_trace_id(std::string(16, '\x01'));
  span->set_span_id(std::string(8, '\x02'));
  span->set_name("chat " + service);
  auto* content = span->add_attributes();
  content->set_key("gen_ai.input.messages");
  content->mutable_value()->set_string_value(prompt);
  return resource_spans;
}

std::size_t route_of(const Router& router, const std::string& service, const std::string& scope = "ai.koog",
                     std::optional<std::string_view> header = std::nullopt) {
  otlp::ExportRequest request;
  add_resource(request, service, scope);
  return router.table().match(request.resource_spans(0), header);
}

const std::string kTwoTeams = R"yaml(
mlflow:
  experiment_name: shared
policies:
  team-b:
    content: verbose
routes:
  - name: team-a
    match:
      resource:
        service.name: {glob: "team-a-*"}
    experiment_name: team-a-agents
    policy: mask
  - name: team-b
    match:
      resource:
        service.name: {regex: "team-b-(planner|coder)"}
    experiment_name: team-b-agents
    policy: team-b
  - name: pinned
    match:
      resource:
        service.name: legacy
      experiment_header: present
    experiment_id: "42"
    header: override
  - name: koog-scope
    match:
      scope_name: {glob: "ai.koog*"}
    experiment_id: "7"
    header: ignore
default_route:
  policy: redact
)yaml";

}  // namespace

TEST_CASE("routes match on resource attributes: exact, glob, regex; first match wins", "[routing]") {
  const Router router(load_yaml(kTwoTeams));
  REQUIRE(router.table().routes().size() == 5);
  CHECK(route_of(router, "team-a-planner") == 0);
  CHECK(route_of(router, "team-b-planner") == 1);
  CHECK(route_of(router, "team-b-plannerX", "other") == 4);  // regex must match the whole value
  CHECK(route_of(router, "team-b-coder") == 1);
  CHECK(route_of(router, "legacy", "other") == 4);  // needs the header
  CHECK(route_of(router, "legacy", "other", "12") == 2);
  CHECK(route_of(router, "legacy", "other", "  ") == 4);  // a blank header counts as absent
  CHECK(route_of(router, "anything", "ai.koog.agents") == 3);
  CHECK(route_of(router, "anything", "io.opentelemetry.okhttp") == 4);
}

TEST_CASE("a scope rule matches when any scope of the resource matches, keeping traces whole", "[routing]") {
  const Router router(load_yaml(kTwoTeams));
  otlp::ExportRequest request;
  auto* resource_spans = add_resource(request, "svc", "io.opentelemetry.okhttp");
  resource_spans->add_scope_spans()->mutable_scope()->set_name("ai.koog.agents");
  CHECK(router.table().match(request.resource_spans(0), std::nullopt) == 3);
}

TEST_CASE("routes yield their experiment; an unnamed one falls back to mlflow.*", "[routing]") {
  const Router router(load_yaml(kTwoTeams));
  const auto& table = router.table();
  CHECK(std::get<ExperimentRef>(table.experiment(0, std::nullopt)) == ExperimentRef::by_name("team-a-agents"));
  CHECK(std::get<ExperimentRef>(table.experiment(3, std::nullopt)) == ExperimentRef::by_id("7"));
  CHECK(std::get<ExperimentRef>(table.experiment(4, std::nullopt)) == ExperimentRef::by_name("shared"));
}

TEST_CASE("the routes sending to an experiment name are named, the default one last", "[routing]") {
  const Router router(load_yaml(R"yaml(
mlflow:
  experiment_name: shared
routes:
  - name: team-a
    match:
      resource:
        service.name: a
    experiment_name: team-a-agents
  - name: pinned
    match:
      resource:
        service.name: b
    experiment_id: "7"
  - name: also-shared
    match:
      resource:
        service.name: c
)yaml"));
  const auto& table = router.table();
  CHECK(table.routes_to("team-a-agents") == std::vector<std::string>{"team-a"});
  CHECK(table.routes_to("shared") == std::vector<std::string>{"also-shared", "default"});
  CHECK(table.routes_to("7").empty());  // an id, not a name
  CHECK(table.routes_to("nobody").empty());
}

TEST_CASE("header modes: honor takes the client's id, override and ignore keep the route's", "[routing]") {
  const Router router(load_yaml(kTwoTeams));
  const auto& table = router.table();
  // honor (team-a): a valid header wins, a malformed one is an error.
  CHECK(std::get<ExperimentRef>(table.experiment(0, "12")) == ExperimentRef::by_id("12"));
  CHECK(std::holds_alternative<routing::RoutingError>(table.experiment(0, "abc")));
  // override (pinned): the route's id, but a malformed header is still an error.
  CHECK(std::get<ExperimentRef>(table.experiment(2, "12")) == ExperimentRef::by_id("42"));
  CHECK(std::holds_alternative<routing::RoutingError>(table.experiment(2, "abc")));
  // ignore (koog-scope): the header is not even looked at.
  CHECK(std::get<ExperimentRef>(table.experiment(3, "abc")) == ExperimentRef::by_id("7"));
}

TEST_CASE("one request over two routes becomes two items, each with its policy applied", "[routing]") {
  const Router router(load_yaml(kTwoTeams));
  otlp::ExportRequest request;
  add_resource(request, "team-a-planner", "x", "prompt of team a");
  add_resource(request, "team-b-coder", "x", "prompt of team b");
  add_resource(request, "team-a-coder", "x", "another prompt of team a");
  auto routed = router.route(request, std::nullopt);
  auto& items = std::get<std::vector<queue::QueueItem>>(routed);
  REQUIRE(items.size() == 2);
  CHECK(items[0].experiment == ExperimentRef::by_name("team-a-agents"));
  CHECK(items[0].span_count == 2);
  CHECK(items[1].experiment == ExperimentRef::by_name("team-b-agents"));
  CHECK(items[1].span_count == 1);

  otlp::ExportRequest team_a;
  REQUIRE(team_a.ParseFromString(items[0].payload));
  REQUIRE(team_a.resource_spans_size() == 2);
  CHECK(team_a.resource_spans(1).resource().attributes(0).value().string_value() == "team-a-coder");
  CHECK(team_a.resource_spans(0).scope_spans(0).spans(0).attributes(0).value().string_value() ==
        "[masked: 16 bytes]");
  otlp::ExportRequest team_b;
  REQUIRE(team_b.ParseFromString(items[1].payload));
  CHECK(team_b.resource_spans(0).scope_spans(0).spans(0).attributes(0).value().string_value() ==
        "prompt of team b");

  CHECK(router.stats().requests_split.load() == 1);
  CHECK(router.policy_stats().count(config::PolicyMode::mask, policy::Family::genai) == 2);
  CHECK(router.stats().route_spans[0].load() == 2);
}

TEST_CASE("a request on one route is serialized once, as one item", "[routing]") {
  const Router router(load_yaml(kTwoTeams));
  otlp::ExportRequest request;
  add_resource(request, "someone", "x", "my card is 4111 1111 1111 1111");
  add_resource(request, "someone-else", "x", "nothing");
  auto routed = router.route(request, std::nullopt);
  auto& items = std::get<std::vector<queue::QueueItem>>(routed);
  REQUIRE(items.size() == 1);
  CHECK(items[0].experiment == ExperimentRef::by_name("shared"));
  CHECK(items[0].span_count == 2);
  otlp::ExportRequest parsed;
  REQUIRE(parsed.ParseFromString(items[0].payload));
  CHECK(parsed.resource_spans(0).scope_spans(0).spans(0).attributes(0).value().string_value() ==
        "my card is [redacted:card_number]");  // default_route: redact
  CHECK(router.stats().requests_split.load() == 0);
}

TEST_CASE("a malformed header on an honoring route is an error and changes nothing", "[routing]") {
  const Router router(load_yaml(kTwoTeams));
  otlp::ExportRequest request;
  add_resource(request, "team-a-x");
  auto routed = router.route(request, "not-a-number");
  REQUIRE(std::holds_alternative<routing::RoutingError>(routed));
  CHECK(std::get<routing::RoutingError>(routed).message.find("numeric") != std::string::npos);
  CHECK(request.resource_spans(0).scope_spans(0).spans(0).attributes(0).value().string_value() == "hello");
}

TEST_CASE("without routes the default route masks content and honors the header", "[routing]") {
  config::Config config;
  config.mlflow.experiment_id = "5";
  const Router router(config);
  otlp::ExportRequest request;
  add_resource(request, "svc");
  auto routed = router.route(request, "9");
  auto& items = std::get<std::vector<queue::QueueItem>>(routed);
  REQUIRE(items.size() == 1);
  CHECK(items[0].experiment == ExperimentRef::by_id("9"));
  otlp::ExportRequest parsed;
  REQUIRE(parsed.ParseFromString(items[0].payload));
  CHECK(parsed.resource_spans(0).scope_spans(0).spans(0).attributes(0).value().string_value() ==
        "[masked: 5 bytes]");
}

TEST_CASE("describe() lists every route for the start-up log", "[routing]") {
  const Router router(load_yaml(kTwoTeams));
  const auto lines = router.describe();
  REQUIRE(lines.size() == 5);
  CHECK(lines[0] == "route \"team-a\": service.name glob \"team-a-*\" -> experiment name \"team-a-agents\", "
                    "policy \"mask\", header honor, normalize on");
  CHECK(lines[4] == "route \"default\": everything else -> experiment name \"shared\", policy \"redact\", "
                    "header honor, normalize on");
}

TEST_CASE("append_resource_spans writes field 1, so appended payloads parse as one request", "[routing]") {
  otlp::ExportRequest request;
  add_resource(request, "a", "s", std::string(300, 'x'));  // a length over 127 needs two varint bytes
  add_resource(request, "b");
  std::string payload;
  routing::append_resource_spans(payload, request.resource_spans(0));
  routing::append_resource_spans(payload, request.resource_spans(1));
  CHECK(payload == request.SerializeAsString());
}

TEST_CASE("policy and route config errors name the YAML position", "[routing][config]") {
  using Catch::Matchers::Contains;
  CHECK_THAT(load_error("routes:\n  - experiment_name: x\n    policy: nope\n"),
             Contains(":3:13: routes[0].policy: unknown policy \"nope\" (known: default, mask, verbose, redact)"));
  CHECK_THAT(load_error("routes:\n  - match:\n      resource:\n        service.name: {regex: \"(a\"}\n"),
             Contains(":4:31: routes[0].match.resource.service.name.regex: invalid RE2 regex: missing )"));
  CHECK_THAT(load_error("routes:\n  - experiment_name: x\n    experiment_id: \"1\"\n"),
             Contains(":2:5: routes[0]: set experiment_id or experiment_name, not both"));
  CHECK_THAT(load_error("routes:\n  - match: {experiment_header: maybe}\n"),
             Contains("routes[0].match.experiment_header: expected present, absent, any or an experiment id"));
  CHECK_THAT(load_error("routes:\n  - name: a\n  - name: a\n"), Contains("duplicate route name \"a\""));
  CHECK_THAT(load_error("routes:\n  - header: always\n"),
             Contains(":2:13: routes[0].header: expected one of honor, override, ignore, got \"always\""));
  CHECK_THAT(load_error("policies:\n  p:\n    content: secret\n"),
             Contains(":3:14: policies.p.content: expected one of verbose, mask, hash, truncate, drop, redact"));
  CHECK_THAT(load_error("policies:\n  p:\n    contents: mask\n"),
             Contains(":3:5: policies.p.contents: unknown key"));
  CHECK_THAT(load_error("policies:\n  p:\n    redact_patterns:\n      - {name: x, regex: \"a*\"}\n"),
             Contains("policies.p.redact_patterns[0].regex: the regex matches the empty string"));
  CHECK_THAT(load_error("policies:\n  p:\n    keys:\n      - {key: \"a.*\"}\n"),
             Contains("policies.p.keys[0]: expected a mapping with key and mode"));
  CHECK_THAT(load_error("policies:\n  p:\n    hash_prefix: 4\n"), Contains("policies.p.hash_prefix"));
  CHECK_THAT(load_error("default_route:\n  policy: missing\n"), Contains(":2:11: default_route.policy: unknown policy"));
}

TEST_CASE("the full policy and route schema loads into the structs", "[routing][config]") {
  const config::Config config = load_yaml(R"yaml(
policies:
  strict:
    content: hash
    errors: mask
    other: redact
    content_keys: ["myapp.prompt*"]
    keys:
      - {key: "gen_ai.tool.call.result", mode: truncate, truncate_bytes: 64}
    resource_keys:
      - {key: "host.name", mode: drop}
    redact_patterns:
      - {name: ticket, regex: "TICKET-[0-9]+"}
    builtin_patterns: false
    truncate_bytes: 128
    hash_prefix: 12
    max_depth: 4
routes:
  - name: r
    match:
      resource: {service.name: a, deployment.environment.name: {exact: prod}}
      scope_name: {regex: "ai\\.koog.*"}
      experiment_header: "12"
    experiment_name: e
    policy: strict
    header: ignore
default_route: {policy: verbose, header: override}
)yaml");
  REQUIRE(config.policies.size() == 1);
  const config::PolicyConfig& p = config.policies[0].policy;
  CHECK(config.policies[0].name == "strict");
  CHECK(p.content == config::PolicyMode::hash);
  CHECK(p.errors == config::PolicyMode::mask);
  CHECK(p.other == config::PolicyMode::redact);
  CHECK(p.content_keys == std::vector<std::string>{"myapp.prompt*"});
  REQUIRE(p.keys.size() == 1);
  CHECK(p.keys[0].truncate_bytes == 64);
  CHECK(p.resource_keys[0].mode == config::PolicyMode::drop);
  CHECK(p.redact_patterns[0].name == "ticket");
  CHECK_FALSE(p.builtin_patterns);
  CHECK(p.truncate_bytes == 128);
  CHECK(p.hash_prefix == 12);
  CHECK(p.max_depth == 4);
  REQUIRE(config.routes.size() == 1);
  const config::RouteConfig& r = config.routes[0];
  CHECK(r.match.resource.size() == 2);
  CHECK(r.match.scope_name->kind == config::ValueMatch::Kind::regex);
  CHECK(r.match.header == config::HeaderCondition::equals);
  CHECK(r.match.header_value == "12");
  CHECK(r.experiment_name == "e");
  CHECK(r.header == config::HeaderMode::ignore);
  CHECK(config.default_route.policy == "verbose");
  CHECK(config.default_route.header == config::HeaderMode::override_route);
}

TEST_CASE("the effective config (--check-config) renders policies and routes that load back the same", "[routing][config]") {
  std::string yaml = kTwoTeams;
  yaml.replace(yaml.find("policies:\n"), 10,
               "policies:\n  p2:\n    content: truncate\n    keys: [{key: \"a.*\", mode: truncate, "
               "truncate_bytes: 9}]\n    redact_patterns: [{name: t, regex: \"T-([0-9]+)\"}]\n"
               "    resource_keys: [{key: host.name, mode: hash}]\n    content_keys: [x.y]\n");
  const config::Config original = load_yaml(yaml);
  REQUIRE(original.policies.size() == 2);
  const std::string rendered = config::render_effective(original);
  INFO(rendered);
  CHECK(rendered.find("team-b-(planner|coder)") != std::string::npos);
  CHECK(config::render_effective(load_yaml(rendered)) == rendered);
}

TEST_CASE("normalization runs after the policy: nothing it copies is unmasked", "[routing][normalize]") {
  config::Config config;
  config.mlflow.experiment_id = "5";
  const Router router(config);  // default_route: the "default" policy masks content
  const std::string prompt = "my secret prompt about Paris";
  otlp::ExportRequest request;
  auto span_in = [&](const std::string& name, bool root) {
    auto* resource_spans = request.add_resource_spans();
    auto* attribute = resource_spans->mutable_resource()->add_attributes();
    attribute->set_key("service.name");
    attribute->mutable_value()->set_string_value("koog-agent");
    auto* span = resource_spans->add_scope_spans()->add_spans();
    span->set_name(name);
    span->set_trace_id(std::string(16, '\x07'));
    span->set_span_id(std::string(8, static_cast<char>('\x10' + request.resource_spans_size())));
    if (!root) span->set_parent_span_id(std::string(8, '\x11'));
    return span;
  };
  auto set = [](otlp::Span* span, const std::string& key, const std::string& value) {
    auto* attribute = span->add_attributes();
    attribute->set_key(key);
    attribute->mutable_value()->set_string_value(value);
  };
  auto* node = span_in("node call_llm", false);
  set(node, "koog.node.id", "call_llm");
  set(node, "koog.node.input", "\"" + prompt + "\"");
  auto* agent = span_in("invoke_agent weather-agent", false);
  set(agent, "gen_ai.operation.name", "invoke_agent");
  set(agent, "gen_ai.input.messages",
      R"([{"role":"user","parts":[{"type":"text","content":")" + prompt + R"("}]}])");
  auto* root = span_in("create_agent weather-agent", true);
  set(root, "gen_ai.operation.name", "create_agent");

  auto routed = router.route(request, std::nullopt);
  auto& items = std::get<std::vector<queue::QueueItem>>(routed);
  REQUIRE(items.size() == 1);
  CHECK(items[0].payload.find("Paris") == std::string::npos);
  otlp::ExportRequest parsed;
  REQUIRE(parsed.ParseFromString(items[0].payload));
  auto value = [](const otlp::Span& span, std::string_view key) -> std::string {
    for (const auto& attribute : span.attributes()) {
      if (attribute.key() == key) return attribute.value().string_value();
    }
    return "<absent>";
  };
  const otlp::Span& node_out = parsed.resource_spans(0).scope_spans(0).spans(0);
  CHECK(value(node_out, "mlflow.spanInputs") == "[masked: 30 bytes]");
  CHECK(value(node_out, "mlflow.spanType") == "CHAIN");
  CHECK(value(node_out, "service.name") == "koog-agent");
  const otlp::Span& root_out = parsed.resource_spans(2).scope_spans(0).spans(0);
  bool root_has_masked_inputs = false;
  for (const auto& attribute : root_out.attributes()) {
    if (attribute.key() == "mlflow.spanInputs") {
      root_has_masked_inputs = attribute.value().SerializeAsString().find("[masked: ") != std::string::npos;
    }
  }
  CHECK(root_has_masked_inputs);
  CHECK(router.normalize_stats().count(normalize::Rule::preview) == 1);
  CHECK(router.normalize_stats().count(normalize::Rule::span_type) == 1);  // the node; MLflow types the rest
  CHECK(router.preview_cache().entries() == 0);
}

const char* const kCreation = R"yaml(
mlflow:
  experiment_name: shared
  create_experiments: false
routes:
  - name: may-create
    match: {resource: {service.name: a}}
    experiment_name: a-traces
    create_experiment: true
  - name: must-exist
    match: {resource: {service.name: b}}
    experiment_name: b-traces
  - name: inherits-name
    match: {resource: {service.name: c}}
    create_experiment: true
  - name: by-id
    match: {resource: {service.name: d}}
    experiment_id: "5"
)yaml";

TEST_CASE("create_experiment is per route and defaults to mlflow.create_experiments", "[routing][config]") {
  const config::Config config = load_yaml(kCreation);
  CHECK(config.routes[0].create_experiment == true);
  CHECK_FALSE(config.routes[1].create_experiment.has_value());
  const Router router(config);
  const auto& table = router.table();
  CHECK(std::get<ExperimentRef>(table.experiment(0, std::nullopt)) == ExperimentRef::by_name("a-traces", true));
  CHECK(std::get<ExperimentRef>(table.experiment(1, std::nullopt)) == ExperimentRef::by_name("b-traces", false));
  // a route without an experiment of its own uses mlflow.experiment_name, with its own permission
  CHECK(std::get<ExperimentRef>(table.experiment(2, std::nullopt)) == ExperimentRef::by_name("shared", true));
  CHECK(std::get<ExperimentRef>(table.experiment(3, std::nullopt)) == ExperimentRef::by_id("5"));
  CHECK(std::get<ExperimentRef>(table.experiment(4, std::nullopt)) == ExperimentRef::by_name("shared", false));
  // the permission is part of the queue item's experiment, so it reaches the exporter
  CHECK_FALSE(ExperimentRef::by_name("x", true) == ExperimentRef::by_name("x", false));

  const auto lines = router.describe();
  CHECK(lines[1] == "route \"must-exist\": service.name=\"b\" -> experiment name \"b-traces\" (must exist), "
                    "policy \"default\", header honor, normalize on");
  CHECK(lines[0].find("(must exist)") == std::string::npos);

  // Without create_experiments: false, routes create by default.
  CHECK(std::get<ExperimentRef>(Router(load_yaml(kTwoTeams)).table().experiment(0, std::nullopt)).create);
}

TEST_CASE("create_experiment: errors and --check-config rendering", "[routing][config]") {
  using Catch::Matchers::Contains;
  CHECK_THAT(load_error("routes:\n  - experiment_id: \"3\"\n    create_experiment: true\n"),
             Contains(":3:24: routes[0].create_experiment: applies to experiment names only; this route "
                      "sends to experiment_id 3"));
  CHECK_THAT(load_error("routes:\n  - experiment_name: x\n    create_experiment: maybe\n"),
             Contains(":3:24: routes[0].create_experiment: expected true or false, got \"maybe\""));

  const std::string rendered = config::render_effective(load_yaml(kCreation));
  INFO(rendered);
  // The effective value for every route that sends to a name, inherited ones included.
  CHECK(rendered.find("experiment_name: \"a-traces\"\n    header: honor\n    create_experiment: true\n") !=
        std::string::npos);
  CHECK(rendered.find("experiment_name: \"b-traces\"\n    header: honor\n    create_experiment: false\n") !=
        std::string::npos);
  CHECK(rendered.find("{exact: \"c\"}\n    header: honor\n    create_experiment: true\n") != std::string::npos);
  CHECK(rendered.find("experiment_id: \"5\"\n    header: honor\ndefault_route") != std::string::npos);
  const config::Config reloaded = load_yaml(rendered);
  CHECK(reloaded.routes[1].create_experiment == false);
  CHECK(config::render_effective(reloaded) == rendered);
}

TEST_CASE("an experiment's create permission survives the spool and dead-letter encoding", "[routing]") {
  for (const ExperimentRef& ref : {ExperimentRef::by_id("12"), ExperimentRef::by_name("n", true),
                                   ExperimentRef::by_name("n", false)}) {
    CHECK(ExperimentRef::from_storage(ref.storage_tag(), ref.value) == ref);
  }
  CHECK(ExperimentRef::from_storage(1, "old") == ExperimentRef::by_name("old", true));
  CHECK_FALSE(ExperimentRef::from_storage(3, "x").has_value());
}

// ---- trace previews across requests: the hold (normalize.preview_hold) --------------------------

namespace {

// A Koog-shaped trace in two requests: the root (create_agent) alone, then invoke_agent.
std::pair<otlp::ExportRequest, otlp::ExportRequest> agent_trace(char trace) {
  auto make = [&](const std::string& name, const std::string& parent, const std::string& operation,
                  const std::string& messages) {
    otlp::ExportRequest request;
    auto* resource_spans = request.add_resource_spans();
    auto* span = resource_spans->add_scope_spans()->add_spans();
    span->set_trace_id(std::string(16, trace));
    span->set_span_id(std::string(7, trace) + (parent.empty() ? '\x01' : '\x02'));
    span->set_parent_span_id(parent);
    span->set_name(name);
    auto* op = span->add_attributes();
    op->set_key("gen_ai.operation.name");
    op->mutable_value()->set_string_value(operation);
    if (!messages.empty()) {
      auto* input = span->add_attributes();
      input->set_key("gen_ai.input.messages");
      input->mutable_value()->set_string_value(messages);
    }
    return request;
  };
  return {make("create_agent a", "", "create_agent", ""),
          make("invoke_agent a", std::string(7, trace) + '\x01', "invoke_agent",
               R"([{"role":"user","parts":[{"type":"text","content":"the prompt"}]}])")};
}

bool root_has_inputs(const std::string& payload) {
  otlp::ExportRequest request;
  REQUIRE(request.ParseFromString(payload));
  for (const auto& resource_spans : request.resource_spans()) {
    for (const auto& span : resource_spans.scope_spans(0).spans()) {
      if (!span.parent_span_id().empty()) continue;
      for (const auto& attribute : span.attributes()) {
        if (attribute.key() == "mlflow.spanInputs") return true;
      }
    }
  }
  return false;
}

const char* const kVerboseHold = R"yaml(
mlflow: {experiment_id: "1"}
default_route:
  policy: verbose
  normalize: {preview_hold: 10s}
)yaml";

// The verbose default route with a 10 s hold, its preview cache, and a queue that releases holds.
struct HoldSetup {
  config::Config config = load_yaml(kVerboseHold);
  std::shared_ptr<normalize::PreviewCache> previews =
      std::make_shared<normalize::PreviewCache>(config.preview_cache);
  routing::PreviewHolds holds{previews};
  queue::SpanQueue span_queue{1 << 20};
  Router router{config, previews};
  HoldSetup() { span_queue.subscribe(holds); }
};

}  // namespace

TEST_CASE("a root routed before its invoke_agent is held in the queue, then filled",
          "[routing][preview][hold]") {
  HoldSetup setup;
  auto& [config, previews, holds, span_queue, router] = setup;

  auto [root, rest] = agent_trace('r');
  auto routed = router.route(root, std::nullopt);
  auto& root_items = std::get<std::vector<queue::QueueItem>>(routed);
  REQUIRE(root_items.size() == 1);
  REQUIRE(root_items[0].hold != nullptr);
  CHECK(root_items[0].hold->traces == std::vector<std::string>{std::string(16, 'r')});
  REQUIRE(span_queue.push(std::move(root_items)) == queue::PushResult::accepted);
  CHECK(span_queue.pop_batch(1 << 20, 100).empty());  // held: its invoke_agent is not known yet

  auto rest_routed = router.route(rest, std::nullopt);
  auto& rest_items = std::get<std::vector<queue::QueueItem>>(rest_routed);
  REQUIRE(rest_items.size() == 1);
  CHECK(rest_items[0].hold == nullptr);
  REQUIRE(span_queue.push(std::move(rest_items)) == queue::PushResult::accepted);

  // Released by PreviewHolds long before its 10 s hold: the root first (it waited longest),
  // filled from the invoke_agent that arrived meanwhile.
  const auto batch = span_queue.pop_batch(1 << 20, 100);
  REQUIRE(batch.size() == 2);
  CHECK(root_has_inputs(batch[0].payload));
  CHECK(previews->stats().held == 1);
  CHECK(previews->stats().filled_after_hold == 1);
  CHECK(previews->entries() == 0);
}

namespace {

std::uint32_t spans_of(const std::string& payload) {
  otlp::ExportRequest request;
  REQUIRE(request.ParseFromString(payload));
  std::uint32_t spans = 0;
  for (const auto& resource_spans : request.resource_spans()) {
    for (const auto& scope_spans : resource_spans.scope_spans()) {
      spans += static_cast<std::uint32_t>(scope_spans.spans_size());
    }
  }
  return spans;
}

}  // namespace

TEST_CASE("a held root leaves the rest of its request free to go, in an item of its own",
          "[routing][preview][hold]") {
  HoldSetup setup;
  auto& [config, previews, holds, span_queue, router] = setup;

  // One request: trace h's root (held: its invoke_agent comes later) and trace o's invoke_agent
  // and root (filled at once), under one resource with its attributes and scope.
  auto [held_root, held_rest] = agent_trace('h');
  auto [other_root, other_rest] = agent_trace('o');
  otlp::ExportRequest request;
  auto* resource_spans = request.add_resource_spans();
  auto* service = resource_spans->mutable_resource()->add_attributes();
  service->set_key("service.name");
  service->mutable_value()->set_string_value("koog-agent");
  auto* scope_spans = resource_spans->add_scope_spans();
  scope_spans->mutable_scope()->set_name("ai.koog");
  *scope_spans->add_spans() = other_rest.resource_spans(0).scope_spans(0).spans(0);
  *scope_spans->add_spans() = held_root.resource_spans(0).scope_spans(0).spans(0);
  *scope_spans->add_spans() = other_root.resource_spans(0).scope_spans(0).spans(0);

  auto routed = router.route(request, std::nullopt);
  auto& items = std::get<std::vector<queue::QueueItem>>(routed);
  REQUIRE(items.size() == 2);
  CHECK(items[0].hold == nullptr);
  CHECK(items[0].span_count == 2);
  CHECK(spans_of(items[0].payload) == 2);
  CHECK(root_has_inputs(items[0].payload));  // trace o's root, filled from its invoke_agent
  REQUIRE(items[1].hold != nullptr);
  CHECK(items[1].hold->traces == std::vector<std::string>{std::string(16, 'h')});
  CHECK(items[1].span_count == 1);
  otlp::ExportRequest roots;
  REQUIRE(roots.ParseFromString(items[1].payload));
  REQUIRE(roots.resource_spans_size() == 1);
  CHECK(roots.resource_spans(0).resource().attributes(0).value().string_value() == "koog-agent");
  REQUIRE(roots.resource_spans(0).scope_spans_size() == 1);
  CHECK(roots.resource_spans(0).scope_spans(0).scope().name() == "ai.koog");
  REQUIRE(roots.resource_spans(0).scope_spans(0).spans_size() == 1);
  CHECK(roots.resource_spans(0).scope_spans(0).spans(0).trace_id() == std::string(16, 'h'));

  // The free item goes at once; the root waits for its invoke_agent, then is filled.
  REQUIRE(span_queue.push(std::move(items)) == queue::PushResult::accepted);
  auto first = span_queue.pop_batch(1 << 20, 100);
  REQUIRE(first.size() == 1);
  CHECK(first[0].span_count == 2);
  span_queue.release(first);
  CHECK(span_queue.pop_batch(1 << 20, 100).empty());
  auto rest_routed = router.route(held_rest, std::nullopt);
  REQUIRE(span_queue.push(std::get<std::vector<queue::QueueItem>>(std::move(rest_routed))) ==
          queue::PushResult::accepted);
  const auto batch = span_queue.pop_batch(1 << 20, 100);
  REQUIRE(batch.size() == 2);
  CHECK(batch[0].span_count == 1);
  CHECK(root_has_inputs(batch[0].payload));
  CHECK(previews->stats().filled_after_hold == 1);
}

TEST_CASE("held roots split out per route when a request takes several routes",
          "[routing][preview][hold]") {
  const config::Config config = load_yaml(R"yaml(
mlflow: {experiment_id: "1"}
routes:
  - name: a
    match:
      resource:
        service.name: agent-a
    experiment_id: "2"
    normalize: {preview_hold: 10s}
default_route:
  policy: verbose
  normalize: {preview_hold: 10s}
)yaml");
  auto previews = std::make_shared<normalize::PreviewCache>(config.preview_cache);
  const Router router(config, previews);
  auto [root_a, rest_a] = agent_trace('a');
  auto [root_b, rest_b] = agent_trace('b');
  otlp::ExportRequest request;
  auto add = [&](const std::string& service_name, std::initializer_list<const otlp::Span*> spans) {
    auto* resource_spans = request.add_resource_spans();
    auto* service = resource_spans->mutable_resource()->add_attributes();
    service->set_key("service.name");
    service->mutable_value()->set_string_value(service_name);
    auto* scope_spans = resource_spans->add_scope_spans();
    for (const otlp::Span* span : spans) *scope_spans->add_spans() = *span;
  };
  const auto& span = [](const otlp::ExportRequest& r) { return &r.resource_spans(0).scope_spans(0).spans(0); };
  add("agent-a", {span(root_a)});                 // held, alone in its resource
  add("agent-b", {span(rest_b), span(root_b)});  // b's root is filled at once: nothing held

  auto routed = router.route(request, std::nullopt);
  const auto& items = std::get<std::vector<queue::QueueItem>>(routed);
  REQUIRE(items.size() == 2);
  // Route a: only the held root, in its own held item (no empty item beside it).
  CHECK(items[0].experiment.value == "2");
  REQUIRE(items[0].hold != nullptr);
  CHECK(items[0].hold->traces == std::vector<std::string>{std::string(16, 'a')});
  CHECK(items[0].span_count == 1);
  CHECK(spans_of(items[0].payload) == 1);
  // The default route: both of b's spans, free to go.
  CHECK(items[1].experiment.value == "1");
  CHECK(items[1].hold == nullptr);
  CHECK(items[1].span_count == 2);
  CHECK(spans_of(items[1].payload) == 2);
  CHECK(root_has_inputs(items[1].payload));
}

TEST_CASE("a reload's router shares the preview cache", "[routing][preview][reload]") {
  const config::Config config = load_yaml(kVerboseHold);
  auto first = std::make_shared<const Router>(config);
  const Router second(config, first->shared_preview_cache());
  auto [root, rest] = agent_trace('s');
  first->route(rest, std::nullopt);  // before the reload
  CHECK(second.preview_cache().entries() == 1);
  first.reset();
  auto routed = second.route(root, std::nullopt);  // after: no hold, filled at once
  const auto& items = std::get<std::vector<queue::QueueItem>>(routed);
  REQUIRE(items.size() == 1);
  CHECK(items[0].hold == nullptr);
  CHECK(root_has_inputs(items[0].payload));
}

TEST_CASE("holds under concurrency: receivers route while a worker pops (for TSan)",
          "[routing][preview][hold][threads]") {
  using namespace std::chrono_literals;
  config::Config config = load_yaml(kVerboseHold);
  config.default_route.normalize.preview_hold = 20ms;
  auto previews = std::make_shared<normalize::PreviewCache>(config.preview_cache);
  routing::PreviewHolds holds(previews);
  queue::SpanQueue span_queue(64 << 20);
  span_queue.subscribe(holds);
  const Router router(config, previews);
  constexpr int kTraces = 200;
  std::atomic<int> delivered_spans{0};
  std::atomic<bool> done{false};
  std::atomic<int> refused{0};
  std::thread worker([&] {
    while (!done.load() || !span_queue.empty()) {
      auto batch = span_queue.pop_batch(1 << 20, 1000);
      for (const auto& item : batch) delivered_spans += static_cast<int>(item.span_count);
      span_queue.release(batch);
      if (batch.empty()) std::this_thread::sleep_for(1ms);
    }
  });
  auto receiver = [&](int first) {
    for (int i = first; i < kTraces; i += 2) {
      auto [root, rest] = agent_trace(static_cast<char>(i));
      for (otlp::ExportRequest* request : {&root, &rest}) {  // root first: every root is held
        auto routed = router.route(*request, std::nullopt);
        // (Catch's assertions are not thread-safe: counted, checked after the join.)
        if (span_queue.push(std::get<std::vector<queue::QueueItem>>(std::move(routed))) !=
            queue::PushResult::accepted) {
          ++refused;
        }
      }
    }
  };
  std::thread a(receiver, 0);
  std::thread b(receiver, 1);
  a.join();
  b.join();
  done = true;
  worker.join();
  CHECK(refused == 0);
  CHECK(delivered_spans == 2 * kTraces);
  const auto& stats = previews->stats();
  CHECK(stats.filled_after_hold + stats.released_unfilled == stats.held);
  CHECK(span_queue.stats().bytes == 0);
}
