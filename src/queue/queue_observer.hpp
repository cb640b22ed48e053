// What the queue tells the stages around it. Any number of observers subscribe to a SpanQueue
// (SpanQueue::subscribe), each once, and each hears every event: the exporter wakes its workers
// on a push, the spool marks records done on a release, routing decides when a held item goes.
// One interface instead of one callback slot per event, so a second listener cannot silently
// replace the first and the order the stages start in does not matter.
#pragma once

#include <vector>

#include "queue/queue_item.hpp"

namespace proxy::queue {

class QueueObserver {
 public:
  virtual ~QueueObserver() = default;

  // After every push, outside the queue's lock, with what the push left; must not block.
  virtual void on_available(const PushLevel&) {}

  // After popped items were released (delivered or dead-lettered), outside the queue's lock.
  virtual void on_released(const std::vector<QueueItem>&) {}

  // Whether a held item may go before its hold ends: called under the queue's lock, so it must
  // be quick and must not call back into the queue. The item goes when any observer says so.
  virtual bool hold_ready(const QueueItem&) const { return false; }

  // A held item is leaving the queue, outside the lock: the observer may rewrite its payload
  // (the queue's budget follows the new size).
  virtual void on_hold_released(QueueItem&) {}

 protected:
  QueueObserver() = default;
  QueueObserver(const QueueObserver&) = default;
  QueueObserver& operator=(const QueueObserver&) = default;
};

}  // namespace proxy::queue
