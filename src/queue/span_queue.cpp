#include "queue/span_queue.hpp"

#include <algorithm>

namespace proxy::queue {

SpanQueue::SpanQueue(std::size_t max_bytes) : max_bytes_(max_bytes) {}

PushResult SpanQueue::push(std::vector<QueueItem>&& items) {
  std::size_t incoming = 0;
  std::size_t spans = 0;
  for (const auto& item : items) {
    incoming += item.payload.size();
    spans += item.span_count;
  }
  const auto now = std::chrono::steady_clock::now();
  std::function<void()> notify;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return PushResult::closed;
    if (bytes_ + incoming > max_bytes_) return PushResult::full;
    bytes_ += incoming;
    queued_bytes_ += incoming;
    queued_spans_ += spans;
    for (auto& item : items) {
      item.enqueued_at = now;
      items_.push_back(std::move(item));
    }
    notify = on_items_available_;
  }
  if (notify) notify();
  return PushResult::accepted;
}

PushResult SpanQueue::reserve(std::size_t bytes) {
  std::lock_guard lock(mutex_);
  if (closed_) return PushResult::closed;
  if (bytes_ + bytes > max_bytes_) return PushResult::full;
  bytes_ += bytes;
  return PushResult::accepted;
}

void SpanQueue::push_reserved(std::vector<QueueItem>&& items) {
  const auto now = std::chrono::steady_clock::now();
  std::function<void()> notify;
  {
    std::lock_guard lock(mutex_);
    for (auto& item : items) {
      item.enqueued_at = now;
      queued_bytes_ += item.payload.size();
      queued_spans_ += item.span_count;
      items_.push_back(std::move(item));
    }
    notify = on_items_available_;
  }
  if (notify) notify();
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

std::chrono::steady_clock::duration SpanQueue::linger_left(std::size_t max_bytes,
                                                           std::size_t max_spans,
                                                           std::chrono::milliseconds linger) const {
  std::lock_guard lock(mutex_);
  if (items_.empty() || queued_bytes_ >= max_bytes || queued_spans_ >= max_spans) return {};
  const auto ready_at = items_.front().enqueued_at + linger;
  const auto now = std::chrono::steady_clock::now();
  return ready_at > now ? ready_at - now : std::chrono::steady_clock::duration{};
}

std::vector<QueueItem> SpanQueue::pop_batch(std::size_t max_bytes, std::size_t max_spans) {
  std::vector<QueueItem> batch;
  std::lock_guard lock(mutex_);
  if (items_.empty()) return batch;
  const ExperimentRef experiment = items_.front().experiment;
  std::size_t batch_bytes = 0;
  std::size_t batch_spans = 0;
  for (auto it = items_.begin(); it != items_.end();) {
    if (!(it->experiment == experiment)) {
      ++it;
      continue;
    }
    const bool fits = batch_bytes + it->payload.size() <= max_bytes &&
                      batch_spans + it->span_count <= max_spans;
    if (!batch.empty() && !fits) break;
    batch_bytes += it->payload.size();
    batch_spans += it->span_count;
    queued_spans_ -= it->span_count;
    queued_bytes_ -= it->payload.size();
    batch.push_back(std::move(*it));
    it = items_.erase(it);
  }
  return batch;
}

void SpanQueue::release(const std::vector<QueueItem>& items) {
  std::size_t bytes = 0;
  for (const auto& item : items) bytes += item.payload.size();
  std::function<void(const std::vector<QueueItem>&)> released;
  {
    std::lock_guard lock(mutex_);
    bytes_ -= std::min(bytes, bytes_);
    released = on_released_;
  }
  if (released) released(items);
}

void SpanQueue::release(std::size_t bytes) {
  std::lock_guard lock(mutex_);
  bytes_ -= std::min(bytes, bytes_);
}

void SpanQueue::set_on_released(std::function<void(const std::vector<QueueItem>&)> callback) {
  std::lock_guard lock(mutex_);
  on_released_ = std::move(callback);
}

std::vector<QueueItem> SpanQueue::take_all() {
  std::lock_guard lock(mutex_);
  std::vector<QueueItem> all(std::make_move_iterator(items_.begin()),
                             std::make_move_iterator(items_.end()));
  items_.clear();
  queued_bytes_ = 0;
  queued_spans_ = 0;
  return all;
}

void SpanQueue::set_on_items_available(std::function<void()> callback) {
  std::lock_guard lock(mutex_);
  on_items_available_ = std::move(callback);
}

void SpanQueue::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
}

bool SpanQueue::empty() const {
  std::lock_guard lock(mutex_);
  return items_.empty();
}

QueueStats SpanQueue::stats() const {
  std::lock_guard lock(mutex_);
  return {bytes_, items_.size(), queued_spans_, max_bytes_};
}

}  // namespace proxy::queue
