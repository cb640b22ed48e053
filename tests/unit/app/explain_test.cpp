#include <sstream>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "app/explain.hpp"
#include "app/explain_render.hpp"
#include "app/explain_report.hpp"
#include "support/temp_dir.hpp"

using namespace proxy;
using namespace proxy::app::explain;
using proxy::testing::TempDir;

namespace {

using Attributes = google::protobuf::RepeatedPtrField<otlp::KeyValue>;

otlp::AnyValue text(const std::string& value) {
  otlp::AnyValue v;
  v.set_string_value(value);
  return v;
}

otlp::AnyValue integer(std::int64_t value) {
  otlp::AnyValue v;
  v.set_int_value(value);
  return v;
}

void set(Attributes& attributes, const std::string& key, const otlp::AnyValue& value) {
  otlp::KeyValue* kv = attributes.Add();
  kv->set_key(key);
  *kv->mutable_value() = value;
}

Attributes attributes(const std::vector<std::pair<std::string, otlp::AnyValue>>& entries) {
  Attributes list;
  for (const auto& [key, value] : entries) set(list, key, value);
  return list;
}

otlp::Span make_span(char id, const std::string& name) {
  otlp::Span span;
  span.set_trace_id(std::string(16, '\x01'));
  span.set_span_id(std::string(8, id));
  span.set_name(name);
  return span;
}

otlp::ResourceSpans resource(const std::string& service, std::vector<otlp::Span> spans) {
  otlp::ResourceSpans resource_spans;
  set(*resource_spans.mutable_resource()->mutable_attributes(), "service.name", text(service));
  auto* scope = resource_spans.add_scope_spans();
  for (otlp::Span& span : spans) *scope->add_spans() = std::move(span);
  return resource_spans;
}

otlp::Span& span_of(otlp::ResourceSpans& resource_spans, int index) {
  return *resource_spans.mutable_scope_spans(0)->mutable_spans(index);
}

const Change* find_change(const std::vector<Change>& changes, const std::string& key, Stage stage) {
  for (const Change& change : changes) {
    if (change.key == key && change.stage == stage) return &change;
  }
  return nullptr;
}

Output output_of(std::vector<std::pair<otlp::ResourceSpans, ExperimentRef>> parts) {
  Output output;
  for (auto& [resource_spans, experiment] : parts) {
    *output.requests.emplace_back().add_resource_spans() = std::move(resource_spans);
    output.experiments.push_back(experiment);
  }
  return output;
}

}  // namespace

TEST_CASE("attribute diff: changed, added, dropped and unchanged, by key", "[app][explain]") {
  const Attributes before =
      attributes({{"kept", text("same")}, {"masked", text("a prompt")}, {"gone", text("secret")}});
  const Attributes after = attributes(
      {{"masked", text("[masked: 8 bytes]")}, {"kept", text("same")}, {"new", text("LLM")}});
  std::vector<Change> changes;
  Change where;
  where.stage = Stage::normalize;
  diff_attributes(before, after, where, changes);
  REQUIRE(changes.size() == 3);
  CHECK(changes[0].key == "masked");
  CHECK(changes[0].kind == ChangeKind::changed);
  CHECK(changes[0].before->string_value() == "a prompt");
  CHECK(changes[0].after->string_value() == "[masked: 8 bytes]");
  CHECK(changes[1].key == "gone");
  CHECK(changes[1].kind == ChangeKind::dropped);
  CHECK_FALSE(changes[1].after);
  CHECK(changes[2].key == "new");
  CHECK(changes[2].kind == ChangeKind::added);
  CHECK_FALSE(changes[2].before);
  for (const Change& change : changes) CHECK(change.stage == Stage::normalize);
}

TEST_CASE("attribute diff: a type change is a change; repeated keys pair up in order", "[app][explain]") {
  const Attributes before =
      attributes({{"gen_ai.usage.input_tokens", text("12")}, {"tag", text("a")}, {"tag", text("b")}});
  const Attributes after = attributes({{"gen_ai.usage.input_tokens", integer(12)},
                                       {"tag", text("a")},
                                       {"tag", text("[masked: 1 bytes]")}});
  std::vector<Change> changes;
  diff_attributes(before, after, Change{}, changes);
  REQUIRE(changes.size() == 2);
  CHECK(changes[0].after->int_value() == 12);
  CHECK(changes[1].key == "tag");
  CHECK(changes[1].before->string_value() == "b");
}

