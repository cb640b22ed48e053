#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "queue/crc32c.hpp"
#include "queue/record_file.hpp"
#include "queue/spool.hpp"
#include "support/temp_dir.hpp"

using proxy::ExperimentRef;
using proxy::testing::TempDir;
using namespace proxy::queue;
namespace fs = std::filesystem;

namespace {


std::vector<QueueItem> request(const std::string& payload, std::uint32_t spans = 1,
                               ExperimentRef experiment = ExperimentRef::by_name("agents")) {
  std::vector<QueueItem> items;
  items.push_back({std::move(experiment), payload, spans});
  return items;
}

SpoolOptions options_for(const TempDir& dir, SyncPolicy sync = SyncPolicy::always) {
  SpoolOptions options;
  options.directory = dir.str();
  options.max_disk_bytes = 64u << 20;
  options.sync = sync;
  options.sync_interval = std::chrono::milliseconds(5);
  return options;
}

bool store(Spool& spool, std::vector<QueueItem> items) {
  const Admission admission = spool.submit(std::move(items));
  return admission.result == PushResult::accepted && admission.commit && admission.commit->wait();
}

std::vector<std::string> drain_payloads(SpanQueue& queue) {
  std::vector<std::string> payloads;
  for (;;) {
    auto batch = queue.pop_batch(1u << 30, 1u << 30);
    if (batch.empty()) break;
    for (const auto& item : batch) payloads.push_back(item.payload);
    queue.release(batch);
  }
  return payloads;
}

std::vector<fs::path> segments_in(const TempDir& dir) {
  std::vector<fs::path> found;
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    if (entry.path().extension() == ".spool") found.push_back(entry.path());
  }
  std::sort(found.begin(), found.end());
  return found;
}

}  // namespace

TEST_CASE("crc32c matches the Castagnoli check value", "[queue][crc32c]") {
  CHECK(crc32c("123456789") == 0xe3069283u);
  CHECK(crc32c("") == 0u);
  const std::string long_text(1000, 'a');
  CHECK(crc32c(std::string_view(long_text).substr(400), crc32c(std::string_view(long_text).substr(0, 400))) ==
        crc32c(long_text));
}

TEST_CASE("a scan tells a torn tail from a corrupt record and resynchronises", "[queue][record]") {
  std::string file = "OMPSPL01";
  append_record(file, "first");
  const std::size_t second_at = file.size();
  append_record(file, "second");
  append_record(file, "third");
  const std::size_t torn_at = file.size();
  append_record(file, "fourth, cut short");
  file.resize(file.size() - 5);
  file[second_at + kRecordHeaderBytes + 2] ^= 0x40;  // flip a bit in "second"

  const ScanResult scan = scan_records(file);
  REQUIRE(scan.records.size() == 2);
  CHECK(scan.records[0].body == "first");
  CHECK(scan.records[1].body == "third");
  CHECK(scan.corrupt_records == 1);
  CHECK(scan.torn_tail);
  CHECK(scan.valid_end == torn_at);
}

TEST_CASE("a damaged length that runs past the end is a corrupt record when valid ones follow",
          "[queue][record]") {
  // Found by fuzz/spool_records: taken for a torn tail, it made recovery truncate the valid
  // records after it, and only on the second restart (after the first truncated the real tail).
  std::string file = "OMPSPL01";
  append_record(file, "first");
  const std::size_t damaged_at = file.size();
  append_record(file, "second");
  const std::size_t third_at = file.size();
  append_record(file, "third");
  append_record(file, "fourth");
  const std::size_t length_at = damaged_at + 4;
  file[length_at + 1] = 0x10;  // "second" now claims 4 KiB, more than the rest of the file

  ScanResult scan = scan_records(file);
  REQUIRE(scan.records.size() == 3);
  CHECK(scan.records[1].offset == third_at);
  CHECK(scan.corrupt_records == 1);
  CHECK_FALSE(scan.torn_tail);
  CHECK(scan.valid_end == file.size());

  // The same with a real torn tail after it: the tail goes, the valid records stay, and a second
  // scan of the truncated file agrees.
  append_record(file, "fifth, cut short");
  file.resize(file.size() - 3);
  scan = scan_records(file);
  CHECK(scan.records.size() == 3);
  CHECK(scan.torn_tail);
  const ScanResult again = scan_records(std::string_view(file).substr(0, scan.valid_end));
  CHECK(again.records.size() == 3);
  CHECK_FALSE(again.torn_tail);
  CHECK(again.corrupt_records == 1);
}

