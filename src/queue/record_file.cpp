#include "queue/record_file.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "queue/crc32c.hpp"

namespace proxy::queue {

void put_u8(std::string& out, std::uint8_t value) { out.push_back(static_cast<char>(value)); }

void put_u16(std::string& out, std::uint16_t value) {
  for (int i = 0; i < 2; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

void put_u32(std::string& out, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

void put_u64(std::string& out, std::uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

void put_bytes32(std::string& out, std::string_view bytes) {
  put_u32(out, static_cast<std::uint32_t>(bytes.size()));
  out.append(bytes);
}

std::uint64_t FieldReader::little_endian(std::size_t bytes) {
  if (!ok_ || data_.size() < bytes) {
    ok_ = false;
    return 0;
  }
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < bytes; ++i) {
    value |= static_cast<std::uint64_t>(static_cast<unsigned char>(data_[i])) << (8 * i);
  }
  data_.remove_prefix(bytes);
  return value;
}

std::uint8_t FieldReader::u8() { return static_cast<std::uint8_t>(little_endian(1)); }
std::uint16_t FieldReader::u16() { return static_cast<std::uint16_t>(little_endian(2)); }
std::uint32_t FieldReader::u32() { return static_cast<std::uint32_t>(little_endian(4)); }
std::uint64_t FieldReader::u64() { return little_endian(8); }

std::string_view FieldReader::bytes32() {
  const std::uint32_t size = u32();
  if (!ok_ || data_.size() < size) {
    ok_ = false;
    return {};
  }
  std::string_view bytes = data_.substr(0, size);
  data_.remove_prefix(size);
  return bytes;
}

std::string_view FieldReader::rest() {
  std::string_view bytes = data_;
  data_ = {};
  return bytes;
}

std::size_t framed_size(std::size_t body_bytes) { return kRecordHeaderBytes + body_bytes; }

void append_record(std::string& out, std::string_view body) {
  put_u32(out, kRecordMagic);
  put_u32(out, static_cast<std::uint32_t>(body.size()));
  put_u32(out, crc32c(body));
  out.append(body);
}

namespace {

enum class Probe { valid, torn, bad };

// What starts at `pos`: a whole valid record, a record cut off by the end of the file, or junk.
Probe probe(std::string_view file, std::size_t pos, std::string_view& body) {
  if (file.size() - pos < kRecordHeaderBytes) return Probe::torn;
  FieldReader header(file.substr(pos, kRecordHeaderBytes));
  const std::uint32_t magic = header.u32();
  const std::uint32_t length = header.u32();
  const std::uint32_t crc = header.u32();
  if (magic != kRecordMagic || length > kMaxRecordBytes) return Probe::bad;
  if (file.size() - pos - kRecordHeaderBytes < length) return Probe::torn;
  body = file.substr(pos + kRecordHeaderBytes, length);
  return crc32c(body) == crc ? Probe::valid : Probe::bad;
}

}  // namespace

ScanResult scan_records(std::string_view file) {
  ScanResult result;
  std::size_t pos = std::min(file.size(), kFileMagicBytes);
  while (pos < file.size()) {
    std::string_view body;
    const Probe found = probe(file, pos, body);
    if (found == Probe::valid) {
      result.records.push_back({pos, body});
      pos += kRecordHeaderBytes + body.size();
      continue;
    }
    // Corrupt or cut short: look for the next record that checks out. A record that only looks
    // cut short may be a middle one whose length field is damaged: if a valid record follows, it
    // is a corrupt record, and truncating there would throw the valid records after it away
    // (found by fuzz/spool_records). Finding none, the rest is a torn or a corrupt tail.
    std::size_t next = pos + 1;
    bool resynced = false;
    while (next + kRecordHeaderBytes <= file.size()) {
      const auto* at = static_cast<const char*>(
          std::memchr(file.data() + next, static_cast<int>(kRecordMagic & 0xff), file.size() - next));
      if (at == nullptr) break;
      next = static_cast<std::size_t>(at - file.data());
      std::string_view candidate;
      if (next + kRecordHeaderBytes <= file.size() && probe(file, next, candidate) == Probe::valid) {
        resynced = true;
        break;
      }
      ++next;
    }
    if (!resynced) {
      if (found == Probe::torn) {
        result.torn_tail = true;
      } else {
        ++result.corrupt_records;
      }
      break;
    }
    ++result.corrupt_records;
    pos = next;
  }
  result.valid_end = pos;
  return result;
}

std::optional<std::string> read_whole_file(const std::string& path, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot open " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    error = "cannot read " + path;
    return std::nullopt;
  }
  return data;
}

}  // namespace proxy::queue
