// The hand-off between receiver and exporter: encoded spans, bounded by bytes. A request is
// acknowledged once its items are pushed; from then on the proxy owns them. Bytes stay counted
// until the exporter releases them (delivered or dead-lettered), so spans being retried still
// press on the budget and the receiver pushes back with 429 instead of growing without bound.
#pragma once

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

  // Up to the limits, the oldest item's experiment and the following items of that same
  // experiment, oldest first. At least one item when any is queued, even one over the limits.
  std::vector<QueueItem> pop_batch(std::size_t max_bytes, std::size_t max_spans);

  // Gives back the budget of popped items once they are delivered or dead-lettered.
  void release(std::size_t bytes);

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
  std::function<void()> on_items_available_;
};

}  // namespace proxy::queue
