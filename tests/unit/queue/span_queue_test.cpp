#include <catch2/catch.hpp>

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "queue/span_queue.hpp"

using proxy::ExperimentRef;
using namespace proxy::queue;

namespace {

std::vector<QueueItem> items(const ExperimentRef& experiment, std::size_t bytes, std::uint32_t spans = 1) {
  std::vector<QueueItem> out;
  out.push_back({experiment, std::string(bytes, 'x'), spans});
  return out;
}

// An observer made of callbacks, for tests; those left empty do nothing.
struct TestObserver final : QueueObserver {
  std::function<void(const PushLevel&)> available;
  std::function<void(const std::vector<QueueItem>&)> released;
  std::function<bool(const QueueItem&)> ready;
  std::function<void(QueueItem&)> hold_released;

  void on_available(const PushLevel& level) override {
    if (available) available(level);
  }
  void on_released(const std::vector<QueueItem>& items) override {
    if (released) released(items);
  }
  bool hold_ready(const QueueItem& item) const override { return ready && ready(item); }
  void on_hold_released(QueueItem& item) override {
    if (hold_released) hold_released(item);
  }
};

}  // namespace

TEST_CASE("the queue refuses a push that would pass its byte budget", "[queue]") {
  SpanQueue queue(100);
  CHECK(queue.push(items(ExperimentRef::by_id("1"), 60)) == PushResult::accepted);
  CHECK(queue.push(items(ExperimentRef::by_id("1"), 41)) == PushResult::full);
  CHECK(queue.push(items(ExperimentRef::by_id("1"), 40)) == PushResult::accepted);
  CHECK(queue.stats().bytes == 100);
}

TEST_CASE("popped items keep their budget until released", "[queue]") {
  SpanQueue queue(100);
  REQUIRE(queue.push(items(ExperimentRef::by_id("1"), 100)) == PushResult::accepted);
  const auto batch = queue.pop_batch(1000, 1000);
  REQUIRE(batch.size() == 1);
  CHECK(queue.push(items(ExperimentRef::by_id("1"), 1)) == PushResult::full);
  queue.release(batch);
  CHECK(queue.push(items(ExperimentRef::by_id("1"), 1)) == PushResult::accepted);
}

TEST_CASE("a batch holds one experiment, oldest first, within the limits", "[queue]") {
  SpanQueue queue(1000);
  const auto a = ExperimentRef::by_id("1");
  const auto b = ExperimentRef::by_name("other");
  queue.push(items(a, 10, 2));
  queue.push(items(b, 10, 1));
  queue.push(items(a, 10, 3));
  queue.push(items(a, 10, 4));
  auto batch = queue.pop_batch(1000, 5);
  REQUIRE(batch.size() == 2);
  CHECK(batch[0].span_count == 2);
  CHECK(batch[1].span_count == 3);
  batch = queue.pop_batch(1000, 100);
  REQUIRE(batch.size() == 1);
  CHECK(batch[0].experiment == b);
  batch = queue.pop_batch(1000, 100);
  REQUIRE(batch.size() == 1);
  CHECK(batch[0].span_count == 4);
  CHECK(queue.pop_batch(1000, 100).empty());
}

TEST_CASE("interleaved experiments leave in the order of their oldest item", "[queue]") {
  // A backlog spread over experiments (routes per service, MLflow down for a while): each batch
  // is the experiment whose oldest item arrived first, and nothing is lost or reordered within
  // an experiment.
  SpanQueue queue(1u << 20);
  const auto a = ExperimentRef::by_id("1");
  const auto b = ExperimentRef::by_id("2");
  const auto c = ExperimentRef::by_name("koog-agents");
  const std::vector<ExperimentRef> arrivals{b, a, b, c, a, b, c, a};
  for (std::size_t i = 0; i < arrivals.size(); ++i) {
    REQUIRE(queue.push(items(arrivals[i], 10, static_cast<std::uint32_t>(i + 1))) ==
            PushResult::accepted);
  }
  CHECK(queue.stats().queued_items == arrivals.size());
  CHECK(queue.stats().queued_spans == 36);

  auto batch = queue.pop_batch(1000, 4);  // b's first two (1 + 3 spans)
  REQUIRE(batch.size() == 2);
  CHECK(batch[0].experiment == b);
  CHECK(batch[0].span_count == 1);
  CHECK(batch[1].span_count == 3);
  batch = queue.pop_batch(1000, 100);  // now a's is the oldest: all of a
  REQUIRE(batch.size() == 3);
  CHECK(batch[0].experiment == a);
  CHECK(batch[0].span_count == 2);
  CHECK(batch[1].span_count == 5);
  CHECK(batch[2].span_count == 8);
  // The rest at shutdown: in arrival order across experiments.
  const auto rest = queue.take_all();
  REQUIRE(rest.size() == 3);
  CHECK(rest[0].experiment == c);
  CHECK(rest[0].span_count == 4);
  CHECK(rest[1].experiment == b);
  CHECK(rest[1].span_count == 6);
  CHECK(rest[2].experiment == c);
  CHECK(rest[2].span_count == 7);
  CHECK(queue.empty());
  CHECK(queue.stats().queued_items == 0);
  CHECK(queue.stats().queued_spans == 0);
}

