// The dead-letter file: spans the proxy gave up on (MLflow rejected them for good, or shutdown
// came first in memory mode), kept so that `otlp-mlflow-proxy replay FILE` can send them later.
// Framing as in queue/record_file.hpp, file magic "OMPDLQ01", one record per queue item:
//   u8 format version (1) | u64 time, ms since the Unix epoch | u16 HTTP status (0: none)
//   | u8 experiment kind (0 id, 1 name, 2 name that must exist) | u32 length + experiment
//   | u32 length + reason (UTF-8)
//   | u32 span count | the serialized ExportTraceServiceRequest (rest of the body)
// Each write is flushed (fdatasync) before the spans are released from the queue or spool.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "queue/span_queue.hpp"

namespace proxy::exporter {

struct DeadLetter {
  queue::QueueItem item;
  int status = 0;
  std::string reason;
  std::int64_t time_unix_ms = 0;
};

class DeadLetterWriter {
 public:
  explicit DeadLetterWriter(std::string path) : path_(std::move(path)) {}
  ~DeadLetterWriter();
  DeadLetterWriter(const DeadLetterWriter&) = delete;
  DeadLetterWriter& operator=(const DeadLetterWriter&) = delete;

  // Appends and flushes; false (logged) when the file cannot be written.
  bool write(const std::vector<queue::QueueItem>& items, int status, std::string_view reason);

  const std::string& path() const { return path_; }

 private:
  std::mutex mutex_;
  std::string path_;
  int fd_ = -1;
};

struct DeadLetterFile {
  std::vector<DeadLetter> records;
  std::uint64_t corrupt_records = 0;
  bool torn_tail = false;
};

// Parses a dead-letter file's bytes; false when it is not a dead-letter file at all.
bool parse_dead_letters(std::string_view file, DeadLetterFile& out);

}  // namespace proxy::exporter
