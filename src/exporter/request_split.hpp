// Narrowing down a request MLflow refuses as a whole (a 400 for one bad span, a 413): a batch of
// several client requests splits into those requests, a request into its traces, a trace into
// its spans, so that only what MLflow refuses on its own is dead-lettered. Each span keeps its
// resource and scope. Pure.
#pragma once

#include <string_view>
#include <vector>

#include "queue/span_queue.hpp"

namespace proxy::exporter {

enum class SplitUnit { request, trace, span };

struct RequestSplit {
  SplitUnit unit = SplitUnit::request;
  // Each part as queue items carrying the part's own payload and span count. Fewer than two
  // when the request cannot be split (one span, or a payload that does not parse).
  std::vector<std::vector<queue::QueueItem>> parts;
};

RequestSplit split_request(const std::vector<queue::QueueItem>& batch);

// "request", "trace", "span", for logs.
std::string_view split_unit_name(SplitUnit unit);

}  // namespace proxy::exporter