TEST_CASE("span diff covers events, links and the status message", "[app][explain]") {
  otlp::Span before = make_span('\x02', "execute_tool");
  auto* event = before.add_events();
  event->set_name("exception");
  set(*event->mutable_attributes(), "exception.message", text("https://u:pw@host failed"));
  set(*before.add_links()->mutable_attributes(), "note", text("keep me"));
  before.mutable_status()->set_message("tool failed: https://u:pw@host");
  otlp::Span after = before;
  after.mutable_events(0)->mutable_attributes(0)->mutable_value()->set_string_value(
      "https://u:[redacted:url_password]@host failed");
  after.mutable_links(0)->mutable_attributes()->Clear();
  after.mutable_status()->set_message("tool failed: https://u:[redacted:url_password]@host");
  std::vector<Change> changes;
  diff_span(before, after, Stage::policy, changes);
  REQUIRE(changes.size() == 3);
  CHECK(changes[0].place == Place::event);
  CHECK(changes[0].event_name == "exception");
  CHECK(changes[0].key == "exception.message");
  CHECK(changes[1].place == Place::link);
  CHECK(changes[1].kind == ChangeKind::dropped);
  CHECK(changes[2].place == Place::status);
  CHECK(changes[2].kind == ChangeKind::changed);
  CHECK(changes[2].after->string_value() == "tool failed: https://u:[redacted:url_password]@host");
}

TEST_CASE("the report finds spans regrouped by route and tells the stages apart", "[app][explain]") {
  otlp::Span chat = make_span('\x0a', "chat gpt-4o");
  set(*chat.mutable_attributes(), "gen_ai.input.messages", text("hello there"));
  otlp::Span tool = make_span('\x0b', "execute_tool");
  std::vector<InputResource> input{
      {0, resource("team-a-planner", {chat, tool}), {"team-a", "mask", true}},
      {0, resource("other", {make_span('\x0c', "lost")}), {"default", "default", true}}};

  otlp::ResourceSpans masked = input[0].spans;
  span_of(masked, 0).mutable_attributes(0)->mutable_value()->set_string_value("[masked: 11 bytes]");
  otlp::ResourceSpans normalized = masked;
  set(*span_of(normalized, 0).mutable_attributes(), "mlflow.spanType", text("LLM"));
  set(*normalized.mutable_resource()->mutable_attributes(), "added.by.test", text("x"));
  // The held root style split: the output carries the two spans in separate requests, the
  // second one first; the resource of "lost" never comes out.
  otlp::ResourceSpans first = normalized;
  first.mutable_scope_spans(0)->mutable_spans()->DeleteSubrange(1, 1);
  otlp::ResourceSpans second = normalized;
  second.mutable_scope_spans(0)->mutable_spans()->DeleteSubrange(0, 1);
  const ExperimentRef experiment = ExperimentRef::by_name("team-a-agents", false);
  const Output output = output_of({{second, experiment}, {first, experiment}});
  const Output policy_only = output_of({{masked, experiment}});

  const Report report = build_report(input, policy_only, output);
  REQUIRE(report.resources.size() == 2);
  const ResourceReport& team_a = report.resources[0];
  CHECK(team_a.service_name == "team-a-planner");
  CHECK(team_a.route.route == "team-a");
  REQUIRE(team_a.experiment);
  CHECK(*team_a.experiment == experiment);
  REQUIRE(team_a.spans.size() == 2);
  const SpanReport& chat_report = team_a.spans[0];
  CHECK(chat_report.span_id == "0a0a0a0a0a0a0a0a");
  CHECK(chat_report.trace_id == "01010101010101010101010101010101");
  const Change* masked_change = find_change(chat_report.changes, "gen_ai.input.messages", Stage::policy);
  REQUIRE(masked_change != nullptr);
  CHECK(masked_change->before->string_value() == "hello there");
  CHECK(find_change(chat_report.changes, "mlflow.spanType", Stage::normalize) != nullptr);
  CHECK(find_change(chat_report.changes, "mlflow.spanType", Stage::policy) == nullptr);
  CHECK(team_a.spans[1].changes.empty());
  REQUIRE(team_a.changes.size() == 1);
  CHECK(team_a.changes[0].place == Place::resource);
  CHECK(team_a.changes[0].stage == Stage::normalize);
  CHECK_FALSE(report.resources[1].spans[0].passed);
  CHECK_FALSE(report.resources[1].experiment);

  const Totals totals = count(report);
  CHECK(totals.spans == 3);
  CHECK(totals.changed_spans == 1);
  CHECK(totals.not_passed == 1);
  CHECK(totals.changes[0][0] == 1);  // policy, changed
  CHECK(totals.changes[1][1] == 2);  // normalize, added (span type, resource attribute)
  REQUIRE(totals.routes.size() == 2);
  CHECK(totals.routes[0].route.route == "team-a");
  CHECK(totals.routes[0].spans == 2);
  CHECK(totals.routes[1].spans == 0);
}

