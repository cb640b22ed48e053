#pragma once

#include <string>
#include <string_view>

namespace proxy {

// Lowercase hex of raw bytes, as OTLP-JSON and MLflow print trace and span ids.
inline std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0x0f]);
  }
  return out;
}

}  // namespace proxy
