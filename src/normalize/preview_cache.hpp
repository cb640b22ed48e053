// Trace previews (docs/architecture.md, "Stages"). MLflow builds a trace's request/response preview
// only from its root span's inputs/outputs, once, when the root arrives. Koog's root
// (create_agent) has none, and ends (so is exported) after everything else. The cache remembers,
// per trace, the best inputs and outputs seen so far (after the policy of its route; keyed by
// route too, so a root never receives content from a route with a weaker policy) until the root
// arrives or the entry expires. Best, as Koog 1.0.0 really emits them:
//   3. invoke_agent's gen_ai.input.messages with a user message (outputs: an assistant message);
//      else the first LLM call's (a chat span's) messages with a user message: Koog 1.x's
//      invoke_agent carries none, its chat spans do (masked leaf by leaf, roles kept);
//   2. the agent graph's entry and exit: the earliest-starting Koog "__start__" node's input, the
//      latest-ending "__finish__" node's output (Koog 1.0.0's invoke_agent messages hold only the
//      system prompt, so this is what a Koog trace's preview shows);
//   1. invoke_agent's messages anyway. Outputs: the last LLM call's answer ranks 2 when it has an
//      assistant message (the exit node, ending later, still wins), 1 otherwise.
// A candidate is kept as its value was sent (PreviewPart) and converted to the chat shape MLflow
// previews ({"messages":[{"role","content"}]}) only when a root takes it; its rank is decided when
// offered, by chat_summary, which reads GenAI messages as chat_preview does.
//
// Bounded by bytes (key, the candidates' bytes as stored, before conversion, and bookkeeping) and
// by age; the oldest entries go first when a new one does not fit, and every eviction is counted.
// Thread-safe (one mutex: the work under it is a hash lookup and a string copy; take() converts
// after it). The caller passes the time, so the stage has no clock.
//
// Koog sends a trace's spans in concurrent requests, so its root (create_agent) can arrive before
// the request with invoke_agent and its nodes. Such a root is held briefly (normalize.preview_hold,
// see SpanQueue's holds) and filled by fill_held_roots once its trace's invoke_agent arrived or
// the hold ran out.
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
#include <vector>

#include "config/config.hpp"
#include "normalize/normalize.hpp"
#include "normalize/span_view.hpp"
#include "otlp/types.hpp"

namespace proxy::normalize {

struct Preview {
  std::string inputs;   // a serialized AnyValue; empty: none
  std::string outputs;  // a serialized AnyValue; empty: none
};

// How a candidate's bytes become what the root shows.
enum class PreviewForm : std::uint8_t {
  serialized,  // a serialized AnyValue, shown as it is
  text,        // a string value's text: GenAI messages, JSON or plain text, put in the chat shape
};

// One candidate for a trace's inputs or outputs, kept as its source value is (its text, or a
// non-string value serialized) and put in the chat shape only when a root takes it: Koog's
// invoke_agent, chat and graph node spans all offer, one candidate per trace is shown.
struct PreviewPart {
  PreviewPart() = default;
  // Serialized bytes that outlive the offer.
  PreviewPart(std::string_view bytes, int rank_, std::uint64_t time_) : source(bytes), rank(rank_), time(time_) {}

  std::string_view source;  // the bytes, when they outlive the offer (see `owned`); empty: none
  int rank = 0;             // higher wins
  std::uint64_t time = 0;   // equal ranks: inputs keep the earliest, outputs the latest
  PreviewForm form = PreviewForm::serialized;
  bool owned = false;       // the bytes are `copy` (made for the offer, or the cache's own)
  std::string copy;         // kept with its capacity from offer to offer

  std::string_view bytes() const { return owned ? std::string_view(copy) : source; }
  bool empty() const { return bytes().empty(); }
  void clear();
  // Takes `other`'s candidate, its bytes copied into `copy` (its capacity reused).
  void assign(const PreviewPart& other);
};

struct PreviewCacheStats {
  std::atomic<std::uint64_t> stored{0};            // entries created
  std::atomic<std::uint64_t> hits{0};              // roots that found their trace's preview
  std::atomic<std::uint64_t> misses{0};            // roots that found none
  std::atomic<std::uint64_t> evicted_size{0};      // oldest evicted to make room
  std::atomic<std::uint64_t> evicted_ttl{0};       // older than the TTL
  std::atomic<std::uint64_t> evicted_oversize{0};  // one trace's preview bigger than the whole cache
  // normalize.preview_hold: roots that arrived before their trace's invoke_agent, and how their
  // hold ended.
  std::atomic<std::uint64_t> held{0};
  std::atomic<std::uint64_t> filled_after_hold{0};
  std::atomic<std::uint64_t> released_unfilled{0};
};

// Shared by every route and, through reloads, by every Router (so a SIGHUP does not forget the
// previews of traces in progress). Entries are keyed by trace and by a route key: the route's
// name, experiment and policy name, so a root only receives content from its own route, under
// the policy it was collected with; the content is its own trace's, already stored by MLflow in
// that experiment on the span it came from.
class PreviewCache {
 public:
  using Clock = std::chrono::steady_clock;

  explicit PreviewCache(const config::PreviewCacheConfig& config);

  // New limits (a reload): a smaller max_bytes evicts the oldest at once (counted as size), a
  // shorter ttl expires entries by their age.
  void reconfigure(const config::PreviewCacheConfig& config, Clock::time_point now);
  config::PreviewCacheConfig config() const;

