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
#include <mutex>
#include <string>
#include <vector>

#include "common/experiment_ref.hpp"

namespace proxy::queue {

// One request's spans for one experiment, as a serialized ExportTraceServiceRequest. Serialized
// requests concatenate into a valid request (repeated fields append), so batching is appending.
struct QueueItem {
  ExperimentRef experiment;
  std::string payload;
  std::uint32_t span_count = 0;
  std::uint64_t record_id = 0;  // the spool record holding it; 0 in memory mode
  std::chrono::steady_clock::time_point enqueued_at{};  // set by the queue, for the batch linger
};

enum class PushResult { accepted, full, closed };

struct QueueStats {
  std::size_t bytes = 0;        // held: queued plus handed out and not yet released
  std::size_t queued_items = 0;
  std::size_t queued_spans = 0;
  std::size_t max_bytes = 0;
};

class SpanQueue {
 public:
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
  std::chrono::steady_clock::duration linger_left(std::size_t max_bytes, std::size_t max_spans,
                                                  std::chrono::milliseconds linger) const;

  // Up to the limits, the oldest item's experiment and the following items of that same
  // experiment, oldest first. At least one item when any is queued, even one over the limits.
  std::vector<QueueItem> pop_batch(std::size_t max_bytes, std::size_t max_spans);

  // Gives back the budget of popped items once they are delivered or dead-lettered, and tells
  // the release hook (the spool marks their records done).
  void release(const std::vector<QueueItem>& items);
  // Budget only, without the release hook: for callers that run no spool (tests, fuzzing).
  void release(std::size_t bytes);
  void set_on_released(std::function<void(const std::vector<QueueItem>&)> callback);

  // Everything still queued, for dead-lettering at shutdown; their budget stays held.
  std::vector<QueueItem> take_all();

  // Called after a push makes items available (outside the lock; must not block).
  void set_on_items_available(std::function<void()> callback);

  // Refuses further pushes (shutdown); queued items remain for the exporter.
  void close();

  bool empty() const;
  QueueStats stats() const;

 private:
  mutable std::mutex mutex_;
  std::deque<QueueItem> items_;
  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
  std::size_t queued_spans_ = 0;
  bool closed_ = false;
  std::size_t queued_bytes_ = 0;
  std::function<void()> on_items_available_;
  std::function<void(const std::vector<QueueItem>&)> on_released_;
};

}  // namespace proxy::queue
