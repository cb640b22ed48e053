// The hand-off between receiver and exporter: encoded spans, bounded by bytes. A request is
// acknowledged once its items are pushed; from then on the proxy owns them. Bytes stay counted
// until the exporter releases them (delivered or dead-lettered), so spans being retried still
// press on the budget and the receiver pushes back with 429 instead of growing without bound.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/experiment_ref.hpp"

namespace proxy::queue {

// A hold on a queue item (normalize.preview_hold): the item is queued (acknowledged, counted
// against the budget, in the spool) but not handed to the exporter before `until`, unless the
// queue's ready hook says it may go earlier. `key` and `traces` are the hold hooks' business
// (normalize: the preview cache's route key and the held roots' trace ids).
//
// Why here: the hold must start after the acknowledgement (the client is answered at once) and
// must not put acknowledged spans anywhere the durability rules do not reach. A held item is
// an ordinary queue item that pop_batch passes over: it is in the spool before the ack (disk),
// counts against the budget, and empty()/take_all() see it, so drain and shutdown deliver,
// spool or dead-letter it like any other. pop_batch skips it without stopping, so other traces
// and experiments are not blocked, and linger_left wakes a worker when the hold ends, so it is
// not delayed longer. Holding in the exporter instead would pin one of its few workers (or
// re-queue batches), and a stage before the queue would hold acknowledged spans outside the
// spool and the budget. The root is filled when it leaves (the release hook), because only then
// is the late invoke_agent known.
struct Hold {
  std::chrono::steady_clock::time_point until{};
  std::string key;
  std::vector<std::string> traces;
};

// One request's spans for one experiment, as a serialized ExportTraceServiceRequest. Serialized
// requests concatenate into a valid request (repeated fields append), so batching is appending.
struct QueueItem {
  ExperimentRef experiment;
  std::string payload;
  std::uint32_t span_count = 0;
  std::uint64_t record_id = 0;  // the spool record holding it; 0 in memory mode
  std::chrono::steady_clock::time_point enqueued_at{};  // set by the queue, for the batch linger
  std::shared_ptr<const Hold> hold{};  // null: exported as soon as batching allows
  std::uint64_t sequence = 0;  // set by the queue: arrival order across experiments
};

enum class PushResult { accepted, full, closed };

// What a push left in the queue. The consumer decides from it whether a worker waiting for a
// fuller batch must look again: it need not wake for every request, only when this push starts a
// batch's linger (nothing was available before it) or fills a batch.
struct PushLevel {
  bool was_empty = false;         // nothing was available to pop before it (held items aside)
  std::size_t queued_spans = 0;   // available to pop after it
  std::size_t queued_bytes = 0;
};

// Whether spans and bytes available to pop make a full batch: a worker stops lingering. One
// rule for SpanQueue::linger_left and for the consumer's wake-up on a push, so they cannot drift.
inline bool fills_batch(std::size_t spans, std::size_t bytes, std::size_t max_spans,
                        std::size_t max_bytes) {
  return spans >= max_spans || bytes >= max_bytes;
}

struct QueueStats {
  std::size_t bytes = 0;        // held: queued plus handed out and not yet released
  std::size_t queued_items = 0;  // held items included
  std::size_t queued_spans = 0;  // held items' spans included
  std::size_t max_bytes = 0;
  std::size_t held_items = 0;  // items under a hold (Hold), not yet available to the exporter
};

class SpanQueue {
 public:
  using Clock = std::chrono::steady_clock;

  explicit SpanQueue(std::size_t max_bytes);

  // All of one request's items or none, so a client never sees half of its request accepted.
  PushResult push(std::vector<QueueItem>&& items);

  // Two-step push for the disk spool: the budget is taken when the request arrives (so a full
  // queue answers 429 at once), the items are pushed once the spool has written them.
  PushResult reserve(std::size_t bytes);
  void push_reserved(std::vector<QueueItem>&& items);
  void cancel_reservation(std::size_t bytes);
  // Items recovered from the spool at start: pushed even over the budget (they were
  // acknowledged already), which then answers 429 until enough is delivered.
  void push_recovered(std::vector<QueueItem>&& items);

  // How long a worker should wait for a fuller batch: zero once the queued spans reach the batch
  // limits, or the oldest has waited `linger`, or nothing is queued.
  // Held items count from the end of their hold (or from when the ready hook lets them go).
  Clock::duration linger_left(std::size_t max_bytes, std::size_t max_spans,
                              std::chrono::milliseconds linger, Clock::time_point now = Clock::now()) const;

  // Up to the limits, the oldest item's experiment and the following items of that same
  // experiment, oldest first. At least one item when any is available, even one over the
  // limits. Held items become available when their hold ends or the ready hook says so; before
  // a held item is returned its release hook runs (outside the lock) and the budget follows any
  // change of its payload's size.
  std::vector<QueueItem> pop_batch(std::size_t max_bytes, std::size_t max_spans,
                                   Clock::time_point now = Clock::now());

  // The hold hooks: `ready` (called under the queue's lock: must be quick and must not call
  // back into the queue) may let a held item go before its hold ends; `release` may rewrite a
  // held item's payload when it goes. Set before the exporter starts.
  void set_hold_hooks(std::function<bool(const QueueItem&)> ready,
                      std::function<void(QueueItem&)> release);

  // Gives back the budget of popped items once they are delivered or dead-lettered, and tells
  // the release hook (the spool marks their records done).
  void release(const std::vector<QueueItem>& items);
  // Budget only, without the release hook: for callers that run no spool (tests, fuzzing).
  void release(std::size_t bytes);
  void set_on_released(std::function<void(const std::vector<QueueItem>&)> callback);

  // Everything still queued, held items included, for dead-lettering at shutdown; their budget
  // stays held.
  std::vector<QueueItem> take_all();

  // Called after every push (outside the lock; must not block), with what the push left.
  void set_on_items_available(std::function<void(const PushLevel&)> callback);

  // Refuses further pushes (shutdown); queued items remain for the exporter.
  void close();

  bool empty() const;
  QueueStats stats() const;

 private:
  // The available items of one experiment, oldest first. pop_batch takes a batch from the
  // front of one lane, so its cost is the batch's, however the backlog's experiments
  // interleave; one queue of all items had to step over and erase from the middle of other
  // experiments' items, which held the lock for seconds on a backlog of a few experiments.
  struct Lane {
    ExperimentRef experiment;
    std::deque<QueueItem> items;
  };

  void enqueue_locked(QueueItem&& item, Clock::time_point now);
  PushLevel enqueue_all_locked(std::vector<QueueItem>&& items);
  void promote_locked(Clock::time_point now);
  bool releasable_locked(const QueueItem& item, Clock::time_point now) const;
  Lane& lane_locked(const ExperimentRef& experiment);
  std::vector<Lane>::iterator oldest_lane_locked();
  std::size_t ready_items_locked() const;  // in lanes_

  mutable std::mutex mutex_;
  std::vector<Lane> lanes_;  // one per experiment with available items (few); none empty
  std::uint64_t next_sequence_ = 1;
  std::deque<QueueItem> held_;  // items under a hold, in arrival order; few (agent roots)
  std::size_t held_spans_ = 0;
  std::function<bool(const QueueItem&)> hold_ready_;
  std::function<void(QueueItem&)> hold_release_;
  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
  std::size_t queued_spans_ = 0;
  bool closed_ = false;
  std::size_t queued_bytes_ = 0;
  std::function<void(const PushLevel&)> on_items_available_;
  std::function<void(const std::vector<QueueItem>&)> on_released_;
};

}  // namespace proxy::queue