TEST_CASE("an item larger than the batch limit still travels, alone", "[queue]") {
  SpanQueue queue(1000);
  queue.push(items(ExperimentRef::by_id("1"), 500));
  queue.push(items(ExperimentRef::by_id("1"), 5));
  CHECK(queue.pop_batch(100, 100).size() == 1);
  CHECK(queue.pop_batch(100, 100).size() == 1);
}

TEST_CASE("a request's items are accepted together or not at all", "[queue]") {
  SpanQueue queue(100);
  std::vector<QueueItem> request;
  request.push_back({ExperimentRef::by_id("1"), std::string(60, 'x'), 1});
  request.push_back({ExperimentRef::by_id("2"), std::string(60, 'x'), 1});
  CHECK(queue.push(std::move(request)) == PushResult::full);
  CHECK(queue.empty());
}

TEST_CASE("a closed queue refuses pushes but keeps what it holds", "[queue]") {
  SpanQueue queue(100);
  queue.push(items(ExperimentRef::by_id("1"), 10));
  queue.close();
  CHECK(queue.push(items(ExperimentRef::by_id("1"), 10)) == PushResult::closed);
  CHECK(queue.pop_batch(100, 100).size() == 1);
}

TEST_CASE("pushes notify the consumer and concurrent producers lose nothing", "[queue]") {
  SpanQueue queue(1 << 30);
  std::atomic<int> notified{0};
  TestObserver consumer;
  consumer.available = [&](const PushLevel&) { notified.fetch_add(1); };
  queue.subscribe(consumer);
  constexpr int kProducers = 4;
  constexpr int kPerProducer = 2000;
  std::vector<std::thread> producers;
  std::atomic<int> refused{0};  // Catch's assertions are not thread-safe: count, check after
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&] {
      for (int i = 0; i < kPerProducer; ++i) {
        if (queue.push(items(ExperimentRef::by_id("1"), 8)) != PushResult::accepted) {
          refused.fetch_add(1);
        }
      }
    });
  }
  std::size_t spans = 0;
  while (spans < kProducers * kPerProducer) {
    const auto batch = queue.pop_batch(1 << 20, 1 << 20);
    for (const auto& item : batch) spans += item.span_count;
    queue.release(batch);
  }
  for (auto& producer : producers) producer.join();
  CHECK(refused.load() == 0);
  CHECK(notified.load() == kProducers * kPerProducer);
  CHECK(queue.stats().bytes == 0);
}

