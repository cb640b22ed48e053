#include "queue/span_queue.hpp"

#include <algorithm>
#include <utility>

namespace proxy::queue {
namespace {

void notify_available(const std::vector<QueueObserver*>& observers, const PushLevel& level) {
  for (QueueObserver* observer : observers) observer->on_available(level);
}

// Runs the observers' on_hold_released on the batch's held items and returns by how much their
// payloads grew and shrank, for the budget.
std::pair<std::size_t, std::size_t> release_holds(const std::vector<QueueObserver*>& observers,
                                                  std::vector<QueueItem>& batch) {
  std::size_t grown = 0;
  std::size_t shrunk = 0;
  for (QueueItem& item : batch) {
    if (!item.hold) continue;
    const std::size_t before = item.payload.size();
    for (QueueObserver* observer : observers) observer->on_hold_released(item);
    item.hold.reset();
    if (item.payload.size() > before) grown += item.payload.size() - before;
    else shrunk += before - item.payload.size();
  }
  return {grown, shrunk};
}

}  // namespace

SpanQueue::SpanQueue(std::size_t max_bytes) : max_bytes_(max_bytes) {}

PushResult SpanQueue::push(std::vector<QueueItem>&& items) {
  std::size_t incoming = 0;
  for (const auto& item : items) incoming += item.payload.size();
  std::shared_ptr<const Observers> observers;
  PushLevel level;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return PushResult::closed;
    if (bytes_ + incoming > max_bytes_) return PushResult::full;
    bytes_ += incoming;
    level = enqueue_all_locked(std::move(items));
    observers = observers_;
  }
  notify_available(*observers, level);
  return PushResult::accepted;
}

PushLevel SpanQueue::enqueue_all_locked(std::vector<QueueItem>&& items) {
  const auto now = Clock::now();
  const bool was_empty = lanes_.empty();
  for (auto& item : items) enqueue_locked(std::move(item), now);
  return {was_empty, queued_spans_, queued_bytes_};
}

PushResult SpanQueue::reserve(std::size_t bytes) {
  std::lock_guard lock(mutex_);
  if (closed_) return PushResult::closed;
  if (bytes_ + bytes > max_bytes_) return PushResult::full;
  bytes_ += bytes;
  return PushResult::accepted;
}

void SpanQueue::enqueue_locked(QueueItem&& item, Clock::time_point now) {
  item.enqueued_at = now;
  item.sequence = next_sequence_++;
  if (item.hold) {
    held_spans_ += item.span_count;
    held_.push_back(std::move(item));
    return;
  }
  queued_bytes_ += item.payload.size();
  queued_spans_ += item.span_count;
  lane_locked(item.experiment).items.push_back(std::move(item));
}

// A linear search: lanes exist only for experiments with a backlog, and the last one used is
// the likely one.
SpanQueue::Lane& SpanQueue::lane_locked(const ExperimentRef& experiment) {
  for (auto lane = lanes_.rbegin(); lane != lanes_.rend(); ++lane) {
    if (lane->experiment == experiment) return *lane;
  }
  return lanes_.emplace_back(Lane{experiment, {}});
}

std::size_t SpanQueue::ready_items_locked() const {
  std::size_t items = 0;
  for (const Lane& lane : lanes_) items += lane.items.size();
  return items;
}

// The lane whose front item arrived first; lanes_ must not be empty.
std::vector<SpanQueue::Lane>::iterator SpanQueue::oldest_lane_locked() {
  return std::min_element(lanes_.begin(), lanes_.end(), [](const Lane& a, const Lane& b) {
    return a.items.front().sequence < b.items.front().sequence;
  });
}

// Once closed (shutting down) nothing waits: the drain delivers held items at once.
bool SpanQueue::releasable_locked(const QueueItem& item, Clock::time_point now) const {
  if (closed_ || now >= item.hold->until) return true;
  return std::any_of(observers_->begin(), observers_->end(),
                     [&item](const QueueObserver* observer) { return observer->hold_ready(item); });
}

// Held items whose hold ended go to the front of their lane: they are older than what arrived
// meanwhile.
void SpanQueue::promote_locked(Clock::time_point now) {
  std::vector<QueueItem> promoted;
  for (auto it = held_.begin(); it != held_.end();) {
    if (!releasable_locked(*it, now)) {
      ++it;
      continue;
    }
    held_spans_ -= it->span_count;
    queued_bytes_ += it->payload.size();
    queued_spans_ += it->span_count;
    promoted.push_back(std::move(*it));
    it = held_.erase(it);
  }
  for (auto it = promoted.rbegin(); it != promoted.rend(); ++it) {
    lane_locked(it->experiment).items.push_front(std::move(*it));
  }
}

void SpanQueue::subscribe(QueueObserver& observer) {
  std::lock_guard lock(mutex_);
  if (std::find(observers_->begin(), observers_->end(), &observer) != observers_->end()) return;
  auto observers = std::make_shared<Observers>(*observers_);
  observers->push_back(&observer);
  observers_ = std::move(observers);
}

void SpanQueue::unsubscribe(QueueObserver& observer) {
  std::lock_guard lock(mutex_);
  auto observers = std::make_shared<Observers>(*observers_);
  std::erase(*observers, &observer);
  observers_ = std::move(observers);
}