TEST_CASE("values are shortened on a character boundary and made safe for a terminal", "[app][explain]") {
  CHECK(display_value(text("LLM"), 72).text == "\"LLM\"");
  CHECK_FALSE(display_value(text("LLM"), 72).shortened);
  const DisplayValue cut = display_value(text(std::string(100, 'a')), 10);
  CHECK(cut.shortened);
  CHECK(cut.text == "\"aaaaaaaaaa\xE2\x80\xA6\"");
  // "é" is two bytes: never split.
  CHECK(display_value(text("\xC3\xA9\xC3\xA9\xC3\xA9"), 2).text == "\"\xC3\xA9\xC3\xA9\xE2\x80\xA6\"");
  CHECK(display_value(text("a\x1b[31mred\n\"q\""), 0).text == "\"a\\u001b[31mred\\n\\\"q\\\"\"");
  CHECK(display_value(text("x\xC2\x9b" "y"), 0).text == "\"x\\u009by\"");  // C1 CSI
  CHECK(display_value(text("bad\xff"), 0).text == "\"bad\\xff\"");
  CHECK(display_value(integer(0), 72).text == "0");
  otlp::AnyValue bytes;
  bytes.set_bytes_value(std::string("\x01\xab", 2));
  CHECK(display_value(bytes, 72).text == "0x01ab");
  CHECK(value_bytes(text("hello")) == 5);
  CHECK(value_bytes(integer(1234)) == 4);
}

namespace {

Report one_change_report() {
  Report report;
  ResourceReport& resource = report.resources.emplace_back();
  resource.service_name = "agent";
  resource.route = {"default", "default", true};
  resource.experiment = ExperimentRef::by_id("7");
  SpanReport& span = resource.spans.emplace_back();
  span.name = "chat gpt-4o";
  span.trace_id = std::string(32, 'a');
  span.span_id = std::string(16, 'b');
  Change change;
  change.key = "gen_ai.input.messages";
  change.before = text(std::string(200, 'p'));
  change.after = text("[masked: 200 bytes]");
  span.changes.push_back(change);
  SpanReport& quiet = resource.spans.emplace_back();
  quiet.name = "node __start__";
  quiet.trace_id = std::string(32, 'a');
  quiet.span_id = std::string(16, 'c');
  quiet.parent_span_id = std::string(16, 'b');
  return report;
}

}  // namespace

TEST_CASE("text output: route, each change before and after, unchanged spans, tally", "[app][explain]") {
  RunSummary run{"trace.json", "OTLP-JSON", 1, 2, 0, {}, std::nullopt, nullptr, nullptr};
  const std::string out = render_text(one_change_report(), run, {});
  CHECK_THAT(out, Catch::Contains("route \"default\" -> experiment id 7, policy \"default\""));
  CHECK_THAT(out, Catch::Contains("span \"chat gpt-4o\" bbbbbbbbbbbbbbbb (root): 1 change\n"));
  CHECK_THAT(out, Catch::Contains("    ~ gen_ai.input.messages (policy)\n        before: \"ppp"));
  CHECK_THAT(out, Catch::Contains("\xE2\x80\xA6\" (200 bytes)\n        after:  \"[masked: 200 bytes]\"\n"));
  CHECK_THAT(out, Catch::Contains("span \"node __start__\" cccccccccccccccc: unchanged"));
  CHECK_THAT(out, Catch::Contains("attributes by the policy: 1 changed, 0 added, 0 dropped"));
  CHECK_THAT(out, Catch::Contains(": 2 spans\n"));
  const std::string normalize_only = render_text(one_change_report(), run, {72, Stage::normalize});
  CHECK_THAT(normalize_only, Catch::Contains("span \"chat gpt-4o\" bbbbbbbbbbbbbbbb (root): unchanged"));
  CHECK_THAT(normalize_only, Catch::Contains("attributes by the policy: 1 changed"));  // whole tally
  const std::string full = render_text(one_change_report(), run, {0, std::nullopt});
  CHECK_THAT(full, Catch::Contains("\"" + std::string(200, 'p') + "\"\n"));
}

