// The hand-off between receiver and exporter: encoded spans, bounded by bytes. A request is
// acknowledged once its items are pushed; from then on the proxy owns them. Bytes stay counted
// until the exporter releases them (delivered or dead-lettered), so spans being retried still
// press on the budget and the receiver pushes back with 429 instead of growing without bound.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "queue/queue_item.hpp"
#include "queue/queue_observer.hpp"

namespace proxy::queue {

enum class PushResult { accepted, full, closed };

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
  // Held items count from the end of their hold (or from when an observer lets them go).
  Clock::duration linger_left(std::size_t max_bytes, std::size_t max_spans,
                              std::chrono::milliseconds linger, Clock::time_point now = Clock::now()) const;

  // Up to the limits, the oldest item's experiment and the following items of that same
  // experiment, oldest first. At least one item when any is available, even one over the
  // limits. Held items become available when their hold ends or an observer's hold_ready says
  // so; before a held item is returned the observers' on_hold_released run (outside the lock)
  // and the budget follows any change of its payload's size.
  std::vector<QueueItem> pop_batch(std::size_t max_bytes, std::size_t max_spans,
                                   Clock::time_point now = Clock::now());

  // Adds an observer, told of every event from now on, after those subscribed before it. Each
  // stage subscribes once, before it starts; `observer` must stay alive until it unsubscribes
  // or the queue is gone. Subscribing one observer twice is refused (it would hear twice).
  void subscribe(QueueObserver& observer);
  // Stops telling `observer`. A notification already under way (outside the lock) may still
  // reach it, so stop what it calls into only after the queue's producers and consumers.
  void unsubscribe(QueueObserver& observer);

  // Gives back the budget of popped items once they are delivered or dead-lettered, and tells
  // the observers (the spool marks their records done).
  void release(const std::vector<QueueItem>& items);
  // Budget only, without telling the observers: for callers that run no spool (tests, fuzzing).
  void release(std::size_t bytes);

  // Everything still queued, held items included, for dead-lettering at shutdown; their budget
  // stays held.
  std::vector<QueueItem> take_all();

  // Refuses further pushes (shutdown); queued items remain for the exporter.
  void close();

  bool empty() const;
  QueueStats stats() const;

 private:
  // Copied on (un)subscribe, which is rare, so that a notification takes a reference under the
  // lock and calls the observers outside it without copying the list.
  using Observers = std::vector<QueueObserver*>;
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
  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
  std::size_t queued_spans_ = 0;
  bool closed_ = false;
  std::size_t queued_bytes_ = 0;
  std::shared_ptr<const Observers> observers_ = std::make_shared<const Observers>();  // see Observers
};

}  // namespace proxy::queue
