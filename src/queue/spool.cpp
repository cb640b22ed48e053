#include "queue/spool.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <system_error>
#include <utility>

#include <spdlog/spdlog.h>

#include "common/thread_name.hpp"
#include "queue/crc32c.hpp"
#include "queue/record_file.hpp"

namespace proxy::queue {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kSegmentMagic = "OMPSPL01";
constexpr std::string_view kSegmentPrefix = "segment-";
constexpr std::string_view kSegmentSuffix = ".spool";
constexpr std::size_t kAckEntryBytes = 12;
constexpr std::size_t kMinSegmentBytes = 64 * 1024;

std::string errno_text() { return std::strerror(errno); }

// Errors after which a retry can succeed once delivered records are reclaimed.
bool is_space_error(int error) { return error == ENOSPC || error == EDQUOT || error == EIO; }

// Errors that a missing or replaced state directory gives; recreating it may cure them.
bool is_directory_error(int error) { return error == ENOENT || error == ESTALE; }

// While the spool cannot write, how often the writer looks whether it could again (/readyz).
constexpr auto kProbeInterval = std::chrono::milliseconds(250);
// Room a probe wants before it calls the spool writable: more than one typical request.
constexpr std::uint64_t kProbeFreeBytes = 256 * 1024;

constexpr std::array<std::string_view, kWriteErrnoSlots> kWriteErrnoNames = {
    "ENOSPC", "EDQUOT", "EIO", "EROFS", "ENOENT", "EACCES", "other"};

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t written = ::write(fd, data.data(), data.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(written));
  }
  return true;
}

std::string ack_entry(std::uint64_t id) {
  std::string entry;
  put_u64(entry, id);
  put_u32(entry, crc32c(entry));
  return entry;
}

std::set<std::uint64_t> read_acks(const std::string& path) {
  std::set<std::uint64_t> done;
  std::string error;
  const auto data = read_whole_file(path, error);
  if (!data) return done;  // no acks yet
  for (std::size_t pos = 0; pos + kAckEntryBytes <= data->size(); pos += kAckEntryBytes) {
    const std::string_view entry(data->data() + pos, kAckEntryBytes);
    FieldReader reader(entry);
    const std::uint64_t id = reader.u64();
    if (reader.u32() == crc32c(entry.substr(0, 8))) done.insert(id);
  }
  return done;
}

}  // namespace

std::size_t write_errno_slot(int error) {
  const auto* found = std::find(kCountedWriteErrnos.begin(), kCountedWriteErrnos.end(), error);
  return static_cast<std::size_t>(found - kCountedWriteErrnos.begin());
}

std::string_view write_errno_name(std::size_t slot) {
  return kWriteErrnoNames[std::min(slot, kWriteErrnoNames.size() - 1)];
}

std::string encode_spool_record(std::uint64_t record_id, const QueueItem& item) {
  std::string body;
  body.reserve(8 + 4 + 1 + 4 + item.experiment.value.size() + item.payload.size());
  put_u64(body, record_id);
  put_u32(body, item.span_count);
  put_u8(body, item.experiment.storage_tag());
  put_bytes32(body, item.experiment.value);
  body.append(item.payload);
  return body;
}

bool decode_spool_record(std::string_view body, QueueItem& item) {
  FieldReader reader(body);
  item.record_id = reader.u64();
  item.span_count = reader.u32();
  const std::uint8_t kind = reader.u8();
  const std::string_view experiment = reader.bytes32();
  const std::string_view payload = reader.rest();
  if (!reader.ok()) return false;
  auto ref = ExperimentRef::from_storage(kind, std::string(experiment));
  if (!ref) return false;
  item.experiment = std::move(*ref);
  item.payload.assign(payload);
  return true;
}

Spool::Spool(SpoolOptions options, SpanQueue& queue) : options_(std::move(options)), queue_(queue) {
  options_.segment_bytes =
      std::max(kMinSegmentBytes, std::min(options_.segment_bytes, options_.max_disk_bytes / 8));
}

Spool::~Spool() { close(); }

std::string Spool::segment_path(std::uint64_t first_id, const char* suffix) const {
  char name[64];
  std::snprintf(name, sizeof name, "segment-%020" PRIu64 "%s", first_id, suffix);
  return (fs::path(options_.directory) / name).string();
}