TEST_CASE("JSON output: one document with stable field names", "[app][explain]") {
  policy::PolicyStats policy_stats;
  policy::PolicyTally tally;
  ++tally.values[static_cast<std::size_t>(policy::PolicyMode::mask)][static_cast<std::size_t>(policy::Family::genai)];
  tally.spans = 2;
  policy_stats.add(tally);
  normalize::NormalizeStats normalize_stats;
  RunSummary run{"-", "protobuf", 1, 2, 0, {"1 invalid spans rejected"}, std::string("7"),
                 &policy_stats, &normalize_stats};
  const boost::json::value doc = boost::json::parse(render_json(one_change_report(), run));
  CHECK(doc.at("explain") == 1);
  CHECK(doc.at("input").at("source") == "-");
  CHECK(doc.at("input").at("header") == "7");
  const auto& resource = doc.at("resources").at(0);
  CHECK(resource.at("route") == "default");
  CHECK(resource.at("experiment").at("kind") == "id");
  CHECK(resource.at("experiment").at("value") == "7");
  const auto& change = resource.at("spans").at(0).at("changes").at(0);
  CHECK(change.at("stage") == "policy");
  CHECK(change.at("change") == "changed");
  CHECK(change.at("place") == "span");
  CHECK(change.at("key") == "gen_ai.input.messages");
  CHECK(change.at("before").at("bytes") == 200);
  CHECK(change.at("before").at("value").as_string().size() == 200);  // whole, not shortened
  CHECK(change.at("after").at("value") == "[masked: 200 bytes]");
  const auto& counted = doc.at("tally");
  CHECK(counted.at("spans") == 2);
  CHECK(counted.at("changes").at("policy").at("changed") == 1);
  CHECK(counted.at("policy").at("values").at(0).at("mode") == "mask");
  CHECK(counted.at("policy").at("values").at(0).at("family") == "genai");
  CHECK(counted.at("routes").at(0).at("spans") == 2);
}

namespace {

struct Ran {
  int code = 0;
  std::string out;
  std::string err;
};

Ran run_explain(const std::vector<std::string>& args, const std::string& stdin_text = "",
                const config::Environment& env = {}) {
  std::istringstream in(stdin_text);
  std::ostringstream out;
  std::ostringstream err;
  const int code = app::explain_main(args, env, in, out, err);
  return {code, out.str(), err.str()};
}

const std::string kJsonTrace = R"({"resourceSpans":[{"resource":{"attributes":[
  {"key":"service.name","value":{"stringValue":"team-a-planner"}}]},
  "scopeSpans":[{"scope":{"name":"ai.koog"},"spans":[{
  "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"chat gpt-4o",
  "startTimeUnixNano":"1","endTimeUnixNano":"2",
  "attributes":[{"key":"gen_ai.input.messages","value":{"stringValue":"What is the weather?"}}]}]}]}]})";

}  // namespace

TEST_CASE("explain_main: stdin, routes from the config, exit codes", "[app][explain]") {
  const Ran shown = run_explain({}, kJsonTrace);
  CHECK(shown.code == 0);
  CHECK_THAT(shown.out, Catch::Contains("explain stdin: OTLP-JSON, 1 request, 1 span"));
  CHECK_THAT(shown.out, Catch::Contains("after:  \"[masked: 20 bytes]\""));

  TempDir dir("explain-test");
  const std::string config = dir.write("proxy.yaml", R"yaml(
routes:
  - name: team-a
    match: {resource: {service.name: {glob: "team-a-*"}}}
    experiment_name: team-a-agents
    policy: verbose
)yaml");
  const Ran routed = run_explain({"--config", config, "--json", "-"}, kJsonTrace);
  CHECK(routed.code == 0);
  const boost::json::value doc = boost::json::parse(routed.out);
  CHECK(doc.at("resources").at(0).at("route") == "team-a");
  CHECK(doc.at("resources").at(0).at("experiment").at("value") == "team-a-agents");
  CHECK(doc.at("tally").at("changes").at("policy").at("changed") == 0);

  const Ran header = run_explain({"--header", "42", "--json"}, kJsonTrace);
  CHECK(boost::json::parse(header.out).at("resources").at(0).at("experiment").at("value") == "42");
  CHECK(run_explain({"--header", "abc"}, kJsonTrace).code == 1);

  const Ran bad_json = run_explain({}, "{\"resourceSpans\": 5}");
  CHECK(bad_json.code == 1);
  CHECK_THAT(bad_json.err, Catch::Contains("stdin: "));
  CHECK_THAT(bad_json.err, Catch::Contains("resourceSpans"));
  const Ran missing = run_explain({(dir.path() / "missing.pb").string()});
  CHECK(missing.code == 1);
  CHECK_THAT(missing.err, Catch::Contains("cannot read"));
  CHECK_THAT(missing.err, Catch::Contains("No such file or directory"));
  const Ran bad_config = run_explain({"--config", dir.write("bad.yaml", "policies:\n  p: {content: loud}\n")}, kJsonTrace);
  CHECK(bad_config.code == 1);
  CHECK_THAT(bad_config.err, Catch::Contains("configuration error: "));
  CHECK_THAT(bad_config.err, Catch::Contains("bad.yaml:2:"));
  CHECK(run_explain({"--bogus"}).code == 2);
  CHECK(run_explain({"a.json", "b.json"}).code == 2);
  CHECK(run_explain({"--help"}).code == 0);
}