TEST_CASE("the spool acknowledges after writing and feeds the queue", "[queue][spool]") {
  TempDir dir;
  SpanQueue queue(1u << 20);
  Spool spool(options_for(dir), queue);
  spool.open();
  REQUIRE(store(spool, request("alpha", 3)));
  REQUIRE(store(spool, request("beta", 2)));
  CHECK(queue.stats().queued_spans == 5);
  CHECK(spool.stats().records_written == 2);
  CHECK(spool.stats().syncs >= 1);
  CHECK(drain_payloads(queue) == std::vector<std::string>{"alpha", "beta"});
}

TEST_CASE("a restart recovers exactly the records not acknowledged", "[queue][spool]") {
  TempDir dir;
  {
    SpanQueue queue(1u << 20);
    Spool spool(options_for(dir), queue);
    spool.open();
    REQUIRE(store(spool, request("delivered")));
    REQUIRE(store(spool, request("pending-1", 2)));
    REQUIRE(store(spool, request("pending-2", 4, ExperimentRef::by_id("7"))));
    auto first = queue.pop_batch(1, 1);
    REQUIRE(first.size() == 1);
    REQUIRE(first[0].payload == "delivered");
    queue.release(first);  // acknowledged
  }  // pending-* never delivered: as after a crash or a shutdown deadline
  SpanQueue queue(1u << 20);
  Spool spool(options_for(dir), queue);
  const RecoveryReport report = spool.open();
  CHECK(report.records == 2);
  CHECK(report.spans == 6);
  CHECK(report.already_done == 1);
  auto batch = queue.pop_batch(1u << 20, 1u << 20);
  REQUIRE(batch.size() == 1);
  CHECK(batch[0].payload == "pending-1");
  CHECK(batch[0].experiment == ExperimentRef::by_name("agents"));
  auto next = queue.pop_batch(1u << 20, 1u << 20);
  REQUIRE(next.size() == 1);
  CHECK(next[0].payload == "pending-2");
  CHECK(next[0].experiment == ExperimentRef::by_id("7"));
  CHECK(next[0].span_count == 4);
}

