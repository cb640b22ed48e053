// Heap allocations on the batched path, per request and per span: the receiver's ingest (checks,
// policy, normalization, routing, queue; on the message path and on the wire path) and the
// exporter's batch (pop_batch, the body's slices), with the default config, on Koog-shaped requests of 1, 50 and 512 spans. Counted by
// replacing the global operator new (every C++ allocation, protobuf's arena blocks included),
// after a warm-up, so what remains is what every request pays. Each scenario also runs the wire
// path's stages that exist so far (checks, policy and normalization with its preview candidates
// on the bytes) on the same requests.
//
//   alloc_bench [requests per scenario, default 200] [default|verbose|no-normalize|bare]
// The variants take stages out to show what each costs: verbose (the policy changes nothing),
// no-normalize (normalization off), bare (both).
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include <boost/asio/buffer.hpp>

#include "agent_traffic.hpp"
#include "config/load.hpp"
#include "normalize/wire_normalize.hpp"
#include "otlp/wire_checks.hpp"
#include "policy/wire_policy.hpp"
#include "queue/span_queue.hpp"
#include "receiver/export_handler.hpp"
#include "routing/experiment_selector.hpp"
#include "routing/router.hpp"

namespace {

std::atomic<std::uint64_t> g_allocations{0};
std::atomic<std::uint64_t> g_bytes{0};

void* counted(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  g_bytes.fetch_add(size, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}

}  // namespace

void* operator new(std::size_t size) { return counted(size); }
void* operator new[](std::size_t size) { return counted(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

using namespace proxy;

struct Counts {
  std::uint64_t allocations = 0;
  std::uint64_t bytes = 0;
};

Counts now() { return {g_allocations.load(), g_bytes.load()}; }

// One request through the receiver's pipeline and out of the queue as the exporter takes it.
void one_request(receiver::ExportHandler& handler, queue::SpanQueue& queue, const std::string& body,
                 std::vector<boost::asio::const_buffer>& slices) {
  const receiver::IngestOutcome outcome =
      handler.ingest(body, otlp::BodyEncoding::protobuf, std::nullopt, "bench", nullptr);
  if (outcome.kind != receiver::IngestOutcome::Kind::accepted) {
    std::fprintf(stderr, "alloc_bench: a request was refused: %s\n", outcome.message.c_str());
    std::exit(1);
  }
  const std::vector<queue::QueueItem> batch = queue.pop_batch(64u << 20, 1u << 20);
  slices.clear();
  for (const queue::QueueItem& item : batch) slices.emplace_back(item.payload.data(), item.payload.size());
  queue.release(batch);
}

config::Config config_of(const std::string& variant) {
  config::Config config = config::load({}, {{"MLFLOW_EXPERIMENT_ID", "1"}}).config;
  if (variant == "verbose" || variant == "bare") config.default_route.policy = "verbose";
  if (variant == "no-normalize" || variant == "bare") config.default_route.normalize.enabled = false;
  return config;
}

void report(const char* path, const char* name, int spans, int requests, Counts before, Counts after) {
  const double per_request = static_cast<double>(after.allocations - before.allocations) / requests;
  const double bytes_per_request = static_cast<double>(after.bytes - before.bytes) / requests;
  std::printf("%-8s %-28s allocations/request %8.1f  per span %6.2f  bytes/request %10.0f  per span %7.0f\n",
              path, name, per_request, per_request / spans, bytes_per_request, bytes_per_request / spans);
}

// The wire path as far as it goes (the receiver's checks, then the route's policy and normalizer
// on the bytes), with the per-thread state it keeps between requests.
void run_wire(const char* name, int spans, const std::vector<std::string>& pool, int requests,
              const config::Config& config) {
  const policy::CompiledPolicy policy(*config::find_policy(config, config.default_route.policy));
  const otlp::AttributeLimits limits{config.receiver.max_attributes_per_span,
                                     config.receiver.max_attributes_per_event,
                                     config.receiver.max_attributes_per_link};
  otlp::wire::SpanChecker checker;
  policy::WireRewriter rewriter;
  const normalize::Normalizer normalizer(config.default_route.normalize);
  normalize::WireNormalizer normalization;
  normalize::PreviewCache previews{config.preview_cache};
  std::string checked;
  std::string out;
  std::string normalized;
  const auto one = [&](const std::string& body) {
    checked.clear();
    out.clear();
    const otlp::wire::ChecksResult result = checker.check(body, limits, checked);
    policy::PolicyTally tally;
    const std::string_view input =
        result.outcome == otlp::wire::ChecksOutcome::rewritten ? std::string_view(checked) : body;
    normalized.clear();
    normalize::NormalizeTally normalize_tally;
    const normalize::PreviewTarget target{"bench", &previews, normalize::PreviewCache::Clock::now()};
    if (rewriter.rewrite(policy, input, out, tally).outcome != policy::WireOutcome::rewritten ||
        normalization.normalize(normalizer, out, normalized, normalize_tally, &target).outcome !=
            policy::WireOutcome::rewritten) {
      std::fprintf(stderr, "alloc_bench: the wire path refused a request\n");
      std::exit(1);
    }
  };
  for (int i = 0; i < 64; ++i) one(pool[static_cast<std::size_t>(i) % pool.size()]);
  const Counts before = now();
  for (int i = 0; i < requests; ++i) one(pool[static_cast<std::size_t>(i) % pool.size()]);
  report("wire", name, spans, requests, before, now());
}

// The receiver's ingest and the exporter's batch as the daemon runs them: through the wire path
// ("ingest"), or with it off, every request decoded into messages ("message").
void run_ingest(const char* name, int spans, const std::vector<std::string>& pool, int requests,
                const config::Config& config, bool wire_path) {
  queue::SpanQueue queue(std::size_t{1} << 30);
  receiver::ReceiverStats stats;
  receiver::ExportHandler handler(config.receiver, config.queue,
                                  routing::ExperimentSelector(config.mlflow), queue, stats);
  handler.set_router(std::make_shared<const routing::Router>(config));
  handler.set_wire_path(wire_path);
  std::vector<boost::asio::const_buffer> slices;
  for (int i = 0; i < 64; ++i) one_request(handler, queue, pool[static_cast<std::size_t>(i) % pool.size()], slices);
  const Counts before = now();
  for (int i = 0; i < requests; ++i) {
    one_request(handler, queue, pool[static_cast<std::size_t>(i) % pool.size()], slices);
  }
  report(wire_path ? "ingest" : "message", name, spans, requests, before, now());
}

void run(const char* name, int spans, bench::Content content, int requests, const std::string& variant) {
  const config::Config config = config_of(variant);
  bench::TraceSource source(bench::Mix::koog, 0x5eedULL, content);
  std::vector<std::string> pool;
  for (int i = 0; i < 16; ++i) pool.push_back(bench::encode_request(source, spans));
  run_ingest(name, spans, pool, requests, config, false);
  run_ingest(name, spans, pool, requests, config, true);
  run_wire(name, spans, pool, requests, config);
}

}  // namespace

int main(int argc, char** argv) {
  const int requests = argc > 1 ? std::max(1, std::atoi(argv[1])) : 200;
  const std::string variant = argc > 2 ? argv[2] : "default";
  std::printf("config: %s\n", variant.c_str());
  run("1 span, ~1.5 KB content", 1, bench::Content::long_text, requests, variant);
  run("50 spans, short content", 50, bench::Content::short_text, requests, variant);
  run("50 spans, ~1.5 KB content", 50, bench::Content::long_text, requests, variant);
  run("512 spans, short content", 512, bench::Content::short_text, requests, variant);
  run("512 spans, ~1.5 KB content", 512, bench::Content::long_text, requests, variant);
  return 0;
}
