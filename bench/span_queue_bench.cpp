// How long the exporter's pop_batch holds the queue's lock while it drains a backlog, with the
// backlog's spans spread over several experiments: the case after an MLflow outage when routes
// send each service to its own experiment. Every pop takes that lock, and so does every
// acknowledged request's push, so a slow pop is added to the agents' acknowledgement latency.
//
//   span_queue_bench [items, default 200000] [max batch spans, default 8192]
//
// Prints, per number of interleaved experiments, the drain's total time and its slowest pop.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "queue/span_queue.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using proxy::ExperimentRef;
using proxy::queue::QueueItem;
using proxy::queue::SpanQueue;

constexpr std::size_t kPayloadBytes = 1200;  // one GenAI span, as older Koog sends them

struct DrainFigures {
  double total_ms = 0;
  double slowest_pop_ms = 0;
  std::size_t pops = 0;
  std::size_t items = 0;
};

DrainFigures drain(std::size_t items, std::size_t experiments, std::size_t max_batch_spans) {
  SpanQueue queue(items * (kPayloadBytes + 64));
  const std::string payload(kPayloadBytes, 'x');
  for (std::size_t i = 0; i < items; ++i) {
    std::vector<QueueItem> request(1);
    request[0].experiment = ExperimentRef::by_id(std::to_string(i % experiments));
    request[0].payload = payload;
    request[0].span_count = 1;
    if (queue.push(std::move(request)) != proxy::queue::PushResult::accepted) std::abort();
  }
  DrainFigures figures;
  const auto start = Clock::now();
  for (;;) {
    const auto pop_start = Clock::now();
    std::vector<QueueItem> batch = queue.pop_batch(64u << 20, max_batch_spans);
    const double pop_ms =
        std::chrono::duration<double, std::milli>(Clock::now() - pop_start).count();
    if (batch.empty()) break;
    figures.slowest_pop_ms = std::max(figures.slowest_pop_ms, pop_ms);
    ++figures.pops;
    figures.items += batch.size();
    queue.release(batch);
  }
  figures.total_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  return figures;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t items = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 200000;
  const std::size_t max_batch_spans = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 8192;
  std::printf("drain of %zu one-span items (%zu B), max_batch_spans %zu\n", items, kPayloadBytes,
              max_batch_spans);
  std::printf("%12s %10s %14s %8s\n", "experiments", "drain ms", "slowest pop ms", "pops");
  for (const std::size_t experiments : {1, 2, 8, 64}) {
    const DrainFigures figures = drain(items, experiments, max_batch_spans);
    if (figures.items != items) {
      std::fprintf(stderr, "lost items: %zu of %zu\n", items - figures.items, items);
      return 1;
    }
    std::printf("%12zu %10.1f %14.2f %8zu\n", experiments, figures.total_ms,
                figures.slowest_pop_ms, figures.pops);
  }
  return 0;
}
