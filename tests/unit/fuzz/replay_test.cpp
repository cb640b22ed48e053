#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "fuzz_targets.hpp"

namespace fs = std::filesystem;

TEST_CASE("every seed and regression input runs through its fuzz target without a finding", "[fuzz]") {
  std::size_t inputs = 0;
  for (const auto& target : proxy::fuzz::kTargets) {
    for (const char* kind : {"corpus", "regressions"}) {
      const fs::path dir = fs::path(PROXY_FUZZ_DIR) / kind / target.name;
      if (!fs::is_directory(dir)) continue;
      for (const auto& entry : fs::directory_iterator(dir)) {
        if (!entry.is_regular_file()) continue;
        std::ifstream file(entry.path(), std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
        INFO(entry.path().string());
        target.run(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
        ++inputs;
      }
    }
  }
  // The corpus ships with the repository; an empty replay would prove nothing.
  CHECK(inputs >= 10);
}