  // Keeps the better of the trace's known inputs (outputs) and these; an empty part is no
  // candidate. `from_agent`: they come from the trace's invoke_agent span.
  // A losing candidate costs no allocation; a winning one is copied into the entry.
  void offer(std::string_view route, std::string_view trace_id, const PreviewPart& inputs,
             const PreviewPart& outputs, bool from_agent, Clock::time_point now);
  // The trace's preview in the chat shape, removed from the cache (a trace has one root); nullopt
  // when unknown or expired. Counted as a hit or a miss.
  std::optional<Preview> take(std::string_view route, std::string_view trace_id,
                              Clock::time_point now);
  // Whether the trace's invoke_agent has been offered (and not expired): a root need not wait.
  bool agent_seen(std::string_view route, std::string_view trace_id, Clock::time_point now) const;

  std::size_t bytes() const;
  std::size_t entries() const;
  const PreviewCacheStats& stats() const { return stats_; }
  PreviewCacheStats& stats() { return stats_; }

  // What an entry costs against max_bytes: its key, its candidates' bytes as stored (before their
  // conversion to the chat shape) and a fixed bookkeeping estimate.
  static std::size_t entry_bytes(std::string_view key, std::size_t value_bytes);

 private:
  struct Entry {
    std::string key;
    PreviewPart inputs;
    PreviewPart outputs;
    Clock::time_point created;
    std::size_t bytes;
    bool agent_seen;
  };
  void expire_locked(Clock::time_point now);
  void shrink_locked(std::list<Entry>::iterator keep);
  void erase_locked(std::list<Entry>::iterator it);
  // The key, in a buffer of the calling thread's (valid until its next call).
  static std::string_view key_of(std::string_view route, std::string_view trace_id);

  config::PreviewCacheConfig config_;
  mutable std::mutex mutex_;
  std::list<Entry> order_;  // oldest first; one TTL for all, so also soonest to expire first
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;  // views into Entry::key
  std::size_t bytes_ = 0;
  PreviewCacheStats stats_;
};

// What one span offers the cache: its trace and its candidates (empty parts: none).
struct PreviewOffer {
  std::string_view trace_id;
  PreviewPart inputs;
  PreviewPart outputs;
  bool from_agent = false;  // from the trace's invoke_agent span
};

// A request's offers, kept with their capacity from request to request: a warm list allocates
// nothing.
class PreviewOffers {
 public:
  // A cleared offer at the end.
  PreviewOffer& add();
  // Drops the last offer (one add() that offers nothing).
  void drop_last() { --size_; }
  void clear() { size_ = 0; }
  // Appends copies of `other`'s offers.
  void append(const PreviewOffers& other);
  std::size_t size() const { return size_; }
  const PreviewOffer* begin() const { return offers_.data(); }
  const PreviewOffer* end() const { return offers_.data() + size_; }

 private:
  std::vector<PreviewOffer> offers_;
  std::size_t size_ = 0;
};

// The candidates a non-root span, as its changes leave it, offers (see the ranks above); false
// when it offers none. Shared by collect_previews and the wire path. Their bytes view the span's
// values (which must outlive the offer) or are copied into the parts (values the changes made).
bool preview_offer(const SpanView& span, const SpanChanges& changes, PreviewOffer& offer);

// Offers the candidates among the resource spans' non-root spans (see the ranks above).
void collect_previews(const Normalizer& normalizer, std::string_view route,
                      const otlp::ResourceSpans& resource_spans, PreviewCache& cache,
                      PreviewCache::Clock::time_point now);

// Gives root spans without inputs (outputs) their trace's remembered ones, as mlflow.spanInputs
// (mlflow.spanOutputs). With normalize.preview_hold and `held`, a root whose trace's invoke_agent
// has not been seen yet is left unfilled and its trace id appended to `held`: the caller holds
// the root's queue item and calls fill_held_roots when the hold ends.
void fill_previews(const Normalizer& normalizer, std::string_view route,
                   otlp::ResourceSpans& resource_spans, PreviewCache& cache,
                   PreviewCache::Clock::time_point now, NormalizeTally& tally,
                   std::vector<std::string>* held = nullptr);

// fill_previews' decision for one span: a root lacking inputs (outputs) is held (given
// `may_hold`, when its trace's invoke_agent has not been seen; counted) or takes its trace's
// preview from the cache. The same on messages and on the wire.
struct RootFill {
  bool inputs = false;   // the root lacks inputs
  bool outputs = false;  // the root lacks outputs
  bool held = false;
  std::optional<Preview> preview;  // taken from the cache: the parts to add
};
RootFill decide_root_fill(std::string_view route, const SpanView& span, PreviewCache& cache,
                          PreviewCache::Clock::time_point now, bool may_hold);

// fill_previews on one span: a root without inputs (outputs) filled from the cache (true), or,
// given `held`, left unfilled and its trace appended to `held` (see decide_root_fill). The
// caller has checked that the normalizer fills previews.
bool fill_root_span(std::string_view route, otlp::Span& span, PreviewCache& cache,
                    PreviewCache::Clock::time_point now, NormalizeTally& tally, std::vector<std::string>* held);

// A root span of one of the held traces: what the router moves into the held item and what
// fill_held_roots fills when the hold ends.
bool is_held_root(const otlp::Span& span, const std::vector<std::string>& traces);

// The end of a hold: fills the held roots (their trace ids in `traces`) in `payload`, a
// serialized ExportTraceServiceRequest, from the cache; each counted as filled_after_hold or
// released_unfilled. Returns true when `payload` was rewritten.
bool fill_held_roots(std::string_view route, const std::vector<std::string>& traces,
                     std::string& payload, PreviewCache& cache, PreviewCache::Clock::time_point now);

}  // namespace proxy::normalize