TEST_CASE("a push tells the consumer whether it started a batch and how much is queued",
          "[queue]") {
  SpanQueue queue(1000);
  std::vector<PushLevel> levels;
  TestObserver consumer;
  consumer.available = [&](const PushLevel& level) { levels.push_back(level); };
  queue.subscribe(consumer);
  queue.push(items(ExperimentRef::by_id("1"), 10, 2));
  queue.push(items(ExperimentRef::by_id("2"), 20, 3));
  REQUIRE(levels.size() == 2);
  CHECK(levels[0].was_empty);
  CHECK(levels[0].queued_spans == 2);
  CHECK(levels[0].queued_bytes == 10);
  CHECK_FALSE(levels[1].was_empty);
  CHECK(levels[1].queued_spans == 5);
  CHECK(levels[1].queued_bytes == 30);

  // Popping everything makes the next push start a batch again; a held item counts as nothing
  // available, since a worker waiting out its hold must look at what arrives.
  queue.release(queue.pop_batch(1000, 1000));
  queue.release(queue.pop_batch(1000, 1000));
  auto held = items(ExperimentRef::by_id("1"), 10, 1);
  held.front().hold = std::make_shared<const Hold>(
      Hold{SpanQueue::Clock::now() + std::chrono::hours(1), "route", {"trace"}});
  queue.push(std::move(held));
  queue.push(items(ExperimentRef::by_id("1"), 10, 1));
  REQUIRE(levels.size() == 4);
  CHECK(levels[2].was_empty);
  CHECK(levels[2].queued_spans == 0);
  CHECK(levels[3].was_empty);
  CHECK(levels[3].queued_spans == 1);
}

// Holds (normalize.preview_hold): a held item is queued and counted at once, but handed to the
// exporter only when its hold ends or an observer lets it go; the time is passed in.
namespace {

std::vector<QueueItem> held_item(const ExperimentRef& experiment, std::size_t bytes,
                                 SpanQueue::Clock::time_point until) {
  auto out = items(experiment, bytes, 2);
  out.front().hold = std::make_shared<const Hold>(Hold{until, "route", {"trace"}});
  return out;
}

}  // namespace

TEST_CASE("a held item waits out its hold without blocking others", "[queue][hold]") {
  using namespace std::chrono_literals;
  SpanQueue queue(1000);
  const auto t0 = SpanQueue::Clock::now();
  int released = 0;
  TestObserver holds;
  holds.hold_released = [&released](QueueItem& item) {
    ++released;
    item.payload += "filled";  // the root got its preview
  };
  queue.subscribe(holds);
  REQUIRE(queue.push(held_item(ExperimentRef::by_id("1"), 100, t0 + 50ms)) == PushResult::accepted);
  REQUIRE(queue.push(items(ExperimentRef::by_id("1"), 10)) == PushResult::accepted);
  REQUIRE(queue.push(items(ExperimentRef::by_id("2"), 20)) == PushResult::accepted);
  CHECK(queue.stats().held_items == 1);
  CHECK(queue.stats().queued_items == 3);
  CHECK(queue.stats().queued_spans == 4);
  CHECK(queue.stats().bytes == 130);

  // Other items of the same experiment and other experiments go at once.
  auto first = queue.pop_batch(1000, 1000, t0);
  REQUIRE(first.size() == 1);
  CHECK(first.front().payload.size() == 10);
  auto second = queue.pop_batch(1000, 1000, t0 + 1ms);
  REQUIRE(second.size() == 1);
  CHECK(second.front().experiment == ExperimentRef::by_id("2"));
  CHECK(released == 0);

  // Only the held item is left: a worker sleeps until its hold ends, not longer.
  CHECK(queue.linger_left(1000, 1000, 0ms, t0 + 10ms) == 40ms);
  CHECK(queue.pop_batch(1000, 1000, t0 + 49ms).empty());
  CHECK_FALSE(queue.empty());
  auto held = queue.pop_batch(1000, 1000, t0 + 50ms);
  REQUIRE(held.size() == 1);
  CHECK(released == 1);
  CHECK(held.front().hold == nullptr);
  CHECK(held.front().payload.size() == 106);
  CHECK(queue.empty());
  CHECK(queue.stats().held_items == 0);
  // The budget follows the rewritten payload, so releasing it gives back exactly what it holds.
  CHECK(queue.stats().bytes == 136);
  queue.release(first);
  queue.release(second);
  queue.release(held);
  CHECK(queue.stats().bytes == 0);
}

TEST_CASE("a held item goes early once an observer says so", "[queue][hold]") {
  using namespace std::chrono_literals;
  SpanQueue queue(1000);
  const auto t0 = SpanQueue::Clock::now();
  bool ready = false;
  TestObserver holds;
  holds.ready = [&ready](const QueueItem& item) { return ready && item.hold->key == "route"; };
  queue.subscribe(holds);
  REQUIRE(queue.push(held_item(ExperimentRef::by_id("1"), 100, t0 + 10s)) == PushResult::accepted);
  CHECK(queue.pop_batch(1000, 1000, t0).empty());
  CHECK(queue.linger_left(1000, 1000, 0ms, t0) == 10s);
  ready = true;  // its trace's invoke_agent arrived (a second later: after the item's enqueue)
  CHECK(queue.linger_left(1000, 1000, 0ms, t0 + 1s) == SpanQueue::Clock::duration::zero());
  CHECK(queue.pop_batch(1000, 1000, t0 + 1s).size() == 1);
}