TEST_CASE("a torn last record is truncated and a corrupt one skipped, both counted", "[queue][spool]") {
  TempDir dir;
  {
    SpanQueue queue(1u << 20);
    Spool spool(options_for(dir), queue);
    spool.open();
    for (const char* payload : {"one", "two-corrupted", "three", "four-torn"}) {
      REQUIRE(store(spool, request(payload)));
    }
  }
  const auto segments = segments_in(dir);
  REQUIRE(segments.size() == 1);
  std::string data;
  {
    std::ifstream in(segments[0], std::ios::binary);
    data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const auto corrupt_at = data.find("two-corrupted");
  REQUIRE(corrupt_at != std::string::npos);
  data[corrupt_at] = 'T';
  data.resize(data.size() - 3);
  {
    std::ofstream out(segments[0], std::ios::binary | std::ios::trunc);
    out << data;
  }

  SpanQueue queue(1u << 20);
  Spool spool(options_for(dir), queue);
  const RecoveryReport report = spool.open();
  CHECK(report.torn_tails == 1);
  CHECK(report.corrupt_records == 1);
  CHECK(spool.stats().torn_tails == 1);
  CHECK(spool.stats().corrupt_records == 1);
  CHECK(drain_payloads(queue) == std::vector<std::string>{"one", "three"});
}

TEST_CASE("segments are deleted once all their records are done", "[queue][spool]") {
  TempDir dir;
  SpanQueue queue(64u << 20);
  SpoolOptions options = options_for(dir, SyncPolicy::never);
  options.segment_bytes = 64 * 1024;  // the minimum
  Spool spool(options, queue);
  spool.open();
  const std::string payload(10 * 1024, 'p');
  for (int i = 0; i < 40; ++i) REQUIRE(store(spool, request(payload)));
  CHECK(segments_in(dir).size() >= 5);
  CHECK(drain_payloads(queue).size() == 40);
  // The writer deletes done segments and, once all its records are done, rotates the active one
  // (it holds more than a quarter of segment_bytes) into a fresh segment, in the background.
  // While it swaps there is a moment with none, and before it swaps the old active one is the
  // only segment left: wait for the settled state, one segment holding no record.
  const auto settled = [&] {
    const auto segments = segments_in(dir);
    std::error_code ec;
    const auto bytes = segments.size() == 1 ? fs::file_size(segments.front(), ec) : 0;
    return segments.size() == 1 && !ec && bytes < payload.size();
  };
  for (int i = 0; i < 1000 && !settled(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  CHECK(settled());  // only the fresh active segment
  CHECK(spool.stats().segments_deleted >= 5);
  spool.close();
  CHECK(segments_in(dir).empty());
}

TEST_CASE("the disk budget refuses what would not fit", "[queue][spool]") {
  TempDir dir;
  SpanQueue queue(64u << 20);
  SpoolOptions options = options_for(dir);
  options.max_disk_bytes = 100 * 1024;
  Spool spool(options, queue);
  spool.open();
  const std::string payload(30 * 1024, 'p');
  int accepted = 0;
  for (int i = 0; i < 5; ++i) {
    const Admission admission = spool.submit(request(payload));
    if (admission.result == PushResult::full) break;
    REQUIRE(admission.commit->wait());
    ++accepted;
  }
  CHECK(accepted == 3);
  CHECK(spool.stats().rejected_disk_full == 1);
  drain_payloads(queue);
  // All done: the writer retires the segment, which gives the budget back.
  for (int i = 0; i < 200 && spool.disk_bytes() > 1024; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  CHECK(spool.submit(request(payload)).result == PushResult::accepted);
}

TEST_CASE("concurrent submitters share flushes (group commit)", "[queue][spool]") {
  TempDir dir;
  SpanQueue queue(64u << 20);
  Spool spool(options_for(dir), queue);
  spool.open();
  constexpr int kThreads = 8;
  constexpr int kEach = 50;
  std::vector<std::thread> threads;
  std::atomic<int> stored{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        if (store(spool, request("span batch"))) stored.fetch_add(1);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(stored == kThreads * kEach);
  CHECK(spool.stats().records_written == kThreads * kEach);
  CHECK(spool.stats().syncs <= spool.stats().records_written + 1);
  CHECK(queue.stats().queued_items == kThreads * kEach);
}

TEST_CASE("a second spool on the same directory is refused", "[queue][spool]") {
  TempDir dir;
  SpanQueue queue(1u << 20);
  Spool first(options_for(dir), queue);
  first.open();
  SpanQueue other_queue(1u << 20);
  Spool second(options_for(dir), other_queue);
  CHECK_THROWS_WITH(second.open(), Catch::Contains("in use by another"));
}

TEST_CASE("a batch waits for the linger unless it is full", "[queue]") {
  SpanQueue queue(1u << 20);
  REQUIRE(queue.push(request("x", 1)) == PushResult::accepted);
  CHECK(queue.linger_left(1u << 20, 100, std::chrono::milliseconds(1000)) >
        std::chrono::milliseconds(900));
  CHECK(queue.linger_left(1u << 20, 1, std::chrono::milliseconds(1000)) ==
        std::chrono::steady_clock::duration::zero());
  CHECK(queue.linger_left(1u << 20, 100, std::chrono::milliseconds(0)) ==
        std::chrono::steady_clock::duration::zero());
}

// ---- write errors: reclaiming what is delivered, refusing what cannot be stored ----

namespace {

// A file system that fails appends with `error` while `failing` is set.
struct FaultySpool {
  explicit FaultySpool(const TempDir& dir) : queue(64u << 20) {
    SpoolOptions options = options_for(dir);
    options.inject_write_error = [this](std::size_t bytes) {
      const int error = failing.load();
      if (bytes > 0 && error != 0 && fail_once.exchange(false)) failing.store(0);
      return error;
    };
    spool = std::make_unique<Spool>(options, queue);
    spool->open();
  }
  std::atomic<int> failing{0};
  std::atomic<bool> fail_once{false};  // the first failed append clears `failing`
  SpanQueue queue;
  std::unique_ptr<Spool> spool;
};

std::uintmax_t active_segment_bytes(const TempDir& dir) {
  const auto segments = segments_in(dir);
  return segments.empty() ? 0 : fs::file_size(segments.back());
}

bool eventually(const std::function<bool()>& condition) {
  for (int i = 0; i < 400 && !condition(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return condition();
}

}  // namespace

TEST_CASE("a full disk holding only delivered records is cut back and the write retried",
          "[queue][spool][reclaim]") {
  TempDir dir;
  FaultySpool faulty(dir);
  const std::string payload(4096, 'd');
  for (int i = 0; i < 5; ++i) REQUIRE(store(*faulty.spool, request(payload)));
  REQUIRE(drain_payloads(faulty.queue).size() == 5);  // delivered: nothing outstanding
  REQUIRE(active_segment_bytes(dir) > 5 * payload.size());

  faulty.fail_once = true;
  faulty.failing = ENOSPC;
  CHECK(store(*faulty.spool, request("after")));
  CHECK(faulty.spool->stats().reclaims == 1);
  CHECK(faulty.spool->stats().write_errors_by_errno[write_errno_slot(ENOSPC)] == 1);
  CHECK(faulty.spool->writable());
  // Only the header and the new record are left.
  CHECK(active_segment_bytes(dir) < payload.size());
  CHECK(drain_payloads(faulty.queue) == std::vector<std::string>{"after"});
}

TEST_CASE("a full disk with records outstanding refuses, then takes spans once they are delivered",
          "[queue][spool][reclaim]") {
  TempDir dir;
  FaultySpool faulty(dir);
  REQUIRE(store(*faulty.spool, request("outstanding")));
  faulty.failing = ENOSPC;
  const Admission refused = faulty.spool->submit(request("refused"));
  REQUIRE(refused.commit);
  CHECK_FALSE(refused.commit->wait());  // never acknowledged without a durable write
  CHECK_FALSE(faulty.spool->writable());
  CHECK(faulty.spool->stats().write_errors_by_errno[write_errno_slot(ENOSPC)] == 2);  // and the retry
  CHECK(faulty.queue.stats().queued_items == 1);

  // The sealed segment goes as soon as its record is delivered; the disk has room again.
  CHECK(drain_payloads(faulty.queue) == std::vector<std::string>{"outstanding"});
  faulty.failing = 0;
  CHECK(eventually([&] { return faulty.spool->writable(); }));  // the probe, without a request
  CHECK(store(*faulty.spool, request("accepted")));
  CHECK(drain_payloads(faulty.queue) == std::vector<std::string>{"accepted"});
}

TEST_CASE("refused requests are not recovered after a restart", "[queue][spool][reclaim]") {
  TempDir dir;
  {
    FaultySpool faulty(dir);
    REQUIRE(store(*faulty.spool, request("kept")));
    faulty.failing = EIO;
    for (int i = 0; i < 3; ++i) {
      const Admission admission = faulty.spool->submit(request("refused"));
      REQUIRE(admission.commit);
      CHECK_FALSE(admission.commit->wait());
    }
    CHECK(faulty.spool->stats().write_errors_by_errno[write_errno_slot(EIO)] == 6);
  }
  SpanQueue queue(1u << 20);
  Spool spool(options_for(dir), queue);
  const RecoveryReport report = spool.open();
  CHECK(report.records == 1);
  CHECK(drain_payloads(queue) == std::vector<std::string>{"kept"});
}

TEST_CASE("errors other than lack of space refuse without reclaiming", "[queue][spool][reclaim]") {
  TempDir dir;
  FaultySpool faulty(dir);
  faulty.failing = EROFS;
  const Admission admission = faulty.spool->submit(request("refused"));
  REQUIRE(admission.commit);
  CHECK_FALSE(admission.commit->wait());
  CHECK(faulty.spool->stats().reclaims == 0);
  CHECK(faulty.spool->stats().write_errors_by_errno[write_errno_slot(EROFS)] == 1);
  CHECK(write_errno_name(write_errno_slot(EROFS)) == "EROFS");
  CHECK(write_errno_name(write_errno_slot(EPERM)) == "other");
  faulty.failing = 0;
  CHECK(store(*faulty.spool, request("accepted")));
  CHECK(faulty.spool->writable());
}

TEST_CASE("a state directory removed while running is created again and stays durable",
          "[queue][spool][reclaim]") {
  TempDir dir;
  {
    SpanQueue queue(1u << 20);
    Spool spool(options_for(dir), queue);
    spool.open();
    REQUIRE(store(spool, request("before")));
    REQUIRE(drain_payloads(queue).size() == 1);
    fs::remove_all(dir.path());
    REQUIRE(store(spool, request("after-removal")));
    CHECK(spool.stats().write_errors_by_errno[write_errno_slot(ENOENT)] == 1);
    CHECK(fs::exists(dir.path() / "lock"));
    CHECK(segments_in(dir).size() == 1);
  }  // crash-like: "after-removal" was not delivered
  SpanQueue queue(1u << 20);
  Spool spool(options_for(dir), queue);
  CHECK(spool.open().records == 1);
  CHECK(drain_payloads(queue) == std::vector<std::string>{"after-removal"});
}
