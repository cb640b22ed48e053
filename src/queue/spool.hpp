// The disk spool behind `durability: disk`: append-only segment files in a state directory, one
// framed record (record_file.hpp) per queue item, CRC32C-checked. A writer thread appends what
// requests submit and flushes once per group of appends (group commit), then acknowledges them
// all. Records the exporter finishes (delivered or dead-lettered) are noted in the segment's ack
// file; a segment is deleted once all its records are done. On open, every record not in an ack
// file is pushed back into the queue; a torn tail is truncated, corrupt records are skipped, both
// counted and logged.
//
// Segment file  segment-<first record id, 20 digits>.spool:
//   "OMPSPL01", then records whose body is
//   u64 record id | u32 span count | u8 experiment kind (0 id, 1 name, 2 name that must exist)
//   | u32 length + experiment
//   | the serialized ExportTraceServiceRequest (rest of the body)
// Ack file  segment-<same>.acks: 12-byte entries, u64 record id | u32 CRC32C of those 8 bytes.
#pragma once

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "queue/commit_ticket.hpp"
#include "queue/span_queue.hpp"

namespace proxy::queue {

enum class SyncPolicy { always, interval, never };

struct SpoolOptions {
  std::string directory;
  std::size_t max_disk_bytes = std::size_t{1} << 30;
  SyncPolicy sync = SyncPolicy::always;
  std::chrono::milliseconds sync_interval{1000};
  std::size_t segment_bytes = 16u << 20;  // capped at an eighth of max_disk_bytes
  // Tests only: asked before every append (bytes > 0) and every writability probe (bytes 0);
  // a nonzero errno fails it as the file system would.
  std::function<int(std::size_t bytes)> inject_write_error;
};

// The errno values spool write errors are counted under; anything else counts as "other".
inline constexpr std::array<int, 6> kCountedWriteErrnos = {ENOSPC, EDQUOT, EIO, EROFS, ENOENT, EACCES};
inline constexpr std::size_t kWriteErrnoSlots = kCountedWriteErrnos.size() + 1;
std::size_t write_errno_slot(int error);
// "ENOSPC", ... "other", for slot i.
std::string_view write_errno_name(std::size_t slot);

struct SpoolStats {
  using Counter = std::atomic<std::uint64_t>;
  Counter records_written{0};
  Counter bytes_written{0};
  Counter syncs{0};  // fdatasync calls: with group commit, far fewer than records
  Counter rejected_disk_full{0};
  Counter write_errors{0};
  std::array<Counter, kWriteErrnoSlots> write_errors_by_errno{};  // slots: write_errno_slot()
  Counter reclaims{0};  // segments cut back or sealed to make room after a write error
  Counter segments_deleted{0};
  Counter records_recovered{0};
  Counter spans_recovered{0};
  Counter torn_tails{0};
  Counter corrupt_records{0};
};

struct RecoveryReport {
  std::uint64_t segments = 0;
  std::uint64_t records = 0;  // pushed back into the queue
  std::uint64_t spans = 0;
  std::uint64_t already_done = 0;  // records the ack files mark delivered or dead-lettered
  std::uint64_t torn_tails = 0;
  std::uint64_t corrupt_records = 0;
};

// What submit() decided: refused (full, closed) or accepted with a ticket completed once stored.
struct Admission {
  PushResult result = PushResult::accepted;
  std::shared_ptr<CommitTicket> commit;
};

// Record body encoding, shared with replay.
std::string encode_spool_record(std::uint64_t record_id, const QueueItem& item);
bool decode_spool_record(std::string_view body, QueueItem& item);

class Spool : private QueueObserver {
 public:
  Spool(SpoolOptions options, SpanQueue& queue);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Locks the directory, recovers what it holds into the queue, starts a fresh segment and the
  // writer thread. Throws std::runtime_error when the directory is unusable or locked.
  RecoveryReport open();

  // Never blocks on disk: takes the memory and disk budget or refuses, and hands the records to
  // the writer thread.
  Admission submit(std::vector<QueueItem>&& items);