TEST_CASE("closing the queue ends every hold, so the drain delivers held items", "[queue][hold]") {
  using namespace std::chrono_literals;
  SpanQueue queue(1000);
  const auto t0 = SpanQueue::Clock::now();
  REQUIRE(queue.push(held_item(ExperimentRef::by_id("1"), 100, t0 + 10s)) == PushResult::accepted);
  CHECK(queue.pop_batch(1000, 1000, t0).empty());
  queue.close();
  CHECK(queue.linger_left(1000, 1000, 0ms, t0 + 1s) == SpanQueue::Clock::duration::zero());
  CHECK(queue.pop_batch(1000, 1000, t0 + 1s).size() == 1);
}

TEST_CASE("held items are never lost: shutdown takes them with the rest", "[queue][hold]") {
  using namespace std::chrono_literals;
  SpanQueue queue(1000);
  const auto t0 = SpanQueue::Clock::now();
  REQUIRE(queue.push(held_item(ExperimentRef::by_id("1"), 100, t0 + 10s)) == PushResult::accepted);
  REQUIRE(queue.push(items(ExperimentRef::by_id("1"), 10)) == PushResult::accepted);
  queue.close();
  const auto all = queue.take_all();
  CHECK(all.size() == 2);
  CHECK(queue.empty());
  CHECK(queue.stats().queued_spans == 0);
}

// Observers (QueueObserver): any number subscribe, each hears every event once, in the order
// they subscribed; none replaces another.
TEST_CASE("every subscribed observer hears every push and release, in subscription order",
          "[queue][observer]") {
  SpanQueue queue(1000);
  std::vector<std::string> heard;
  TestObserver exporter;
  exporter.available = [&](const PushLevel&) { heard.push_back("exporter available"); };
  TestObserver spool;
  spool.available = [&](const PushLevel&) { heard.push_back("spool available"); };
  spool.released = [&](const std::vector<QueueItem>& items) {
    heard.push_back("spool released " + std::to_string(items.size()));
  };
  queue.subscribe(exporter);
  queue.subscribe(spool);
  queue.subscribe(exporter);  // a second subscription is refused: it would hear twice

  queue.push(items(ExperimentRef::by_id("1"), 10));
  queue.release(queue.pop_batch(1000, 1000));
  CHECK(heard == std::vector<std::string>{"exporter available", "spool available",
                                          "spool released 1"});

  heard.clear();
  queue.unsubscribe(exporter);
  queue.push(items(ExperimentRef::by_id("1"), 10));
  queue.release(10);  // budget only: no observer hears it
  CHECK(heard == std::vector<std::string>{"spool available"});
}

TEST_CASE("a held item goes when any observer is ready, and every observer sees it leave",
          "[queue][observer][hold]") {
  using namespace std::chrono_literals;
  SpanQueue queue(1000);
  const auto t0 = SpanQueue::Clock::now();
  bool second_ready = false;
  TestObserver first;
  first.ready = [](const QueueItem&) { return false; };
  first.hold_released = [](QueueItem& item) { item.payload += "1"; };
  TestObserver second;
  second.ready = [&second_ready](const QueueItem&) { return second_ready; };
  second.hold_released = [](QueueItem& item) { item.payload += "2"; };
  queue.subscribe(first);
  queue.subscribe(second);

  REQUIRE(queue.push(held_item(ExperimentRef::by_id("1"), 10, t0 + 10s)) == PushResult::accepted);
  CHECK(queue.pop_batch(1000, 1000, t0).empty());
  second_ready = true;
  const auto batch = queue.pop_batch(1000, 1000, t0 + 1s);
  REQUIRE(batch.size() == 1);
  CHECK(batch.front().payload == std::string(10, 'x') + "12");
  CHECK(batch.front().hold == nullptr);
  CHECK(queue.stats().bytes == 12);  // the budget follows both rewrites
}
