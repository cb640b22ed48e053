// libFuzzer entry: one binary per target, chosen at compile time by PROXY_FUZZ_TARGET.
#include "fuzz_targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  proxy::fuzz::PROXY_FUZZ_TARGET(data, size);
  return 0;
}
