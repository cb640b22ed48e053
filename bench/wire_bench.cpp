// Spans per CPU-second on one core for the policy stage as the daemon runs it (decode into
// messages, apply(), serialize) and on the wire (WireRewriter: one pass over the bytes, kept
// ranges copied), on Koog-shaped requests of 50 and 512 spans with short and ~1.5 KB content,
// under the default policy (content masked leaf by leaf, structure kept; errors redacted). Then
// the receiver's whole data path before the queue under the default config (normalization and
// previews included): decode_and_check and Router::route against Router::route_wire, one route.
//
//   wire_bench [seconds per measurement, default 2] [routed: only the data-path rows] [scenario 0-4]
#include <cstdio>
#include <string_view>
#include <cstdlib>
#include <iterator>
#include <string>
#include <vector>

#include <google/protobuf/arena.h>

#include "agent_traffic.hpp"
#include "thread_cpu.hpp"
#include "otlp/protobuf.hpp"
#include "policy/policy.hpp"
#include "policy/wire_policy.hpp"
#include "receiver/export_handler.hpp"
#include "routing/router.hpp"

namespace {

using namespace proxy;

// Spans per CPU-second of step(body) over the pool.
template <typename Step>
double measure(const std::vector<std::string>& pool, int spans_per_request, double seconds, Step step) {
  return bench::spans_per_cpu_second(pool, spans_per_request, seconds, "wire_bench", 16, step);
}

struct Scenario {
  int spans;
  bench::Content content;
  const char* name;
};

double wire_path(const std::vector<std::string>& pool, int spans, const policy::CompiledPolicy& policy,
                 double seconds) {
  policy::WireRewriter rewriter;
  std::string out;
  return measure(pool, spans, seconds, [&](const std::string& body) {
    policy::PolicyTally tally;
    out.clear();
    return rewriter.rewrite(policy, body, out, tally).outcome == policy::WireOutcome::rewritten;
  });
}

// All verbose: the wire path's own cost (walk, checks, copies) without the per-value rewrites.
policy::CompiledPolicy verbose_policy() {
  config::PolicyConfig config;
  config.content = config.errors = config.other = config::PolicyMode::verbose;
  return policy::CompiledPolicy(config);
}

void run(const Scenario& scenario, const policy::CompiledPolicy& policy, double seconds) {
  bench::TraceSource source(bench::Mix::koog, 0x5eed'0f'a9e47ULL, scenario.content);
  std::vector<std::string> pool;
  std::size_t bytes = 0;
  for (int i = 0; i < 16; ++i) {
    pool.push_back(bench::encode_request(source, scenario.spans));
    bytes += pool.back().size();
  }
  std::string out;
  const double message = measure(pool, scenario.spans, seconds, [&](const std::string& body) {
    google::protobuf::Arena arena;
    auto* request = google::protobuf::Arena::CreateMessage<otlp::ExportRequest>(&arena);
    if (!otlp::decode_protobuf(body, *request).ok()) return false;
    policy::PolicyTally tally;
    for (auto& resource_spans : *request->mutable_resource_spans()) policy::apply(policy, resource_spans, tally);
    out.clear();
    return request->SerializeToString(&out);
  });
  const double wire = wire_path(pool, scenario.spans, policy, seconds);
  const double floor = wire_path(pool, scenario.spans, verbose_policy(), seconds);
  std::printf("%-28s %5zu B/span  message path %8.0f  wire path %8.0f spans/s (%.2fx)  wire, all verbose %8.0f\n",
              scenario.name, bytes / pool.size() / static_cast<std::size_t>(scenario.spans), message, wire,
              wire / message, floor);
}

// Checks, routing, policy and normalization, the message path against the wire path.
void run_routed(const Scenario& scenario, double seconds) {
  bench::TraceSource source(bench::Mix::koog, 0x5eed'0f'a9e47ULL, scenario.content);
  std::vector<std::string> pool;
  for (int i = 0; i < 16; ++i) pool.push_back(bench::encode_request(source, scenario.spans));
  config::Config config;
  config.mlflow.experiment_id = "1";
  const routing::Router router(config);
  const double message = measure(pool, scenario.spans, seconds, [&](const std::string& body) {
    google::protobuf::Arena arena;
    auto* request = google::protobuf::Arena::CreateMessage<otlp::ExportRequest>(&arena);
    const auto checked = receiver::decode_and_check(body, otlp::BodyEncoding::protobuf, config.receiver, *request);
    return checked.decoded.ok() && std::holds_alternative<std::vector<queue::QueueItem>>(router.route(*request, {}));
  });
  const otlp::AttributeLimits limits{config.receiver.max_attributes_per_span, config.receiver.max_attributes_per_event,
                                     config.receiver.max_attributes_per_link};
  const double wire = measure(pool, scenario.spans, seconds, [&](const std::string& body) {
    return router.route_wire(body, {}, limits, config.receiver.max_spans_per_request).outcome ==
           routing::WireRouted::Outcome::routed;
  });
  std::printf("%-28s route+normalize: message path %8.0f  wire path %8.0f spans/s (%.2fx)\n", scenario.name,
              message, wire, wire / message);
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
  const policy::CompiledPolicy policy{config::PolicyConfig{}};
  const Scenario scenarios[] = {
      {50, bench::Content::short_text, "50 spans, short content"},
      {50, bench::Content::long_text, "50 spans, ~1.5 KB content"},
      {512, bench::Content::short_text, "512 spans, short content"},
      {512, bench::Content::long_text, "512 spans, ~1.5 KB content"},
      // One span per request (Koog before 1.0): the per-request fixed cost of the data path.
      {1, bench::Content::long_text, "1 span, ~1.5 KB content"},
  };
  const bool routed_only = argc > 2 && std::string_view(argv[2]) == "routed";
  if (!routed_only) {
    for (const Scenario& scenario : scenarios) run(scenario, policy, seconds);
  }
  const int only = argc > 3 ? std::atoi(argv[3]) : -1;  // one scenario, e.g. for callgrind
  for (int i = 0; i < static_cast<int>(std::size(scenarios)); ++i) {
    if (only < 0 || only == i) run_routed(scenarios[i], seconds);
  }
}
