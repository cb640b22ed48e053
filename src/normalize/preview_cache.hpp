// Trace previews (DESIGN.md "Normalization"). MLflow builds a trace's request/response preview
// only from its root span's inputs/outputs, once, when the root arrives. Koog's root
// (create_agent) has none, and ends (so is exported) after everything else. The cache remembers,
// per trace, the best inputs and outputs seen so far (after the policy of its route; keyed by
// route too, so a root never receives content from a route with a weaker policy) until the root
// arrives or the entry expires. Best, as Koog 1.0.0 really emits them:
//   3. invoke_agent's gen_ai.input.messages with a user message (outputs: an assistant message);
//   2. the agent graph's entry and exit: the earliest-starting Koog "__start__" node's input, the
//      latest-ending "__finish__" node's output (Koog 1.0.0's invoke_agent messages hold only the
//      system prompt, so this is what a Koog trace's preview shows);
//   1. invoke_agent's messages anyway.
// Values are stored in the chat shape MLflow previews ({"messages":[{"role","content"}]}).
//
// Bounded by bytes (key, values and bookkeeping) and by age; the oldest entries go first when a
// new one does not fit, and every eviction is counted. Thread-safe (one mutex: the work under it
// is a hash lookup and a string copy). The caller passes the time, so the stage has no clock.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "config/config.hpp"
#include "normalize/normalize.hpp"
#include "otlp/types.hpp"

namespace proxy::normalize {

struct Preview {
  std::string inputs;   // a serialized AnyValue; empty: none
  std::string outputs;  // a serialized AnyValue; empty: none
};

// One candidate for a trace's inputs or outputs.
struct PreviewPart {
  std::string value;        // a serialized AnyValue
  int rank = 0;             // higher wins
  std::uint64_t time = 0;   // equal ranks: inputs keep the earliest, outputs the latest
};

struct PreviewCacheStats {
  std::atomic<std::uint64_t> stored{0};
  std::atomic<std::uint64_t> used{0};             // roots given a preview
  std::atomic<std::uint64_t> evicted_full{0};     // oldest evicted to make room
  std::atomic<std::uint64_t> evicted_expired{0};  // older than the TTL
  std::atomic<std::uint64_t> too_large{0};        // one preview bigger than the whole cache
};

class PreviewCache {
 public:
  using Clock = std::chrono::steady_clock;

  explicit PreviewCache(const config::PreviewCacheConfig& config);

  // Keeps the better of the trace's known inputs (outputs) and these; an empty part is no
  // candidate.
  void offer(std::size_t route, std::string_view trace_id, PreviewPart inputs, PreviewPart outputs,
             Clock::time_point now);
  // The trace's preview, removed from the cache (a trace has one root); nullopt when unknown or
  // expired.
  std::optional<Preview> take(std::size_t route, std::string_view trace_id, Clock::time_point now);

  std::size_t bytes() const;
  std::size_t entries() const;
  const PreviewCacheStats& stats() const { return stats_; }

  // What an entry costs against max_bytes: its key, its values and a fixed bookkeeping estimate.
  static std::size_t entry_bytes(std::string_view trace_id, std::size_t value_bytes);

 private:
  struct Entry {
    std::string key;
    PreviewPart inputs;
    PreviewPart outputs;
    Clock::time_point expires;
    std::size_t bytes;
  };
  void expire_locked(Clock::time_point now);
  void erase_locked(std::list<Entry>::iterator it);
  static std::string key_of(std::size_t route, std::string_view trace_id);

  config::PreviewCacheConfig config_;
  mutable std::mutex mutex_;
  std::list<Entry> order_;  // oldest first; the TTL is fixed, so also soonest to expire first
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;  // views into Entry::key
  std::size_t bytes_ = 0;
  PreviewCacheStats stats_;
};

// Offers the candidates among the resource spans' non-root spans (see the ranks above).
void collect_previews(const Normalizer& normalizer, std::size_t route,
                      const otlp::ResourceSpans& resource_spans, PreviewCache& cache,
                      PreviewCache::Clock::time_point now);

// Gives root spans without inputs (outputs) their trace's remembered ones, as mlflow.spanInputs
// (mlflow.spanOutputs).
void fill_previews(const Normalizer& normalizer, std::size_t route,
                   otlp::ResourceSpans& resource_spans, PreviewCache& cache,
                   PreviewCache::Clock::time_point now, NormalizeTally& tally);

}  // namespace proxy::normalize
