#include "config/config.hpp"

namespace proxy::config {

std::string Endpoint::to_string() const {
  // An IPv6 address needs brackets, or its colons would run into the port's.
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

}  // namespace proxy::config
