// What the queue carries and what it tells about it: the data types shared by the stages that
// fill, observe and drain the queue. Routing builds items and holds from these alone, without
// the queue itself.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mlflow/experiment_ref.hpp"

namespace proxy::queue {

// A hold on a queue item (normalize.preview_hold): the item is queued (acknowledged, counted
// against the budget, in the spool) but not handed to the exporter before `until`, unless the
// queue's observers say it may go earlier. `key` and `traces` are the hold observers' business
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
// spool and the budget. The root is filled when it leaves (an observer's on_hold_released),
// because only then is the late invoke_agent known.
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

}  // namespace proxy::queue
