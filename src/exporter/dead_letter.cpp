#include "exporter/dead_letter.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <spdlog/spdlog.h>

#include "queue/record_file.hpp"

namespace proxy::exporter {
namespace {

constexpr std::string_view kMagic = "OMPDLQ01";
constexpr std::uint8_t kVersion = 1;

}  // namespace

DeadLetterWriter::~DeadLetterWriter() {
  if (fd_ >= 0) ::close(fd_);
}

bool DeadLetterWriter::write(const std::vector<queue::QueueItem>& items, int status,
                             std::string_view reason) {
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::string framed;
  for (const auto& item : items) {
    std::string body;
    queue::put_u8(body, kVersion);
    queue::put_u64(body, static_cast<std::uint64_t>(now_ms));
    queue::put_u16(body, static_cast<std::uint16_t>(status));
    queue::put_u8(body, item.experiment.storage_tag());
    queue::put_bytes32(body, item.experiment.value);
    queue::put_bytes32(body, reason);
    queue::put_u32(body, item.span_count);
    body.append(item.payload);
    queue::append_record(framed, body);
  }
  std::lock_guard lock(mutex_);
  if (fd_ < 0) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd_ < 0) {
      spdlog::critical("cannot open the dead-letter file {}: {}", path_, std::strerror(errno));
      return false;
    }
    if (::lseek(fd_, 0, SEEK_END) == 0) framed.insert(0, kMagic);
  }
  std::string_view rest = framed;
  while (!rest.empty()) {
    const ssize_t written = ::write(fd_, rest.data(), rest.size());
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) {
      spdlog::critical("cannot write the dead-letter file {}: {}", path_, std::strerror(errno));
      return false;
    }
    rest.remove_prefix(static_cast<std::size_t>(written));
  }
  if (::fdatasync(fd_) != 0) {
    spdlog::critical("cannot flush the dead-letter file {}: {}", path_, std::strerror(errno));
    return false;
  }
  return true;
}

bool parse_dead_letters(std::string_view file, DeadLetterFile& out) {
  if (file.size() < kMagic.size() || file.substr(0, kMagic.size()) != kMagic) return false;
  const queue::ScanResult scan = queue::scan_records(file);
  out.corrupt_records = scan.corrupt_records;
  out.torn_tail = scan.torn_tail;
  for (const auto& record : scan.records) {
    queue::FieldReader reader(record.body);
    DeadLetter letter;
    const std::uint8_t version = reader.u8();
    letter.time_unix_ms = static_cast<std::int64_t>(reader.u64());
    letter.status = reader.u16();
    const std::uint8_t kind = reader.u8();
    const std::string_view experiment = reader.bytes32();
    letter.reason = std::string(reader.bytes32());
    letter.item.span_count = reader.u32();
    letter.item.payload = std::string(reader.rest());
    auto ref = ExperimentRef::from_storage(kind, std::string(experiment));
    if (!reader.ok() || version != kVersion || !ref) {
      ++out.corrupt_records;
      continue;
    }
    letter.item.experiment = std::move(*ref);
    out.records.push_back(std::move(letter));
  }
  return true;
}

}  // namespace proxy::exporter