void Spool::lock_directory_or_throw() {
  std::error_code ec;
  fs::create_directories(options_.directory, ec);
  if (ec) {
    throw std::runtime_error("queue.state_dir " + options_.directory +
                             ": cannot create: " + ec.message());
  }
  const std::string lock_path = (fs::path(options_.directory) / "lock").string();
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) {
    throw std::runtime_error("queue.state_dir: cannot open " + lock_path + ": " + errno_text());
  }
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    throw std::runtime_error("queue.state_dir " + options_.directory +
                             " is in use by another otlp-mlflow-proxy (" + lock_path + " is locked)");
  }
  dir_fd_ = ::open(options_.directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

// Segment files by first record id.
std::map<std::uint64_t, std::string> Spool::list_segments() const {
  std::error_code ec;
  std::map<std::uint64_t, std::string> found;
  for (const auto& entry : fs::directory_iterator(options_.directory, ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with(kSegmentPrefix) || !name.ends_with(kSegmentSuffix)) continue;
    const std::string digits = name.substr(kSegmentPrefix.size(),
                                           name.size() - kSegmentPrefix.size() - kSegmentSuffix.size());
    char* end = nullptr;
    const std::uint64_t first_id = std::strtoull(digits.c_str(), &end, 10);
    if (digits.empty() || *end != '\0') continue;
    found.emplace(first_id, entry.path().string());
  }
  if (ec) throw std::runtime_error("queue.state_dir: cannot list " + options_.directory + ": " + ec.message());
  return found;
}

// A file without our header: created just before a crash (shorter than the header, removed) or
// not ours (kept aside).
void Spool::set_aside_headerless(const Segment& segment, std::size_t size, RecoveryReport& report) {
  std::error_code ec;
  if (size < kFileMagicBytes) {
    ++report.torn_tails;
    fs::remove(segment.path, ec);
  } else {
    ++report.corrupt_records;
    fs::rename(segment.path, segment.path + ".corrupt", ec);
    spdlog::error("spool: {} has no spool header; moved aside to {}.corrupt", segment.path,
                  segment.path);
  }
  fs::remove(segment.ack_path, ec);
}

// The records of one segment not marked done; cuts a torn or corrupt tail off. Returns the
// segment's valid length.
std::size_t Spool::recover_records(Segment& segment, const std::string& data, Recovered& out) {
  const ScanResult scan = scan_records(data);
  const std::set<std::uint64_t> done = read_acks(segment.ack_path);
  std::uint64_t corrupt = scan.corrupt_records;
  for (const auto& record : scan.records) {
    QueueItem item;
    if (!decode_spool_record(record.body, item)) {
      ++corrupt;
      continue;
    }
    out.max_id = std::max(out.max_id, item.record_id);
    if (done.count(item.record_id) != 0) {
      ++out.report.already_done;
      continue;
    }
    ++segment.outstanding;
    ++out.report.records;
    out.report.spans += item.span_count;
    out.items.push_back(std::move(item));
  }
  if (scan.valid_end < data.size() && ::truncate(segment.path.c_str(), static_cast<off_t>(scan.valid_end)) != 0) {
    spdlog::error("spool: cannot truncate {} to {} bytes: {}", segment.path, scan.valid_end, errno_text());
  }
  if (scan.torn_tail) {
    ++out.report.torn_tails;
    spdlog::warn("spool: {} ends in a torn record (a write cut short by a crash); truncated "
                 "the last {} bytes",
                 segment.path, data.size() - scan.valid_end);
  }
  if (corrupt > 0) {
    out.report.corrupt_records += corrupt;
    spdlog::error("spool: {} holds {} corrupt records (checksum or format); skipped them",
                  segment.path, corrupt);
  }
  segment.ack_bytes = done.size() * kAckEntryBytes;
  return scan.valid_end;
}

void Spool::recover_segment(std::uint64_t first_id, const std::string& path, Recovered& out) {
  out.max_id = std::max(out.max_id, first_id);
  Segment segment;
  segment.path = path;
  segment.ack_path = segment_path(first_id, ".acks");
  std::string error;
  const auto data = read_whole_file(path, error);
  if (!data) throw std::runtime_error("spool: " + error);
  if (data->size() < kFileMagicBytes || std::string_view(*data).substr(0, kFileMagicBytes) != kSegmentMagic) {
    set_aside_headerless(segment, data->size(), out.report);
    return;
  }
  segment.bytes = recover_records(segment, *data, out);
  ++out.report.segments;
  if (segment.outstanding == 0) {
    std::error_code ec;
    fs::remove(path, ec);
    fs::remove(segment.ack_path, ec);
    stats_.segments_deleted.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  segment.sealed = true;
  out.disk += segment.bytes + segment.ack_bytes;
  segments_.emplace(first_id, std::move(segment));
}

RecoveryReport Spool::open() {
  lock_directory_or_throw();
  Recovered recovered;
  for (const auto& [first_id, path] : list_segments()) recover_segment(first_id, path, recovered);
  const RecoveryReport& report = recovered.report;
  disk_bytes_.store(recovered.disk);
  next_id_ = recovered.max_id + 1;
  stats_.records_recovered.store(report.records);
  stats_.spans_recovered.store(report.spans);
  stats_.torn_tails.store(report.torn_tails);
  stats_.corrupt_records.store(report.corrupt_records);

  queue_.subscribe(*this);
  if (!recovered.items.empty()) queue_.push_recovered(std::move(recovered.items));
  // A full disk (say after a crash on one) must not keep the proxy from starting and delivering
  // what it holds: it starts refusing, and the first append that fits creates the segment.
  if (const int error = create_active_segment(next_id_); error != 0) {
    if (!is_space_error(error)) open_active_segment(next_id_);  // throws, naming the error
    note_write_error(error, "cannot create");
  }
  writer_ = std::thread([this] {
    name_this_thread("proxy-spool");
    writer_loop();
  });
  return report;
}

void Spool::open_active_segment(std::uint64_t first_id) {
  const int error = create_active_segment(first_id);
  if (error != 0) {
    throw std::runtime_error("spool: cannot create " + segment_path(first_id, kSegmentSuffix.data()) +
                             ": " + std::strerror(error));
  }
}

// 0, or the errno that kept the new segment from being created (nothing is left behind then).
int Spool::create_active_segment(std::uint64_t first_id) {
  const std::string path = segment_path(first_id, kSegmentSuffix.data());
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  if (!write_all(fd, kSegmentMagic)) {
    const int error = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return error;
  }
  // The new file's directory entry must be durable too, or a flushed record could vanish with it.
  if (options_.sync != SyncPolicy::never) {
    ::fdatasync(fd);
    if (dir_fd_ >= 0) ::fsync(dir_fd_);
  }
  active_fd_ = fd;
  active_id_ = first_id;
  active_bytes_ = kFileMagicBytes;
  disk_bytes_.fetch_add(kFileMagicBytes);
  Segment segment;
  segment.path = path;
  segment.ack_path = segment_path(first_id, ".acks");
  segment.bytes = active_bytes_;
  std::lock_guard lock(segments_mutex_);
  segments_[first_id] = std::move(segment);
  return 0;
}

void Spool::seal_active_segment() {
  if (active_fd_ < 0) return;
  if (options_.sync != SyncPolicy::never && dirty_) {
    if (::fdatasync(active_fd_) == 0) stats_.syncs.fetch_add(1, std::memory_order_relaxed);
  }
  dirty_ = false;
  ::close(active_fd_);
  active_fd_ = -1;
  std::lock_guard lock(segments_mutex_);
  const auto it = segments_.find(active_id_);
  if (it == segments_.end()) return;
  it->second.sealed = true;
  if (it->second.outstanding == 0) delete_segment_locked(it);
}

void Spool::delete_segment_locked(std::map<std::uint64_t, Segment>::iterator it) {
  Segment& segment = it->second;
  if (segment.ack_fd >= 0) ::close(segment.ack_fd);
  ::unlink(segment.path.c_str());
  ::unlink(segment.ack_path.c_str());
  disk_bytes_.fetch_sub(std::min(disk_bytes_.load(), segment.bytes + segment.ack_bytes));
  stats_.segments_deleted.fetch_add(1, std::memory_order_relaxed);
  segments_.erase(it);
}

Admission Spool::submit(std::vector<QueueItem>&& items) {
  if (items.empty()) return {PushResult::accepted, nullptr};
  std::size_t queue_bytes = 0;
  for (const auto& item : items) queue_bytes += item.payload.size();
  const PushResult reserved = queue_.reserve(queue_bytes);
  if (reserved != PushResult::accepted) return {reserved, nullptr};

  Pending pending;
  pending.queue_bytes = queue_bytes;
  pending.ticket = std::make_shared<CommitTicket>();
  {
    std::lock_guard lock(pending_mutex_);
    if (stopping_) {
      queue_.cancel_reservation(queue_bytes);
      return {PushResult::closed, nullptr};
    }
    std::size_t framed = 0;
    std::vector<std::string> bodies;
    bodies.reserve(items.size());
    std::uint64_t id = next_id_;
    for (auto& item : items) {
      item.record_id = id++;
      bodies.push_back(encode_spool_record(item.record_id, item));
      framed += framed_size(bodies.back().size());
    }
    std::size_t disk = disk_bytes_.load(std::memory_order_relaxed);
    do {
      if (disk + framed > options_.max_disk_bytes) {
        queue_.cancel_reservation(queue_bytes);
        stats_.rejected_disk_full.fetch_add(1, std::memory_order_relaxed);
        return {PushResult::full, nullptr};
      }
    } while (!disk_bytes_.compare_exchange_weak(disk, disk + framed));
    next_id_ = id;
    pending.framed.reserve(framed);
    for (const auto& body : bodies) append_record(pending.framed, body);
    pending.items = std::move(items);
    Admission admission{PushResult::accepted, pending.ticket};
    pending_.push_back(std::move(pending));
    pending_cv_.notify_one();
    return admission;
  }
}

void Spool::rotate_if_done() {
  {
    std::lock_guard lock(segments_mutex_);
    const auto it = segments_.find(active_id_);
    if (it == segments_.end() || it->second.outstanding > 0) return;
  }
  seal_active_segment();
  std::uint64_t first_id = 0;
  {
    // Requests submitted since the writer looked already hold ids below next_id_: the new
    // segment must be named after the first of them, or their acks would find the wrong one.
    std::lock_guard lock(pending_mutex_);
    first_id = pending_.empty() ? next_id_ : pending_.front().items.front().record_id;
  }
  // On failure the next append tries again.
  if (const int error = create_active_segment(first_id); error != 0) {
    note_write_error(error, "cannot create");
  }
}

// False once stopping with nothing left to write.
bool Spool::wait_for_work(std::vector<Pending>& group, bool& rotate) {
  std::unique_lock lock(pending_mutex_);
  const auto ready = [this] { return !pending_.empty() || stopping_ || rotate_requested_; };
  if (!writable()) {
    pending_cv_.wait_for(lock, kProbeInterval, ready);
  } else if (options_.sync == SyncPolicy::interval && dirty_) {
    pending_cv_.wait_until(lock, last_sync_ + options_.sync_interval, ready);
  } else {
    pending_cv_.wait(lock, ready);
  }
  if (pending_.empty() && stopping_) return false;
  group.swap(pending_);
  rotate = std::exchange(rotate_requested_, false);
  return true;
}

void Spool::writer_loop() {
  std::vector<Pending> group;
  bool rotate = false;
  for (;;) {
    if (!wait_for_work(group, rotate)) break;
    if (rotate && group.empty()) rotate_if_done();
    if (!group.empty()) write_group(group);
    if (group.empty() && !writable()) probe_writable();
    if (options_.sync == SyncPolicy::interval && dirty_ &&
        std::chrono::steady_clock::now() - last_sync_ >= options_.sync_interval) {
      sync_active();
    }
    group.clear();
  }
  if (options_.sync != SyncPolicy::never && dirty_) sync_active();
}

bool Spool::sync_active() {
  last_sync_ = std::chrono::steady_clock::now();
  dirty_ = false;
  if (::fdatasync(active_fd_) != 0) {
    note_write_error(errno, "cannot flush");
    return false;
  }
  stats_.syncs.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void Spool::count_write_error(int error, std::string_view what) {
  stats_.write_errors.fetch_add(1, std::memory_order_relaxed);
  stats_.write_errors_by_errno[write_errno_slot(error)].fetch_add(1, std::memory_order_relaxed);
  spdlog::debug("spool: {} segment {}: {}", what, active_id_, std::strerror(error));
}

void Spool::note_write_error(int error, std::string_view what) {
  count_write_error(error, what);
  stop_taking(error, what);
}

void Spool::stop_taking(int error, std::string_view what) {
  // Once per episode at critical; every request would otherwise log it while the disk is full.
  if (writable_.exchange(false)) {
    spdlog::critical("spool: {} segment {} in {}: {}; refusing spans (503) until it can write again",
                     what, active_id_, options_.directory, std::strerror(error));
  }
}

// Whether the active segment's file was deleted under it (its directory removed): writes to it
// still succeed but would not survive a restart.
bool Spool::active_segment_removed() const {
  struct stat st {};
  return active_fd_ >= 0 && ::fstat(active_fd_, &st) == 0 && st.st_nlink == 0;
}

// 0, or the errno of a failed append; a failed append is cut back so the file ends in whole
// records.
int Spool::try_append(std::string_view framed, std::uint64_t first_id) {
  if (active_segment_removed()) {
    seal_active_segment();
    return ENOENT;
  }
  if (active_fd_ < 0) {
    if (const int error = create_active_segment(first_id); error != 0) return error;
  }
  if (options_.inject_write_error) {
    if (const int error = options_.inject_write_error(framed.size()); error != 0) return error;
  }
  if (write_all(active_fd_, framed)) return 0;
  const int error = errno;
  if (::ftruncate(active_fd_, static_cast<off_t>(active_bytes_)) != 0) {
    spdlog::critical("spool: cannot cut segment {} back after a failed write: {}", active_id_,
                     errno_text());
  }
  return error;
}

// One append, and after a write error one more once room is made: a full file system often
// holds only records MLflow has already confirmed.
bool Spool::append_with_reclaim(std::string_view framed, std::uint64_t first_id) {
  int error = try_append(framed, first_id);
  if (error == 0) return true;
  count_write_error(error, "cannot append to");
  if (!reclaim_after(error)) {
    stop_taking(error, "cannot append to");
    return false;
  }
  error = try_append(framed, first_id);
  if (error == 0) return true;
  note_write_error(error, "cannot append to");
  return false;
}

bool Spool::reclaim_after(int error) {
  if (is_directory_error(error)) return restore_directory();
  if (!is_space_error(error)) return false;
  stats_.reclaims.fetch_add(1, std::memory_order_relaxed);
  if (truncate_active_if_done()) return true;
  // Records still outstanding: seal the segment, so it goes as soon as they are delivered, and
  // retry on a new one (which may not fit either; then the request is refused).
  seal_active_segment();
  return true;
}

// An active segment whose records are all done is cut back to its header, and its ack file goes.
bool Spool::truncate_active_if_done() {
  if (active_fd_ < 0 || active_bytes_ <= kFileMagicBytes) return false;
  std::lock_guard lock(segments_mutex_);
  const auto it = segments_.find(active_id_);
  if (it == segments_.end() || it->second.outstanding > 0) return false;
  if (::ftruncate(active_fd_, static_cast<off_t>(kFileMagicBytes)) != 0) return false;
  Segment& segment = it->second;
  // After the truncation: a crash between the two leaves acks of records no longer there.
  if (segment.ack_fd >= 0) ::close(segment.ack_fd);
  segment.ack_fd = -1;
  ::unlink(segment.ack_path.c_str());
  const std::size_t freed = segment.bytes - kFileMagicBytes + segment.ack_bytes;
  disk_bytes_.fetch_sub(std::min(disk_bytes_.load(), freed));
  segment.bytes = kFileMagicBytes;
  segment.ack_bytes = 0;
  active_bytes_ = kFileMagicBytes;
  return true;
}

// The state directory was removed while running: create it again (with its lock) so that new
// records are durable. Records of the removed segments stay in memory until delivered.
bool Spool::restore_directory() {
  struct stat st {};
  if (dir_fd_ >= 0 && ::fstat(dir_fd_, &st) == 0 && st.st_nlink > 0) return true;
  std::error_code ec;
  fs::create_directories(options_.directory, ec);
  if (ec) return false;
  const int dir_fd = ::open(options_.directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return false;
  if (dir_fd_ >= 0) ::close(dir_fd_);
  dir_fd_ = dir_fd;
  lock_directory();
  spdlog::error("spool: queue.state_dir {} was removed while running; created it again (spans "
                "acknowledged before are kept in memory until delivered, a crash would lose them)",
                options_.directory);
  return true;
}

void Spool::lock_directory() {
  const std::string lock_path = (fs::path(options_.directory) / "lock").string();
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 || ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    spdlog::error("spool: cannot lock {}: {}", lock_path, errno_text());
    if (fd >= 0) ::close(fd);
    return;
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);
  lock_fd_ = fd;
}

// While refusing: the spool is writable again once its directory takes files and has room.
void Spool::probe_writable() {
  if (!restore_directory()) return;
  if (options_.inject_write_error && options_.inject_write_error(0) != 0) return;
  struct statvfs st {};
  if (::statvfs(options_.directory.c_str(), &st) != 0 || (st.f_flag & ST_RDONLY) != 0) return;
  if (static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize < kProbeFreeBytes) {
    truncate_active_if_done();
    return;
  }
  if (::access(options_.directory.c_str(), W_OK) != 0) return;
  if (!writable_.exchange(true)) spdlog::info("spool: {} can be written again", options_.directory);
}

void Spool::store_pending(Pending& pending) {
  const std::uint64_t first_id = pending.items.front().record_id;
  if (active_fd_ >= 0 && active_bytes_ >= options_.segment_bytes) seal_active_segment();
  if (!append_with_reclaim(pending.framed, first_id)) return;
  pending.stored = true;
  dirty_ = true;
  active_bytes_ += pending.framed.size();
  stats_.records_written.fetch_add(pending.items.size(), std::memory_order_relaxed);
  stats_.bytes_written.fetch_add(pending.framed.size(), std::memory_order_relaxed);
  std::lock_guard lock(segments_mutex_);
  Segment& segment = segments_[active_id_];
  segment.bytes = active_bytes_;
  segment.outstanding += pending.items.size();
}

void Spool::write_group(std::vector<Pending>& group) {
  for (auto& pending : group) store_pending(pending);
  // Group commit: one flush for every request that arrived while the previous one ran.
  if (options_.sync == SyncPolicy::always && dirty_ && !sync_active()) {
    // What fdatasync reports lost cannot be trusted on disk: tell those clients to retry, and
    // write on in a new segment.
    {
      std::lock_guard lock(segments_mutex_);
      for (auto& pending : group) {
        if (!pending.stored) continue;
        pending.stored = false;
        auto& segment = segments_[active_id_];
        segment.outstanding -= std::min(segment.outstanding, pending.items.size());
      }
    }
    seal_active_segment();
  }
  finish_group(group);
}

void Spool::finish_group(std::vector<Pending>& group) {
  const bool any_stored =
      std::any_of(group.begin(), group.end(), [](const Pending& pending) { return pending.stored; });
  // Before the answers: a client told 200 finds the proxy ready.
  if (any_stored && !writable_.exchange(true)) {
    spdlog::info("spool: {} can be written again", options_.directory);
  }
  for (auto& pending : group) {
    if (pending.stored) {
      queue_.push_reserved(std::move(pending.items));
    } else {
      queue_.cancel_reservation(pending.queue_bytes);
      disk_bytes_.fetch_sub(std::min(disk_bytes_.load(), pending.framed.size()));
    }
    pending.ticket->complete(pending.stored);
  }
}

void Spool::acknowledge(const std::vector<QueueItem>& items) {
  std::lock_guard lock(segments_mutex_);
  for (const auto& item : items) {
    if (item.record_id == 0 || segments_.empty()) continue;
    auto it = segments_.upper_bound(item.record_id);
    if (it == segments_.begin()) continue;
    --it;
    Segment& segment = it->second;
    if (segment.ack_fd < 0) {
      segment.ack_fd = ::open(segment.ack_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    }
    // Without a flush: a lost ack only means the record is sent again after a crash.
    if (segment.ack_fd >= 0 && write_all(segment.ack_fd, ack_entry(item.record_id))) {
      segment.ack_bytes += kAckEntryBytes;
      disk_bytes_.fetch_add(kAckEntryBytes, std::memory_order_relaxed);
    }
    if (segment.outstanding > 0) --segment.outstanding;
    if (segment.outstanding > 0) continue;
    if (segment.sealed) {
      delete_segment_locked(it);
    } else if (segment.bytes >= options_.segment_bytes / 4 ||
               disk_bytes_.load() > options_.max_disk_bytes / 2) {
      // Not for every small delivery: a new file per request would cost a directory flush each.
      std::lock_guard pending_lock(pending_mutex_);
      rotate_requested_ = true;
      pending_cv_.notify_one();
    }
  }
}

void Spool::close() {
  {
    std::lock_guard lock(pending_mutex_);
    if (closed_) return;
    closed_ = true;
    stopping_ = true;
  }
  pending_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  queue_.unsubscribe(*this);
  if (active_fd_ >= 0) {
    ::close(active_fd_);
    active_fd_ = -1;
  }
  {
    std::lock_guard lock(segments_mutex_);
    for (auto& [id, segment] : segments_) {
      if (segment.ack_fd >= 0) ::close(segment.ack_fd);
      segment.ack_fd = -1;
    }
    // A fully done active segment is not needed at the next start.
    const auto it = segments_.find(active_id_);
    if (it != segments_.end() && it->second.outstanding == 0) delete_segment_locked(it);
  }
  if (dir_fd_ >= 0) ::close(dir_fd_);
  dir_fd_ = -1;
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
  lock_fd_ = -1;
}

}  // namespace proxy::queue