void SpanQueue::push_reserved(std::vector<QueueItem>&& items) {
  std::shared_ptr<const Observers> observers;
  PushLevel level;
  {
    std::lock_guard lock(mutex_);
    level = enqueue_all_locked(std::move(items));
    observers = observers_;
  }
  notify_available(*observers, level);
}

void SpanQueue::cancel_reservation(std::size_t bytes) {
  std::lock_guard lock(mutex_);
  bytes_ -= std::min(bytes, bytes_);
}

void SpanQueue::push_recovered(std::vector<QueueItem>&& items) {
  std::size_t bytes = 0;
  for (const auto& item : items) bytes += item.payload.size();
  {
    std::lock_guard lock(mutex_);
    bytes_ += bytes;
  }
  push_reserved(std::move(items));
}

SpanQueue::Clock::duration SpanQueue::linger_left(std::size_t max_bytes, std::size_t max_spans,
                                                  std::chrono::milliseconds linger,
                                                  Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  if (lanes_.empty() && held_.empty()) return {};
  if (!lanes_.empty() && fills_batch(queued_spans_, queued_bytes_, max_spans, max_bytes)) return {};
  Clock::time_point ready_at = Clock::time_point::max();
  for (const Lane& lane : lanes_) ready_at = std::min(ready_at, lane.items.front().enqueued_at + linger);
  for (const QueueItem& item : held_) {
    const Clock::time_point hold_end = releasable_locked(item, now) ? now : item.hold->until;
    ready_at = std::min(ready_at, std::max(hold_end, item.enqueued_at + linger));
  }
  return ready_at > now ? ready_at - now : Clock::duration{};
}

std::vector<QueueItem> SpanQueue::pop_batch(std::size_t max_bytes, std::size_t max_spans,
                                            Clock::time_point now) {
  std::vector<QueueItem> batch;
  std::shared_ptr<const Observers> hold_observers;  // set when the batch holds a held item
  {
    std::lock_guard lock(mutex_);
    if (!held_.empty()) promote_locked(now);
    if (lanes_.empty()) return batch;
    const auto lane = oldest_lane_locked();
    std::size_t batch_bytes = 0;
    std::size_t batch_spans = 0;
    while (!lane->items.empty()) {
      QueueItem& item = lane->items.front();
      const bool fits = batch_bytes + item.payload.size() <= max_bytes &&
                        batch_spans + item.span_count <= max_spans;
      if (!batch.empty() && !fits) break;
      batch_bytes += item.payload.size();
      batch_spans += item.span_count;
      queued_spans_ -= item.span_count;
      queued_bytes_ -= item.payload.size();
      if (item.hold && !hold_observers) hold_observers = observers_;
      batch.push_back(std::move(item));
      lane->items.pop_front();
    }
    if (lane->items.empty()) lanes_.erase(lane);
  }
  if (!hold_observers) return batch;  // no held item: none has a hold to reset
  // Held items leave with the observers' on_hold_released run, outside the lock (it may parse
  // and rewrite the payload); the budget follows the payload's new size.
  const auto [grown, shrunk] = release_holds(*hold_observers, batch);
  if (grown != shrunk) {
    std::lock_guard lock(mutex_);
    bytes_ = bytes_ + grown - std::min(shrunk, bytes_ + grown);
  }
  return batch;
}

void SpanQueue::release(const std::vector<QueueItem>& items) {
  std::size_t bytes = 0;
  for (const auto& item : items) bytes += item.payload.size();
  std::shared_ptr<const Observers> observers;
  {
    std::lock_guard lock(mutex_);
    bytes_ -= std::min(bytes, bytes_);
    observers = observers_;
  }
  for (QueueObserver* observer : *observers) observer->on_released(items);
}

void SpanQueue::release(std::size_t bytes) {
  std::lock_guard lock(mutex_);
  bytes_ -= std::min(bytes, bytes_);
}

std::vector<QueueItem> SpanQueue::take_all() {
  std::lock_guard lock(mutex_);
  std::vector<QueueItem> all;
  all.reserve(ready_items_locked() + held_.size());
  for (Lane& lane : lanes_) {
    for (auto& item : lane.items) all.push_back(std::move(item));
  }
  // Arrival order across experiments, as they were queued; held items after them.
  std::stable_sort(all.begin(), all.end(), [](const QueueItem& a, const QueueItem& b) {
    return a.sequence < b.sequence;
  });
  for (auto& item : held_) all.push_back(std::move(item));
  lanes_.clear();
  held_.clear();
  queued_bytes_ = 0;
  queued_spans_ = 0;
  held_spans_ = 0;
  return all;
}

void SpanQueue::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
}

bool SpanQueue::empty() const {
  std::lock_guard lock(mutex_);
  return lanes_.empty() && held_.empty();
}

QueueStats SpanQueue::stats() const {
  std::lock_guard lock(mutex_);
  return {bytes_, ready_items_locked() + held_.size(), queued_spans_ + held_spans_, max_bytes_,
          held_.size()};
}

}  // namespace proxy::queue
