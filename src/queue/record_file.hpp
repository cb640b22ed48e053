// The framing shared by spool segments and dead-letter files: a file header (8-byte magic), then
// records of
//   u32 kRecordMagic | u32 body length | u32 CRC32C of the body | body
// all integers little-endian. A reader tells a torn tail (the last record cut short by a crash)
// from a corrupt record (bytes that fail their checksum), skips the latter and resynchronises on
// the next record that checks out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace proxy::queue {

inline constexpr std::uint32_t kRecordMagic = 0x5250'4d4f;  // "OMPR" on disk
inline constexpr std::size_t kRecordHeaderBytes = 12;
inline constexpr std::size_t kFileMagicBytes = 8;
// Larger lengths are read as corruption: no record is bigger than a request body limit (1 GiB).
inline constexpr std::uint32_t kMaxRecordBytes = 1u << 30;

void put_u8(std::string& out, std::uint8_t value);
void put_u16(std::string& out, std::uint16_t value);
void put_u32(std::string& out, std::uint32_t value);
void put_u64(std::string& out, std::uint64_t value);
void put_bytes32(std::string& out, std::string_view bytes);  // u32 length, then the bytes

// Reads fields front to back; any read past the end makes ok() false for good.
class FieldReader {
 public:
  explicit FieldReader(std::string_view data) : data_(data) {}
  std::uint8_t u8();
  std::uint16_t u16();
  std::uint32_t u32();
  std::uint64_t u64();
  std::string_view bytes32();
  std::string_view rest();
  bool ok() const { return ok_; }

 private:
  std::uint64_t little_endian(std::size_t bytes);
  std::string_view data_;
  bool ok_ = true;
};

// Appends one framed record (header and body) to `out`.
void append_record(std::string& out, std::string_view body);
std::size_t framed_size(std::size_t body_bytes);

struct ScannedRecord {
  std::size_t offset = 0;  // of the record header in the file
  std::string_view body;
};

struct ScanResult {
  std::vector<ScannedRecord> records;  // valid records, in file order
  std::uint64_t corrupt_records = 0;   // stretches of bytes skipped between valid records
  bool torn_tail = false;              // the file ends inside a record (or in garbage)
  std::size_t valid_end = 0;           // truncating here leaves only whole records
};

// `file` is a whole file including its header; records start at kFileMagicBytes.
ScanResult scan_records(std::string_view file);

// Reads a whole file; nullopt (with `error`) when it cannot be read.
std::optional<std::string> read_whole_file(const std::string& path, std::string& error);

}  // namespace proxy::queue