  // Items delivered or dead-lettered (the queue tells it through on_released).
  void acknowledge(const std::vector<QueueItem>& items);

  // Writes what was submitted, flushes, stops the writer. Later acknowledgements are ignored
  // (their records are sent again after a restart, which MLflow absorbs: spans are upserted).
  void close();

  // False from a write error until a write succeeds again or a probe finds room (for /readyz).
  bool writable() const { return writable_.load(std::memory_order_relaxed); }

  const SpoolStats& stats() const { return stats_; }
  std::size_t disk_bytes() const { return disk_bytes_.load(std::memory_order_relaxed); }
  const SpoolOptions& options() const { return options_; }

 private:
  void on_released(const std::vector<QueueItem>& items) override { acknowledge(items); }

  struct Segment {
    std::string path;
    std::string ack_path;
    int ack_fd = -1;
    std::size_t bytes = 0;
    std::size_t ack_bytes = 0;
    std::size_t outstanding = 0;
    bool sealed = false;
  };
  struct Pending {
    std::vector<QueueItem> items;
    std::string framed;
    std::shared_ptr<CommitTicket> ticket;
    std::size_t queue_bytes = 0;
    bool stored = false;
  };

  struct Recovered {
    RecoveryReport report;
    std::vector<QueueItem> items;
    std::uint64_t max_id = 0;
    std::size_t disk = 0;
  };

  void lock_directory_or_throw();
  std::map<std::uint64_t, std::string> list_segments() const;
  void set_aside_headerless(const Segment& segment, std::size_t size, RecoveryReport& report);
  std::size_t recover_records(Segment& segment, const std::string& data, Recovered& out);
  void recover_segment(std::uint64_t first_id, const std::string& path, Recovered& out);
  void writer_loop();
  bool wait_for_work(std::vector<Pending>& group, bool& rotate);
  void write_group(std::vector<Pending>& group);
  void store_pending(Pending& pending);
  void finish_group(std::vector<Pending>& group);
  bool append_with_reclaim(std::string_view framed, std::uint64_t first_id);
  int try_append(std::string_view framed, std::uint64_t first_id);
  bool reclaim_after(int error);
  bool truncate_active_if_done();
  bool active_segment_removed() const;
  bool restore_directory();
  void lock_directory();
  void count_write_error(int error, std::string_view what);
  void note_write_error(int error, std::string_view what);
  void stop_taking(int error, std::string_view what);
  void probe_writable();
  bool sync_active();
  void open_active_segment(std::uint64_t first_id);
  int create_active_segment(std::uint64_t first_id);
  void seal_active_segment();
  void rotate_if_done();
  void delete_segment_locked(std::map<std::uint64_t, Segment>::iterator it);
  std::string segment_path(std::uint64_t first_id, const char* suffix) const;

  SpoolOptions options_;
  SpanQueue& queue_;
  SpoolStats stats_;
  std::atomic<std::size_t> disk_bytes_{0};
  std::atomic<bool> writable_{true};
  int lock_fd_ = -1;
  int dir_fd_ = -1;

  // Submissions waiting for the writer; held only for a push or a swap.
  std::mutex pending_mutex_;
  std::condition_variable pending_cv_;
  std::vector<Pending> pending_;
  std::uint64_t next_id_ = 1;
  bool stopping_ = false;
  bool closed_ = false;
  // The active segment is all done: the writer starts a new one so this one can go.
  bool rotate_requested_ = false;

  // Segments, their outstanding counts and ack files. Never held across a data write or a flush.
  std::mutex segments_mutex_;
  std::map<std::uint64_t, Segment> segments_;

  // Owned by the writer thread once it runs.
  int active_fd_ = -1;
  std::uint64_t active_id_ = 0;
  std::size_t active_bytes_ = 0;
  bool dirty_ = false;
  std::chrono::steady_clock::time_point last_sync_{};
  std::thread writer_;
};

}  // namespace proxy::queue
